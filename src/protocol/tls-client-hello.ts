/**
 * A TLS ClientHello reader for routing without termination: it finds the server name (SNI) and
 * the offered ALPN protocols in the first bytes a client sends, without decrypting anything.
 *
 * Pure and total: it takes the bytes received so far and answers `need-more`, `parsed` or
 * `invalid`; it never throws and never reads past the end of its input. The ClientHello may be
 * split across several TLS records (RFC 8446 §5.1 allows it) and across any number of reads;
 * callers simply call again with more bytes. Parsing stops at `maxBytes` so that a client cannot
 * make the balancer buffer an unbounded amount before it has chosen a server.
 */

/** Plaintext TLS records carry at most 2^14 bytes (RFC 8446 §5.1). */
const MAX_RECORD_PAYLOAD = 16_384;
/** The default bound on what is read before routing: a whole ClientHello fits in 16 KiB in practice. */
export const DEFAULT_MAX_HELLO_BYTES = 16_384 + 5;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_SUPPORTED_VERSIONS = 0x002b;

export interface ClientHelloInfo {
  /** The host name from the server_name extension, lower-cased without a trailing dot; null if absent. */
  readonly serverName: string | null;
  /** ALPN protocols offered, in the client's order (empty if the extension is absent). */
  readonly alpn: readonly string[];
  /** The highest version offered: supported_versions when present, else legacy_version (0x0303 = TLS 1.2). */
  readonly maxVersion: number;
  /** Bytes of input that held the ClientHello (all its records). */
  readonly length: number;
}

export type ClientHelloResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'parsed'; readonly hello: ClientHelloInfo }
  | { readonly kind: 'invalid'; readonly reason: ClientHelloProblem; readonly detail: string };

/** Why the bytes are not a ClientHello Fulcrum can route; used as a counter label. */
export type ClientHelloProblem = 'not-tls' | 'sslv2' | 'too-large' | 'malformed';

const NEED_MORE: ClientHelloResult = { kind: 'need-more' };

function invalid(reason: ClientHelloProblem, detail: string): ClientHelloResult {
  return { kind: 'invalid', reason, detail };
}

/**
 * Reads the ClientHello at the start of `data` (everything the client sent so far).
 * `maxBytes` bounds how much input may be needed; beyond it the answer is `too-large`.
 */
export function parseClientHello(data: Uint8Array, maxBytes: number = DEFAULT_MAX_HELLO_BYTES): ClientHelloResult {
  const n = data.length;
  if (n === 0) return NEED_MORE;
  const first = data[0]!;
  if (first !== RECORD_HANDSHAKE) {
    if ((first & 0x80) !== 0) {
      // An SSLv2-format hello has a 2-byte length with the high bit set, then message type 1.
      if (n < 3) return NEED_MORE;
      if (data[2] === 0x01) return invalid('sslv2', 'an SSLv2-format ClientHello (SSLv2 and SSLv3 are refused)');
    }
    return invalid('not-tls', `the first byte is 0x${hex(first)}, not a TLS handshake record (0x16)`);
  }
  // Reassemble the handshake message from consecutive handshake records.
  let offset = 0;
  let body: Uint8Array | null = null; // the handshake bytes gathered so far
  let bodyLength = 0;
  let chunks: Uint8Array[] | null = null;
  let needed = -1; // handshake message length incl. its 4-byte header, once known
  while (true) {
    if (offset + 5 > n) return offset + 5 > maxBytes ? invalid('too-large', `the ClientHello is longer than ${maxBytes} bytes`) : NEED_MORE;
    const type = data[offset]!;
    const major = data[offset + 1]!;
    const recordLength = (data[offset + 3]! << 8) | data[offset + 4]!;
    if (type !== RECORD_HANDSHAKE) return invalid(offset === 0 ? 'not-tls' : 'malformed', `record type 0x${hex(type)} inside the ClientHello`);
    if (major !== 3) return invalid('not-tls', `record version ${major}.${data[offset + 2]!} is not TLS`);
    if (recordLength === 0) return invalid('malformed', 'an empty handshake record');
    if (recordLength > MAX_RECORD_PAYLOAD) return invalid('malformed', `a record of ${recordLength} bytes (more than 2^14)`);
    const end = offset + 5 + recordLength;
    if (end > maxBytes) return invalid('too-large', `the ClientHello is longer than ${maxBytes} bytes`);
    if (end > n) return NEED_MORE;
    const fragment = data.subarray(offset + 5, end);
    if (body === null && chunks === null) {
      body = fragment;
    } else {
      chunks ??= [body!];
      chunks.push(fragment);
      body = null;
    }
    bodyLength += fragment.length;
    offset = end;
    if (needed < 0 && bodyLength >= 4) {
      const head = body ?? concat(chunks!);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('malformed', `handshake message type ${head[0]!}, not ClientHello (1)`);
      needed = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (needed - 4 < 38) return invalid('malformed', `a ClientHello of ${needed - 4} bytes is too short`);
    }
    if (needed >= 0 && bodyLength >= needed) {
      const message = body ?? concat(chunks!);
      const hello = readClientHello(message.subarray(4, needed));
      if (typeof hello === 'string') return invalid('malformed', hello);
      return { kind: 'parsed', hello: { ...hello, length: offset } };
    }
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A cursor that refuses to move past its end; every read is checked. */
class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end: number = buf.length) {}
  get left(): number {
    return this.end - this.pos;
  }
  u8(): number {
    return this.pos < this.end ? this.buf[this.pos++]! : -1;
  }
  u16(): number {
    if (this.pos + 2 > this.end) return -1;
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  /** A sub-reader over the next `len` bytes, or null if they are not all there. */
  take(len: number): Reader | null {
    if (len < 0 || this.pos + len > this.end) return null;
    const r = new Reader(this.buf, this.pos + len);
    r.pos = this.pos;
    this.pos += len;
    return r;
  }
  skip(len: number): boolean {
    if (len < 0 || this.pos + len > this.end) return false;
    this.pos += len;
    return true;
  }
}

type Hello = Omit<ClientHelloInfo, 'length'>;

/** The ClientHello body (RFC 8446 §4.1.2); returns a problem description instead of throwing. */
function readClientHello(body: Uint8Array): Hello | string {
  const r = new Reader(body);
  const legacyVersion = r.u16();
  if (legacyVersion < 0 || !r.skip(32)) return 'truncated before the random';
  if ((legacyVersion >> 8) !== 3) return `legacy_version 0x${legacyVersion.toString(16)} is not TLS`;
  const sessionIdLength = r.u8();
  if (sessionIdLength < 0 || sessionIdLength > 32 || !r.skip(sessionIdLength)) return 'bad session id';
  const suitesLength = r.u16();
  if (suitesLength < 2 || suitesLength % 2 !== 0 || !r.skip(suitesLength)) return 'bad cipher suite list';
  const compressionLength = r.u8();
  if (compressionLength < 1 || !r.skip(compressionLength)) return 'bad compression method list';
  let serverName: string | null = null;
  let alpn: string[] = [];
  let maxVersion = legacyVersion;
  if (r.left === 0) return { serverName, alpn, maxVersion }; // no extensions at all (old clients)
  const extensionsLength = r.u16();
  const exts = r.take(extensionsLength);
  if (exts === null) return 'the extension list overruns the ClientHello';
  if (r.left !== 0) return 'bytes after the extension list';
  const seen = new Set<number>();
  while (exts.left > 0) {
    const type = exts.u16();
    const length = exts.u16();
    const ext = length < 0 ? null : exts.take(length);
    if (type < 0 || ext === null) return 'a truncated extension';
    if (seen.has(type)) return `extension ${type} appears twice`;
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(ext);
      if (name !== null && typeof name === 'object') return name.problem;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const list = readAlpn(ext);
      if (typeof list === 'string') return list;
      alpn = list;
    } else if (type === EXT_SUPPORTED_VERSIONS) {
      const v = readSupportedVersions(ext);
      if (typeof v === 'string') return v;
      if (v > maxVersion) maxVersion = v;
    }
  }
  return { serverName, alpn, maxVersion };
}

