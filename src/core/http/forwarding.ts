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

/** Request fields the proxy frames or answers itself (never copied to the server). */
const OWN_REQUEST_FIELDS = new Set(['content-length', 'expect', 'x-forwarded-proto']);

/** Marks the lengths of `names`: a field name of another length is none of them (no lower-casing). */
function lengthsOf(names: Iterable<string>): Uint8Array {
  const t = new Uint8Array(64);
  for (const n of names) t[n.length] = 1;
  return t;
}
const REQUEST_SPECIAL = new Set([...HOP_BY_HOP, 'x-forwarded-for', 'forwarded', ...OWN_REQUEST_FIELDS]);
const REQUEST_CHECKED = lengthsOf([...REQUEST_SPECIAL, 'cookie']);
/** Response fields that are not passed on as they are (Content-Length is, when the framing keeps it). */
const RESPONSE_SPECIAL = HOP_BY_HOP;
const RESPONSE_CHECKED = lengthsOf([...HOP_BY_HOP, 'content-length', 'cache-control']);

/** True if a field of `incoming` is in `special`, or is the optional one (`cookie` / `cache-control`) when `optional`. */
function anyChecked(incoming: readonly [string, string][], checked: Uint8Array, special: ReadonlySet<string>, optional: boolean): boolean {
  for (let i = 0; i < incoming.length; i++) {
    const n = incoming[i]![0];
    if (n.length >= 64 || checked[n.length] !== 1) continue;
    const lower = n.toLowerCase();
    if (special.has(lower) || (optional && (lower === 'cookie' || lower === 'cache-control'))) return true;
  }
  return false;
}

/** A Host as a quoted-string's content: quotes and backslashes left out (a host has none). */
function hostInQuotes(host: string): string {
  return host.includes('"') || host.includes('\\') ? host.replace(/["\\]/g, '') : host;
}

/**
 * The request's header lines to send to a server (`name: value\r\n` each, names as received):
 * hop-by-hop fields out, the framing and Expect out (the exchange frames the body, 100-continue
 * is answered here), the Cookie fields out when `dropCookie` (stickiness rebuilds it), and the
 * forwarding fields in, last. One pass over the fields and one string: this runs for every
 * request.
 */
export function forwardedRequestLines(incoming: readonly [string, string][], facts: ForwardFacts, trusted: TrustedSources | null, dropCookie = false, raw: string | null = null, tail: string | null = null): string {
  // The usual request has no field to drop or rewrite: its lines as received, then ours.
  if (raw !== null && !anyChecked(incoming, REQUEST_CHECKED, REQUEST_SPECIAL, dropCookie)) return raw + (tail ?? forwardingTail(facts));
  const client = plainAddress(facts.clientAddress);
  const keepChain = trusted !== null && trusted.trusts(client);
  let out = '';
  let tokens: Set<string> | null = null;
  let xff: string | null = null;
  let forwarded: string | null = null;
  for (let i = 0; i < incoming.length; i++) {
    const h = incoming[i]!;
    const n = h[0];
    // Most fields are none of these: their names' lengths tell at once.
    const lower = n.length < 64 && REQUEST_CHECKED[n.length] === 1 ? n.toLowerCase() : '';
    if (lower !== '') {
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') tokens = connectionTokens([[lower, h[1]]], tokens ?? undefined);
        continue;
      }
      if (lower === 'x-forwarded-for') {
        if (keepChain) xff = xff === null ? h[1] : `${xff}, ${h[1]}`;
        continue;
      }
      if (lower === 'forwarded') {
        if (keepChain) forwarded = forwarded === null ? h[1] : `${forwarded}, ${h[1]}`;
        continue;
      }
      if (OWN_REQUEST_FIELDS.has(lower) || (dropCookie && lower === 'cookie')) continue;
    }
    out += `${n}: ${h[1]}\r\n`;
  }
  if (tokens !== null) {
    // Fields the Connection header named, in the rare request that names any: the lines again, without them.
    const named = tokens;
    if (named.has('x-forwarded-for')) xff = null;
    if (named.has('forwarded')) forwarded = null;
    out = withoutNamed(out, named);
  }
  return out + forwardingFields(client, facts, xff, forwarded);
}

/** True when a request's fields are all passed on as they are (no hop-by-hop, framing, Expect or forwarding field among them). */
export function requestFieldsPlain(incoming: readonly [string, string][]): boolean {
  return !anyChecked(incoming, REQUEST_CHECKED, REQUEST_SPECIAL, false);
}

/**
 * The forwarding fields of a request that came with none (or from a peer not trusted to send
 * them): the same for every request of a connection with the same Host, so a connection keeps it.
 */
export function forwardingTail(facts: ForwardFacts): string {
  return forwardingFields(plainAddress(facts.clientAddress), facts, null, null);
}

/** X-Forwarded-For and Forwarded with this hop appended to the chains kept (null: none kept), and X-Forwarded-Proto. */
function forwardingFields(client: string, facts: ForwardFacts, xff: string | null, forwarded: string | null): string {
  const node = client.includes(':') ? `"[${client}]"` : client;
  const own = `for=${node};proto=${facts.proto}${facts.host !== null ? `;host="${hostInQuotes(facts.host)}"` : ''}`;
  return `x-forwarded-for: ${xff === null ? client : `${xff}, ${client}`}\r\nx-forwarded-proto: ${facts.proto}\r\nforwarded: ${forwarded === null ? own : `${forwarded}, ${own}`}\r\n`;
}

/**
 * The response's header lines to give the client (`name: value\r\n` each, as the server sent
 * them): hop-by-hop fields and the framing out (the exchange frames the body for the client),
 * Cache-Control out when `dropCacheControl` (a response that sets a sticky cookie says private).
 */
export function forwardedResponseLines(incoming: readonly [string, string][], dropCacheControl = false, raw: string | null = null): string {
  // The usual response has no field to drop: its lines as received (the caller sees it is `raw`,
  // with the server's own Content-Length, if any).
  if (raw !== null && !anyChecked(incoming, RESPONSE_CHECKED, RESPONSE_SPECIAL, dropCacheControl)) return raw;
  let out = '';
  let tokens: Set<string> | null = null;
  for (let i = 0; i < incoming.length; i++) {
    const h = incoming[i]!;
    const n = h[0];
    const lower = n.length < 64 && RESPONSE_CHECKED[n.length] === 1 ? n.toLowerCase() : '';
    if (lower !== '') {
      if (lower === 'content-length' || (dropCacheControl && lower === 'cache-control')) continue;
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') tokens = connectionTokens([h], tokens ?? undefined);
        continue;
      }
    }
    out += `${n}: ${h[1]}\r\n`;
  }
  if (tokens === null) return out;
  return withoutNamed(out, tokens);
}

/** Header lines without the fields `named` (lower-case names): what a Connection field made hop-by-hop. */
function withoutNamed(lines: string, named: ReadonlySet<string>): string {
  return lines
    .split('\r\n')
    .filter((l) => l !== '' && !named.has(l.slice(0, l.indexOf(':')).toLowerCase()))
    .map((l) => `${l}\r\n`)
    .join('');
}
