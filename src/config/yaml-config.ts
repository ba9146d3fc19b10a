/**
 * The YAML config file → FulcrumConfig. `yaml` parses (keeping node positions), `zod` checks the
 * shape and converts the leaves (durations, addresses, ACL rules), and a last pass checks what
 * one field cannot see alone (listener → group references, duplicate listeners). Every problem
 * becomes a ConfigIssue with file, line, column and field path, and all of them are reported at
 * once so that one edit round fixes the file. Only loadConfigFile touches the disk.
 */
import { readFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { isAlias, isCollection, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { z } from 'zod';
import { AddressError, formatAddress, isUnixPath, parseListenAddress, parseServerArg } from '../core/address.ts';
import type { Address } from '../core/address.ts';
import { AclError, parseAclEntry } from '../core/acl/acl.ts';
import type { AclEntry } from '../core/acl/acl.ts';
import { algorithmNames } from '../core/balancing/registry.ts';
import { isTlsVersion, serverNamePatternProblem, TLS_VERSIONS, versionRank, type TlsVersion } from '../core/tls.ts';
import { parseAdminAddress } from './admin-address.ts';
import { checkSpec, CHECK_DEFAULTS, DEFAULT_HTTP_STATUS, parseStatusRanges } from '../core/health/check-spec.ts';
import type { CheckKind, CheckSpec, ScriptStep } from '../core/health/check-spec.ts';
import { defaultGlobal, defaultGroup, defaultGroupTls, defaultListenerTls, MAX_WORKERS, serverConfig, TLS_DEFAULTS } from './model.ts';
import type { AdminConfig, FulcrumConfig, GlobalConfig, GroupConfig, GroupTlsConfig, ListenerConfig, ListenerTlsConfig, ServerConfig, SniRouteConfig } from './model.ts';

export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the problem concerns the file as a whole (e.g. it cannot be read). */
  line: number;
  column: number;
  /** Field path such as `groups.app.servers[1].weight`; empty for syntax errors. */
  path: string;
  message: string;
}

export type ConfigResult = { config: FulcrumConfig } | { errors: ConfigIssue[] };

export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.column}` : i.file;
  return i.path === '' ? `${where}: ${i.message}` : `${where}: ${i.path}: ${i.message}`;
}

/** Reads and parses a config file. Unreadable files are reported as issues, not thrown. */
export async function loadConfigFile(path: string): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { errors: [{ file: path, line: 0, column: 0, path: '', message: `cannot read the config file: ${reason}` }] };
  }
  return parseConfigText(text, path);
}

/** Parses config text. Pure: `fileName` only labels the issues. */
export function parseConfigText(text: string, fileName: string): ConfigResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number, path: string, message: string): ConfigIssue => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: fileName, line, column: col, path, message };
  };
  // Schema errors on top of a broken parse are mostly noise, so syntax errors come alone.
  if (doc.errors.length > 0) {
    return { errors: sortIssues(doc.errors.map((e) => at(e.pos[0], '', e.code === 'MULTIPLE_DOCS' ? 'a config file holds one YAML document; remove the extra "---"' : e.message))) };
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { errors: [at(0, '', e instanceof Error ? e.message : String(e))] };
  }
  if (raw === null || raw === undefined) {
    return { errors: [at(0, '', 'the file is empty; expected a mapping with global, acls, groups and listeners')] };
  }

  const found: Found[] = [];
  const result = fileSchema.safeParse(raw);
  if (!result.success) for (const issue of result.error.issues) found.push(...flatten(issue, []));
  found.push(...checkReferences(raw));

  if (found.length > 0 || !result.success) {
    return { errors: sortIssues(found.map((f) => at(position(doc, f), formatPath(f.path), f.message))) };
  }
  return { config: build(result.data) };
}

// ---------------------------------------------------------------------------------------------
// Messages

type Path = readonly PropertyKey[];

/** One problem before it is placed on a line. `atKey`: point at the key, not its value. */
interface Found {
  path: Path;
  message: string;
  atKey?: boolean;
}

function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

function expecting(what: string): (iss: { input?: unknown }) => string {
  return (iss) => (iss.input === undefined ? `missing; expected ${what}` : `expected ${what}, got ${describe(iss.input)}`);
}

/** Optimal string alignment distance: Levenshtein plus adjacent swaps ("wieght"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest known word, if it is close enough to be a likely typo (or a camelCase spelling). */
function suggest(word: string, known: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const same = known.find((k) => squash(k) === squash(word));
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3));
  for (const k of known) {
    const dist = editDistance(word.toLowerCase(), k.toLowerCase());
    if (dist <= bestDistance && (best === undefined || dist < bestDistance)) {
      best = k;
      bestDistance = dist;
    }
  }
  return best;
}

function didYouMean(word: string, known: readonly string[]): string {
  const s = suggest(word, known);
  return s === undefined ? '' : ` (did you mean '${s}'?)`;
}

// ---------------------------------------------------------------------------------------------
// Leaves

const MAX_INT = 2 ** 31 - 1;
/** Node timers overflow beyond this and fire at once, so longer durations are refused. */
const MAX_DURATION_MS = MAX_INT;

function int(lo: number, hi: number, what = hi >= MAX_INT ? `an integer ${lo} or more` : `an integer ${lo}-${hi}`) {
  const error = expecting(what);
  return z.int({ error }).min(lo, { error }).max(hi, { error });
}

const bool = z.boolean({ error: expecting('true or false') });
const fraction = z.number({ error: expecting('a number 0-1') }).min(0, { error: expecting('a number 0-1') }).max(1, { error: expecting('a number 0-1') });
const portNumber = int(1, 65535, 'a port 1-65535');
const aclNumber = int(0, 9, 'an ACL number 0-9');
const filePath = z.string({ error: expecting('a file path') }).min(1, { error: expecting('a file path') });

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) => {
      const extra = typeof iss.input === 'string' ? didYouMean(iss.input, values) : '';
      return `${expecting(`one of ${values.join(', ')}`)(iss)}${extra}`;
    },
  });
}

const NAME = /^[A-Za-z0-9_-]+$/;
const nameText = (what: string) => {
  const error = expecting(`${what} made of letters, digits, "_" and "-"`);
  return z.string({ error }).regex(NAME, { error });
};

const DURATION_TEXT = 'a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds';
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `"250ms"`, `"3s"`, `"5m"`, `"1h"`, or a whole number of milliseconds; undefined if malformed. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+)(ms|s|m|h)?$/.exec(v.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] ?? 'ms']! : undefined;
}

const duration = z.unknown().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms !== undefined && ms <= MAX_DURATION_MS) return ms;
  ctx.addIssue({
    code: 'custom',
    message: ms === undefined ? expecting(DURATION_TEXT)({ input: v }) : `expected at most ${MAX_DURATION_MS}ms (about 24 days), got ${describe(v)}`,
  });
  return z.NEVER;
});

const LABEL = '[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOSTNAME = new RegExp(`^${LABEL}(\\.${LABEL})*\\.?$`);

/** Host names are kept as written (resolved elsewhere); malformed literals are caught here. */
function hostProblem(host: string): string | undefined {
  if (isIpLiteral(host)) return undefined;
  if (host.includes(':')) return `"${host}" is not a valid IPv6 address`;
  if (/^[\d.]+$/.test(host)) return `"${host}" is not a valid IPv4 address`;
  if (host.length > 253 || !HOSTNAME.test(host)) return `"${host}" is neither an IP address nor a host name`;
  return undefined;
}

function isIpLiteral(host: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(host) || ipaddr.IPv6.isValid(host);
}

function withHostname(address: Address, fields: Partial<Omit<ServerConfig, 'address'>>): ServerConfig {
  const hostname = address.kind === 'tcp' && !isIpLiteral(address.host) ? { hostname: address.host } : {};
  return serverConfig(address, { ...hostname, ...fields });
}

/** pen's short form `host:port:maxc:hard:weight:prio`. */
function parseShortServer(spec: string): ServerConfig | string {
  let arg;
  try {
    // Port 0 marks "omitted": pen would take the listener's port, but a group may serve several.
    arg = parseServerArg(spec, 0);
  } catch (e) {
    if (e instanceof AddressError) return e.message;
    throw e;
  }
  if (arg.address.kind === 'tcp') {
    if (arg.address.port === 0) return `server "${spec}": a port is required (host:port); servers do not inherit a listener's port`;
    const bad = hostProblem(arg.address.host);
    if (bad !== undefined) return `server "${spec}": ${bad}`;
  }
  if (arg.address.kind === 'unix' && arg.address.path === '') return `server "${spec}": the socket path is empty`;
  for (const [name, value, max] of [['maxc', arg.maxConnections, MAX_INT], ['hard', arg.hardLimit, MAX_INT], ['weight', arg.weight, 65535], ['prio', arg.priority, 65535]] as const) {
    if (value > max) return `server "${spec}": ${name} ${value} is outside 0-${max}`;
  }
  const { address, ...fields } = arg;
  return withHostname(address, fields);
}