/** server_name (RFC 6066 §3): the first host_name entry; null when the list has none. */
function readServerName(ext: Reader): string | null | { problem: string } {
  if (ext.left === 0) return null; // a server's empty echo; clients should not send it, but it is harmless
  const listLength = ext.u16();
  const list = ext.take(listLength);
  if (list === null || ext.left !== 0 || listLength < 3) return { problem: 'bad server_name list' };
  let name: string | null = null;
  while (list.left > 0) {
    const nameType = list.u8();
    const length = list.u16();
    const entry = length < 0 ? null : list.take(length);
    if (nameType < 0 || entry === null) return { problem: 'a truncated server_name entry' };
    if (nameType !== 0 || name !== null) continue; // only the first host_name counts
    if (length === 0 || length > 255) return { problem: `a server name of ${length} bytes` };
    let text = '';
    for (let i = entry.pos; i < entry.end; i++) {
      const c = entry.buf[i]!;
      if (c <= 0x20 || c >= 0x7f) return { problem: 'a server name with a byte that is not printable ASCII' };
      text += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
    }
    if (text.endsWith('.')) text = text.slice(0, -1);
    if (text === '') return { problem: 'an empty server name' };
    name = text;
  }
  return name;
}

/** application_layer_protocol_negotiation (RFC 7301 §3.1). */
function readAlpn(ext: Reader): string[] | string {
  const listLength = ext.u16();
  const list = ext.take(listLength);
  if (list === null || ext.left !== 0 || listLength < 2) return 'bad ALPN list';
  const out: string[] = [];
  while (list.left > 0) {
    const length = list.u8();
    const p = length < 1 ? null : list.take(length);
    if (p === null) return 'an empty or truncated ALPN protocol name';
    let text = '';
    for (let i = p.pos; i < p.end; i++) text += String.fromCharCode(p.buf[i]!);
    out.push(text);
  }
  return out;
}

/** supported_versions in a ClientHello (RFC 8446 §4.2.1): the highest non-GREASE version. */
function readSupportedVersions(ext: Reader): number | string {
  const length = ext.u8();
  const list = length < 2 || length % 2 !== 0 ? null : ext.take(length);
  if (list === null || ext.left !== 0) return 'bad supported_versions list';
  let best = 0;
  while (list.left > 0) {
    const v = list.u16();
    if ((v & 0x0f0f) === 0x0a0a) continue; // GREASE (RFC 8701)
    if (v > best) best = v;
  }
  return best;
}

/** Human name of a TLS protocol version number (for logs and counters). */
export function tlsVersionName(v: number): string {
  switch (v) {
    case 0x0300: return 'SSLv3';
    case 0x0301: return 'TLSv1';
    case 0x0302: return 'TLSv1.1';
    case 0x0303: return 'TLSv1.2';
    case 0x0304: return 'TLSv1.3';
    default: return `0x${v.toString(16).padStart(4, '0')}`;
  }
}
