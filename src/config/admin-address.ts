/**
 * The admin listener's address: a loopback `host:port` or a Unix socket path. Anything else is
 * refused unless the operator says so explicitly (`--admin-allow-remote`, `admin.allow_remote`),
 * because the read-only API answers without a token. Pure: used by both front ends.
 */
import type ipaddr from 'ipaddr.js';
import { ipaddrLib } from '../core/ip.ts';
import { AddressError, formatAddress, parseListenAddress, type Address } from '../core/address.ts';

/** True for 127.0.0.0/8, ::1, IPv4-mapped loopback and the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddrLib().isValid(host)) return false;
  let ip = ipaddrLib().parse(host);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  return ip.range() === 'loopback';
}

/** The parsed address, or a message saying what is wrong with it. */
export function parseAdminAddress(text: string, allowRemote: boolean): Address | string {
  let a: Address;
  try {
    a = parseListenAddress(text);
  } catch (e) {
    if (e instanceof AddressError) return e.message.replace(/^listen address/, 'admin address');
    throw e;
  }
  if (a.kind === 'unix') return a.path === '' ? 'admin address: the socket path is empty' : a;
  if (allowRemote || isLoopbackHost(a.host)) return a;
  const hint = /^\d+$/.test(text) ? ` (a bare port means every address; write 127.0.0.1:${a.port})` : '';
  return (
    `admin address ${formatAddress(a)} is not a loopback address${hint}: the admin API would be reachable ` +
    'from the network; use 127.0.0.1:PORT, [::1]:PORT or a Unix socket path, or allow it explicitly (--admin-allow-remote, admin.allow_remote: true)'
  );
}
