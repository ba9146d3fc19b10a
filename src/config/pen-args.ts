/**
 * pen's command line: `[options] [host:]port|/path h1[:p1[:maxc[:hard[:weight[:prio]]]]] ...`,
 * parsed like glibc getopt (bundled flags `-fdr`, attached values `-x500`, options after the
 * positional arguments, `--` ends options), plus Fulcrum's own long options.
 */
import { AddressError, parseListenAddress, parseServerArg, type Address } from '../core/address.ts';
import { isAlgorithmName, algorithmNames, type AlgorithmName } from '../core/balancing/registry.ts';
import { penProtocolMinimum } from '../core/tls-rules.ts';
import { parseAdminAddress } from './admin-address.ts';
import { checkSpec, CHECK_DEFAULTS, DEFAULT_HTTP_STATUS, parseStatusRanges, type CheckSpec } from '../core/health/check-spec.ts';
import { defaultGlobal, defaultGroup, MAX_WORKERS, penUdpConfig, serverConfig, type FulcrumConfig, type GlobalConfig, type ServerConfig } from './model.ts';
import type { ListenerTlsConfig } from './tls-settings.ts';
import { penTls, type PenSslOptions } from './pen-tls-args.ts';
import { UsageError } from './usage-error.ts';
import { checkDuration, type DurationRule, type DurationUnit } from '../core/duration.ts';
import { isDigit } from '../core/digits.ts';

export { UsageError };

/** pen options that take a value. */
const WITH_VALUE = new Set('BCFOSTbcejlmopqtuwxEKGAL'.split(''));
/** pen flags. */
const FLAGS = new Set('DHNPQWXUadfhnrsZR'.split(''));

/** Options that belong to features not built yet: refused clearly rather than ignored (none today). */
const NOT_YET: Readonly<Record<string, string>> = {};

export interface LongOptions {
  /** --config FILE: YAML config instead of a command line. */
  configFile: string | null;
  /** --algorithm NAME: any algorithm from the registry. */
  algorithm: AlgorithmName | null;
  /** --admin ADDR: the admin HTTP listener (loopback host:port or a Unix socket path). */
  admin: string | null;
  /** --admin-token-file FILE: bearer token for state-changing admin requests. */
  adminTokenFile: string | null;
  /** --admin-allow-remote: permit a non-loopback admin address. */
  adminAllowRemote: boolean;
  /** --access-log FILE|-: one line per finished connection. */
  accessLog: string | null;
  /** --access-log-format json|text. */
  accessLogFormat: 'json' | 'text' | null;
  /** --log-format pen|fulcrum: what -l writes. */
  logFormat: 'pen' | 'fulcrum' | null;
  /** --state-file FILE: client tracking tables saved on stop, loaded on start. */
  stateFile: string | null;
  /** --send-proxy v1|v2 */
  sendProxy: 'off' | 'v1' | 'v2';
  help: boolean;
  version: boolean;
  /** --check KIND and its timing, for every server on the command line. */
  check: string | null;
  checkIntervalMs: number | null;
  checkTimeoutMs: number | null;
  rise: number | null;
  fall: number | null;
  /** --workers N|auto: serving processes sharing the ports (docs/workers.md). */
  workers: number | 'auto' | null;
  /** --diagnostics-log stderr|syslog|syslog:PATH|FILE: where Fulcrum's own messages go. */
  diagnosticsLog: string | null;
  /** --quiet: no start line (pid and listeners). */
  quiet: boolean;
}

/** `--workers` / `workers:`: a count from 1, or `auto` (one per CPU). */
export function parseWorkers(text: string): number | 'auto' | null {
  if (text === 'auto') return 'auto';
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= MAX_WORKERS ? n : null;
}

/**
 * `--check tcp`, `--check tls`, `--check http:/path` (2xx/3xx expected) or
 * `--check http:/path:200` (also `:2xx`, `:200-204`, or a comma list).
 */
