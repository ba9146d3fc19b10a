/**
 * The characters of HTTP/1.1 heads (RFC 9110 §5.6, RFC 9112), shared by the request and response
 * parsers: one table lookup per character instead of a regular expression per field.
 */

// Character classes by latin1 code (a decoded head has no code over 0xFF).
export const TCHAR = 1; // token (RFC 9110 §5.6.2): VCHAR but the delimiters
export const VALUE = 2; // field value: HTAB, SP, VCHAR, obs-text
export const TARGET = 4; // request target: VCHAR
export const CLASS = new Uint8Array(256);
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 256; c++) {
  const vchar = c >= 0x21 && c <= 0x7e;
  CLASS[c] = (vchar && !'"(),/:;<=>?@[\\]{}'.includes(String.fromCharCode(c)) ? TCHAR : 0) | (vchar || c === 9 || c === 32 || c >= 0x80 ? VALUE : 0) | (vchar ? TARGET : 0);
  const h = '0123456789abcdef'.indexOf(String.fromCharCode(c).toLowerCase());
  if (h >= 0 && c < 0x80) HEX[c] = h;
}

export const CRLFCRLF = Buffer.from('\r\n\r\n');

/** What is wrong with a field line, if anything (FieldReader.read). */
export const enum FieldProblem {
  None,
  /** It starts with a space or a tab: obs-fold, a continuation of the line before. */
  ObsFold,
  /** No token before a colon (no colon, whitespace before it, a character a name cannot have). */
  BadLine,
  /** A control character (NUL, a bare CR, DEL ...) in the value, at `bad`. */
  BadValue,
}

/**
 * One field line (RFC 9112 §5: `name ":" OWS value OWS`) read and checked, for both parsers: the
 * name a token, the value without surrounding spaces and tabs and without control characters.
 * What it read stays in `name` and `value` (one reader per parser: no tuple per field).
 */
export class FieldReader {
  name = '';
  value = '';
  /** Where the control character is, after FieldProblem.BadValue. */
  bad = 0;

  /** Reads s[from, to), a field line without its CRLF. */
  read(s: string, from: number, to: number): FieldProblem {
    let i = from;
    while (i < to && CLASS[s.charCodeAt(i)]! & TCHAR) i++;
    if (i === from || i === to || s.charCodeAt(i) !== 58) {
      const c = s.charCodeAt(from);
      return c === 32 || c === 9 ? FieldProblem.ObsFold : FieldProblem.BadLine;
    }
    this.name = s.slice(from, i);
    let a = i + 1;
    let z = to;
    while (a < z && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
    while (z > a && (s.charCodeAt(z - 1) === 32 || s.charCodeAt(z - 1) === 9)) z--;
    for (let k = a; k < z; k++) {
      if (!(CLASS[s.charCodeAt(k)]! & VALUE)) {
        this.bad = k;
        return FieldProblem.BadValue;
      }
    }
    this.value = s.slice(a, z);
    return FieldProblem.None;
  }
}

/**
 * s equals `lower` (lower case letters, digits and '-') ignoring case. Exact for tokens and
 * checked values: in them only letters become letters with the 0x20 bit set.
 */
export function lowerIs(s: string, lower: string): boolean {
  if (s.length !== lower.length) return false;
  for (let i = 0; i < s.length; i++) if ((s.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** The bytes as a Buffer (the same memory), for its indexOf and latin1 decoding. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** True if bytes[from, to) holds an LF not preceded by a CR. */
export function bareLF(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = bytes.indexOf(10, from); i >= 0 && i < to; i = bytes.indexOf(10, i + 1)) if (i === 0 || bytes[i - 1] !== 13) return true;
  return false;
}

const utf8 = new TextEncoder();

/**
 * `text` (a head: latin1 characters) as bytes, with `extra` bytes of room after it. Heads are
 * nearly always ASCII, which the runtime's UTF-8 encoder writes fastest; one that is not (obs-text
 * in a field) is written as latin1, byte for byte, as it came.
 */
export function headBytes(text: string, extra = 0): Uint8Array {
  if (extra === 0) {
    const b = utf8.encode(text);
    if (b.length === text.length) return b;
  } else {
    const out = Buffer.allocUnsafe(text.length + extra);
    const r = utf8.encodeInto(text, out);
    if (r.read === text.length && r.written === text.length) return out;
  }
  const out = Buffer.allocUnsafe(text.length + extra);
  out.write(text, 0, 'latin1');
  return out;
}
