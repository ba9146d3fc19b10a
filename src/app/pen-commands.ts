/**
 * pen's command language (penctl(1)), shared by the -F file, -o options, SIGHUP re-reads and
 * the control port. Commands act on the first server group, which is the only group when
 * Fulcrum runs from pen's command line. Replies follow pen: a getter answers its value on one
 * line, a setter answers nothing; unlike pen, a bad command answers an "error:" line and
 * changes nothing.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { AclError, AclTable, formatAclEntry, parseAclEntry } from '../core/acl/acl.ts';
import { AddressError, formatAddress, parsePort } from '../core/address.ts';
import type { AlgorithmName } from '../core/balancing/registry.ts';
import type { Server } from '../core/servers/server.ts';
import type { Balancer } from './balancer.ts';
import { LogFile } from './log-file.ts';
import type { GroupRuntime } from './runtime.ts';
import { makeServer, type ListenerRuntime } from './runtime.ts';
import { applySslOption } from '../core/tls.ts';
import type { ListenerTlsConfig } from '../config/model.ts';

export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** pen's algorithm flags; pen picks by prio, then weight, then hash, then round robin. */
export interface PenFlags {
  prio: boolean;
  weight: boolean;
  hash: boolean;
}

export function algorithmFromFlags(f: PenFlags): AlgorithmName {
  return f.prio ? 'prio' : f.weight ? 'weight' : f.hash ? 'hash' : 'roundrobin';
}

export function flagsFromAlgorithm(a: AlgorithmName): PenFlags {
  return { prio: a === 'prio', weight: a === 'weight', hash: a === 'hash' };
}

/** Commands pen has that mean nothing here, with the reason given to the user. */
const NOT_APPLICABLE: Readonly<Record<string, string>> = {
  select: 'Fulcrum always uses the runtime\'s epoll event loop',
  poll: 'Fulcrum always uses the runtime\'s epoll event loop',
  kqueue: 'Fulcrum always uses the runtime\'s epoll event loop',
  epoll: 'Fulcrum always uses the runtime\'s epoll event loop',
  dsr_if: 'direct server return needs raw sockets, which Fulcrum does not use',
  dsr_ip: 'direct server return needs raw sockets, which Fulcrum does not use',
  tarpit_acl: 'tarpitting is part of pen\'s direct server return mode, which Fulcrum does not have',
  transparent: 'transparent proxying needs IP_TRANSPARENT, which the runtime does not expose',
  idlers: 'reliable idle connections are not implemented',
  dummy: 'the dummy web server is not implemented',
  abort_on_error: 'Fulcrum reports fatal errors and exits; it never dumps core on purpose',
  block: 'obsolete in pen since 0.26.0',
  delayed_forward: 'obsolete in pen since 0.26.0',
  source: 'choosing the source address of server connections is not supported by the runtime\'s connect API',
  socket: 'Fulcrum does not expose file descriptor numbers',
  keepalive: 'TCP keepalive on server connections is not supported by the runtime\'s socket API',
  peek: 'server selection after the first bytes is not implemented',
  http: 'HTTP X-Forwarded-For insertion (-H) is not available in this version',
};

export interface CommandContext {
  /** Directory that relative paths in `include` resolve against. */
  baseDir?: string;
  /** Enables `exit` (pen's -X). */
  allowExit?: boolean;
  /** Called by `exit`. */
  exit?: () => void;
}

function int(text: string | undefined, what: string, min = 0): number {
  if (text === undefined) throw new CommandError(`${what}: missing number`);
  if (!/^-?\d+$/.test(text)) throw new CommandError(`${what}: "${text}" is not an integer`);
  const n = Number(text);
  if (n < min) throw new CommandError(`${what}: ${n} is below ${min}`);
  return n;
}

export class PenCommands {
  readonly #b: Balancer;
  flags: PenFlags;

  constructor(balancer: Balancer) {
    this.#b = balancer;
    this.flags = flagsFromAlgorithm(balancer.defaultGroup.config.algorithm);
  }

