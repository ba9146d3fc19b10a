/**
 * Client addresses in the forms the decisions need: a normalised text key (IPv4-mapped IPv6
 * becomes plain IPv4, so a dual-stack listener tracks one client as one client) and bytes.
 *
 * ipaddr.js (a CommonJS module, about 2.4 MB resident once loaded) is loaded on first use, by
 * `ipaddrLib()`: dotted-quad IPv4, what clients and servers mostly are, is read here by hand,
 * exactly as ipaddr reads it, and only IPv6 (or an ACL, a proxy_trusted list) loads the library.
 */
import type IpAddr from 'ipaddr.js';
import { isDigits } from './digits.ts';

let ipaddrModule: typeof IpAddr | null = null;

/** ipaddr.js, loaded on the first call (synchronously). */
export function ipaddrLib(): typeof IpAddr {
  return (ipaddrModule ??= import.meta.require('ipaddr.js') as typeof IpAddr);
}

/**
 * Bytes of a dotted-quad IPv4 address in four-part decimal (no leading zeros, each part at most
 * 255), or null: exactly the strings ipaddr's IPv4.isValidFourPartDecimal accepts.
 */
export function fourPartDecimal(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const p of parts) {
    // /^(0|[1-9]\d{0,2})$/, without a regular expression (core/digits.ts).
    if (!isDigits(p) || p.length > 3 || (p.length > 1 && p[0] === '0')) return null;
    const n = Number(p);
    if (n > 255) return null;
    bytes.push(n);
  }
  return bytes;
}

export interface ClientIp {
  /** Normalised text form; the client table key. */
  readonly key: string;
  readonly family: 4 | 6 | 0;
  /** 4 or 16 bytes in network order; empty for Unix-socket clients. */
  readonly bytes: readonly number[];
}

const UNIX_CLIENT: ClientIp = { key: 'unix', family: 0, bytes: [] };

export function parseClientIp(text: string | undefined): ClientIp {
  if (text === undefined || text === '') return UNIX_CLIENT;
  const v4 = fourPartDecimal(text); // what the runtime reports for an IPv4 client
  if (v4 !== null) return { key: text, family: 4, bytes: v4 };
  const ipaddr = ipaddrLib();
  if (!ipaddr.isValid(text)) return UNIX_CLIENT;
  let addr = ipaddr.parse(text);
  if (addr.kind() === 'ipv6' && (addr as IpAddr.IPv6).isIPv4MappedAddress()) {
    addr = (addr as IpAddr.IPv6).toIPv4Address();
  }
  const family = addr.kind() === 'ipv4' ? 4 : 6;
  return { key: family === 6 ? addr.toNormalizedString() : addr.toString(), family, bytes: addr.toByteArray() };
}

/** Strips an IPv4-mapped prefix cheaply, without a full parse (the hot path only needs a key). */
export function clientKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined || remoteAddress === '') return 'unix';
  if (remoteAddress.startsWith('::ffff:') && remoteAddress.indexOf('.') !== -1) return remoteAddress.slice(7);
  return remoteAddress;
}

/**
 * pen's `-h` hash input. For IPv4 pen takes `s_addr` as a host-order integer on a
 * little-endian machine, i.e. the first octet is the least significant byte; we reproduce that
 * exactly so that `-h` sends each client where pen would. For IPv6 pen uses only the last byte,
 * which puts every client of a /120 on one server; we hash all 16 bytes (FNV-1a) instead.
 */
export function penHashValue(ip: ClientIp): number {
  const b = ip.bytes;
  if (ip.family === 4) return ((b[3]! << 24) | (b[2]! << 16) | (b[1]! << 8) | b[0]!) >>> 0;
  if (ip.family === 6) return fnv1a(b);
  return 0;
}

/**
 * penHashValue of a dotted-quad IPv4 client key, read in place: what the selector hashes per
 * connection under -h, without the arrays and the object parseClientIp makes. -1 when `key` is
 * not four-part decimal (accepted exactly as fourPartDecimal accepts it); then parse it.
 */
export function ipv4HashValue(key: string): number {
  let hash = 0;
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= key.length; i++) {
    const c = i < key.length ? key.charCodeAt(i) : 0x2e; // the end closes the last part like a dot
    if (c === 0x2e) {
      if (digits === 0 || value > 255 || part > 3) return -1;
      hash |= value << (8 * part); // the first octet is the least significant byte, as pen reads it
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return -1; // a leading zero
      if (++digits > 3) return -1;
      value = value * 10 + (c - 0x30);
    } else {
      return -1;
    }
  }
  return part === 4 ? hash >>> 0 : -1;
}

export function fnv1a(bytes: readonly number[] | Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function fnv1aString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Whether `s` is an IP address literal (dotted-quad IPv4 or IPv6), not a host name; as node:net's isIP() !== 0. */
export function isIpLiteral(s: string): boolean {
  // ipaddr's IPv6.isValid is false without a colon: host names and IPv4 never load it.
  return fourPartDecimal(s) !== null || (s.includes(':') && ipaddrLib().IPv6.isValid(s));
}