export function parseCheckOption(text: string, timing: { intervalMs: number | null; timeoutMs: number | null; rise: number | null; fall: number | null }): CheckSpec {
  const intervalMs = timing.intervalMs ?? CHECK_DEFAULTS.intervalMs;
  const fields = {
    intervalMs,
    downIntervalMs: intervalMs,
    timeoutMs: timing.timeoutMs ?? Math.min(CHECK_DEFAULTS.timeoutMs, intervalMs),
    rise: timing.rise ?? CHECK_DEFAULTS.rise,
    fall: timing.fall ?? CHECK_DEFAULTS.fall,
  };
  if (text === 'tcp' || text === 'tls') return checkSpec('cli', text, fields);
  const m = /^https?:(\/\S*?)(?::([0-9x,-]+))?$/i.exec(text);
  if (m === null) throw new UsageError(`--check: "${text}" is not tcp, tls, http:/path or http:/path:STATUS`);
  let expectStatus = DEFAULT_HTTP_STATUS;
  if (m[2] !== undefined) {
    const r = parseStatusRanges(m[2].split(','));
    if (r === null) throw new UsageError(`--check: "${m[2]}" is not a status such as 200, 2xx or 200-299`);
    expectStatus = r;
  }
  const tls = text.toLowerCase().startsWith('https:') ? { serverName: null, verify: false, caFile: null } : null;
  return checkSpec('cli', 'http', { ...fields, http: { method: 'GET', path: m[1]!, host: null, expectStatus, expectBody: null }, tls });
}

export interface ParsedCommandLine {
  config: FulcrumConfig;
  /** penctl commands from -o/-O, in order; applied after the command line, before -F. */
  commands: string[];
  long: LongOptions;
  /** Messages for accepted-but-ignored options (-P, -Q, -m ...). */
  notes: string[];
  /** Global settings given on the command line: with --config they override the file's. */
  given: Set<keyof GlobalConfig>;
  /** Options that configure pen's one listener and group (-t, -E, --check ...), as written. */
  groupOptions: string[];
}

/** pen's options that set a global setting (the rest configure its one listener and group). */
const GLOBAL_OPTIONS: Readonly<Record<string, keyof GlobalConfig>> = {
  x: 'maxConnections', F: 'commandFile', C: 'control', l: 'logFile', p: 'pidFile', w: 'statusFile', u: 'user',
  m: 'multiAccept', q: 'backlog', d: 'debug', a: 'asciiDumps', f: 'foreground', X: 'controlExit',
};
/** Accepted and ignored (notes only), or commands (-o): neither global nor per group. */
const NEITHER = new Set('oOSPQZDn'.split(''));
/** Long options that configure pen's one listener and group. */
const GROUP_LONG = new Set(['algorithm', 'send-proxy', 'check', 'check-interval', 'check-timeout', 'rise', 'fall']);

function intValue(opt: string, value: string, min = 0): number {
  if (!/^-?\d+$/.test(value)) throw new UsageError(`-${opt}: "${value}" is not an integer`);
  const n = Number(value);
  if (n < min) throw new UsageError(`-${opt}: ${n} is below the minimum ${min}`);
  return n;
}

/** A time option, in ms, by the one rule for every duration (core/duration.ts). */
function durationValue(opt: string, value: string, unit: DurationUnit, rule?: DurationRule): number {
  const r = checkDuration(value, unit, opt, rule);
  if ('error' in r) throw new UsageError(r.error);
  return r.ms;
}

/** pen's `-e host:port` / `-B host:port`. */
function specialServer(opt: string, value: string, listen: Address | null): ServerConfig {
  try {
    const s = parseServerArg(value, listen?.kind === 'tcp' ? listen.port : undefined);
    return serverConfig(s.address, { maxConnections: s.maxConnections, hardLimit: s.hardLimit, weight: s.weight, priority: s.priority });
  } catch (e) {
    throw new UsageError(`-${opt}: ${(e as Error).message}`);
  }
}

function nonEmpty(name: string, value: string): string {
  if (value === '') throw new UsageError(`--${name} needs a value`);
  return value;
}

/**
 * Applies the admin, access log and state file options to a config (from the command line or
 * the config file; the command line wins) and checks that they make sense together.
 */
