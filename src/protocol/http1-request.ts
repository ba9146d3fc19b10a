/**
 * The request side of HTTP mode's backend connections (docs/http.md): the request target as
 * routed and sent, how a streamed request body is framed toward the
 * server, and that framing's chunks (RFC 9112 §7.1). Pure: strings and bytes in, bytes out.
 */

/**
 * The origin-form target (path and query) to route and send for a request target as received:
 * origin-form (`/p?q`) or absolute-form (`http://host/p?q`).
 */
export function requestTarget(url: string): string {
  // Most targets are plain: the URL parser would give back the same characters, so they are
  // kept or sliced out (a URL object per request costs more than the rest of the head). Dot
  // segments, escapes and anything the parser would rewrite go through it, so routing sees what
  // is sent.
  if (url.startsWith('/')) {
    if (plainTarget(url, 0)) return url;
    return viaUrl(`http://h${url}`) ?? url;
  }
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  if (slash > 0 && plainTarget(url, slash)) return url.slice(slash);
  return viaUrl(url) ?? '/';
}

function viaUrl(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.pathname}${u.search}`;
  } catch {
    return null;
  }
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
