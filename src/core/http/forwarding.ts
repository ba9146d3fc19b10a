/**
 * The request and response headers HTTP mode rewrites (docs/http.md): hop-by-hop fields dropped
 * both ways (RFC 9110 §7.6.1: the fixed list and whatever Connection names), and
 * X-Forwarded-For / X-Forwarded-Proto / Forwarded set on every request. An incoming
 * X-Forwarded-For is appended to only when the peer is a trusted proxy; from anyone else it is
 * replaced, since a client could otherwise claim any address. Pure: header lists in, out.
 */
import type { TrustedSources } from '../trusted-sources.ts';

/** Header fields as [name, value] pairs (names as received). */
export type HeaderList = [string, string][];

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** The tokens of the Connection fields of `headers` (lower-case), added to `into` if given. */
export function connectionTokens(headers: Iterable<[string, string]>, into?: Set<string>): Set<string> {
  const out = into ?? new Set<string>();
  for (const [n, v] of headers) {
    if (n.toLowerCase() !== 'connection') continue;
    for (const t of v.split(',')) {
      const s = t.trim().toLowerCase();
      if (s !== '') out.add(s);
    }
  }
  return out;
}

export interface ForwardFacts {
  /** The peer's address (IPv4 or IPv6 text, maybe v4-mapped). */
  clientAddress: string;
  /** 'http' or 'https': what the client spoke to us. */
  proto: string;
  /** The Host the client asked for, or null. */
  host: string | null;
}

/** Normalises a v4-mapped IPv6 peer address to its IPv4 form. */
export function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * The request headers to send to a server: hop-by-hop fields out, `drop` out (e.g. the cookie
 * field when stickiness removes its own cookie and rebuilds it), forwarding fields in.
 */
export function forwardedRequestHeaders(incoming: Iterable<[string, string]>, facts: ForwardFacts, trusted: TrustedSources | null): HeaderList {
  const client = plainAddress(facts.clientAddress);
  const keepChain = trusted !== null && trusted.trusts(client);
  const out: HeaderList = [];
  // One pass (this runs for every request): Connection's tokens are applied after it, in the
  // rare request that has them.
  let tokens: Set<string> | null = null;
  let xff: string | null = null;
  let forwarded: string | null = null;
  for (const [n, v] of incoming) {
    const lower = n.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') tokens = connectionTokens([[lower, v]], tokens ?? undefined);
      continue;
    }
    if (lower === 'x-forwarded-for') {
      if (keepChain) xff = xff === null ? v : `${xff}, ${v}`;
      continue;
    }
    if (lower === 'forwarded') {
      if (keepChain) forwarded = forwarded === null ? v : `${forwarded}, ${v}`;
      continue;
    }
    if (lower === 'x-forwarded-proto') continue;
    // The name as the client wrote it: some servers care about case.
    out.push([n, v]);
  }
  if (tokens !== null) {
    const named = tokens;
    if (named.has('x-forwarded-for')) xff = null;
    if (named.has('forwarded')) forwarded = null;
    let k = 0;
    for (const h of out) if (!named.has(h[0].toLowerCase())) out[k++] = h;
    out.length = k;
  }
  out.push(['x-forwarded-for', xff === null ? client : `${xff}, ${client}`]);
  out.push(['x-forwarded-proto', facts.proto]);
  const node = client.includes(':') ? `"[${client}]"` : client;
  const own = `for=${node};proto=${facts.proto}${facts.host !== null ? `;host="${facts.host.replace(/["\\]/g, '')}"` : ''}`;
  out.push(['forwarded', forwarded === null ? own : `${forwarded}, ${own}`]);
  return out;
}

/** The response headers to give the client: hop-by-hop fields out, the rest as the server sent them. */
export function forwardedResponseHeaders(incoming: readonly [string, string][]): HeaderList {
  const out: HeaderList = [];
  let tokens: Set<string> | null = null;
  for (const h of incoming) {
    const lower = h[0].toLowerCase();
    if (lower === 'content-length') continue;
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') tokens = connectionTokens([h], tokens ?? undefined);
      continue;
    }
    out.push(h);
  }
  // Fields the Connection header named, in the rare response that names any.
  if (tokens === null) return out;
  const named = tokens;
  return out.filter(([n]) => !named.has(n.toLowerCase()));
}