export function applyLongOptions(config: FulcrumConfig, long: LongOptions): void {
  const g = config.global;
  if (long.admin !== null) {
    const allowRemote = long.adminAllowRemote || (g.admin?.allowRemote ?? false);
    const a = parseAdminAddress(long.admin, allowRemote);
    if (typeof a === 'string') throw new UsageError(`--admin: ${a}`);
    g.admin = { address: a, tokenFile: g.admin?.tokenFile ?? null, allowRemote };
  } else if (long.adminAllowRemote && g.admin !== null) {
    g.admin.allowRemote = true;
  }
  if (long.adminTokenFile !== null) {
    if (g.admin === null) throw new UsageError('--admin-token-file needs --admin ADDR (or an admin: section in the config file)');
    g.admin.tokenFile = long.adminTokenFile;
  }
  if (long.adminAllowRemote && g.admin === null) throw new UsageError('--admin-allow-remote needs --admin ADDR');
  if (long.accessLog !== null) {
    g.accessLog = { path: long.accessLog, format: long.accessLogFormat ?? g.accessLog?.format ?? 'json' };
  } else if (long.accessLogFormat !== null) {
    if (g.accessLog === null) throw new UsageError('--access-log-format needs --access-log FILE|- (or an access_log: section in the config file)');
    g.accessLog.format = long.accessLogFormat;
  }
  if (long.logFormat !== null) g.logFormat = long.logFormat;
  if (long.stateFile !== null) g.stateFile = long.stateFile;
  if (long.workers !== null) g.workers = long.workers;
  if (long.diagnosticsLog !== null) g.diagnosticsLog = long.diagnosticsLog;
}

