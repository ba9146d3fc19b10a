/**
 * The sources a listener with `accept_proxy` believes: a list of addresses and CIDR blocks.
 * A PROXY protocol header lets its sender claim any client address, so only the balancers in
 * front of Fulcrum may send one; a connection from anywhere else is closed before a byte of it
 * is read as a header. IPv4-mapped IPv6 peers (a dual-stack listener) match IPv4 entries.
 */
import type ipaddr from 'ipaddr.js';
import { ipaddrLib } from './ip.ts';
import { parseClientIp } from './ip.ts';

type Block = [ipaddr.IPv4 | ipaddr.IPv6, number];

export class TrustedSources {
  readonly #v4: Block[] = [];
  readonly #v6: Block[] = [];
  readonly entries: readonly string[];

  private constructor(entries: readonly string[], blocks: Block[]) {
    this.entries = entries;
    for (const b of blocks) (b[0].kind() === 'ipv4' ? this.#v4 : this.#v6).push(b);
  }

  /** Parses `10.0.0.0/8`, `192.168.1.7`, `2001:db8::/32`, `::1`; a problem as text, else the list. */
  static parse(entries: readonly string[]): TrustedSources | string {
    const blocks: Block[] = [];
    for (const e of entries) {
      const b = parseEntry(e);
      if (typeof b === 'string') return b;
      blocks.push(b);
    }
    return new TrustedSources(entries, blocks);
  }

  /** Whether a peer address (as the socket reports it) is one of the trusted sources. */
  trusts(remoteAddress: string | undefined): boolean {
    if (this.entries.length === 0) return false;
    const ip = parseClientIp(remoteAddress);
    if (ip.family === 0) return false; // a Unix-socket peer has no address to trust
    const addr = ipaddrLib().fromByteArray([...ip.bytes]);
    const list = ip.family === 4 ? this.#v4 : this.#v6;
    for (const b of list) if (addr.match(b)) return true;
    return false;
  }
}

/** One entry, or a problem in words (the config checker shows it). */
export function parseEntry(text: string): Block | string {
  const t = text.trim();
  try {
    if (t.includes('/')) {
      const [addr, len] = ipaddrLib().parseCIDR(t);
      return [addr, len];
    }
    if (ipaddrLib().IPv4.isValidFourPartDecimal(t)) return [ipaddrLib().IPv4.parse(t), 32];
    if (ipaddrLib().IPv6.isValid(t)) {
      const a = ipaddrLib().IPv6.parse(t);
      return a.isIPv4MappedAddress() ? [a.toIPv4Address(), 32] : [a, 128];
    }
  } catch {
    // fall through to the message below
  }
  return `"${text}" is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.168.1.7, 2001:db8::/32)`;
}
