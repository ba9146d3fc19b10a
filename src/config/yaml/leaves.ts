/**
 * The leaves of the config schema: numbers, durations, names, host names, server and listen
 * addresses, ACL rules. Each converts a written value or explains, in the file's terms, what is
 * wrong with it.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { AddressError, isUnixPath, parseListenAddress, parseServerArg } from '../../core/address.ts';
import type { Address } from '../../core/address.ts';
import { AclError, parseAclEntry } from '../../core/acl/acl.ts';
import type { AclEntry } from '../../core/acl/acl.ts';
import { checkDuration, durationRangeText, DURATION_SUFFIX_TEXT, type DurationRule } from '../../core/duration.ts';
import { serverConfig } from '../model.ts';
import type { ServerConfig } from '../model.ts';
import { didYouMean, expecting } from './messages.ts';

export const MAX_INT = 2 ** 31 - 1;

export function int(lo: number, hi: number, what = hi >= MAX_INT ? `an integer ${lo} or more` : `an integer ${lo}-${hi}`) {
  const error = expecting(what);
  return z.int({ error }).min(lo, { error }).max(hi, { error });
}

export const bool = z.boolean({ error: expecting('true or false') });
export const fraction = z.number({ error: expecting('a number 0-1') }).min(0, { error: expecting('a number 0-1') }).max(1, { error: expecting('a number 0-1') });
export const portNumber = int(1, 65535, 'a port 1-65535');
export const aclNumber = int(0, 9, 'an ACL number 0-9');
export const filePath = z.string({ error: expecting('a file path') }).min(1, { error: expecting('a file path') });

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) => {
      const extra = typeof iss.input === 'string' ? didYouMean(iss.input, values) : '';
      return `${expecting(`one of ${values.join(', ')}`)(iss)}${extra}`;
    },
  });
}

const NAME = /^[A-Za-z0-9_-]+$/;
export const nameText = (what: string) => {
  const error = expecting(`${what} made of letters, digits, "_" and "-"`);
  return z.string({ error }).regex(NAME, { error });
};

/**
 * A duration field: "250ms", "3s", "5m", "1h" or whole milliseconds, checked by the one rule for
 * every duration (core/duration.ts), so the file refuses what pen's command line and commands
 * refuse, in the same words. `rule` narrows a field's range where one makes sense.
 */
export function durationField(rule: DurationRule = {}) {
  return z.unknown().transform((v, ctx) => {
    const r = typeof v === 'number' || typeof v === 'string' ? checkDuration(v, 'ms', '', { ...rule, suffixes: true }) : { error: expecting(`${DURATION_SUFFIX_TEXT} ${durationRangeText('ms', rule)}`)({ input: v }) };
    if ('ms' in r) return r.ms;
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  });
}

export const duration = durationField();

/** A duration as the config file writes it, in ms; undefined if malformed or out of range. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v !== 'number' && typeof v !== 'string') return undefined;
  const r = checkDuration(v, 'ms', '', { suffixes: true });
  return 'ms' in r ? r.ms : undefined;
}

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

export function withHostname(address: Address, fields: Partial<Omit<ServerConfig, 'address'>>): ServerConfig {
  const hostname = address.kind === 'tcp' && !isIpLiteral(address.host) ? { hostname: address.host } : {};
  return serverConfig(address, { ...hostname, ...fields });
}

/** pen's short form `host:port:maxc:hard:weight:prio`. */
export function parseShortServer(spec: string): ServerConfig | string {
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
export function parseServerAddress(text: string): Address | string {
  const r = parseShortServer(text);
  if (typeof r === 'string') return r;
  const tail = isUnixPath(text) ? text.replace(/^unix:/, '') : text.startsWith('[') ? text.slice(text.indexOf(']') + 1) : text;
  if (tail.split(':').length > (isUnixPath(text) ? 1 : 2)) {
    return `server "${text}": in the long form give max_connections, hard_limit, weight and priority as fields, not in the address`;
  }
  return r.address;
}

export function parseListen(text: string): Address | string {
  try {
    const a = parseListenAddress(text);
    const bad = a.kind === 'tcp' ? hostProblem(a.host) : undefined;
    return bad === undefined ? a : `listen address "${text}": ${bad}`;
  } catch (e) {
    if (e instanceof AddressError) return e.message;
    throw e;
  }
}

export function parseAclRule(rule: string): AclEntry | string {
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
export function parsed<T>(what: string, parse: (text: string) => T | string) {
  return z.string({ error: expecting(what) }).transform((text, ctx) => {
    const r = parse(text);
    if (typeof r !== 'string') return r;
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  });
}

export function mapping<S extends z.ZodRawShape>(what: string, shape: S) {
  return z.strictObject(shape, { error: (iss) => (iss.code === 'invalid_type' ? expecting(what)(iss) : undefined) });
}

/** A string leaf checked by a function that returns what is wrong with it, if anything. */
export function checkedText(what: string, problem: (text: string) => string | undefined) {
  return z.string({ error: expecting(what) }).superRefine((text, ctx) => {
    const p = problem(text);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  });
}

export const hostText = checkedText('a host name or IP address', hostProblem);
