/**
 * The PROXY protocol (HAProxy's doc/proxy-protocol.txt), versions 1 (text) and 2 (binary): how a
 * balancer tells the next hop who the client really is. Pure: bytes in, a result out; the
 * decoder never throws and never reads past what it was given.
 */

export interface ProxiedAddresses {
  /** 'tcp4' | 'tcp6' for a proxied TCP connection; 'unknown'/'local' when the sender had none. */
  readonly family: 'tcp4' | 'tcp6' | 'unknown' | 'local';
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

export type ProxyDecodeResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'parsed'; readonly header: ProxiedAddresses; readonly length: number; readonly version: 1 | 2 }
  | { readonly kind: 'invalid'; readonly reason: string };

/** v1 headers are at most 107 bytes; v2 headers here at most 16 + 216 (addresses + some TLVs). */
export const PROXY_V1_MAX = 107;
export const PROXY_V2_MAX = 16 + 536;

const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
const V1_PREFIX = 'PROXY ';

const NEED_MORE: ProxyDecodeResult = { kind: 'need-more' };
const invalid = (reason: string): ProxyDecodeResult => ({ kind: 'invalid', reason });

function startsWithBytes(buf: Uint8Array, prefix: Uint8Array): 'yes' | 'no' | 'maybe' {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return 'no';
  return buf.length >= prefix.length ? 'yes' : 'maybe';
}

function isIpv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && (p === '0' || !p.startsWith('0')));
}

/** A strict IPv6 literal: eight groups, or fewer around one `::`, with an optional IPv4 tail. */
function isIpv6(text: string): boolean {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text)) return false;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (half: string): string[] | null => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (head === null || tail === null) return false;
  const all = [...head, ...tail];
  let width = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (/^[0-9a-fA-F]{1,4}$/.test(g)) width += 1;
    else if (i === all.length - 1 && isIpv4(g) && (halves.length === 1 || tail.length > 0)) width += 2;
    else return false;
  }
  return halves.length === 2 ? width <= 7 : width === 8;
}

function port(text: string): number {
  return /^\d{1,5}$/.test(text) && (text === '0' || !text.startsWith('0')) && Number(text) <= 65535 ? Number(text) : -1;
}

function decodeV1(buf: Uint8Array): ProxyDecodeResult {
  const limit = Math.min(buf.length, PROXY_V1_MAX);
  let end = -1;
  for (let i = 0; i < limit - 1; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end === -1) return buf.length >= PROXY_V1_MAX ? invalid('PROXY v1 header without CRLF in 107 bytes') : NEED_MORE;
  let line = '';
  for (let i = 0; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x20 || c > 0x7e) return invalid('PROXY v1 header has a non-printable byte');
    line += String.fromCharCode(c);
  }
  const f = line.split(' ');
  if (f[1] === 'UNKNOWN') {
    return { kind: 'parsed', version: 1, length: end + 2, header: { family: 'unknown', sourceAddress: '', sourcePort: 0, destinationAddress: '', destinationPort: 0 } };
  }
  if (f.length !== 6) return invalid('PROXY v1 header needs: PROXY TCP4|TCP6 src dst sport dport');
  const [, proto, src, dst, sp, dp] = f as [string, string, string, string, string, string];
  const check = proto === 'TCP4' ? isIpv4 : proto === 'TCP6' ? isIpv6 : null;
  if (check === null) return invalid(`PROXY v1 protocol "${proto}" is not TCP4, TCP6 or UNKNOWN`);
  if (!check(src) || !check(dst)) return invalid(`PROXY v1 addresses are not ${proto} addresses`);
  const sport = port(sp);
  const dport = port(dp);
  if (sport < 0 || dport < 0) return invalid('PROXY v1 ports must be 0-65535');
  return { kind: 'parsed', version: 1, length: end + 2, header: { family: proto === 'TCP4' ? 'tcp4' : 'tcp6', sourceAddress: src, sourcePort: sport, destinationAddress: dst, destinationPort: dport } };
}

