/**
 * The start of an HTTP/1.x request, read just far enough for pen's `-H`: where its header block
 * ends (so that X-Forwarded-For and X-Forwarded-Proto lines can go in just before the empty line,
 * where pen puts them), whether the client sent them already, and how long the body is (so that
 * the next request of a keep-alive connection can be found without looking at the body).
 *
 * Pure and incremental: the scanner is fed the same growing buffer again and again (bytes are
 * only ever appended) and resumes where it stopped, so every byte is looked at once whatever the
 * way the client split its request. It never throws and never reads past what it was given.
 */

/** A request head longer than this is not waited for: its bytes pass untouched (pen reads 32 KiB at a time). */
export const HTTP_HEAD_MAX = 32 * 1024;

/** The body after a head: a length in bytes, or UNFRAMED (chunked, an upgrade, CONNECT: stop following). */
export const UNFRAMED = -1;

export interface RequestHead {
  /** Offset just past the head's empty line. */
  readonly end: number;
  /** Offset of the empty line: new header lines go here, after the client's own. */
  readonly insertAt: number;
  /** The empty line was CRLF (else a bare LF: new lines use the same ending). */
  readonly crlf: boolean;
  readonly hasForwardedFor: boolean;
  readonly hasForwardedProto: boolean;
  /** Body bytes that follow the head, or UNFRAMED. */
  readonly body: number;
}

export type HeadScan =
  | { readonly kind: 'need-more' }
  /** Not an HTTP/1.x request, or a head longer than HTTP_HEAD_MAX: pass everything through. */
  | { readonly kind: 'not-http' }
  | { readonly kind: 'head'; readonly head: RequestHead };

const NEED_MORE: HeadScan = { kind: 'need-more' };
const NOT_HTTP: HeadScan = { kind: 'not-http' };

const CR = 13;
const LF = 10;
const SP = 32;
const COLON = 58;
const VERSION = 'HTTP/';

// Where the scan stands (one byte of look-behind is never needed: each state knows what it expects).
const METHOD = 0;
const TARGET = 1;
const PROTOCOL = 2; // "HTTP/" then digit "." digit
const REQUEST_LF = 3; // after the request line's CR
const LINE_START = 4;
const HEADER = 5;
const HEADER_LF = 6;
const END_LF = 7; // after the empty line's CR

/** RFC 9110 tchar: the bytes a method (and a field name) may be made of; 1 = allowed. */
const TCHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  // Letters and digits by code (no regular expression at import: docs/performance.md).
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (alnum || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c))) TCHAR[c] = 1;
}

function isTchar(b: number): boolean {
  return TCHAR[b] === 1;
}

