/**
 * A strict, incremental HTTP/1.1 request parser for the client side of HTTP mode (docs/http.md),
 * in place of the runtime's server parser. Bytes in, events out through a sink object (no closure
 * per chunk); body bytes are handed over as views of the input, already de-chunked.
 *
 * Strict, because a proxy that reads a request differently from the server behind it can be made
 * to smuggle a second request inside the first (RFC 9112 §11.2): a bare CR or LF, obs-fold,
 * whitespace before a colon, Content-Lengths that differ, a Transfer-Encoding other than one
 * `chunked` or beside a Content-Length, a bad chunk size: each is an error carrying the status to
 * answer, and the caller closes rather than guess where the next request begins.
 * Fast, because it runs for every request: the end of a head is found with one search over the
 * bytes, the head is decoded once, and its lines are checked with table lookups, not regexes.
 * Whatever way the bytes are split between feeds, the outcome is the same.
 */
import { asBuffer, bareLF, CLASS, CRLFCRLF, FieldProblem, FieldReader, HEX, lowerIs, TARGET, TCHAR, VALUE } from './http1-lex.ts';

export interface RequestHead {
  method: string;
  /** The request target exactly as received. */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Header fields in order: names as received (case kept), values with surrounding spaces/tabs trimmed. */
  headers: [string, string][];
  /** The field lines as received, each with its CRLF (forwarded as they are when none needs rewriting). */
  fields: string;
  /** The head's bytes as received, the empty line included: a view valid only during requestHead. */
  raw: Uint8Array;
  /** The Host field's value, or null when there is none (HTTP/1.0 only). */
  host: string | null;
  /** How the body is framed (RFC 9112 §6.3). A Content-Length of 0 is 'none'. */
  framing: 'none' | 'length' | 'chunked';
  /** The body's length when framing is 'length', else 0. */
  length: number;
  /** The client wants the connection kept after this request: HTTP/1.1 unless Connection has `close`; HTTP/1.0 only if Connection has `keep-alive`. */
  keepAlive: boolean;
  /** `Expect: 100-continue` (case-insensitive) was sent (ignored in HTTP/1.0, RFC 9110 §10.1.1). */
  expectContinue: boolean;
  /** The Upgrade field's value when a Connection field names `upgrade`, else null (and in HTTP/1.0, RFC 9110 §7.8). */
  upgrade: string | null;
}

export interface RequestSink {
  requestHead(head: RequestHead): void;
  /** Body bytes, de-chunked; a view of the input valid only during the call. */
  requestBody(chunk: Uint8Array): void;
  /** The request is complete (for a bodiless request, right after requestHead). */
  requestEnd(): void;
}

export interface RequestError {
  /** The status to answer with: 400, 413, 431, 501 or 505. */
  status: number;
  /** What was wrong, in words, for the log (short, no raw bytes beyond ~40 chars, quoted). */
  reason: string;
}

export interface RequestLimits {
  /** The longest head (request line + fields + the empty line), in bytes: over it → 431. */
  maxHeadBytes: number;
  /** The largest body: a Content-Length over it → 413 at the head; a chunked body whose data goes over it → 413 when it does. */
  maxBodyBytes: number;
  /** Most header fields in one head (default 100): over it → 431. */
  maxFields?: number;
}

export const DEFAULT_MAX_FIELDS = 100;
/** Empty lines skipped before a request line (RFC 9112 §2.2 asks for at least one). */
const MAX_EMPTY_LINES = 8;
/** The longest chunk-size line (the size, whitespace and extensions). */
const MAX_CHUNK_LINE = 4096;
const BARE_LF = 'a bare LF in the head';
const CUT_SHORT = 'the client closed the connection in the middle of a request';

const enum State { Idle, Head, Length, ChunkSize, ChunkBws, ChunkExt, ChunkSizeLF, ChunkData, ChunkDataCR, ChunkDataLF, Trailers, Complete, Failed }

