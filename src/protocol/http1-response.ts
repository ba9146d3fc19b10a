/**
 * An HTTP/1.1 response parser for the backend side of HTTP mode (docs/http.md): status line,
 * headers, and the body framed by Content-Length, chunked transfer coding, or the end of the
 * connection (RFC 9112 §6.3). Bytes in, events out through a sink object (no closure per chunk);
 * body bytes are handed over as views of the input, already de-chunked.
 *
 * Interim 1xx answers (100 Continue) are skipped; a 101 to a request that asked for an upgrade
 * is reported with framing 'tunnel' (every later byte is the tunnel's), to any other an error.
 * Anything ambiguous (two different Content-Lengths, a
 * Content-Length beside chunked, a bad chunk size, obs-fold) is an error: the caller answers
 * 502 and closes the connection rather than guess where the next response begins.
 */
import { asBuffer, CLASS, CRLFCRLF, FieldProblem, FieldReader, lowerIs, VALUE } from './http1-lex.ts';

/** What the parser reports. `end(keepAlive)`: the response is complete; may the connection be reused? */
export interface ResponseSink {
  responseHead(head: ResponseHead): void;
  responseBody(chunk: Uint8Array): void;
  responseEnd(keepAlive: boolean): void;
}

export interface ResponseHead {
  status: number;
  reason: string;
  /** Header fields in order, names as received (the caller decides what to pass on). */
  headers: [string, string][];
  /** The field lines as received, each with its CRLF (passed on as they are when none needs rewriting). */
  fields: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** The head's bytes as received, the empty line included: a view valid only during responseHead. */
  raw: Uint8Array;
  /** How the body is delimited: none, a length, chunked, or the connection's end; 'tunnel': a 101 to an upgrade, after which every byte is the tunnel's. */
  framing: 'none' | 'length' | 'chunked' | 'close' | 'tunnel';
  /** The body's length when framing is 'length'. */
  length: number;
}

/** The longest response head accepted (status line and headers). */
export const MAX_RESPONSE_HEAD = 64 * 1024;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Done,
}

export class ResponseParser {
  readonly #sink: ResponseSink;
  #state = State.Done;
  /** A head that came in pieces, kept until its end arrives (null: none kept). */
  #held: Buffer | null = null;
  #remaining = 0;
  #line = '';
  #keepAlive = true;
  #noBody = false;
  #upgrade = false;
  readonly #fields = new FieldReader();

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  /** Expect the response to a request with this method (HEAD responses have no body); `upgrade`: it asked for one (a 101 may answer). */
  expect(method: string, upgrade = false): void {
    this.#state = State.Head;
    this.#held = null;
    this.#line = '';
    this.#noBody = method === 'HEAD';
    this.#upgrade = upgrade;
  }

  /** True while a response is expected or being read. */
  get busy(): boolean {
    return this.#state !== State.Done;
  }

  /** True once the head was reported (so a failure now is after the response began). */
  get started(): boolean {
    return this.#state !== State.Head && this.#state !== State.Done;
  }

