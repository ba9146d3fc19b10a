/**
 * pen's access lists: ten numbered lists (0-9) of permit/deny entries. Matching follows pen's
 * acl.c exactly: the first entry that matches decides; if none matches the answer is the
 * opposite of the last entry's verdict; an empty list permits. IPv4 entries never match IPv6
 * clients and vice versa, and Unix-socket clients are always permitted (pen does the same).
 */
import { ipaddrLib } from '../ip.ts';
import type { ClientIp } from '../ip.ts';
import { FulcrumError } from '../errors.ts';

export const ACL_COUNT = 10;

export type AclEntry =
  | { readonly permit: boolean; readonly kind: 'ipv4'; readonly ip: number; readonly mask: number }
  | { readonly permit: boolean; readonly kind: 'ipv6'; readonly bytes: readonly number[]; readonly prefixLength: number };

export class AclError extends FulcrumError {
  override readonly name = 'AclError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_ACL', message, options);
  }
}

function ipv4ToInt(bytes: readonly number[]): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Parses the part of pen's `acl N permit|deny ...` after the verdict: `ADDR [MASK]` for IPv4
 * (the mask defaults to 255.255.255.255) or `ADDR/LEN` for IPv6.
 */
export function parseAclEntry(permit: boolean, args: readonly string[]): AclEntry {
  const [first, second] = args;
  if (first === undefined) throw new AclError('expected an address: "ADDR [MASK]" for IPv4 or "ADDR/LEN" for IPv6');
  if (first === 'country') throw new AclError('country ACLs need a GeoIP database, which Fulcrum does not ship; use address ranges');
  if (first.includes(':')) {
    const [addrText, lenText] = first.split('/');
    if (!ipaddrLib().IPv6.isValid(addrText ?? '')) throw new AclError(`"${addrText}" is not an IPv6 address`);
    const prefixLength = lenText === undefined ? 128 : Number(lenText);
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 128) {
      throw new AclError(`IPv6 prefix length "${lenText}" must be 0-128`);
    }
    const bytes = ipaddrLib().IPv6.parse(addrText!).toByteArray();
    return { permit, kind: 'ipv6', bytes: maskBytes(bytes, prefixLength), prefixLength };
  }
  let addrText = first;
  let mask = 0xffffffff;
  if (first.includes('/')) {
    const [a, l] = first.split('/');
    const len = Number(l);
    if (!Number.isInteger(len) || len < 0 || len > 32) throw new AclError(`IPv4 prefix length "${l}" must be 0-32`);
    addrText = a!;
    mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  } else if (second !== undefined) {
    if (!ipaddrLib().IPv4.isValidFourPartDecimal(second)) throw new AclError(`"${second}" is not an IPv4 netmask`);
    mask = ipv4ToInt(ipaddrLib().IPv4.parse(second).toByteArray());
  }
  if (!ipaddrLib().IPv4.isValidFourPartDecimal(addrText)) throw new AclError(`"${addrText}" is not an IPv4 address`);
  const ip = ipv4ToInt(ipaddrLib().IPv4.parse(addrText).toByteArray());
  return { permit, kind: 'ipv4', ip: (ip & mask) >>> 0, mask };
}

function maskBytes(bytes: readonly number[], prefixLength: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefixLength - i * 8));
    return b & ((0xff00 >> bits) & 0xff);
  });
}

function entryMatches(entry: AclEntry, client: ClientIp): boolean {
  if (entry.kind === 'ipv4') {
    return client.family === 4 && ((ipv4ToInt(client.bytes) & entry.mask) >>> 0) === entry.ip;
  }
  if (client.family !== 6) return false;
  const masked = maskBytes(client.bytes, entry.prefixLength);
  for (let i = 0; i < 16; i++) if (masked[i] !== entry.bytes[i]) return false;
  return true;
}

export function formatAclEntry(list: number, e: AclEntry): string {
  const verdict = e.permit ? 'permit' : 'deny';
  if (e.kind === 'ipv4') return `acl ${list} ${verdict} ${intToIpv4(e.ip)} ${intToIpv4(e.mask)}`;
  return `acl ${list} ${verdict} ${ipaddrLib().fromByteArray([...e.bytes]).toString()}/${e.prefixLength}`;
}

export class AclTable {
  readonly #lists: AclEntry[][] = Array.from({ length: ACL_COUNT }, () => []);

  static checkIndex(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= ACL_COUNT) throw new AclError(`ACL number ${n} is outside 0-${ACL_COUNT - 1}`);
  }

  add(list: number, entry: AclEntry): void {
    AclTable.checkIndex(list);
    this.#lists[list]!.push(entry);
  }

  clear(list: number): void {
    AclTable.checkIndex(list);
    this.#lists[list] = [];
  }

  clearAll(): void {
    for (let i = 0; i < ACL_COUNT; i++) this.#lists[i] = [];
  }

  entries(list: number): readonly AclEntry[] {
    return this.#lists[list] ?? [];
  }

  isEmpty(list: number): boolean {
    return (this.#lists[list]?.length ?? 0) === 0;
  }

  /** true = permitted. */
  permits(list: number, client: ClientIp): boolean {
    const entries = this.#lists[list];
    if (entries === undefined || entries.length === 0) return true;
    if (client.family === 0) return true;
    let last = false;
    for (const e of entries) {
      last = e.permit;
      if (entryMatches(e, client)) return e.permit;
    }
    return !last;
  }
}