/** The long form's `address`: only `host:port`, `[v6]:port` or a socket path; limits are fields. */
function parseServerAddress(text: string): Address | string {
  const r = parseShortServer(text);
  if (typeof r === 'string') return r;
  const tail = isUnixPath(text) ? text.replace(/^unix:/, '') : text.startsWith('[') ? text.slice(text.indexOf(']') + 1) : text;
  if (tail.split(':').length > (isUnixPath(text) ? 1 : 2)) {
    return `server "${text}": in the long form give max_connections, hard_limit, weight and priority as fields, not in the address`;
  }
  return r.address;
}

function parseListen(text: string): Address | string {
  try {
    const a = parseListenAddress(text);
    const bad = a.kind === 'tcp' ? hostProblem(a.host) : undefined;
    return bad === undefined ? a : `listen address "${text}": ${bad}`;
  } catch (e) {
    if (e instanceof AddressError) return e.message;
    throw e;
  }
}

function parseAclRule(rule: string): AclEntry | string {
  const [verdict, ...args] = rule.trim().split(/\s+/);
  if (verdict !== 'permit' && verdict !== 'deny') return `rule "${rule}" must start with permit or deny`;
  const first = args[0] ?? '';
  const maxArgs = first.includes('/') || first.includes(':') ? 1 : 2;
  if (args.length > maxArgs) return `rule "${rule}": unexpected "${args.slice(maxArgs).join(' ')}" after the address`;
  try {
    return parseAclEntry(verdict === 'permit', args);
  } catch (e) {
    if (e instanceof AclError) return `rule "${rule}": ${e.message}`;
    throw e;
  }
}

/** A zod leaf from a parse function that returns either a value or an error message. */
function parsed<T>(what: string, parse: (text: string) => T | string) {
  return z.string({ error: expecting(what) }).transform((text, ctx) => {
    const r = parse(text);
    if (typeof r !== 'string') return r;
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  });
}

// ---------------------------------------------------------------------------------------------
// Schema (snake_case keys as written in the file)

function mapping<S extends z.ZodRawShape>(what: string, shape: S) {
  return z.strictObject(shape, { error: (iss) => (iss.code === 'invalid_type' ? expecting(what)(iss) : undefined) });
}

const globalShape = {
  max_connections: int(1, MAX_INT).optional(),
  pending_max: int(1, MAX_INT).optional(),
  backlog: int(0, MAX_INT).optional(),
  multi_accept: int(1, MAX_INT).optional(),
  idle_timeout: duration.optional(),
  tcp_nodelay: bool.optional(),
  tcp_fastclose: oneOf(['off', 'up', 'down', 'both']).optional(),
  control_acl: aclNumber.optional(),
  log_file: filePath.nullable().optional(),
  pid_file: filePath.nullable().optional(),
  status_file: filePath.nullable().optional(),
  user: z.string({ error: expecting('a user name') }).min(1, { error: expecting('a user name') }).nullable().optional(),
  debug: int(0, MAX_INT).optional(),
  ascii_dumps: bool.optional(),
  workers: z
    .custom<number | 'auto'>((v) => v === 'auto' || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_WORKERS), {
      error: expecting(`a number of processes 1-${MAX_WORKERS}, or auto`),
    })
    .optional(),
  state_file: filePath.nullable().optional(),
};

/** A string leaf checked by a function that returns what is wrong with it, if anything. */
function checkedText(what: string, problem: (text: string) => string | undefined) {
  return z.string({ error: expecting(what) }).superRefine((text, ctx) => {
    const p = problem(text);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  });
}