  /** Feeds bytes; returns an error text when the response is malformed, else null. */
  feed(bytes: Uint8Array): string | null {
    let at = 0;
    while (at < bytes.length) {
      switch (this.#state) {
        case State.Done:
          return 'bytes from the server when no response was expected';
        case State.Head: {
          const r = this.#readHead(bytes, at);
          if (typeof r === 'string') return r;
          at = r;
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, bytes.length - at);
          this.#sink.responseBody(at === 0 && n === bytes.length ? bytes : bytes.subarray(at, at + n));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case State.Close:
          this.#sink.responseBody(at === 0 ? bytes : bytes.subarray(at));
          return null;
        case State.ChunkData: {
          const n = Math.min(this.#remaining, bytes.length - at);
          this.#sink.responseBody(bytes.subarray(at, at + n));
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          break;
        }
        default: {
          // Line-oriented states: chunk sizes, the CRLF after chunk data, trailers.
          const nl = bytes.indexOf(10, at);
          const end = nl < 0 ? bytes.length : nl;
          this.#line += latin1(bytes, at, end);
          if (this.#line.length > 4096) return 'a chunk line or trailer over 4096 bytes';
          at = end;
          if (nl < 0) break;
          at++;
          const line = this.#line.endsWith('\r') ? this.#line.slice(0, -1) : this.#line;
          this.#line = '';
          const e = this.#onLine(line);
          if (e !== null) return e;
        }
      }
    }
    return null;
  }

  /** The server closed its side; returns an error if the response was cut short. */
  eof(): string | null {
    if (this.#state === State.Close) {
      this.#keepAlive = false;
      this.#finish();
      return null;
    }
    if (this.#state === State.Done) return null;
    return this.#state === State.Head && this.#held === null ? 'the server closed the connection before answering' : 'the server closed the connection in the middle of its response';
  }

  #onLine(line: string): string | null {
    if (this.#state === State.ChunkDataEnd) {
      if (line !== '') return 'chunk data longer than its size';
      this.#state = State.ChunkSize;
      return null;
    }
    if (this.#state === State.Trailers) {
      if (line === '') this.#finish();
      return null;
    }
    // ChunkSize: hex digits, optional extensions after ';'.
    const semi = line.indexOf(';');
    const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return `bad chunk size '${hex.slice(0, 20)}'`;
    const size = parseInt(hex, 16);
    if (size === 0) this.#state = State.Trailers;
    else {
      this.#remaining = size;
      this.#state = State.ChunkData;
    }
    return null;
  }

  #readHead(bytes: Uint8Array, at: number): number | string {
    const held = this.#held;
    if (held === null) {
      // The usual case: the whole head in one read, searched and decoded where it lies.
      const b = asBuffer(bytes);
      const e = b.indexOf(CRLFCRLF, at);
      if (e >= 0 && e + 4 - at <= MAX_RESPONSE_HEAD) {
        const r = this.#parseHead(b.toString('latin1', at, e + 2), b.subarray(at, e + 4));
        return typeof r === 'string' ? r : e + 4;
      }
      if (e >= 0 || bytes.length - at > MAX_RESPONSE_HEAD) return `a response head over ${MAX_RESPONSE_HEAD} bytes`;
      this.#held = Buffer.from(bytes.subarray(at));
      return bytes.length;
    }
    const joined = Buffer.concat([held, bytes.subarray(at)]);
    const e = joined.indexOf(CRLFCRLF, Math.max(0, held.length - 3));
    if (e < 0) {
      if (joined.length > MAX_RESPONSE_HEAD) return `a response head over ${MAX_RESPONSE_HEAD} bytes`;
      this.#held = joined;
      return bytes.length;
    }
    if (e + 4 > MAX_RESPONSE_HEAD) return `a response head over ${MAX_RESPONSE_HEAD} bytes`;
    this.#held = null;
    const r = this.#parseHead(joined.toString('latin1', 0, e + 2), joined.subarray(0, e + 4));
    return typeof r === 'string' ? r : at + e + 4 - held.length;
  }

  /** Parses a head (`s`: its lines, each with its CRLF) and reports it; an error text, or null. */
  #parseHead(s: string, raw: Uint8Array): string | null {
    // Status line: HTTP/1.x SP 3DIGIT [SP reason].
    const le = s.indexOf('\r\n');
    const minor = s.charCodeAt(7) - 48;
    const d0 = s.charCodeAt(9) - 48;
    const d1 = s.charCodeAt(10) - 48;
    const d2 = s.charCodeAt(11) - 48;
    if (!s.startsWith('HTTP/1.') || (minor !== 0 && minor !== 1) || s.charCodeAt(8) !== 32 || !(d0 >= 1 && d0 <= 9) || !(d1 >= 0 && d1 <= 9) || !(d2 >= 0 && d2 <= 9) || (le !== 12 && s.charCodeAt(12) !== 32)) {
      return `bad status line '${s.slice(0, Math.min(le, 40))}'`;
    }
    const status = d0 * 100 + d1 * 10 + d2;
    const reason = le > 13 ? s.slice(13, le) : '';
    for (let k = 13; k < le; k++) if (!(CLASS[s.charCodeAt(k)]! & VALUE)) return 'a control character in the status line';
    const headers: [string, string][] = [];
    const fields = s.slice(le + 2);
    let length = -1;
    let chunked = false;
    let codings = '';
    let connection = '';
    for (let i = le + 2; i < s.length; ) {
      const nl = s.indexOf('\r\n', i);
      const f = this.#fields;
      const problem = f.read(s, i, nl);
      if (problem === FieldProblem.ObsFold) return 'obs-fold in a response header';
      if (problem === FieldProblem.BadLine) return `bad header line '${s.slice(i, Math.min(nl, i + 40))}'`;
      if (problem === FieldProblem.BadValue) return `a control character (NUL, bare CR or LF) in the header '${f.name.slice(0, 40)}'`;
      const name = f.name;
      const value = f.value;
      i = nl + 2;
      headers.push([name, value]);
      // The fields that matter here, told apart by length before any case-insensitive compare.
      if (name.length === 14 && lowerIs(name, 'content-length')) {
        let k = 0;
        while (k < value.length && value.charCodeAt(k) >= 48 && value.charCodeAt(k) <= 57) k++;
        if (k === 0 || k !== value.length || k > 15 || (length >= 0 && length !== Number(value))) return `bad Content-Length '${value.slice(0, 20)}'`;
        length = Number(value);
      } else if (name.length === 17 && lowerIs(name, 'transfer-encoding')) {
        // Several Transfer-Encoding fields form one list: chunked exactly once, and last.
        codings = codings === '' ? value.toLowerCase() : `${codings},${value.toLowerCase()}`;
        const list = codings.split(',').map((t) => t.trim());
        chunked = list[list.length - 1] === 'chunked' && list.indexOf('chunked') === list.length - 1;
        if (!chunked) return `unsupported Transfer-Encoding '${list.join(', ').slice(0, 30)}': chunked must come once, last`;
      } else if (name.length === 10 && lowerIs(name, 'connection')) {
        connection += `,${value.toLowerCase()}`;
      }
    }
    if (status === 101 && this.#upgrade) {
      // The protocol switched: every byte after the head is the tunnel's, to the connection's end.
      this.#keepAlive = false;
      this.#state = State.Close;
      this.#sink.responseHead({ status, reason, minor, headers, fields, raw, framing: 'tunnel', length: 0 });
      return null;
    }
    if (status < 200) {
      if (status === 101) return '101 Switching Protocols to a request that asked for no upgrade';
      // An interim answer (100 Continue, 103 Early Hints): the final one follows.
      return null;
    }
    if (chunked && length >= 0) return 'both Content-Length and Transfer-Encoding: chunked';
    const http11 = minor === 1;
    this.#keepAlive = connection === '' ? http11 : keepAliveOf(connection, http11);
    const bodiless = this.#noBody || status === 204 || status === 304;
    const framing: ResponseHead['framing'] = bodiless ? 'none' : chunked ? 'chunked' : length >= 0 ? (length === 0 ? 'none' : 'length') : 'close';
    this.#sink.responseHead({ status, reason, minor, headers, fields, raw, framing, length: framing === 'length' ? length : 0 });
    if (framing === 'none') this.#finish();
    else if (framing === 'length') {
      this.#remaining = length;
      this.#state = State.Length;
    } else if (framing === 'chunked') this.#state = State.ChunkSize;
    else {
      this.#keepAlive = false;
      this.#state = State.Close;
    }
    return null;
  }

  #finish(): void {
    this.#state = State.Done;
    this.#sink.responseEnd(this.#keepAlive);
  }
}

/** Whether the Connection tokens (',' then each field, lower-case) keep the connection, for HTTP/1.1 or 1.0. */
function keepAliveOf(connection: string, http11: boolean): boolean {
  const tokens = connection.split(',').map((t) => t.trim());
  return http11 ? !tokens.includes('close') : tokens.includes('keep-alive');
}

function latin1(bytes: Uint8Array, from: number, to: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString('latin1');
}
