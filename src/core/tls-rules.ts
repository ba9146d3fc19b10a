/**
 * Pure TLS decisions: server name patterns (exact and `*.` wildcard), choosing a certificate or a
 * route by server name in O(1), TLS version ranges, and pen's protocol names and ssl_option words
 * mapped onto them. No sockets and no files here; the data plane applies what these decide.
 */

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** Fulcrum's default minimum: TLS 1.0 and 1.1 are deprecated (RFC 8996). */
export const DEFAULT_MIN_TLS_VERSION: TlsVersion = 'TLSv1.2';
export const DEFAULT_MAX_TLS_VERSION: TlsVersion = 'TLSv1.3';

export function isTlsVersion(v: string): v is TlsVersion {
  return (TLS_VERSIONS as readonly string[]).includes(v);
}

export function versionRank(v: TlsVersion): number {
  return TLS_VERSIONS.indexOf(v);
}

/** A server name as it is compared: lower case, no trailing dot. */
export function normalizeServerName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Checks a server name pattern: a host name (`api.example.com`) or a wildcard standing for exactly
 * one leftmost label (`*.example.com`, which matches `a.example.com` but neither `example.com` nor
 * `a.b.example.com`, as in RFC 6125 and Bun's SNI). Returns a problem, or undefined when valid.
 */
export function serverNamePatternProblem(pattern: string): string | undefined {
  const p = normalizeServerName(pattern);
  if (p === '') return 'a server name may not be empty';
  if (p.length > 253) return `"${pattern}" is longer than 253 characters`;
  const labels = p.split('.');
  const rest = labels[0] === '*' ? labels.slice(1) : labels;
  if (labels[0] === '*' && rest.length < 2) return `"${pattern}": a wildcard needs at least two labels after "*." (like *.example.com)`;
  if (rest.some((l) => l.includes('*'))) return `"${pattern}": "*" may only be the whole leftmost label (like *.example.com)`;
  const bad = rest.find((l) => !LABEL.test(l));
  if (bad !== undefined) return `"${pattern}" is not a valid host name (label "${bad}")`;
  return undefined;
}

/**
 * Values by server name pattern with O(1) lookups: an exact name wins over a wildcard; for the same
 * pattern the first value set is kept (certificates and routes are listed in priority order).
 */
export class NameTable<T> {
  readonly #exact = new Map<string, T>();
  /** Wildcards by the domain after "*.". */
  readonly #wildcard = new Map<string, T>();

  /** Adds a value for a pattern; false if the pattern already had one (the first one stays). */
  set(pattern: string, value: T): boolean {
    const p = normalizeServerName(pattern);
    const [map, key] = p.startsWith('*.') ? [this.#wildcard, p.slice(2)] : [this.#exact, p];
    if (map.has(key)) return false;
    map.set(key, value);
    return true;
  }

  /** The value for a (normalized) server name, exact first, then the one-label wildcard. */
  get(name: string): T | undefined {
    return this.#exact.get(name) ?? this.getWildcard(name);
  }

  /** Only the exact entry for a name. */
  getExact(name: string): T | undefined {
    return this.#exact.get(name);
  }

  /** Only the wildcard entry that covers a name (`*.example.com` for `a.example.com`). */
  getWildcard(name: string): T | undefined {
    const dot = name.indexOf('.');
    return dot > 0 ? this.#wildcard.get(name.slice(dot + 1)) : undefined;
  }

  get size(): number {
    return this.#exact.size + this.#wildcard.size;
  }

  /** Every pattern with its value (for reports). */
  *entries(): Generator<[string, T]> {
    for (const [k, v] of this.#exact) yield [k, v];
    for (const [k, v] of this.#wildcard) yield [`*.${k}`, v];
  }
}

/** Matches `text` against a glob where `*` stands for any run of characters (identity patterns). */
export function globMatch(pattern: string, text: string): boolean {
  if (!pattern.includes('*')) return pattern === text;
  const parts = pattern.split('*');
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!text.startsWith(first) || text.length < first.length + last.length || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const found = text.indexOf(parts[i]!, at);
    if (found < 0 || found + parts[i]!.length > end) return false;
    at = found + parts[i]!.length;
  }
  return true;
}

/** A routing rule: every list that is not empty must match; the first rule that matches wins. */
export interface RouteRule<G> {
  /** Server name patterns; empty = any name, or none. */
  readonly serverNames: readonly string[];
  /** ALPN protocols; empty = any. Matches if the negotiated (or one offered) protocol is listed. */
  readonly alpn: readonly string[];
  /** Verified client identity globs (e.g. `CN=svc-*`); empty = any client, verified or not. */
  readonly clientIdentities: readonly string[];
  readonly target: G;
}

/** What is known about a connection when it is routed. */
export interface RouteFacts {
  readonly serverName: string | null;
  /** Offered protocols (passthrough) or the negotiated one (termination); empty if none. */
  readonly alpn: readonly string[];
  /** The verified client identity; null when no client certificate was verified. */
  readonly clientIdentity: string | null;
}

/**
 * First-match routing by server name, ALPN and client identity. Rules naming servers are found
 * through a NameTable (O(1) per connection); only the few rules that match the name (or name
 * none) are then checked in order.
 */
export class Router<G> {
  readonly rules: readonly RouteRule<G>[];
  readonly #byName = new NameTable<number[]>();
  readonly #anyName: number[] = [];

  constructor(rules: readonly RouteRule<G>[]) {
    this.rules = rules;
    const lists = new Map<string, number[]>();
    rules.forEach((r, i) => {
      if (r.serverNames.length === 0) {
        this.#anyName.push(i);
        return;
      }
      for (const pattern of r.serverNames) {
        const p = normalizeServerName(pattern);
        let list = lists.get(p);
        if (list === undefined) {
          list = [];
          lists.set(p, list);
          this.#byName.set(p, list);
        }
        if (list[list.length - 1] !== i) list.push(i);
      }
    });
  }

  get size(): number {
    return this.rules.length;
  }

  /** The target of the first rule (in the order written) that matches, or null. */
  choose(facts: RouteFacts): G | null {
    if (this.rules.length === 0) return null;
    const name = facts.serverName === null ? null : normalizeServerName(facts.serverName);
    const exact = name === null ? EMPTY : (this.#byName.getExact(name) ?? EMPTY);
    const wild = name === null ? EMPTY : (this.#byName.getWildcard(name) ?? EMPTY);
    const any = this.#anyName;
    // A three-way merge of ordered index lists, so that the order of the rules decides.
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < exact.length || j < wild.length || k < any.length) {
      const a = i < exact.length ? exact[i]! : Infinity;
      const b = j < wild.length ? wild[j]! : Infinity;
      const c = k < any.length ? any[k]! : Infinity;
      let next: number;
      if (a <= b && a <= c) {
        next = a;
        i++;
      } else if (b <= c) {
        next = b;
        j++;
      } else {
        next = c;
        k++;
      }
      const rule = this.rules[next]!;
      if (matchesRest(rule, facts)) return rule.target;
    }
    return null;
  }
}

const EMPTY: readonly number[] = [];

function matchesRest<G>(rule: RouteRule<G>, facts: RouteFacts): boolean {
  if (rule.alpn.length > 0 && !facts.alpn.some((p) => rule.alpn.includes(p))) return false;
  if (rule.clientIdentities.length > 0) {
    const id = facts.clientIdentity;
    if (id === null || !rule.clientIdentities.some((g) => globMatch(g, id))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// pen's TLS words

/** A range of enabled TLS versions (BoringSSL enables a contiguous range). */
export interface VersionRange {
  min: TlsVersion;
  max: TlsVersion;
}

/**
 * pen's `-L protocol` (ssl23, ssl2, ssl3, tls1) mapped onto a minimum version. pen's ssl23
 * ("negotiate the best") and tls1 ("TLS, not SSL") both become Fulcrum's modern minimum, TLS 1.2;
 * SSLv2 and SSLv3 are broken and refused. Fulcrum also takes tls1.2 and tls1.3.
 */
export function penProtocolMinimum(name: string): { min: TlsVersion; note?: string } | { error: string } {
  switch (name) {
    case 'ssl23':
      return { min: DEFAULT_MIN_TLS_VERSION };
    case 'tls1':
      return { min: DEFAULT_MIN_TLS_VERSION, note: '-L tls1: Fulcrum negotiates TLS 1.2 or 1.3 (TLS 1.0 and 1.1 are deprecated by RFC 8996; a config file can still set min_version)' };
    case 'tls1.2':
      return { min: 'TLSv1.2' };
    case 'tls1.3':
      return { min: 'TLSv1.3' };
    case 'ssl2':
    case 'ssl3':
      return { error: `-L ${name}: ${name === 'ssl2' ? 'SSLv2' : 'SSLv3'} is insecure and refused (SSLv2 and SSLv3 are never offered); use ssl23 (the default) or tls1.2 / tls1.3` };
    default:
      return { error: `-L ${name}: protocol version not known (pen's names: ssl23, tls1; Fulcrum also takes tls1.2, tls1.3)` };
  }
}

export const SSL_OPTIONS = ['no_sslv2', 'no_sslv3', 'no_tlsv1', 'no_tlsv1.1', 'no_tlsv1.2', 'no_tlsv1.3', 'cipher_server_preference'] as const;
export type SslOption = (typeof SSL_OPTIONS)[number];

/**
 * pen's `ssl_option` applied to a version range. Disabling the lowest (or highest) enabled
 * version moves the range's end; disabling one in the middle would leave a hole, which BoringSSL
 * cannot express, so it is refused with an explanation. SSLv2/SSLv3 are never enabled.
 */
export function applySslOption(range: VersionRange, option: string): { range: VersionRange; serverPreference?: true } | { error: string } {
  const r = { ...range };
  const disable = (v: TlsVersion): { range: VersionRange } | { error: string } => {
    const rank = versionRank(v);
    const lo = versionRank(r.min);
    const hi = versionRank(r.max);
    if (rank < lo || rank > hi) return { range: r }; // already off
    if (lo === hi) return { error: `ssl_option no_${v.toLowerCase()}: ${v} is the only version enabled; disabling it would leave none` };
    if (rank === lo) return { range: { ...r, min: TLS_VERSIONS[rank + 1]! } };
    if (rank === hi) return { range: { ...r, max: TLS_VERSIONS[rank - 1]! } };
    return { error: `ssl_option no_${v.toLowerCase()}: ${r.min} is still enabled and TLS versions form a range; disable the lower versions first` };
  };
  switch (option) {
    case 'no_sslv2':
    case 'no_sslv3':
      return { range: r }; // never offered
    case 'no_tlsv1':
      return disable('TLSv1');
    case 'no_tlsv1.1':
      return disable('TLSv1.1');
    case 'no_tlsv1.2':
      return disable('TLSv1.2');
    case 'no_tlsv1.3':
      return disable('TLSv1.3');
    case 'cipher_server_preference':
      return { range: r, serverPreference: true };
    default:
      return { error: `ssl_option: unknown option "${option}" (${SSL_OPTIONS.join(', ')})` };
  }
}