const hostText = checkedText('a host name or IP address', hostProblem);

const serverShape = {
  address: parsed('a server address: host:port, [ipv6]:port or a Unix socket path', parseServerAddress),
  max_connections: int(0, MAX_INT).optional(),
  hard_limit: int(0, MAX_INT).optional(),
  weight: int(0, 65535).optional(),
  priority: int(0, 65535).optional(),
  acl: aclNumber.optional(),
  backup: bool.optional(),
  check_port: portNumber.optional(),
  check_address: hostText.optional(),
  state: oneOf(['enabled', 'drain', 'maintenance']).optional(),
};

const SERVER_TEXT = 'a server: "host:port[:maxc[:hard[:weight[:prio]]]]", a Unix socket path, or a mapping with an address';

const longServer = mapping('a mapping', serverShape).transform((s) =>
  withHostname(s.address, {
    maxConnections: s.max_connections ?? 0,
    hardLimit: s.hard_limit ?? 0,
    weight: s.weight ?? 0,
    priority: s.priority ?? 0,
    acl: s.acl ?? 0,
    ...(s.backup !== undefined ? { backup: s.backup } : {}),
    ...(s.check_port !== undefined ? { checkPort: s.check_port } : {}),
    ...(s.check_address !== undefined ? { checkAddress: s.check_address } : {}),
    ...(s.state !== undefined ? { state: s.state } : {}),
  }),
);

// ---------------------------------------------------------------------------------------------
// Health checks

const CHECK_KINDS = ['tcp', 'http', 'tls', 'script', 'agent'] as const;