  get #group(): GroupRuntime {
    return this.#b.defaultGroup;
  }

  #setFlag(name: keyof PenFlags, on: boolean): void {
    this.flags[name] = on;
    const g = this.#group;
    const algorithm = algorithmFromFlags(this.flags);
    if (algorithm !== g.config.algorithm) g.setAlgorithm(algorithm, this.#b.random);
  }

  /** Runs every line of a command file; errors name the file and line. */
  async runFile(path: string, ctx: CommandContext = {}): Promise<string> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new CommandError(`cannot read command file ${path}: ${(e as Error).message}`);
    }
    let out = '';
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      try {
        out += await this.execute(lines[i]!, ctx);
      } catch (e) {
        throw new CommandError(`${path}:${i + 1}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /** Executes one command line; returns the reply (possibly empty); throws CommandError. */
  async execute(line: string, ctx: CommandContext = {}): Promise<string> {
    const words = line.trim().split(/\s+/).filter((w) => w !== '');
    if (words.length === 0 || words[0]!.startsWith('#')) return '';
    let negate = false;
    if (words[0] === 'no') {
      negate = true;
      words.shift();
    }
    const [cmd, ...args] = words as [string, ...string[]];
    if (cmd === undefined) throw new CommandError('"no" needs a command after it');
    const b = this.#b;
    const g = this.#group;
    const na = NOT_APPLICABLE[cmd];
    if (na !== undefined) throw new CommandError(`${cmd}: not supported: ${na}`);
    if (cmd.startsWith('ssl_')) return this.#ssl(cmd, args);
    switch (cmd) {
      case 'acl': {
        const list = int(args[0], 'acl');
        try {
          AclTable.checkIndex(list);
          if (negate) {
            b.acls.clear(list);
            return '';
          }
          const verdict = args[1];
          if (verdict !== 'permit' && verdict !== 'deny') throw new CommandError('acl N permit|deny ADDRESS [MASK]');
          b.acls.add(list, parseAclEntry(verdict === 'permit', args.slice(2)));
        } catch (e) {
          if (e instanceof AclError) throw new CommandError(`acl: ${e.message}`);
          throw e;
        }
        return '';
      }
      case 'ascii':
        b.global.asciiDumps = !negate;
        return '';
      case 'blacklist':
        if (args[0] === undefined) return `${g.config.blacklistMs / 1000}\n`;
        g.config.blacklistMs = int(args[0], 'blacklist') * 1000;
        g.syncSettings();
        return '';
      case 'client_acl':
        g.config.clientAcl = this.#aclIndex(args[0], 'client_acl');
        g.syncSettings();
        return '';
      case 'control_acl':
        b.global.controlAcl = this.#aclIndex(args[0], 'control_acl');
        return '';
      case 'clients_max':
        if (args[0] !== undefined) {
          g.config.clientsMax = int(args[0], 'clients_max', 1);
          g.syncSettings();
        }
        return `${g.config.clientsMax}\n`;
      case 'conn_max':
        if (args[0] !== undefined) b.global.maxConnections = int(args[0], 'conn_max', 1);
        return `${b.global.maxConnections}\n`;
      case 'pending_max':
        if (args[0] === undefined) return `${b.global.pendingMax}\n`;
        b.global.pendingMax = int(args[0], 'pending_max', 1);
        return '';
      case 'debug':
        if (args[0] === undefined) return `${b.global.debug}\n`;
        b.global.debug = int(args[0], 'debug');
        return '';
      case 'hash':
        this.#setFlag('hash', !negate);
        return '';
      case 'prio':
        this.#setFlag('prio', !negate);
        return '';
      case 'weight':
        this.#setFlag('weight', !negate);
        return '';
      case 'roundrobin':
        // pen: "roundrobin" = round robin without client tracking (and, with hash, port mixing).
        g.config.tracking = negate;
        g.config.hashSourcePort = !negate;
        g.syncSettings();
        return '';
      case 'stubborn':
        g.config.stubborn = !negate;
        g.syncSettings();
        return '';
      case 'idle_timeout':
        if (args[0] === undefined) return `${b.global.idleTimeoutMs / 1000}\n`;
        b.global.idleTimeoutMs = int(args[0], 'idle_timeout') * 1000;
        return '';
      case 'timeout':
        if (args[0] === undefined) return `${g.config.connectTimeoutMs / 1000}\n`;
        g.config.connectTimeoutMs = int(args[0], 'timeout', 1) * 1000;
        return '';
      case 'tracking':
        if (args[0] === undefined) return `${g.config.trackingMs / 1000}\n`;
        g.config.trackingMs = int(args[0], 'tracking') * 1000;
        g.syncSettings();
        return '';
      case 'tcp_nodelay':
        b.global.tcpNoDelay = !negate;
        return '';
      case 'tcp_fastclose': {
        if (negate) {
          b.global.tcpFastClose = 'off';
          return '';
        }
        const v = args[0];
        if (v === undefined) return `${b.global.tcpFastClose}\n`;
        if (v !== 'up' && v !== 'down' && v !== 'both' && v !== 'off') throw new CommandError('tcp_fastclose up|down|both|off');
        b.global.tcpFastClose = v;
        return '';
      }
      case 'log':
        if (negate) {
          await b.log?.close();
          b.log = null;
          b.global.logFile = null;
          return '';
        }
        if (args[0] === undefined) return b.global.logFile === null ? '' : `${b.global.logFile}\n`;
        await b.log?.close();
        try {
          b.log = new LogFile(args[0]);
        } catch (e) {
          b.log = null;
          b.global.logFile = null;
          throw new CommandError(`log: cannot open ${args[0]}: ${(e as Error).message}`);
        }
        b.global.logFile = args[0];
        return '';
      case 'web_stats':
        if (negate) {
          b.global.statusFile = null;
          return '';
        }
        if (args[0] === undefined) return b.global.statusFile === null ? '' : `${b.global.statusFile}\n`;
        b.global.statusFile = args[0];
        return '';
      case 'include': {
        const file = args[0];
        if (file === undefined) throw new CommandError('include FILE');
        const path = file.startsWith('/') || ctx.baseDir === undefined ? file : `${ctx.baseDir}/${file}`;
        return this.runFile(path, ctx);
      }
      case 'server':
        return this.#server(args);
      case 'servers':
        return this.#servers();
      case 'mode':
        return this.#mode();
      case 'pid':
        return `${process.pid}\n`;
      case 'listen':
        if (args[0] === undefined) return b.listeners.map((l) => formatAddress(l.config.address)).join('\n') + '\n';
        throw new CommandError('listen ADDRESS: rebinding the listener is not available in this version');
      case 'write': {
        const file = args[0] ?? b.global.commandFile;
        if (file === null || file === undefined) throw new CommandError('write: no file given and no -F file to write to');
        await writeFile(file, this.dump());
        return '';
      }
      case 'exit':
        if (ctx.allowExit !== true || ctx.exit === undefined) throw new CommandError('exit is only available when started with -X');
        ctx.exit();
        return '';
      default:
        throw new CommandError(`unknown command "${cmd}"`);
    }
  }

  /**
   * pen's ssl_* commands, on the first TLS listener. Unlike pen, where most of them only count
   * before the TLS context is made at start, they apply to new connections at any time; a
   * value that makes the TLS settings unusable is refused and changes nothing.
   */
  #ssl(cmd: string, args: string[]): string {
    const l = this.#b.listeners.find((x) => x.tls !== null);
    if (l === undefined || l.tls === null) throw new CommandError(`${cmd}: no TLS listener (start Fulcrum with -E certfile)`);
    const tls = l.tls;
    const next: ListenerTlsConfig = { ...tls.config, clientAuth: { ...tls.config.clientAuth } };
    switch (cmd) {
      case 'ssl_ciphers':
        next.ciphers = args[0] ?? null; // pen: without a list, back to the library's defaults
        break;
      case 'ssl_option': {
        if (args[0] === undefined) throw new CommandError('ssl_option no_sslv2|no_sslv3|no_tlsv1|no_tlsv1.1|no_tlsv1.2|no_tlsv1.3|cipher_server_preference');
        const r = applySslOption({ min: next.minVersion, max: next.maxVersion }, args[0]);
        if ('error' in r) throw new CommandError(r.error);
        next.minVersion = r.range.min;
        next.maxVersion = r.range.max;
        if (r.serverPreference === true) next.preferServerCiphers = true;
        break;
      }
      case 'ssl_sni_path':
        if (args[0] === undefined) throw new CommandError('ssl_sni_path DIRECTORY');
        next.sniPath = args[0];
        break;
      case 'ssl_ocsp_response': {
        const file = args[0];
        if (file === undefined) throw new CommandError('ssl_ocsp_response FILE');
        let summary: string;
        try {
          summary = tls.readOcsp(file);
        } catch (e) {
          throw new CommandError((e as Error).message);
        }
        tls.config.ocspResponse = file;
        this.#b.diag.info(
          `ssl_ocsp_response: read ${file} (${summary}); it is NOT stapled: Bun's TLS has no API to send an OCSP response, so clients will not receive it (see docs/tls.md)`,
        );
        return '';
      }
      case 'ssl_client_renegotiation_interval':
        tls.config.renegotiationIntervalS = int(args[0], cmd);
        // Nothing to apply: BoringSSL as a server refuses every client-initiated renegotiation.
        return '';
      default:
        throw new CommandError(`unknown command "${cmd}" (ssl_ciphers, ssl_option, ssl_sni_path, ssl_ocsp_response, ssl_client_renegotiation_interval)`);
    }
    this.#applyTls(l, next, cmd);
    return '';
  }

  #applyTls(l: ListenerRuntime, next: ListenerTlsConfig, cmd: string): void {
    const tls = l.tls!;
    if (l.handle === null) {
      tls.config = next; // before start: checked when the listener starts
      l.config = { ...l.config, tls: next };
      return;
    }
    try {
      const prepared = tls.prepare(next, new Date(), true);
      tls.commit(next, prepared);
      for (const m of prepared.messages) this.#b.diag.info(`${cmd}: ${m}`);
    } catch (e) {
      throw new CommandError(`${cmd}: ${(e as Error).message}; nothing changed`);
    }
    l.config = { ...l.config, tls: next };
  }

  #aclIndex(text: string | undefined, what: string): number {
    const n = int(text, what);
    try {
      AclTable.checkIndex(n);
    } catch (e) {
      throw new CommandError(`${what}: ${(e as Error).message}`);
    }
    return n;
  }

  /** `server N [acl A] [address A] [port P] [max M] [hard H] [blacklist T] [weight W] [prio P]` */
  #server(args: string[]): string {
    const g = this.#group;
    const n = int(args[0], 'server');
    if (n > 4096) throw new CommandError(`server: index ${n} is too large`);
    if (args.length < 3 || args.length % 2 === 0) {
      throw new CommandError('server N acl A | address A | port P | max M | hard H | blacklist T | weight W | prio P ...');
    }
    const servers = g.selector.servers;
    // Validate everything first, so that a bad pair changes nothing.
    const updates: ((s: Server) => void)[] = [];
    let address: string | undefined;
    let port: number | undefined;
    for (let i = 1; i < args.length; i += 2) {
      const key = args[i]!;
      const value = args[i + 1]!;
      switch (key) {
        case 'acl': {
          const a = this.#aclIndex(value, 'server acl');
          updates.push((s) => (s.acl = a));
          break;
        }
        case 'address':
          if (value.includes('/') || value === '') throw new CommandError(`server address: "${value}" is not a host address`);
          address = value.replace(/^\[|\]$/g, '');
          break;
        case 'port':
          try {
            port = parsePort(value, 'server port');
          } catch (e) {
            throw new CommandError((e as AddressError).message);
          }
          break;
        case 'max': {
          const v = int(value, 'server max');
          updates.push((s) => (s.maxConnections = v));
          break;
        }
        case 'hard': {
          const v = int(value, 'server hard');
          updates.push((s) => (s.hardLimit = v));
          break;
        }
        case 'weight': {
          const v = int(value, 'server weight');
          updates.push((s) => (s.weight = v));
          break;
        }
        case 'prio': {
          const v = int(value, 'server prio');
          updates.push((s) => (s.priority = v));
          break;
        }
        case 'blacklist': {
          const v = int(value, 'server blacklist');
          updates.push((s) => (s.blacklistedUntilMs = this.#b.clock.now() + v * 1000));
          break;
        }
        default:
          throw new CommandError(`server: unknown field "${key}" (acl, address, port, max, hard, blacklist, weight, prio)`);
      }
    }
    // pen grows its server table on demand; new slots stay out of rotation until they have
    // both an address and a port.
    while (servers.length <= n) {
      const s = makeServer(servers.length, { address: { kind: 'tcp', host: '0.0.0.0', port: 0 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 });
      s.admin = 'maintenance';
      s.downReason = 'unconfigured';
      servers.push(s);
    }
    const s = servers[n]!;
    if (address !== undefined || port !== undefined) {
      const old = s.address;
      const host = address ?? (old.kind === 'tcp' ? old.host : '0.0.0.0');
      const p = port ?? (old.kind === 'tcp' ? old.port : 0);
      s.address = { kind: 'tcp', host, port: p };
      if (s.downReason === 'unconfigured' && host !== '0.0.0.0' && p !== 0) {
        s.admin = 'enabled';
        s.downReason = '';
      }
    }
    for (const u of updates) u(s);
    g.selector.serversChanged();
    return '';
  }

  #servers(): string {
    const now = this.#b.clock.now();
    return this.#group.selector.servers
      .map((s) => {
        const a = s.address;
        const host = a.kind === 'tcp' ? a.host : a.path;
        const port = a.kind === 'tcp' ? a.port : 0;
        const status = s.isBlacklisted(now) ? Math.ceil((s.blacklistedUntilMs - now) / 1000) : 0;
        return `${s.index} addr ${host} port ${port} conn ${s.connections} max ${s.maxConnections} hard ${s.hardLimit} weight ${s.weight} prio ${s.priority} sx ${s.bytesToServer} rx ${s.bytesFromServer} status ${status}`;
      })
      .join('\n') + '\n';
  }

  #mode(): string {
    const c = this.#group.config;
    const parts = [
      c.tracking ? 'no roundrobin' : 'roundrobin',
      this.flags.hash ? 'hash' : 'no hash',
      this.flags.weight ? 'weight' : 'no weight',
      this.flags.prio ? 'prio' : 'no prio',
      c.stubborn ? 'stubborn' : 'no stubborn',
    ];
    return parts.join(' ') + '\n';
  }

  /** The running configuration as pen commands (for `write`). */
  dump(): string {
    const b = this.#b;
    const g = this.#group;
    const c = g.config;
    const lines: string[] = [];
    for (let list = 0; list < 10; list++) {
      lines.push(`no acl ${list}`);
      for (const e of b.acls.entries(list)) lines.push(formatAclEntry(list, e));
    }
    lines.push(b.global.asciiDumps ? 'ascii' : 'no ascii');
    lines.push(`blacklist ${c.blacklistMs / 1000}`);
    lines.push(`client_acl ${c.clientAcl}`);
    lines.push(`control_acl ${b.global.controlAcl}`);
    lines.push(`debug ${b.global.debug}`);
    lines.push(this.flags.hash ? 'hash' : 'no hash');
    lines.push(`idle_timeout ${b.global.idleTimeoutMs / 1000}`);
    lines.push(b.global.logFile === null ? 'no log' : `log ${b.global.logFile}`);
    lines.push(`pending_max ${b.global.pendingMax}`);
    lines.push(this.flags.prio ? 'prio' : 'no prio');
    lines.push(c.tracking ? 'no roundrobin' : 'roundrobin');
    for (const s of g.selector.servers) {
      const a = s.address;
      if (a.kind !== 'tcp') continue;
      lines.push(`server ${s.index} acl ${s.acl} address ${a.host} port ${a.port} max ${s.maxConnections} hard ${s.hardLimit} weight ${s.weight} prio ${s.priority}`);
    }
    lines.push(c.stubborn ? 'stubborn' : 'no stubborn');
    lines.push(`tcp_fastclose ${b.global.tcpFastClose}`);
    lines.push(b.global.tcpNoDelay ? 'tcp_nodelay' : 'no tcp_nodelay');
    lines.push(`timeout ${c.connectTimeoutMs / 1000}`);
    lines.push(`tracking ${c.trackingMs / 1000}`);
    lines.push(b.global.statusFile === null ? 'no web_stats' : `web_stats ${b.global.statusFile}`);
    lines.push(this.flags.weight ? 'weight' : 'no weight');
    return lines.join('\n') + '\n';
  }
}