export class RequestParser {
  /** Limits may be changed between requests (a reload). */
  limits: RequestLimits;
  readonly #sink: RequestSink;
  #state = State.Idle;
  #error: RequestError | null = null;
  /** Counts requestEnd calls, so feed stops after one even if the sink called next() inside it. */
  #ends = 0;
  /** Empty lines skipped before this request, and whether one's CR is waiting for its LF. */
  #empty = 0;
  #cr = false;
  /** The head received so far when it comes in pieces (a copy: the caller may reuse its buffer). */
  #buf: Buffer | null = null;
  #len = 0;
  /** Body bytes left (of the Content-Length, or of the current chunk); the size's hex digits so far. */
  #remaining = 0;
  #digits = 0;
  /** Chunk data so far, the chunk-size line's length, the trailer line so far and the trailers' bytes. */
  #total = 0;
  #lineLen = 0;
  #line = '';
  #trailerBytes = 0;
  /** The field #field() read last (two members rather than a tuple per field). */
  readonly #fields = new FieldReader();

  constructor(sink: RequestSink, limits: RequestLimits) {
    this.#sink = sink;
    this.limits = limits;
  }

  get error(): RequestError | null {
    return this.#error;
  }
  get idle(): boolean {
    return this.#state === State.Idle;
  }
  get inBody(): boolean {
    return this.#state >= State.Length && this.#state <= State.Trailers;
  }
  get complete(): boolean {
    return this.#state === State.Complete;
  }