function ipv6Text(b: Uint8Array, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[at + i]! << 8) | b[at + i + 1]!).toString(16));
  // Compress the longest run of zero groups, as inet_ntop does.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function decodeV2(buf: Uint8Array): ProxyDecodeResult {
  if (buf.length < 16) return NEED_MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return invalid('PROXY v2 version is not 2');
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return invalid('PROXY v2 command is neither LOCAL nor PROXY');
  const famProto = buf[13]!;
  const len = (buf[14]! << 8) | buf[15]!;
  if (16 + len > PROXY_V2_MAX) return invalid(`PROXY v2 header of ${16 + len} bytes is larger than ${PROXY_V2_MAX}`);
  if (buf.length < 16 + len) return NEED_MORE;
  const total = 16 + len;
  const none = { sourceAddress: '', sourcePort: 0, destinationAddress: '', destinationPort: 0 };
  if (cmd === 0) return { kind: 'parsed', version: 2, length: total, header: { family: 'local', ...none } };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  // The spec defines families 0-3 and transports 0-2; a receiver must drop anything else.
  if (family > 3 || transport > 2) return invalid(`PROXY v2 address family/transport 0x${famProto.toString(16)} is not defined`);
  if (family === 3 && len < 216) return invalid('PROXY v2 Unix address block is shorter than 216 bytes');
  if (family === 0 || transport !== 1) return { kind: 'parsed', version: 2, length: total, header: { family: 'unknown', ...none } };
  if (family === 1) {
    if (len < 12) return invalid('PROXY v2 IPv4 block is shorter than 12 bytes');
    const a = (o: number): string => `${buf[16 + o]}.${buf[17 + o]}.${buf[18 + o]}.${buf[19 + o]}`;
    return {
      kind: 'parsed',
      version: 2,
      length: total,
      header: { family: 'tcp4', sourceAddress: a(0), destinationAddress: a(4), sourcePort: (buf[24]! << 8) | buf[25]!, destinationPort: (buf[26]! << 8) | buf[27]! },
    };
  }
  if (family === 2) {
    if (len < 36) return invalid('PROXY v2 IPv6 block is shorter than 36 bytes');
    return {
      kind: 'parsed',
      version: 2,
      length: total,
      header: { family: 'tcp6', sourceAddress: ipv6Text(buf, 16), destinationAddress: ipv6Text(buf, 32), sourcePort: (buf[48]! << 8) | buf[49]!, destinationPort: (buf[50]! << 8) | buf[51]! },
    };
  }
  return { kind: 'parsed', version: 2, length: total, header: { family: 'unknown', ...none } };
}

/** Decodes a v1 or v2 header at the start of `buf`. */
export function decodeProxyHeader(buf: Uint8Array): ProxyDecodeResult {
  if (buf.length === 0) return NEED_MORE;
  const v2 = startsWithBytes(buf, V2_SIGNATURE);
  if (v2 === 'yes') return decodeV2(buf);
  const v1 = startsWithBytes(buf, new TextEncoder().encode(V1_PREFIX));
  if (v1 === 'yes') return decodeV1(buf);
  if (v1 === 'maybe' || v2 === 'maybe') return NEED_MORE;
  return invalid('no PROXY protocol header (expected "PROXY " or the v2 signature)');
}

/** A v1 header line for a proxied TCP connection. */
export function encodeProxyV1(a: ProxiedAddresses): Uint8Array {
  if (a.family !== 'tcp4' && a.family !== 'tcp6') return new TextEncoder().encode('PROXY UNKNOWN\r\n');
  return new TextEncoder().encode(`PROXY ${a.family.toUpperCase()} ${a.sourceAddress} ${a.destinationAddress} ${a.sourcePort} ${a.destinationPort}\r\n`);
}

function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined): number[] => {
    if (s === undefined || s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        for (const o of g.split('.')) out.push(Number(o));
      } else {
        const v = parseInt(g, 16);
        out.push(v >> 8, v & 255);
      }
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  return [...h, ...new Array<number>(16 - h.length - t.length).fill(0), ...t];
}

/** A v2 header for a proxied TCP connection (LOCAL when the addresses are unknown). */
export function encodeProxyV2(a: ProxiedAddresses): Uint8Array {
  if (a.family === 'tcp4') {
    const out = new Uint8Array(28);
    out.set(V2_SIGNATURE, 0);
    out.set([0x21, 0x11, 0, 12], 12);
    out.set(a.sourceAddress.split('.').map(Number), 16);
    out.set(a.destinationAddress.split('.').map(Number), 20);
    out.set([a.sourcePort >> 8, a.sourcePort & 255, a.destinationPort >> 8, a.destinationPort & 255], 24);
    return out;
  }
  if (a.family === 'tcp6') {
    const out = new Uint8Array(52);
    out.set(V2_SIGNATURE, 0);
    out.set([0x21, 0x21, 0, 36], 12);
    out.set(ipv6Bytes(a.sourceAddress), 16);
    out.set(ipv6Bytes(a.destinationAddress), 32);
    out.set([a.sourcePort >> 8, a.sourcePort & 255, a.destinationPort >> 8, a.destinationPort & 255], 48);
    return out;
  }
  const out = new Uint8Array(16);
  out.set(V2_SIGNATURE, 0);
  out.set([0x20, 0x00, 0, 0], 12);
  return out;
}
