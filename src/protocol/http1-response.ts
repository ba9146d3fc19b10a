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

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** True if a field value holds a NUL, a bare CR or LF, or another control character but tab. */
function badValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: (.*))?$/;

export class ResponseParser {
  readonly #sink: ResponseSink;
  #state = State.Done;
  #head = '';
  #remaining = 0;
  #line = '';
  #keepAlive = true;
  #noBody = false;
  #upgrade = false;

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  /** Expect the response to a request with this method (HEAD responses have no body); `upgrade`: it asked for one (a 101 may answer). */
  expect(method: string, upgrade = false): void {
    this.#state = State.Head;
    this.#head = '';
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
          this.#sink.responseBody(bytes.subarray(at, at + n));
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
    return this.#state === State.Head && this.#head === '' ? 'the server closed the connection before answering' : 'the server closed the connection in the middle of its response';
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
    const before = this.#head.length;
    this.#head += latin1(bytes, at, bytes.length);
    const end = this.#head.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (end < 0) return this.#head.length > MAX_RESPONSE_HEAD ? `a response head over ${MAX_RESPONSE_HEAD} bytes` : bytes.length;
    const consumed = at + (end + 4 - before);
    const text = this.#head.slice(0, end);
    this.#head = '';
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (m === null) return `bad status line '${lines[0]!.slice(0, 40)}'`;
    const http11 = m[1] === '1';
    const status = Number(m[2]);
    const headers: [string, string][] = [];
    let length = -1;
    let chunked = false;
    let codings: string[] = [];
    let connection = '';
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.startsWith(' ') || l.startsWith('\t')) return 'obs-fold in a response header';
      const colon = l.indexOf(':');
      const name = colon < 0 ? '' : l.slice(0, colon);
      if (!TOKEN.test(name)) return `bad header line '${l.slice(0, 40)}'`;
      const value = l.slice(colon + 1).trim();
      if (badValue(value)) return `a control character (NUL, bare CR or LF) in the header '${name.slice(0, 40)}'`;
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value) || (length >= 0 && length !== Number(value))) return `bad Content-Length '${value.slice(0, 20)}'`;
        length = Number(value);
      } else if (lower === 'transfer-encoding') {
        // Several Transfer-Encoding fields form one list: chunked exactly once, and last.
        codings = codings.concat(value.toLowerCase().split(',').map((s) => s.trim()));
        chunked = codings[codings.length - 1] === 'chunked' && codings.indexOf('chunked') === codings.length - 1;
        if (!chunked) return `unsupported Transfer-Encoding '${codings.join(', ').slice(0, 30)}': chunked must come once, last`;
      } else if (lower === 'connection') {
        connection += ',' + value.toLowerCase();
      }
      headers.push([name, value]);
    }
    if (status === 101 && this.#upgrade) {
      // The protocol switched: every byte after the head is the tunnel's, to the connection's end.
      this.#keepAlive = false;
      this.#state = State.Close;
      this.#sink.responseHead({ status, reason: m[3] ?? '', headers, framing: 'tunnel', length: 0 });
      return consumed;
    }
    if (status < 200) {
      if (status === 101) return '101 Switching Protocols to a request that asked for no upgrade';
      // An interim answer (100 Continue, 103 Early Hints): the final one follows.
      return consumed;
    }
    if (chunked && length >= 0) return 'both Content-Length and Transfer-Encoding: chunked';
    const tokens = connection.split(',').map((s) => s.trim());
    this.#keepAlive = http11 ? !tokens.includes('close') : tokens.includes('keep-alive');
    const bodiless = this.#noBody || status === 204 || status === 304;
    const framing: ResponseHead['framing'] = bodiless ? 'none' : chunked ? 'chunked' : length >= 0 ? (length === 0 ? 'none' : 'length') : 'close';
    this.#sink.responseHead({ status, reason: m[3] ?? '', headers, framing, length: framing === 'length' ? length : 0 });
    if (framing === 'none') this.#finish();
    else if (framing === 'length') {
      this.#remaining = length;
      this.#state = State.Length;
    } else if (framing === 'chunked') this.#state = State.ChunkSize;
    else {
      this.#keepAlive = false;
      this.#state = State.Close;
    }
    return consumed;
  }

  #finish(): void {
    this.#state = State.Done;
    this.#sink.responseEnd(this.#keepAlive);
  }
}

function latin1(bytes: Uint8Array, from: number, to: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString('latin1');
}
