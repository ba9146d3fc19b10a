/**
 * A minimal DNS codec (RFC 1035) for the UDP DNS health check (docs/udp.md): builds one query
 * and checks that a response answers it (same id, QR set, opcode QUERY, the question echoed)
 * and reads its RCODE and answer count. Pure: bytes in, a result out; malformed input gives
 * `invalid`, never a throw, since the bytes come from a server that may be anything.
 */

export const DNS_TYPES = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  ANY: 255,
} as const;
export type DnsTypeName = keyof typeof DNS_TYPES;

export const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'] as const;

export interface DnsQuestion {
  /** 0..65535; random per check, so that a stale answer is not taken for the current one. */
  id: number;
  /** A domain name, with or without the trailing dot ('.' alone is the root). */
  name: string;
  /** A type name or number. */
  type: DnsTypeName | number;
  /** Recursion desired (RD); true by default. */
  recursionDesired?: boolean;
}

export type DnsQueryResult = { kind: 'query'; bytes: Uint8Array } | { kind: 'invalid'; reason: string };

export type DnsResponse =
  | {
      kind: 'answer';
      rcode: number;
      /** 'NOERROR', 'NXDOMAIN', ... or 'RCODE<n>' */
      rcodeName: string;
      answers: number;
      authoritative: boolean;
      truncated: boolean;
    }
  /** Well formed, but not the answer to this question (another id, name, type or a query). */
  | { kind: 'mismatch'; reason: string }
  | { kind: 'invalid'; reason: string };

const HEADER = 12;
const CLASS_IN = 1;

function typeNumber(type: DnsTypeName | number): number | undefined {
  if (typeof type === 'number') return Number.isInteger(type) && type >= 0 && type <= 0xffff ? type : undefined;
  return DNS_TYPES[type];
}

/** The name as wire labels, or a reason it cannot be one. */
function encodeName(name: string): Uint8Array | string {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = trimmed === '' ? [] : trimmed.split('.');
  const out: number[] = [];
  for (const label of labels) {
    if (label.length === 0) return `empty label in ${JSON.stringify(name)}`;
    if (label.length > 63) return `label longer than 63 bytes in ${JSON.stringify(name)}`;
    out.push(label.length);
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (c > 0x7e || c < 0x21) return `${JSON.stringify(name)} is not a printable ASCII name`;
      out.push(c);
    }
  }
  out.push(0);
  if (out.length > 255) return `${JSON.stringify(name)} is longer than 255 bytes`;
  return Uint8Array.from(out);
}

export function buildDnsQuery(q: DnsQuestion): DnsQueryResult {
  if (!Number.isInteger(q.id) || q.id < 0 || q.id > 0xffff) return { kind: 'invalid', reason: `id ${q.id} is not 0..65535` };
  const type = typeNumber(q.type);
  if (type === undefined) return { kind: 'invalid', reason: `unknown type ${String(q.type)}` };
  const name = encodeName(q.name);
  if (typeof name === 'string') return { kind: 'invalid', reason: name };
  const bytes = new Uint8Array(HEADER + name.length + 4);
  const v = new DataView(bytes.buffer);
  v.setUint16(0, q.id);
  v.setUint16(2, q.recursionDesired === false ? 0 : 0x0100); // QR 0, opcode QUERY, RD
  v.setUint16(4, 1); // QDCOUNT
  bytes.set(name, HEADER);
  v.setUint16(HEADER + name.length, type);
  v.setUint16(HEADER + name.length + 2, CLASS_IN);
  return { kind: 'query', bytes };
}

/**
 * Reads a (possibly compressed) name at `offset`: its lower-cased dotted form and where the
 * record continues, or a reason it is malformed. Pointers are followed at most 32 times.
 */
function readName(b: Uint8Array, offset: number): { name: string; end: number } | string {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  for (let jumps = 0; ; ) {
    if (pos >= b.length) return 'name runs past the end';
    const len = b[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= b.length) return 'name pointer runs past the end';
      if (++jumps > 32) return 'name pointers loop';
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | b[pos + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0) return 'name label has reserved bits set';
    if (pos + 1 + len > b.length) return 'name label runs past the end';
    let label = '';
    for (let i = pos + 1; i <= pos + len; i++) label += String.fromCharCode(b[i]!);
    labels.push(label.toLowerCase());
    pos += 1 + len;
  }
  return { name: labels.join('.'), end };
}

function canonical(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}

/** Checks that `b` answers `q` and reads its RCODE and answer count. */
export function parseDnsResponse(b: Uint8Array, q: DnsQuestion): DnsResponse {
  if (b.length < HEADER) return { kind: 'invalid', reason: `${b.length} bytes is shorter than a DNS header` };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const id = v.getUint16(0);
  const flags = v.getUint16(2);
  const qdcount = v.getUint16(4);
  const ancount = v.getUint16(6);
  if ((flags & 0x8000) === 0) return { kind: 'mismatch', reason: 'QR is 0: a query, not a response' };
  if (id !== q.id) return { kind: 'mismatch', reason: `id ${id}, expected ${q.id}` };
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { kind: 'mismatch', reason: `opcode ${opcode}, expected 0 (QUERY)` };
  const rcode = flags & 0xf;
  const answer = {
    kind: 'answer' as const,
    rcode,
    rcodeName: RCODE_NAMES[rcode] ?? `RCODE${rcode}`,
    answers: ancount,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
  };
  // Some servers leave the question out of an error response (FORMERR, NOTIMP).
  if (qdcount === 0 && rcode !== 0) return answer;
  if (qdcount !== 1) return { kind: 'mismatch', reason: `${qdcount} questions, expected 1` };
  const name = readName(b, HEADER);
  if (typeof name === 'string') return { kind: 'invalid', reason: name };
  if (name.end + 4 > b.length) return { kind: 'invalid', reason: 'question runs past the end' };
  const type = v.getUint16(name.end);
  const klass = v.getUint16(name.end + 2);
  if (name.name !== canonical(q.name)) return { kind: 'mismatch', reason: `question for ${JSON.stringify(name.name)}, expected ${JSON.stringify(canonical(q.name))}` };
  if (type !== typeNumber(q.type)) return { kind: 'mismatch', reason: `question type ${type}, expected ${typeNumber(q.type)}` };
  if (klass !== CLASS_IN) return { kind: 'mismatch', reason: `question class ${klass}, expected 1 (IN)` };
  return answer;
}