/** Case-insensitive comparison of buf[start, end) with a lower-case ASCII name. */
function nameIs(buf: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Scans one request head; `reset(offset)` starts on the next request of the same connection. */
export class RequestHeadScanner {
  #start = 0;
  #pos = 0;
  #state = METHOD;
  /** In PROTOCOL: how many bytes of "HTTP/d.d" matched. */
  #matched = 0;
  #methodEnd = 0;
  #lineStart = 0;
  #colon = -1;
  #forwardedFor = false;
  #forwardedProto = false;
  /** -2 = no Content-Length seen yet. */
  #length = -2;
  #unframed = false;

  /** Starts over on a request that begins at `offset` of the buffer fed next. */
  reset(offset: number): void {
    this.#start = offset;
    this.#pos = offset;
    this.#state = METHOD;
    this.#matched = 0;
    this.#colon = -1;
    this.#forwardedFor = false;
    this.#forwardedProto = false;
    this.#length = -2;
    this.#unframed = false;
  }

  /** The bytes of the connection so far (the same buffer, grown, on each call). */
  scan(buf: Uint8Array): HeadScan {
    const limit = Math.min(buf.length, this.#start + HTTP_HEAD_MAX);
    let i = this.#pos;
    for (; i < limit; i++) {
      const b = buf[i]!;
      switch (this.#state) {
        case METHOD:
          if (b === SP && i > this.#start) {
            this.#methodEnd = i;
            this.#state = TARGET;
          } else if (!isTchar(b)) return NOT_HTTP;
          break;
        case TARGET:
          if (b === SP && i > this.#methodEnd + 1) this.#state = PROTOCOL;
          else if (b <= SP || b === 0x7f) return NOT_HTTP; // a control byte, or HTTP/0.9 (no version)
          break;
        case PROTOCOL: {
          const m = this.#matched;
          const ok = m < 5 ? b === VERSION.charCodeAt(m) : m === 6 ? b === 0x2e : b >= 0x30 && b <= 0x39;
          if (m === 8 && (b === CR || b === LF)) {
            this.#state = b === CR ? REQUEST_LF : LINE_START;
            this.#lineStart = i + 1;
          } else if (!ok || m === 8) return NOT_HTTP;
          this.#matched = m + 1;
          break;
        }
        case REQUEST_LF:
          if (b !== LF) return NOT_HTTP;
          this.#state = LINE_START;
          this.#lineStart = i + 1;
          break;
        case LINE_START:
          if (b === CR) this.#state = END_LF;
          else if (b === LF) return this.#done(buf, i, false);
          else if (!isTchar(b)) return NOT_HTTP; // obs-fold or junk: not a head we would touch
          else {
            this.#lineStart = i;
            this.#colon = -1;
            this.#state = HEADER;
          }
          break;
        case HEADER:
          if (b === COLON && this.#colon < 0) this.#colon = i;
          else if (b === CR) this.#state = HEADER_LF;
          else if (b === LF) this.#endLine(buf, i);
          else if (this.#colon < 0 && !isTchar(b)) return NOT_HTTP;
          break;
        case HEADER_LF:
          if (b !== LF) return NOT_HTTP;
          this.#endLine(buf, i - 1);
          break;
        case END_LF:
          if (b !== LF) return NOT_HTTP;
          return this.#done(buf, i - 1, true);
      }
    }
    this.#pos = i;
    return limit < this.#start + HTTP_HEAD_MAX ? NEED_MORE : NOT_HTTP;
  }

  /** A header line [lineStart, end) is complete: note the fields -H and the framing care about. */
  #endLine(buf: Uint8Array, end: number): void {
    this.#state = LINE_START;
    const start = this.#lineStart;
    const colon = this.#colon;
    if (colon < 0) {
      this.#unframed = true; // a line without a colon: do not guess where this request ends
      return;
    }
    if (nameIs(buf, start, colon, 'x-forwarded-for')) this.#forwardedFor = true;
    else if (nameIs(buf, start, colon, 'x-forwarded-proto')) this.#forwardedProto = true;
    else if (nameIs(buf, start, colon, 'transfer-encoding') || nameIs(buf, start, colon, 'upgrade')) this.#unframed = true;
    else if (nameIs(buf, start, colon, 'content-length')) {
      let n = 0;
      let digits = 0;
      for (let j = colon + 1; j < end; j++) {
        const c = buf[j]!;
        if (c >= 0x30 && c <= 0x39) {
          if (++digits > 15) break;
          n = n * 10 + (c - 0x30);
        } else if (c !== SP && c !== 9) digits = 16; // not a number: unframed below
      }
      if (digits === 0 || digits > 15 || (this.#length !== -2 && this.#length !== n)) this.#unframed = true;
      else this.#length = n;
    }
  }

  #done(buf: Uint8Array, emptyLine: number, crlf: boolean): HeadScan {
    const connect = nameIs(buf, this.#start, this.#methodEnd, 'connect');
    const head: RequestHead = {
      end: emptyLine + (crlf ? 2 : 1),
      insertAt: emptyLine,
      crlf,
      hasForwardedFor: this.#forwardedFor,
      hasForwardedProto: this.#forwardedProto,
      body: this.#unframed || connect ? UNFRAMED : Math.max(0, this.#length),
    };
    return { kind: 'head', head };
  }
}

/** The lines -H adds to a head that lacks them, in pen's order (Proto, then For). */
export function forwardedLines(head: RequestHead, clientAddress: string, proto: 'http' | 'https'): string {
  const eol = head.crlf ? '\r\n' : '\n';
  let lines = '';
  if (!head.hasForwardedProto) lines += `X-Forwarded-Proto: ${proto}${eol}`;
  if (!head.hasForwardedFor) lines += `X-Forwarded-For: ${clientAddress}${eol}`;
  return lines;
}