function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`;
  }
}

const regexText = checkedText('a regular expression', regexProblem);
const hexBytes = parsed('bytes in hex, e.g. "0d0a"', (t) => {
  const clean = t.replace(/\s+/g, '');
  return /^([0-9a-fA-F]{2})+$/.test(clean) ? Uint8Array.from(Buffer.from(clean, 'hex')) : `"${t}" is not an even number of hex digits`;
});
const nonEmpty = (what: string) => z.string({ error: expecting(what) }).min(1, { error: expecting(what) });

const scriptStepShape = {
  send: z.string({ error: expecting('text to send') }).optional(),
  send_hex: hexBytes.optional(),
  expect: nonEmpty('text the answer contains').optional(),
  expect_regex: regexText.optional(),
  expect_hex: hexBytes.optional(),
};

const scriptStep = mapping('a step: one of send, send_hex, expect, expect_regex, expect_hex', scriptStepShape).transform((st, ctx): ScriptStep => {
  const keys = Object.keys(st);
  if (keys.length !== 1) {
    ctx.addIssue({ code: 'custom', message: `a step has exactly one of send, send_hex, expect, expect_regex, expect_hex${keys.length > 1 ? `, got ${keys.join(' and ')}` : ''}` });
    return z.NEVER;
  }
  if (st.send !== undefined) return { kind: 'send', data: new TextEncoder().encode(st.send) };
  if (st.send_hex !== undefined) return { kind: 'send', data: st.send_hex };
  if (st.expect !== undefined) return { kind: 'expect', match: { kind: 'string', text: st.expect } };
  if (st.expect_regex !== undefined) return { kind: 'expect', match: { kind: 'regex', source: st.expect_regex } };
  return { kind: 'expect', match: { kind: 'bytes', data: st.expect_hex! } };
});

const tlsShape = {
  server_name: hostText.optional(),
  verify: bool.optional(),
  ca_file: filePath.optional(),
};

const statusItem = z.union([z.int(), z.string()], { error: expecting('a status such as 200, "2xx" or "200-299"') });

const checkShape = {
  type: oneOf(CHECK_KINDS),
  interval: duration.optional(),
  down_interval: duration.optional(),
  timeout: duration.optional(),
  rise: int(1, 1000).optional(),
  fall: int(1, 1000).optional(),
  jitter: fraction.optional(),
  port: portNumber.optional(),
  address: hostText.optional(),
  method: z.string({ error: expecting('an HTTP method') }).regex(/^[A-Z]+$/, { error: expecting('an HTTP method such as GET or HEAD') }).optional(),
  path: z.string({ error: expecting('a path starting with "/"') }).regex(/^\/\S*$/, { error: expecting('a path starting with "/", without spaces') }).optional(),
  host: hostText.optional(),
  expect_status: z
    .union([statusItem, z.array(statusItem)], { error: expecting('a status or a list of statuses such as [200, "3xx"]') })
    .transform((v, ctx) => {
      const r = parseStatusRanges(Array.isArray(v) ? v : [v]);
      if (r !== null) return r;
      ctx.addIssue({ code: 'custom', message: `expected statuses such as 200, "2xx" or "200-299" (100-599), got ${describe(v)}` });
      return z.NEVER;
    })
    .optional(),
  expect_body: regexText.optional(),
  tls: z.union([bool, mapping('a mapping with server_name, verify, ca_file', tlsShape)], { error: expecting('true, false or a mapping with server_name, verify, ca_file') }).optional(),
  script: z.array(scriptStep, { error: expecting('a list of steps') }).min(1, { error: 'a script needs at least one step' }).optional(),
  send: z.string({ error: expecting('text to send to the agent') }).optional(),
};

/** Which fields each kind of check accepts, beyond the common timing fields. */
const CHECK_FIELDS: Readonly<Record<CheckKind, readonly string[]>> = {
  tcp: [],
  tls: ['tls'],
  http: ['method', 'path', 'host', 'expect_status', 'expect_body', 'tls'],
  script: ['script', 'tls'],
  agent: ['send'],
};
const COMMON_CHECK_FIELDS = ['type', 'interval', 'down_interval', 'timeout', 'rise', 'fall', 'jitter', 'port', 'address'];

type ParsedCheck = z.output<typeof checkDef>;

const checkDef = mapping('a check: a mapping with a type', checkShape);

/** Fields that do not belong to the check's type (checked on the raw data, so it runs even when other fields are wrong). */
function checkFieldsFit(def: unknown, path: Path): Found[] {
  if (!isRecord(def) || typeof def.type !== 'string' || !Object.hasOwn(CHECK_FIELDS, def.type)) return [];
  const type = def.type as CheckKind;
  const out: Found[] = [];
  for (const k of Object.keys(def)) {
    if (COMMON_CHECK_FIELDS.includes(k) || CHECK_FIELDS[type].includes(k) || !Object.hasOwn(checkShape, k)) continue;
    const owners = (Object.keys(CHECK_FIELDS) as CheckKind[]).filter((kind) => CHECK_FIELDS[kind].includes(k));
    out.push({ path: [...path, k], message: `'${k}' does not apply to ${type} checks (only to ${owners.join(', ')})`, atKey: true });
  }
  if (type === 'script' && def.script === undefined) out.push({ path: [...path, 'type'], message: 'a script check needs a script: a list of send/expect steps' });
  return out;
}

function buildCheck(name: string, c: ParsedCheck): CheckSpec {
  const intervalMs = Math.max(1, c.interval ?? CHECK_DEFAULTS.intervalMs);
  const tlsOn = c.type === 'tls' || (c.tls !== undefined && c.tls !== false);
  const t = typeof c.tls === 'object' ? c.tls : {};
  return checkSpec(name, c.type, {
    intervalMs,
    downIntervalMs: Math.max(1, c.down_interval ?? intervalMs),
    timeoutMs: Math.max(1, c.timeout ?? Math.min(CHECK_DEFAULTS.timeoutMs, intervalMs)),
    rise: c.rise ?? CHECK_DEFAULTS.rise,
    fall: c.fall ?? CHECK_DEFAULTS.fall,
    jitter: c.jitter ?? CHECK_DEFAULTS.jitter,
    port: c.port ?? null,
    address: c.address ?? null,
    http:
      c.type === 'http'
        ? { method: c.method ?? 'GET', path: c.path ?? '/', host: c.host ?? null, expectStatus: c.expect_status ?? DEFAULT_HTTP_STATUS, expectBody: c.expect_body ?? null }
        : null,
    tls: tlsOn ? { serverName: t.server_name ?? null, verify: t.verify ?? false, caFile: t.ca_file ?? null } : null,
    script: c.script ?? null,
    agentSend: c.send ?? null,
  });
}

/** A group's `check:` or `agent_check:`: the name of a definition in `checks`, or one written in place. */
const checkRef = z.union([nameText('the name of a check'), checkDef], { error: expecting('the name of a check in `checks`, or a check mapping') });

const queueShape = {
  max: int(1, MAX_INT),
  timeout: duration,
};

const outlierShape = {
  consecutive_failures: int(1, 1000).optional(),
  max_ejection: duration.optional(),
  early_resets: bool.optional(),
};

const server = z.union([parsed(SERVER_TEXT, parseShortServer), longServer], { error: expecting(SERVER_TEXT) });

// TLS

const TLS_VERSION_TEXT = `a TLS version: ${TLS_VERSIONS.join(', ')}`;
const tlsVersion = z.string({ error: expecting(TLS_VERSION_TEXT) }).transform((v, ctx): TlsVersion => {
  if (isTlsVersion(v)) return v;
  const legacy = /^ssl ?v?[23]$/i.test(v);
  ctx.addIssue({
    code: 'custom',
    message: legacy ? `${v}: SSLv2 and SSLv3 are insecure and refused; the oldest version Fulcrum offers is TLSv1` : `${expecting(TLS_VERSION_TEXT)({ input: v })}${didYouMean(v, TLS_VERSIONS)}`,
  });
  return z.NEVER;
});

const serverNamePattern = z.string({ error: expecting('a server name such as api.example.com or *.example.com') }).transform((v, ctx) => {
  const problem = serverNamePatternProblem(v);
  if (problem === undefined) return v.toLowerCase().replace(/\.$/, '');
  ctx.addIssue({ code: 'custom', message: problem });
  return z.NEVER;
});

const hostName = z.string({ error: expecting('a host name') }).transform((v, ctx) => {
  const problem = v.includes('*') ? `"${v}": a server name to verify may not contain "*"` : serverNamePatternProblem(v);
  if (problem === undefined) return v.toLowerCase().replace(/\.$/, '');
  ctx.addIssue({ code: 'custom', message: problem });
  return z.NEVER;
});

const alpnList = z.array(
  z.string({ error: expecting('an ALPN protocol name such as h2 or http/1.1') }).min(1, { error: 'an ALPN protocol name may not be empty' }).max(255, { error: 'an ALPN protocol name is at most 255 bytes' }),
  { error: expecting('a list of ALPN protocol names, e.g. [h2, http/1.1]') },
);

const textList = (what: string) => z.array(z.string({ error: expecting(what) }).min(1, { error: expecting(what) }), { error: expecting(`a list of ${what}s`) });

const certificateShape = {
  cert: filePath,
  key: filePath.optional(),
  names: z.array(serverNamePattern, { error: expecting('a list of server names') }).optional(),
  default: bool.optional(),
};

const clientAuthShape = {
  mode: oneOf(['none', 'optional', 'required']).optional(),
  ca: filePath.optional(),
  ca_dir: filePath.optional(),
};

const listenerTlsShape = {
  certificates: z.array(mapping('a mapping with cert and key', certificateShape), { error: expecting('a list of certificates') }).optional(),
  sni_path: filePath.optional(),
  min_version: tlsVersion.optional(),
  max_version: tlsVersion.optional(),
  ciphers: z.string({ error: expecting('a cipher list such as "ECDHE+AESGCM:ECDHE+CHACHA20"') }).min(1).optional(),
  curves: z.string({ error: expecting('a list of groups such as "X25519:P-256"') }).regex(/^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)*$/, { error: expecting('a list of groups separated by ":", such as "X25519:P-256"') }).optional(),
  prefer_server_ciphers: bool.optional(),
  alpn: alpnList.optional(),
  client_auth: mapping('a mapping with mode and ca', clientAuthShape)
    .superRefine((ca, ctx) => {
      if ((ca.mode ?? 'required') !== 'none' && ca.ca === undefined && ca.ca_dir === undefined) {
        ctx.addIssue({ code: 'custom', message: `client_auth mode ${ca.mode ?? 'required'} needs the CA that signs client certificates: ca or ca_dir`, path: [] });
      }
    })
    .optional(),
  handshake_timeout: duration.optional(),
  session_tickets: bool.optional(),
  file_check_interval: duration.optional(),
};

const listenerTls = mapping('a mapping of TLS settings', listenerTlsShape).superRefine((t, ctx) => {
  if ((t.certificates === undefined || t.certificates.length === 0) && t.sni_path === undefined) {
    ctx.addIssue({ code: 'custom', message: 'a TLS listener needs certificates (or an sni_path directory)', path: [] });
  }
  if (t.min_version !== undefined && t.max_version !== undefined && versionRank(t.min_version) > versionRank(t.max_version)) {
    ctx.addIssue({ code: 'custom', message: `max_version ${t.max_version} is below min_version ${t.min_version}`, path: ['max_version'] });
  }
});

const groupTlsShape = {
  ca: filePath.optional(),
  server_name: hostName.optional(),
  insecure: bool.optional(),
  cert: filePath.optional(),
  key: filePath.optional(),
  min_version: tlsVersion.optional(),
  max_version: tlsVersion.optional(),
  ciphers: z.string({ error: expecting('a cipher list') }).min(1).optional(),
  alpn: alpnList.optional(),
};

const groupTls = mapping('a mapping of TLS settings for the servers', groupTlsShape).superRefine((t, ctx) => {
  if (t.insecure === true && t.ca !== undefined) ctx.addIssue({ code: 'custom', message: 'insecure: true skips verification, so ca would be ignored; give one or the other', path: ['insecure'] });
  if (t.key !== undefined && t.cert === undefined) ctx.addIssue({ code: 'custom', message: 'key needs cert (the client certificate it belongs to)', path: ['key'] });
  if (t.min_version !== undefined && t.max_version !== undefined && versionRank(t.min_version) > versionRank(t.max_version)) {
    ctx.addIssue({ code: 'custom', message: `max_version ${t.max_version} is below min_version ${t.min_version}`, path: ['max_version'] });
  }
});

const sniRouteShape = {
  server_names: z.array(serverNamePattern, { error: expecting('a list of server names') }).optional(),
  alpn: alpnList.optional(),
  client_identities: textList('a client identity such as "CN=svc-*"').optional(),
  group: z.string({ error: expecting('the name of a group') }),
};


const groupShape = {
  algorithm: oneOf(algorithmNames as [(typeof algorithmNames)[number], ...(typeof algorithmNames)[number][]]).optional(),
  tracking: bool.optional(),
  save_tracking: bool.optional(),
  stubborn: bool.optional(),
  hash_source_port: bool.optional(),
  send_proxy: z.enum(['off', 'v1', 'v2']).optional(),
  clients_max: int(1, MAX_INT).optional(),
  tracking_expiry: duration.optional(),
  blacklist: duration.optional(),
  connect_timeout: duration.optional(),
  client_acl: aclNumber.optional(),
  servers: z.array(server, { error: expecting('a list of servers') }).min(1, { error: 'a group needs at least one server' }),
  emergency: server.nullable().optional(),
  abuse: server.nullable().optional(),
  tls: groupTls.optional(),
  check: checkRef.nullable().optional(),
  agent_check: checkRef.nullable().optional(),
  outlier: mapping('a mapping with consecutive_failures, max_ejection, early_resets', outlierShape).optional(),
  slow_start: duration.optional(),
  retries: int(0, 1000).optional(),
  queue: mapping('a mapping with max and timeout', queueShape).nullable().optional(),
  max_connection_age: duration.optional(),
  max_connection_age_jitter: fraction.optional(),
  drain_budget: int(0, MAX_INT).optional(),
  on_server_down: oneOf(['keep', 'close']).optional(),
  backup_balance: oneOf(['first', 'roundrobin']).optional(),
};


const listenerShape = {
  name: nameText('a listener name').optional(),
  // A bare port is the usual listener, and YAML reads `listen: 8080` as a number.
  listen: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), parsed('a listen address: [host:]port, [ipv6]:port or a Unix socket path', parseListen)),
  group: z.string({ error: expecting('the name of a group') }),
  tls: listenerTls.optional(),
  sni_routes: z.array(mapping('a mapping with server_names and group', sniRouteShape), { error: expecting('a list of routes') }).optional(),
  preread_timeout: duration.optional(),
};

const ADMIN_TEXT = 'an admin address: 127.0.0.1:PORT, [::1]:PORT or a Unix socket path';

const adminShape = {
  listen: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string({ error: expecting(ADMIN_TEXT) })),
  token_file: filePath.nullable().optional(),
  allow_remote: bool.optional(),
};

const adminSection = mapping('a mapping with listen, token_file and allow_remote', adminShape).transform((a, ctx): AdminConfig => {
  const address = parseAdminAddress(a.listen, a.allow_remote ?? false);
  if (typeof address === 'string') {
    ctx.addIssue({ code: 'custom', path: ['listen'], message: address });
    return z.NEVER;
  }
  return { address, tokenFile: a.token_file ?? null, allowRemote: a.allow_remote ?? false };
});

const accessLogShape = {
  file: z.string({ error: expecting('a file path, or "-" for standard output') }).min(1, { error: expecting('a file path, or "-" for standard output') }),
  format: oneOf(['json', 'text']).optional(),
};

const topShape = {
  global: mapping('a mapping of global settings', globalShape).nullish(),
  admin: adminSection.nullish(),
  access_log: mapping('a mapping with file and format', accessLogShape).nullish(),
  acls: z
    .record(
      z.string().regex(/^[0-9]$/, { error: (iss) => `ACL numbers are 0-9, got ${describe(iss.input)}` }),
      z.array(parsed('an ACL rule such as "permit 10.0.0.0 255.0.0.0"', parseAclRule), { error: expecting('a list of ACL rules') }),
      { error: expecting('a mapping from ACL numbers 0-9 to lists of rules') },
    )
    .nullish(),
  checks: z.record(nameText('a check name'), checkDef, { error: expecting('a mapping of check definitions by name') }).nullish(),
  groups: z.record(nameText('a group name'), mapping('a mapping of group settings', groupShape), { error: expecting('a mapping of groups by name') }).nullish(),
  listeners: z.array(mapping('a mapping with listen and group', listenerShape), { error: expecting('a list of listeners') }).min(1, { error: 'at least one listener is needed' }),
};

const fileSchema = mapping('a mapping with global, acls, groups and listeners', topShape);

type ParsedFile = z.output<typeof fileSchema>;

/** Known field names of the mapping at `path`, for "did you mean" on unknown fields. */
function fieldsAt(path: Path): readonly string[] {
  const p = path.map((s) => (typeof s === 'number' ? s : String(s)));
  if (p.length === 0) return Object.keys(topShape);
  if (p[0] === 'global' && p.length === 1) return Object.keys(globalShape);
  if (p[0] === 'admin' && p.length === 1) return Object.keys(adminShape);
  if (p[0] === 'access_log' && p.length === 1) return Object.keys(accessLogShape);
  if (p[0] === 'groups' && p.length === 2) return Object.keys(groupShape);
  if (p[0] === 'groups' && ((p.length === 4 && p[2] === 'servers') || (p.length === 3 && (p[2] === 'emergency' || p[2] === 'abuse')))) {
    return Object.keys(serverShape);
  }
  if (p[0] === 'groups' && p.length === 3 && p[2] === 'tls') return Object.keys(groupTlsShape);
  if (p[0] === 'listeners' && p.length === 2) return Object.keys(listenerShape);
  if (p[0] === 'listeners' && p[2] === 'tls') {
    if (p.length === 3) return Object.keys(listenerTlsShape);
    if (p.length === 5 && p[3] === 'certificates') return Object.keys(certificateShape);
    if (p.length === 4 && p[3] === 'client_auth') return Object.keys(clientAuthShape);
  }
  if (p[0] === 'listeners' && p.length === 4 && p[2] === 'sni_routes') return Object.keys(sniRouteShape);
  if ((p[0] === 'checks' && p.length === 2) || (p[0] === 'groups' && p.length === 3 && (p[2] === 'check' || p[2] === 'agent_check'))) return Object.keys(checkShape);
  const last = p[p.length - 1];
  if (p[0] === 'checks' && last === 'tls') return Object.keys(tlsShape);
  if (p[0] === 'checks' && p[p.length - 2] === 'script') return Object.keys(scriptStepShape);
  if (p[0] === 'groups' && p.length === 3 && last === 'queue') return Object.keys(queueShape);
  if (p[0] === 'groups' && p.length === 3 && last === 'outlier') return Object.keys(outlierShape);
  return [];
}

/** Turns zod's issues into ours: one per unknown key, and union failures narrowed to the branch meant. */
function flatten(issue: z.core.$ZodIssue, base: Path, known: (path: Path) => readonly string[] = fieldsAt): Found[] {
  const path = [...base, ...issue.path];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field '${k}'${didYouMean(k, known(path))}`, atKey: true }));
    case 'invalid_key':
      return issue.issues.map((i) => ({ path, message: i.message, atKey: true }));
    case 'invalid_union': {
      // A branch that failed only because the value had the other type (string vs mapping) is not the one meant.
      const meant = issue.errors.filter((b) => !(b.length === 1 && b[0]!.code === 'invalid_type' && b[0]!.path.length === 0));
      if (meant.length === 1) return meant[0]!.flatMap((i) => flatten(i, path, known));
      return [{ path, message: issue.message }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}

// ---------------------------------------------------------------------------------------------
// Checks across fields, done on the raw data so they run even when other parts are invalid

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function addressKey(a: Address): string {
  return a.kind === 'unix' ? `unix:${a.path}` : formatAddress({ ...a, host: a.host.toLowerCase() });
}

/** `check:` / `agent_check:` names must name a definition of the right kind. */
function checkCheckReferences(raw: Record<string, unknown>): Found[] {
  const out: Found[] = [];
  const defs = isRecord(raw.checks) ? raw.checks : {};
  const names = Object.keys(defs);
  for (const [name, def] of Object.entries(defs)) out.push(...checkFieldsFit(def, ['checks', name]));
  if (!isRecord(raw.groups)) return out;
  for (const [gname, g] of Object.entries(raw.groups)) {
    if (!isRecord(g)) continue;
    for (const field of ['check', 'agent_check'] as const) {
      const ref = g[field];
      if (isRecord(ref)) out.push(...checkFieldsFit(ref, ['groups', gname, field]));
      if (typeof ref !== 'string') continue;
      const def = defs[ref];
      if (!isRecord(def)) {
        const known = names.length === 0 ? ' (no checks are defined under `checks`)' : didYouMean(ref, names) || ` (defined: ${names.join(', ')})`;
        out.push({ path: ['groups', gname, field], message: `unknown check '${ref}'${known}` });
        continue;
      }
      const isAgent = def.type === 'agent';
      if (field === 'check' && isAgent) out.push({ path: ['groups', gname, field], message: `'${ref}' is an agent check; use it as agent_check` });
      if (field === 'agent_check' && !isAgent && typeof def.type === 'string') out.push({ path: ['groups', gname, field], message: `'${ref}' is a ${def.type} check, not an agent check; use it as check` });
    }
  }
  return out;
}

function checkReferences(raw: unknown): Found[] {
  if (isRecord(raw) && !Array.isArray(raw.listeners)) return checkCheckReferences(raw);
  if (!isRecord(raw) || !Array.isArray(raw.listeners)) return [];
  const groups = isRecord(raw.groups) ? Object.keys(raw.groups) : [];
  const out: Found[] = [];
  if (isRecord(raw.groups)) {
    for (const [name, g] of Object.entries(raw.groups)) {
      if (isRecord(g) && isRecord(g.tls) && (g.send_proxy === 'v1' || g.send_proxy === 'v2')) {
        out.push({
          path: ['groups', name, 'send_proxy'],
          message: 'send_proxy with tls is not supported yet: the PROXY header must precede the TLS handshake, and Fulcrum would send it inside TLS',
        });
      }
    }
  }
  const addresses = new Map<string, number>();
  const names = new Map<string, number>();
  raw.listeners.forEach((l: unknown, i) => {
    if (!isRecord(l)) return;
    out.push(...checkTlsReferences(l, i, groups));
    if (typeof l.group === 'string' && !groups.includes(l.group)) {
      const known = groups.length === 0 ? ' (no groups are defined)' : didYouMean(l.group, groups) || ` (defined: ${groups.join(', ')})`;
      out.push({ path: ['listeners', i, 'group'], message: `unknown group '${l.group}'${known}` });
    }
    if (typeof l.listen === 'string' || typeof l.listen === 'number') {
      const a = parseListen(String(l.listen));
      if (typeof a !== 'string') {
        const key = addressKey(a);
        const first = addresses.get(key);
        if (first === undefined) addresses.set(key, i);
        else out.push({ path: ['listeners', i, 'listen'], message: `${formatAddress(a)} is already the address of listeners[${first}]` });
      }
    }
    const name = l.name === undefined ? defaultListenerName(i) : l.name;
    if (typeof name === 'string') {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else out.push({ path: l.name === undefined ? ['listeners', i] : ['listeners', i, 'name'], message: `listener name '${name}' is already used by listeners[${first}]` });
    }
  });
  out.push(...checkCheckReferences(raw));
  return out;
}

/** SNI routes name known groups; client identities need verified client certificates. */
function checkTlsReferences(l: Record<string, unknown>, i: number, groups: string[]): Found[] {
  const out: Found[] = [];
  const tls = isRecord(l.tls) ? l.tls : null;
  const clientAuth = tls !== null && isRecord(tls.client_auth) ? tls.client_auth : null;
  const verifies = clientAuth !== null && clientAuth.mode !== 'none';
  if (Array.isArray(l.sni_routes)) {
    l.sni_routes.forEach((r: unknown, j) => {
      if (!isRecord(r)) return;
      if (typeof r.group === 'string' && !groups.includes(r.group)) {
        const known = groups.length === 0 ? ' (no groups are defined)' : didYouMean(r.group, groups) || ` (defined: ${groups.join(', ')})`;
        out.push({ path: ['listeners', i, 'sni_routes', j, 'group'], message: `unknown group '${r.group}'${known}` });
      }
      if (r.client_identities !== undefined && !verifies) {
        out.push({
          path: ['listeners', i, 'sni_routes', j, 'client_identities'],
          message: tls === null ? 'client identities are only known when Fulcrum terminates TLS (add tls with client_auth)' : 'client identities need verified client certificates: set tls.client_auth (mode optional or required)',
          atKey: true,
        });
      }
    });
  }
  if (l.preread_timeout !== undefined && tls !== null) {
    out.push({ path: ['listeners', i, 'preread_timeout'], message: 'preread_timeout is for passthrough listeners (sni_routes without tls); a TLS listener uses tls.handshake_timeout', atKey: true });
  }
  if (l.preread_timeout !== undefined && tls === null && !(Array.isArray(l.sni_routes) && l.sni_routes.length > 0)) {
    out.push({ path: ['listeners', i, 'preread_timeout'], message: 'preread_timeout applies only to passthrough listeners, which have sni_routes', atKey: true });
  }
  return out;
}

function defaultListenerName(index: number): string {
  return `listener-${index + 1}`;
}

// ---------------------------------------------------------------------------------------------
// Positions

/** Offset for a problem: a scalar value's own position, else its key, else the nearest enclosing node. */
function position(doc: Document, f: Found): number {
  let node: unknown = doc.contents;
  let key: unknown = null;
  for (const seg of f.path) {
    if (isAlias(node)) node = node.resolve(doc);
    let next: { key: unknown; value: unknown } | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair) next = { key: pair.key, value: pair.value };
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item !== undefined) next = { key: null, value: item };
    }
    if (next === undefined) return start(key) ?? start(node) ?? 0;
    key = next.key;
    node = next.value;
  }
  if (f.atKey === true || node === null || isCollection(node)) return start(key) ?? start(node) ?? 0;
  return start(node) ?? start(key) ?? 0;
}

