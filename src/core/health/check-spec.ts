/**
 * What an active check is: a named definition (config `checks:`), reused by groups. Pure data;
 * the conversation of each kind is in its own file here, the socket work in
 * src/dataplane/health-probes.ts (udp-probe.ts for udp and dns), the scheduling in
 * src/control/health-checker.ts.
 */
import type { DnsTypeName } from '../../protocol/dns.ts';
import type { UdpExpect } from './udp-expect.ts';

/** Every kind of check; each has its entry in check-kinds.ts (the compiler holds the two together). */
export const CHECK_KIND_NAMES = ['tcp', 'http', 'tls', 'script', 'agent', 'udp', 'dns'] as const;
export type CheckKind = (typeof CHECK_KIND_NAMES)[number];

/** Inclusive status ranges, e.g. [[200, 399]] for "2xx or 3xx". */
export type StatusRanges = readonly (readonly [number, number])[];

export interface HttpCheckSpec {
  method: string;
  path: string;
  /** Host header; null = the address checked. */
  host: string | null;
  expectStatus: StatusRanges;
  /** A regular expression the body must match; null = any body. */
  expectBody: string | null;
}

export interface TlsCheckSpec {
  /** SNI and the name verified against the certificate; null = no SNI. */
  serverName: string | null;
  /** Verify the certificate chain (and the name, when serverName is set). */
  verify: boolean;
  /** A PEM file of trusted CAs, instead of the system's (read once, by the probe). */
  caFile: string | null;
}

export type ScriptStep =
  | { readonly kind: 'send'; readonly data: Uint8Array }
  | { readonly kind: 'expect'; readonly match: ExpectMatch };

export type ExpectMatch =
  | { readonly kind: 'string'; readonly text: string }
  | { readonly kind: 'regex'; readonly source: string }
  | { readonly kind: 'bytes'; readonly data: Uint8Array };

/** A `udp` check: a datagram sent, and what its reply must hold (null: any reply passes). */
export interface UdpCheckSpec {
  send: Uint8Array;
  expect: UdpExpect | null;
}

/** A `dns` check: one query, and the RCODEs that pass. */
export interface DnsCheckSpec {
  name: string;
  /** A type name (A, AAAA, SOA, ...) or number. */
  type: DnsTypeName | number;
  rcodes: readonly number[];
}

export interface CheckSpec {
  name: string;
  kind: CheckKind;
  intervalMs: number;
  /** Interval while the server is down (HAProxy downinter). */
  downIntervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** Each interval is stretched or shrunk by up to this fraction at random (0..1). */
  jitter: number;
  /** Check this port instead of the server's (null = the server's). */
  port: number | null;
  /** Check this host instead of the server's (null = the server's). */
  address: string | null;
  http: HttpCheckSpec | null;
  /** TLS for `tls` checks, and for http or script checks over TLS. */
  tls: TlsCheckSpec | null;
  script: readonly ScriptStep[] | null;
  /** Agent checks: text sent once connected, e.g. a server id (HAProxy agent-send). */
  agentSend: string | null;
  udp: UdpCheckSpec | null;
  dns: DnsCheckSpec | null;
}

export const CHECK_DEFAULTS = {
  intervalMs: 2000,
  timeoutMs: 1000,
  rise: 2,
  fall: 3,
  jitter: 0.1,
} as const;

export const DEFAULT_HTTP_STATUS: StatusRanges = [[200, 399]];

export function checkSpec(name: string, kind: CheckKind, fields: Partial<Omit<CheckSpec, 'name' | 'kind'>> = {}): CheckSpec {
  const intervalMs = fields.intervalMs ?? CHECK_DEFAULTS.intervalMs;
  return {
    name,
    kind,
    intervalMs,
    downIntervalMs: intervalMs,
    timeoutMs: CHECK_DEFAULTS.timeoutMs,
    rise: CHECK_DEFAULTS.rise,
    fall: CHECK_DEFAULTS.fall,
    jitter: CHECK_DEFAULTS.jitter,
    port: null,
    address: null,
    http: kind === 'http' ? { method: 'GET', path: '/', host: null, expectStatus: DEFAULT_HTTP_STATUS, expectBody: null } : null,
    tls: kind === 'tls' ? { serverName: null, verify: false, caFile: null } : null,
    script: null,
    agentSend: null,
    udp: kind === 'udp' ? { send: new Uint8Array(0), expect: null } : null,
    dns: kind === 'dns' ? { name: '.', type: 'SOA', rcodes: [0] } : null,
    ...fields,
  };
}

/**
 * Delay until the next check: the interval for the server's state, spread by ±jitter/2 so that
 * checks of many servers drift apart instead of firing in lockstep. `r` is a random in [0, 1).
 */
export function nextCheckDelayMs(spec: CheckSpec, healthy: boolean, r: number): number {
  const base = healthy ? spec.intervalMs : spec.downIntervalMs;
  return Math.max(1, Math.round(base * (1 + spec.jitter * (r - 0.5))));
}

/** Delay of the very first check: anywhere in the first interval (HAProxy spread-checks). */
export function firstCheckDelayMs(spec: CheckSpec, r: number): number {
  return Math.max(1, Math.round(spec.intervalMs * r));
}

/** Parses "200", "2xx", "200-299" (and lists of them) into ranges; null if malformed. */
export function parseStatusRanges(items: readonly (string | number)[]): StatusRanges | null {
  const out: [number, number][] = [];
  for (const item of items) {
    const t = String(item).trim().toLowerCase();
    let m: RegExpExecArray | null;
    if ((m = /^([1-5])xx$/.exec(t))) out.push([Number(m[1]) * 100, Number(m[1]) * 100 + 99]);
    else if ((m = /^(\d{3})-(\d{3})$/.exec(t)) && Number(m[1]) <= Number(m[2])) out.push([Number(m[1]), Number(m[2])]);
    else if ((m = /^(\d{3})$/.exec(t))) out.push([Number(m[1]), Number(m[1])]);
    else return null;
  }
  for (const [lo, hi] of out) if (lo < 100 || hi > 599) return null;
  return out.length === 0 ? null : out;
}

export function statusMatches(ranges: StatusRanges, status: number): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

export function describeCheck(spec: CheckSpec): string {
  switch (spec.kind) {
    case 'http':
      return `${spec.tls === null ? 'http' : 'https'} check ${spec.name} (${spec.http?.method ?? 'GET'} ${spec.http?.path ?? '/'})`;
    case 'dns':
      return `dns check ${spec.name} (${spec.dns?.name ?? '.'} ${String(spec.dns?.type ?? 'SOA')})`;
    default:
      return `${spec.kind} check ${spec.name}`;
  }
}
