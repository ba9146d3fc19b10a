/**
 * A client key (the normalised client address) as four 32-bit words, the form the shared client
 * table stores: IPv4 as ::ffff:a.b.c.d, IPv6 as its 16 bytes, anything else (Unix-socket clients)
 * as one reserved value; and the hash the table probes from.
 */
import { ipaddrLib } from '../ip.ts';

const UNIX_WORD = -1;

/** The 16-byte form of a client key as four words; IPv4 becomes ::ffff:a.b.c.d. */
export function encodeClientKey(key: string, out: Int32Array | number[]): void {
  const v4 = parseIpv4(key);
  if (v4 !== null) {
    out[0] = 0;
    out[1] = 0;
    out[2] = 0xffff;
    out[3] = v4;
    return;
  }
  if (key.includes(':') && ipaddrLib().IPv6.isValid(key)) {
    const b = ipaddrLib().IPv6.parse(key).toByteArray();
    for (let i = 0; i < 4; i++) out[i] = (b[4 * i]! << 24) | (b[4 * i + 1]! << 16) | (b[4 * i + 2]! << 8) | b[4 * i + 3]!;
    return;
  }
  // Unix-socket clients (and anything unparsable) are one client, as in the single-process table.
  out[0] = out[1] = out[2] = out[3] = UNIX_WORD;
}

export function decodeClientKey(k0: number, k1: number, k2: number, k3: number): string {
  if (k0 === UNIX_WORD && k1 === UNIX_WORD && k2 === UNIX_WORD && k3 === UNIX_WORD) return 'unix';
  if (k0 === 0 && k1 === 0 && k2 === 0xffff) return `${(k3 >>> 24) & 255}.${(k3 >>> 16) & 255}.${(k3 >>> 8) & 255}.${k3 & 255}`;
  const bytes: number[] = [];
  for (const w of [k0, k1, k2, k3]) bytes.push((w >>> 24) & 255, (w >>> 16) & 255, (w >>> 8) & 255, w & 255);
  return ipaddrLib().fromByteArray(bytes).toString();
}

function parseIpv4(s: string): number | null {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      value = (value << 8) | part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return (value << 8) | part;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function hashClientWords(k0: number, k1: number, k2: number, k3: number): number {
  return fmix(k3 ^ fmix(k2 ^ fmix(k1 ^ fmix(k0 ^ 0x9e3779b9))));
}