function start(node: unknown): number | undefined {
  if (typeof node !== 'object' || node === null || !('range' in node)) return undefined;
  const range = (node as { range?: readonly number[] | null }).range;
  return range?.[0] ?? undefined;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

// ---------------------------------------------------------------------------------------------
// Building the model

function build(p: ParsedFile): FulcrumConfig {
  const g = p.global ?? {};
  const d = defaultGlobal();
  const global: GlobalConfig = {
    ...d,
    maxConnections: g.max_connections ?? d.maxConnections,
    pendingMax: g.pending_max ?? d.pendingMax,
    backlog: g.backlog ?? d.backlog,
    multiAccept: g.multi_accept ?? d.multiAccept,
    idleTimeoutMs: g.idle_timeout ?? d.idleTimeoutMs,
    tcpNoDelay: g.tcp_nodelay ?? d.tcpNoDelay,
    tcpFastClose: g.tcp_fastclose ?? d.tcpFastClose,
    controlAcl: g.control_acl ?? d.controlAcl,
    logFile: g.log_file ?? d.logFile,
    pidFile: g.pid_file ?? d.pidFile,
    statusFile: g.status_file ?? d.statusFile,
    user: g.user ?? d.user,
    debug: g.debug ?? d.debug,
    asciiDumps: g.ascii_dumps ?? d.asciiDumps,
    workers: g.workers ?? d.workers,
    stateFile: g.state_file ?? d.stateFile,
    admin: p.admin ?? null,
    accessLog: p.access_log === null || p.access_log === undefined ? null : { path: p.access_log.file, format: p.access_log.format ?? 'json' },
  };

  const acls = Object.entries(p.acls ?? {})
    .sort(([a], [b]) => Number(a) - Number(b))
    .flatMap(([list, rules]) => rules.map((entry) => ({ list: Number(list), entry })));

  const checks = new Map(Object.entries(p.checks ?? {}).map(([name, c]) => [name, buildCheck(name, c)]));
  const resolveCheck = (group: string, field: string, ref: string | ParsedCheck | null | undefined): CheckSpec | null => {
    if (ref === undefined || ref === null) return null;
    if (typeof ref === 'string') return checks.get(ref)!; // references were checked
    return buildCheck(`${group}.${field}`, ref);
  };

  const groups = Object.entries(p.groups ?? {}).map(([name, s]): GroupConfig => {
    const dg = defaultGroup(name);
    return {
      ...dg,
      algorithm: s.algorithm ?? dg.algorithm,
      tracking: s.tracking ?? dg.tracking,
      saveTracking: s.save_tracking ?? dg.saveTracking,
      stubborn: s.stubborn ?? dg.stubborn,
      hashSourcePort: s.hash_source_port ?? dg.hashSourcePort,
      sendProxy: s.send_proxy ?? dg.sendProxy,
      clientsMax: s.clients_max ?? dg.clientsMax,
      trackingMs: s.tracking_expiry ?? dg.trackingMs,
      blacklistMs: s.blacklist ?? dg.blacklistMs,
      connectTimeoutMs: s.connect_timeout ?? dg.connectTimeoutMs,
      clientAcl: s.client_acl ?? dg.clientAcl,
      servers: s.servers,
      emergency: s.emergency ?? null,
      abuse: s.abuse ?? null,
      ...(s.tls === undefined ? {} : { tls: buildGroupTls(s.tls) }),
      check: resolveCheck(name, 'check', s.check),
      agentCheck: resolveCheck(name, 'agent_check', s.agent_check),
      outlier: {
        consecutiveFailures: s.outlier?.consecutive_failures ?? dg.outlier.consecutiveFailures,
        maxEjectionMs: s.outlier?.max_ejection ?? dg.outlier.maxEjectionMs,
        // Watching early resets is what the outlier section is for; pen's -b alone does not.
        earlyResets: s.outlier === undefined ? false : (s.outlier.early_resets ?? true),
      },
      slowStartMs: s.slow_start ?? dg.slowStartMs,
      retries: s.retries ?? dg.retries,
      queueMax: s.queue?.max ?? 0,
      queueTimeoutMs: s.queue?.timeout ?? 0,
      maxConnectionAgeMs: s.max_connection_age ?? dg.maxConnectionAgeMs,
      maxConnectionAgeJitter: s.max_connection_age_jitter ?? dg.maxConnectionAgeJitter,
      drainBudget: s.drain_budget ?? dg.drainBudget,
      onServerDown: s.on_server_down ?? dg.onServerDown,
      backupBalance: s.backup_balance ?? dg.backupBalance,
    };
  });

  const listeners = p.listeners.map((l, i): ListenerConfig => {
    const out: ListenerConfig = { name: l.name ?? defaultListenerName(i), address: l.listen, group: l.group };
    if (l.tls !== undefined) out.tls = buildListenerTls(l.tls);
    if (l.sni_routes !== undefined) out.sniRoutes = l.sni_routes.map(buildRoute);
    if (l.preread_timeout !== undefined) out.prereadTimeoutMs = l.preread_timeout;
    else if (out.tls === undefined && (out.sniRoutes?.length ?? 0) > 0) out.prereadTimeoutMs = TLS_DEFAULTS.prereadTimeoutMs;
    return out;
  });

  return { global, acls, groups, listeners };
}

type ParsedListener = ParsedFile['listeners'][number];

function buildListenerTls(t: NonNullable<ParsedListener['tls']>): ListenerTlsConfig {
  const d = defaultListenerTls();
  const ca = t.client_auth;
  return {
    ...d,
    certificates: (t.certificates ?? []).map((c) => ({ cert: c.cert, key: c.key ?? c.cert, names: c.names ?? null, isDefault: c.default ?? false })),
    sniPath: t.sni_path ?? null,
    minVersion: t.min_version ?? d.minVersion,
    maxVersion: t.max_version ?? d.maxVersion,
    ciphers: t.ciphers ?? null,
    curves: t.curves ?? null,
    preferServerCiphers: t.prefer_server_ciphers ?? false,
    alpn: t.alpn ?? [],
    clientAuth: ca === undefined ? d.clientAuth : { mode: ca.mode ?? 'required', caFile: ca.ca ?? null, caDir: ca.ca_dir ?? null },
    handshakeTimeoutMs: t.handshake_timeout ?? d.handshakeTimeoutMs,
    sessionTickets: t.session_tickets ?? d.sessionTickets,
    reloadCheckMs: t.file_check_interval ?? d.reloadCheckMs,
  };
}

function buildRoute(r: NonNullable<ParsedListener['sni_routes']>[number]): SniRouteConfig {
  return { serverNames: r.server_names ?? [], alpn: r.alpn ?? [], clientIdentities: r.client_identities ?? [], group: r.group };
}

function buildGroupTls(t: NonNullable<NonNullable<ParsedFile['groups']>[string]['tls']>): GroupTlsConfig {
  const d = defaultGroupTls();
  return {
    caFile: t.ca ?? null,
    serverName: t.server_name ?? null,
    insecure: t.insecure ?? false,
    certFile: t.cert ?? null,
    keyFile: t.key ?? t.cert ?? null,
    minVersion: t.min_version ?? d.minVersion,
    maxVersion: t.max_version ?? d.maxVersion,
    ciphers: t.ciphers ?? null,
    alpn: t.alpn ?? [],
  };
}

// ---------------------------------------------------------------------------------------------
// Pieces of the schema for the admin API, so that a change made through the API is checked
// exactly like the same change written in the file (same rules, same messages).

/** A problem with an admin API request body; `path` is relative to the body, e.g. `weight`. */
export interface FieldIssue {
  path: string;
  message: string;
}

export type Checked<T> = { value: T } | { issues: FieldIssue[] };

function check<T>(schema: z.ZodType<T>, raw: unknown, fields: readonly string[]): Checked<T> {
  const r = schema.safeParse(raw);
  if (r.success) return { value: r.data };
  const found = r.error.issues.flatMap((i) => flatten(i, [], (p) => (p.length === 0 ? fields : [])));
  return { issues: found.map((f) => ({ path: formatPath(f.path), message: f.message })) };
}

/** A server as the config file writes it: pen's short form string, or the long-form mapping. */
export function checkServerValue(raw: unknown): Checked<ServerConfig> {
  return check(server, raw, Object.keys(serverShape));
}

/** What can be changed on a running server: its limits, weight, priority and ACL. */
const serverSettingsShape = {
  max_connections: serverShape.max_connections,
  hard_limit: serverShape.hard_limit,
  weight: serverShape.weight,
  priority: serverShape.priority,
  acl: serverShape.acl,
};

/** Settings of an existing server (no address): the long form's fields, all optional. */
export interface ServerSettingsPatch {
  max_connections?: number | undefined;
  hard_limit?: number | undefined;
  weight?: number | undefined;
  priority?: number | undefined;
  acl?: number | undefined;
}

const serverPatch = mapping('a mapping of server settings (max_connections, hard_limit, weight, priority, acl)', serverSettingsShape);

export function checkServerPatch(raw: unknown): Checked<ServerSettingsPatch> {
  return check(serverPatch, raw, Object.keys(serverSettingsShape));
}
