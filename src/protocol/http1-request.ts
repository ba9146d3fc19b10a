/**
 * The request side of HTTP mode's backend connections (docs/http.md): the request target taken
 * from what the runtime's server reports, how a streamed request body is framed toward the
 * server, and that framing's chunks (RFC 9112 §7.1). Pure: strings and bytes in, bytes out.
 */

/**
 * The origin-form target (path and query) of a request whose URL the runtime reports either
 * absolute (`http://host/p?q`, when the request had a Host) or as the bare target (`/p?q`, an
 * HTTP/1.0 request without Host).
 */
export function requestTarget(url: string): string {
  if (url.startsWith('/')) return url;
  // Most targets are plain: the URL parser would give back the same characters, so they are
  // sliced out (a URL object per request costs more than the rest of the head). Dot segments,
  // escapes and anything the parser would rewrite go through it, so routing sees what is sent.
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  if (slash > 0 && plainTarget(url, slash)) return url.slice(slash);
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

/** True when url[from..] has only characters the URL parser keeps as they are, and no dot segment. */
function plainTarget(url: string, from: number): boolean {
  let prev = 0;
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (!PLAIN[c]) return false;
    // '/.': a dot segment ('/./', '/../'), or a name starting with a dot: the parser decides.
    if (c === 0x2e && prev === 0x2f) return false;
    prev = c;
  }
  // An empty query ('/p?') is dropped by the parser.
  return prev !== 0x3f;
}

/** Letters, digits and - _ ~ . / ? = & , ; : @ + * ! $ ( ). */
const PLAIN: boolean[] = (() => {
  const t = new Array<boolean>(128).fill(false);
  for (const ch of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~./?=&,;:@+*!$()') t[ch.charCodeAt(0)] = true;
  return t;
})();

/** How a request body goes to the server: its declared length, chunked, or none at all. */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

/**
 * The framing toward the server, from the client's request: a body the client gave a
 * Content-Length keeps it (the runtime already refused a malformed or conflicting one); a body of
 * unknown length (chunked) is sent chunked. Methods that carry a body get `Content-Length: 0`
 * without one (some servers want a length on POST).
 */
export function bodyFraming(method: string, hasBody: boolean, contentLength: string | null): BodyFraming {
  if (contentLength !== null && /^[0-9]{1,15}$/.test(contentLength)) return { kind: 'length', length: Number(contentLength) };
  if (hasBody) return { kind: 'chunked' };
  return method === 'POST' || method === 'PUT' || method === 'PATCH' ? { kind: 'length', length: 0 } : { kind: 'none' };
}

/** The header line a framing adds (null for none). */
export function framingHeader(f: BodyFraming): string | null {
  if (f.kind === 'length') return `content-length: ${f.length}`;
  return f.kind === 'chunked' ? 'transfer-encoding: chunked' : null;
}

/** One chunk of a chunked body: size in hex, CRLF, the bytes, CRLF (one buffer, one write). */
export function chunkFrame(data: Uint8Array): Uint8Array {
  const size = `${data.length.toString(16)}\r\n`;
  const out = new Uint8Array(size.length + data.length + 2);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** The last chunk and the end of a chunked body (no trailers). */
export const LAST_CHUNK: Uint8Array = new Uint8Array([48, 13, 10, 13, 10]);

/**
 * A WebSocket close code one side may send on (RFC 6455 §7.4): the codes reserved for reports
 * (1005 no code, 1006 abnormal, 1015 TLS) and undefined ones become null (close without a code).
 */
export function relayableCloseCode(code: number): number | null {
  if (code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006)) return code;
  return code >= 3000 && code <= 4999 ? code : null;
}