export function parsePenArgs(argv: readonly string[]): ParsedCommandLine {
  const global = defaultGlobal();
  const group = defaultGroup('default');
  const long: LongOptions = {
    configFile: null,
    algorithm: null,
    admin: null,
    adminTokenFile: null,
    adminAllowRemote: false,
    accessLog: null,
    accessLogFormat: null,
    logFormat: null,
    stateFile: null,
    sendProxy: 'off',
    help: false,
    version: false,
    check: null,
    checkIntervalMs: null,
    checkTimeoutMs: null,
    rise: null,
    fall: null,
    workers: null,
    diagnosticsLog: null,
    quiet: false,
  };
  const commands: string[] = [];
  const notes: string[] = [];
  const given = new Set<keyof GlobalConfig>();
  const groupOptions: string[] = [];
  const positional: string[] = [];
  const flags = { udp: false, forwardedFor: false, hash: false, hashNoSave: false, roundrobin: false, weight: false, stubborn: false };
  let emergency: string | null = null;
  let abuse: string | null = null;
  const ssl: PenSslOptions = { cert: null, key: null, caFile: null, caDir: null, require: false, min: null };

  const apply = (opt: string, value: string): void => {
    switch (opt) {
      case 'b': group.blacklistMs = durationValue('-b', value, 's'); break;
      case 'c': group.clientsMax = intValue(opt, value, 1); break;
      case 'e': emergency = value; break;
      case 'B': abuse = value; break;
      case 't': group.connectTimeoutMs = durationValue('-t', value, 's', { minMs: 1000 }); break;
      case 'x': global.maxConnections = intValue(opt, value, 1); break;
      case 'T': group.trackingMs = durationValue('-T', value, 's'); break;
      case 'F': global.commandFile = value; break;
      case 'C':
        try {
          parseListenAddress(value);
        } catch (e) {
          throw new UsageError(`-C: ${(e as AddressError).message}`);
        }
        global.control = value;
        break;
      case 'l': global.logFile = value; break;
      case 'p': global.pidFile = value; break;
      case 'w': global.statusFile = value; break;
      case 'u': global.user = value; break;
      case 'm': global.multiAccept = intValue(opt, value, 1); break;
      case 'q': global.backlog = intValue(opt, value, 1); break;
      case 'o': case 'O': commands.push(value); break;
      case 'E': ssl.cert = value; break;
      case 'K': ssl.key = value; break;
      case 'G': ssl.caFile = value; break;
      case 'A': ssl.caDir = value; break;
      case 'L': {
        const m = penProtocolMinimum(value);
        if ('error' in m) throw new UsageError(m.error);
        if (m.note !== undefined) notes.push(m.note);
        ssl.min = m.min;
        break;
      }
      case 'j': throw new UsageError('-j (chroot) is not supported: Bun has no chroot(2) API. Confine Fulcrum with systemd (RootDirectory=, ProtectSystem=) or a container instead.');
      case 'S': notes.push('-S is obsolete and ignored (as in pen)'); break;
      default: throw new UsageError(`-${opt} is not a known option (see fulcrum --help)`);
    }
  };
  const flag = (opt: string): void => {
    switch (opt) {
      case 'd': global.debug++; break;
      case 'a': global.asciiDumps = true; break;
      case 'f': global.foreground = true; break;
      case 'X': global.controlExit = true; break;
      case 'h': flags.hash = true; break;
      case 'N': flags.hashNoSave = true; break;
      case 'r': flags.roundrobin = true; break;
      case 's': flags.stubborn = true; break;
      case 'W': flags.weight = true; break;
      case 'U': flags.udp = true; break;
      case 'H': flags.forwardedFor = true; break;
      case 'P': notes.push('-P (poll) is accepted and ignored: Fulcrum always uses the runtime\'s epoll event loop'); break;
      case 'Q': notes.push('-Q (kqueue) is accepted and ignored: Fulcrum always uses the runtime\'s epoll event loop'); break;
      case 'R': ssl.require = true; break;
      case 'Z': notes.push('-Z (SSL compatibility mode) is accepted and ignored: BoringSSL always applies its interoperability workarounds'); break;
      case 'D': case 'n': notes.push(`-${opt} is obsolete and ignored (as in pen)`); break;
      default: throw new UsageError(`-${opt} is not a known option (see fulcrum --help)`);
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (GROUP_LONG.has(name)) groupOptions.push(`--${name}`);
      const takeValue = (): string => {
        if (eq !== -1) return arg.slice(eq + 1);
        const v = argv[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        return v;
      };
      switch (name) {
        case 'help': long.help = true; break;
        case 'version': long.version = true; break;
        case 'config': long.configFile = takeValue(); break;
        case 'send-proxy': {
          const v = takeValue();
          if (v !== 'v1' && v !== 'v2' && v !== 'off') throw new UsageError(`--send-proxy: "${v}" is not v1, v2 or off`);
          long.sendProxy = v;
          break;
        }
        case 'algorithm': {
          const v = takeValue();
          if (!isAlgorithmName(v)) throw new UsageError(`--algorithm: "${v}" is not one of ${algorithmNames.join(', ')}`);
          long.algorithm = v;
          break;
        }
        case 'admin': long.admin = nonEmpty(name, takeValue()); break;
        case 'admin-token-file': long.adminTokenFile = nonEmpty(name, takeValue()); break;
        case 'admin-allow-remote': long.adminAllowRemote = true; break;
        case 'access-log': long.accessLog = nonEmpty(name, takeValue()); break;
        case 'access-log-format': {
          const v = takeValue();
          if (v !== 'json' && v !== 'text') throw new UsageError(`--access-log-format: "${v}" is not one of json, text`);
          long.accessLogFormat = v;
          break;
        }
        case 'log-format': {
          const v = takeValue();
          if (v !== 'pen' && v !== 'fulcrum') throw new UsageError(`--log-format: "${v}" is not one of pen, fulcrum`);
          long.logFormat = v;
          break;
        }
        case 'state-file': long.stateFile = nonEmpty(name, takeValue()); break;
        case 'diagnostics-log': long.diagnosticsLog = nonEmpty(name, takeValue()); break;
        case 'quiet': long.quiet = true; break;
        case 'check': long.check = takeValue(); break;
        case 'check-interval': long.checkIntervalMs = durationValue('--check-interval', takeValue(), 'ms', { minMs: 1 }); break;
        case 'check-timeout': long.checkTimeoutMs = durationValue('--check-timeout', takeValue(), 'ms', { minMs: 1 }); break;
        case 'rise': long.rise = intValue('-rise', takeValue(), 1); break;
        case 'fall': long.fall = intValue('-fall', takeValue(), 1); break;
        case 'workers': {
          const v = takeValue();
          const w = parseWorkers(v);
          if (w === null) throw new UsageError(`--workers: "${v}" is not a number of processes (1-${MAX_WORKERS}) or auto`);
          long.workers = w;
          global.workers = w;
          break;
        }
        default: throw new UsageError(`--${name} is not a known option (see fulcrum --help)`);
      }
      continue;
    }
    if (arg.length < 2 || !arg.startsWith('-') || isDigit(arg.charCodeAt(1))) {
      positional.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const opt = arg[j]!;
      const notYet = NOT_YET[opt];
      if (notYet !== undefined) throw new UsageError(`-${opt}: ${notYet}`);
      const setting = GLOBAL_OPTIONS[opt];
      if (setting !== undefined) given.add(setting);
      else if (!NEITHER.has(opt)) groupOptions.push(`-${opt}`);
      if (WITH_VALUE.has(opt)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          const next = argv[++i];
          if (next === undefined) throw new UsageError(`-${opt} needs a value`);
          value = next;
        }
        apply(opt, value);
        break;
      }
      if (FLAGS.has(opt)) flag(opt);
      else throw new UsageError(`-${opt} is not a known option (see fulcrum --help)`);
    }
  }

  const config: FulcrumConfig = { global, acls: [], groups: [group], listeners: [] };
  if (long.help || long.version || long.configFile !== null) {
    if (positional.length > 0 && long.configFile !== null) {
      throw new UsageError('give either --config FILE or a listen address and servers, not both');
    }
    return { config, commands, long, notes, given, groupOptions };
  }
  const [listenArg, ...serverArgs] = positional;
  if (listenArg === undefined) throw new UsageError('missing the listen address: fulcrum [options] [host:]port server1 [server2 ...] (see fulcrum --help)');
  let listen: Address;
  try {
    listen = parseListenAddress(listenArg);
  } catch (e) {
    throw new UsageError((e as AddressError).message);
  }
  const defaultPort = listen.kind === 'tcp' ? listen.port : undefined;
  for (const spec of serverArgs) {
    try {
      const s = parseServerArg(spec, defaultPort);
      group.servers.push(serverConfig(s.address, { maxConnections: s.maxConnections, hardLimit: s.hardLimit, weight: s.weight, priority: s.priority }));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (group.servers.length === 0 && global.commandFile === null && commands.length === 0) {
    throw new UsageError('no servers given: fulcrum [options] [host:]port server1 [server2 ...]');
  }
  if (emergency !== null) group.emergency = specialServer('e', emergency, listen);
  if (abuse !== null) group.abuse = specialServer('B', abuse, listen);
  // pen's precedence when several are set: weight, then hash, then round robin. Priority is
  // chosen only by the `prio` command (-o prio), as in pen 0.34.1, where a prio field alone
  // changes nothing.
  group.algorithm = long.algorithm ?? (flags.weight ? 'weight' : flags.hash || flags.hashNoSave ? 'hash' : 'roundrobin');
  group.tracking = !flags.roundrobin && !flags.hashNoSave;
  group.saveTracking = !flags.hashNoSave;
  group.stubborn = flags.stubborn;
  const timing = { intervalMs: long.checkIntervalMs, timeoutMs: long.checkTimeoutMs, rise: long.rise, fall: long.fall };
  if (long.check !== null) group.check = parseCheckOption(long.check, timing);
  else if (Object.values(timing).some((v) => v !== null)) throw new UsageError('--check-interval, --check-timeout, --rise and --fall need --check KIND');
  group.hashSourcePort = flags.roundrobin;
  group.sendProxy = long.sendProxy;
  const tls = penTls(ssl, notes);
  if (flags.udp) udpProblems(listen, tls, global.workers, flags.forwardedFor);
  config.listeners.push({ name: 'default', address: listen, spec: listenArg, group: group.name, tls, ...(flags.udp ? { udp: penUdpConfig() } : {}), ...(flags.forwardedFor ? { forwardedFor: true } : {}) });
  return { config, commands, long, notes, given, groupOptions };
}

/** -U: what a UDP listener cannot have (docs/udp.md). */
function udpProblems(listen: Address, tls: ListenerTlsConfig | null, workers: number | 'auto', forwardedFor: boolean): void {
  if (forwardedFor) throw new UsageError('-U with -H: X-Forwarded-For goes into HTTP requests over TCP; drop -H or -U');
  if (listen.kind === 'unix') throw new UsageError(`-U: a UDP listener needs a [host:]port, not the Unix socket ${listen.path}`);
  if (tls !== null) throw new UsageError('-U with -E: TLS termination is for TCP; drop -E or -U');
  if (workers !== 1) throw new UsageError('-U with --workers: Bun\'s UDP sockets cannot share a port (no SO_REUSEPORT), so a UDP listener runs in one process; drop --workers');
}