  next(): void {
    if (this.#state !== State.Complete) return;
    this.#state = State.Idle;
    this.#empty = 0;
  }

  eof(): string | null {
    if (this.#state === State.Idle || this.#state === State.Complete) return null;
    return this.#state === State.Failed ? 'the client closed the connection after a malformed request' : CUT_SHORT;
  }

  feed(bytes: Uint8Array, at = 0): number {
    const end = bytes.length;
    const ends = this.#ends;
    for (;;) {
      if (this.#ends !== ends) return at;
      switch (this.#state) {
        case State.Failed:
          return -1;
        case State.Complete:
          return at;
        case State.Idle:
          for (; at < end; at++) {
            const c = bytes[at]!;
            if (this.#cr) {
              if (c !== 10) return this.#fail(400, 'a bare CR before the request line');
              this.#cr = false;
              if (++this.#empty > MAX_EMPTY_LINES) return this.#fail(400, `more than ${MAX_EMPTY_LINES} empty lines before the request line`);
            } else if (c === 13) this.#cr = true;
            else if (c === 10) return this.#fail(400, 'a bare LF before the request line');
            else break;
          }
          if (at === end) return at;
          this.#state = State.Head;
          this.#len = 0;
          break;
        case State.Head:
          at = this.#readHead(bytes, at);
          if (at < 0 || this.#state === State.Head) return at;
          break;
        case State.Length:
        case State.ChunkData: {
          if (at === end) return at;
          const n = Math.min(this.#remaining, end - at);
          this.#sink.requestBody(bytes.subarray(at, (at += n)));
          if ((this.#remaining -= n) > 0) break;
          if (this.#state === State.Length) return this.#end(at);
          this.#state = State.ChunkDataCR;
          break;
        }
        case State.Trailers:
          if (at === end) return at;
          at = this.#readTrailer(bytes, at);
          if (at < 0) return at;
          break;
        default:
          if (at === end) return at;
          at = this.#chunkLine(bytes, at);
          if (at < 0) return at;
      }
    }
  }

  #fail(status: number, reason: string): -1 {
    this.#error = { status, reason };
    this.#state = State.Failed;
    return -1;
  }

  #end(at: number): number {
    this.#state = State.Complete;
    this.#ends++;
    this.#sink.requestEnd();
    return at;
  }

  /** Reads (or keeps) head bytes; returns the offset past them, or -1. */
  #readHead(bytes: Uint8Array, at: number): number {
    const max = this.limits.maxHeadBytes;
    const end = bytes.length;
    if (this.#len === 0) {
      // The usual case: the whole head in one piece, searched and decoded where it lies.
      const b = asBuffer(bytes);
      const e = b.indexOf(CRLFCRLF, at);
      if (e >= 0 && e + 4 - at <= max) return this.#parse(b, at, e + 4) < 0 ? -1 : e + 4;
      // Only the first `max` bytes matter: what follows is over the limit either way, so the
      // outcome does not depend on how much arrived at once.
      const take = Math.min(end - at, max);
      if (bareLF(bytes, at, at + take)) return this.#fail(400, BARE_LF);
      if (end - at > take || e >= 0) return this.#fail(431, `a request head over ${max} bytes`);
      this.#keep(bytes, at, take);
      return end;
    }
    const start = this.#len;
    const take = Math.max(0, Math.min(end - at, max - start));
    this.#keep(bytes, at, take);
    const buf = this.#buf!;
    const len = start + take;
    // A match reaching past `len` is in stale bytes of the buffer, and no earlier one exists.
    const e = buf.indexOf(CRLFCRLF, Math.max(0, start - 3));
    if (e >= 0 && e + 4 <= len) {
      this.#len = 0;
      return this.#parse(buf, 0, e + 4) < 0 ? -1 : at + e + 4 - start;
    }
    if (bareLF(buf, start, len)) return this.#fail(400, BARE_LF);
    if (end - at > take) return this.#fail(431, `a request head over ${max} bytes`);
    return end;
  }

  /** Appends bytes[at, at + n) to the kept head. */
  #keep(bytes: Uint8Array, at: number, n: number): void {
    const need = this.#len + n;
    if (this.#buf === null || this.#buf.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(this.limits.maxHeadBytes, Math.max(1024, (this.#buf?.length ?? 0) * 2))));
      if (this.#buf !== null) grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(bytes.subarray(at, at + n), this.#len);
    this.#len = need;
  }

  /** Parses the complete head in b[from, to) (ending with the empty line) and reports it. */
  #parse(b: Buffer, from: number, to: number): number {
    // Bare LFs first, so the reason is the same as when they are caught before the end arrives.
    if (bareLF(b, from, to)) return this.#fail(400, BARE_LF);
    const s = b.toString('latin1', from, to - 2); // every line ends with CRLF
    const le = s.indexOf('\n') - 1;
    // Request line: method SP target SP version, one space each.
    let i = 0;
    while (i < le && CLASS[s.charCodeAt(i)]! & TCHAR) i++;
    if (i === 0 || s.charCodeAt(i) !== 32) return this.#fail(400, i === le ? `no request target in ${q(s.slice(0, le))}` : `bad method in ${q(s.slice(0, le))}`);
    const method = s.slice(0, i);
    let j = ++i;
    while (j < le && CLASS[s.charCodeAt(j)]! & TARGET) j++;
    if (j === i || (j < le && s.charCodeAt(j) !== 32)) return this.#fail(400, s.charCodeAt(j) === 32 ? 'two spaces in the request line' : `bad request target in ${q(s.slice(0, le))}`);
    const target = s.slice(i, j);
    if (j === le) return this.#fail(505, 'no HTTP version (HTTP/0.9)');
    const version = s.slice(j + 1, le);
    const minor = version === 'HTTP/1.1' ? 1 : version === 'HTTP/1.0' ? 0 : -1;
    if (minor === -1) {
      for (let k = 0; k < version.length; k++) if (!(CLASS[version.charCodeAt(k)]! & TARGET)) return this.#fail(400, `malformed request line ${q(s.slice(0, le))}`);
      return this.#fail(version === '' ? 400 : 505, version === '' ? `malformed request line ${q(s.slice(0, le))}` : `unsupported HTTP version ${q(version)}`);
    }
    if (method === 'CONNECT') return this.#fail(501, 'CONNECT is not supported');
    if (target.charCodeAt(0) !== 47 && !(target === '*' ? method === 'OPTIONS' : absolute(target))) return this.#fail(400, target === '*' ? `'*' as the target of ${q(method)}, not OPTIONS` : `bad request target ${q(target)}`);

    const maxFields = this.limits.maxFields ?? DEFAULT_MAX_FIELDS;
    const headers: [string, string][] = [];
    let host: string | null = null;
    let length = -1;
    let chunked = false;
    let connection = 0;
    let upgrade: string | null = null;
    let expectContinue = false;
    for (i = le + 2; i < s.length; ) {
      const nl = s.indexOf('\n', i);
      if (headers.length === maxFields) return this.#fail(431, `more than ${maxFields} header fields`);
      const bad = this.#field(s, i, nl - 1);
      if (bad !== null) return this.#fail(400, bad);
      i = nl + 1;
      const name = this.#fields.name;
      const value = this.#fields.value;
      headers.push([name, value]);
      // The fields that matter here, told apart by length before any case-insensitive compare.
      switch (name.length) {
        case 4:
          if (!lowerIs(name, 'host')) break;
          if (host !== null) return this.#fail(400, 'two Host fields');
          for (let k = 0; k < value.length; k++) {
            const c = value.charCodeAt(k);
            if (c === 32 || c === 9 || c === 47 || c === 64 || c === 44) return this.#fail(400, `bad Host ${q(value)}`);
          }
          host = value;
          break;
        case 6:
          if (lowerIs(name, 'expect') && lowerIs(value, '100-continue')) expectContinue = minor === 1;
          break;
        case 7:
          if (lowerIs(name, 'upgrade') && value !== '') upgrade = upgrade === null ? value : `${upgrade}, ${value}`;
          break;
        case 10:
          if (lowerIs(name, 'connection')) connection |= connectionFlags(value);
          break;
        case 14: {
          if (!lowerIs(name, 'content-length')) break;
          let k = 0;
          while (k < value.length && value.charCodeAt(k) >= 48 && value.charCodeAt(k) <= 57) k++;
          if (k === 0 || k !== value.length || k > 15) return this.#fail(400, `bad Content-Length ${q(value)}`);
          const n = Number(value);
          if (length >= 0 && n !== length) return this.#fail(400, 'different Content-Lengths');
          length = n;
          break;
        }
        case 17:
          if (!lowerIs(name, 'transfer-encoding')) break;
          if (chunked) return this.#fail(400, 'two Transfer-Encoding fields');
          // Only `chunked` alone: any other coding would be one the proxy cannot frame the same way as the server.
          if (!lowerIs(value, 'chunked')) return this.#fail(400, `unsupported Transfer-Encoding ${q(value)}`);
          chunked = true;
          break;
      }
    }
    if (host === null && minor === 1) return this.#fail(400, 'no Host field in an HTTP/1.1 request');
    if (chunked && minor === 0) return this.#fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (chunked && length >= 0) return this.#fail(400, 'both Content-Length and Transfer-Encoding');
    if (length > this.limits.maxBodyBytes) return this.#fail(413, `a Content-Length of ${length}, over the ${this.limits.maxBodyBytes}-byte limit`);
    const framing = chunked ? 'chunked' : length > 0 ? 'length' : 'none';
    if (length < 0 || chunked) length = 0;
    const keepAlive = !(connection & CLOSE) && (minor === 1 || (connection & KEEP_ALIVE) !== 0);
    this.#remaining = length;
    this.#digits = this.#total = this.#lineLen = 0;
    this.#state = framing === 'length' ? State.Length : framing === 'chunked' ? State.ChunkSize : State.Complete;
    upgrade = connection & UPGRADE && minor === 1 ? upgrade : null;
    const fields = s.slice(le + 2);
    const raw = b.subarray(from, to);
    this.#sink.requestHead({ method, target, minor, headers, fields, raw, host, framing, length, keepAlive, expectContinue, upgrade });
    if (framing === 'none') this.#end(to);
    return to;
  }

  /** Checks the field line s[from, to) (no CRLF) into #fields, or returns what is wrong. */
  #field(s: string, from: number, to: number): string | null {
    const f = this.#fields;
    switch (f.read(s, from, to)) {
      case FieldProblem.None:
        return null;
      case FieldProblem.ObsFold:
        return 'obs-fold (a field line starting with whitespace)';
      case FieldProblem.BadLine:
        return `bad field line ${q(s.slice(from, to))}`;
      default:
        return `${s.charCodeAt(f.bad) === 13 ? 'a bare CR' : 'a control character'} in the value of ${q(f.name)}`;
    }
  }


  /** Chunk-size lines and the CRLF after chunk data, a byte at a time (they are a few bytes). */
  #chunkLine(bytes: Uint8Array, at: number): number {
    const end = bytes.length;
    while (at < end) {
      const c = bytes[at++]!;
      switch (this.#state) {
        case State.ChunkDataCR:
        case State.ChunkDataLF:
          if (c !== (this.#state === State.ChunkDataCR ? 13 : 10)) return this.#fail(400, 'chunk data longer than its size');
          if (this.#state === State.ChunkDataCR) this.#state = State.ChunkDataLF;
          else {
            this.#state = State.ChunkSize;
            this.#digits = this.#lineLen = 0;
          }
          break;
        case State.ChunkSize: {
          const d = HEX[c]!;
          if (d >= 0) {
            if (++this.#digits > 8) return this.#fail(400, 'chunk size too large');
            this.#remaining = this.#remaining * 16 + d;
          } else if (this.#digits === 0 || !(c === 13 || c === 59 || c === 32 || c === 9)) {
            return this.#fail(400, c === 10 ? 'a bare LF in a chunk-size line' : 'bad chunk size');
          } else this.#state = c === 13 ? State.ChunkSizeLF : c === 59 ? State.ChunkExt : State.ChunkBws;
          break;
        }
        case State.ChunkBws:
          // Whitespace only before an extension (RFC 9112 §7.1.1: chunk-ext = *( BWS ";" ... )).
          if (c === 59) this.#state = State.ChunkExt;
          else if (c !== 32 && c !== 9) return this.#fail(400, 'bad chunk size');
          else if (++this.#lineLen > MAX_CHUNK_LINE) return this.#fail(400, `a chunk-size line over ${MAX_CHUNK_LINE} bytes`);
          break;
        case State.ChunkExt:
          if (c === 13) this.#state = State.ChunkSizeLF;
          else if (!(CLASS[c]! & VALUE)) return this.#fail(400, c === 10 ? 'a bare LF in a chunk-size line' : 'a control character in a chunk extension');
          else if (++this.#lineLen > MAX_CHUNK_LINE) return this.#fail(400, `a chunk-size line over ${MAX_CHUNK_LINE} bytes`);
          break;
        default: // ChunkSizeLF
          if (c !== 10) return this.#fail(400, 'a bare CR in a chunk-size line');
          if (this.#remaining === 0) {
            this.#state = State.Trailers;
            this.#line = '';
            this.#trailerBytes = 0;
            return at;
          }
          if ((this.#total += this.#remaining) > this.limits.maxBodyBytes) return this.#fail(413, `a chunked body over the ${this.limits.maxBodyBytes}-byte limit`);
          this.#state = State.ChunkData;
          return at;
      }
    }
    return at;
  }

  /** Trailer fields: checked like header fields, counted against maxHeadBytes, not reported. */
  #readTrailer(bytes: Uint8Array, at: number): number {
    const nl = bytes.indexOf(10, at);
    const stop = nl < 0 ? bytes.length : nl + 1;
    const max = this.limits.maxHeadBytes;
    if ((this.#trailerBytes += stop - at) > max) return this.#fail(431, `trailer fields over ${max} bytes`);
    this.#line += asBuffer(bytes).toString('latin1', at, stop);
    if (nl < 0) return stop;
    const line = this.#line;
    this.#line = '';
    if (line.charCodeAt(line.length - 2) !== 13) return this.#fail(400, 'a bare LF in the trailer fields');
    if (line.length === 2) return this.#end(stop);
    const bad = this.#field(line, 0, line.length - 2);
    return bad === null ? stop : this.#fail(400, `${bad} (trailer)`);
  }
}

const CLOSE = 1;
const KEEP_ALIVE = 2;
const UPGRADE = 4;
/** The Connection options this parser acts on, from one field's comma-separated list. */
function connectionFlags(value: string): number {
  const v = value.toLowerCase();
  let flags = 0;
  for (let i = 0; i <= v.length; ) {
    let e = v.indexOf(',', i);
    if (e < 0) e = v.length;
    let z = e;
    while (i < z && (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9)) i++;
    while (z > i && (v.charCodeAt(z - 1) === 32 || v.charCodeAt(z - 1) === 9)) z--;
    const t = v.slice(i, z);
    flags |= t === 'close' ? CLOSE : t === 'keep-alive' ? KEEP_ALIVE : t === 'upgrade' ? UPGRADE : 0;
    i = e + 1;
  }
  return flags;
}

/** An absolute-form target with an http(s) scheme (any case) and a non-empty authority. */
function absolute(t: string): boolean {
  const p = t.slice(0, 8).toLowerCase();
  const n = p.startsWith('http://') ? 7 : p === 'https://' ? 8 : 0;
  return n > 0 && t.length > n && t.charCodeAt(n) !== 47;
}

/** Quoted for a log line, at most 40 characters, control characters escaped. */
function q(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}
