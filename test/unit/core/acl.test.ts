import { expect, test } from 'bun:test';
import { AclError, AclTable, formatAclEntry, parseAclEntry } from '../../../src/core/acl/acl.ts';
import { parseClientIp } from '../../../src/core/ip.ts';

const ip = parseClientIp;

test('an empty list permits everyone', () => {
  expect(new AclTable().permits(3, ip('1.2.3.4'))).toBe(true);
});

test('first match decides; no match gives the opposite of the last entry (pen acl.c)', () => {
  const t = new AclTable();
  t.add(1, parseAclEntry(true, ['10.0.0.0', '255.0.0.0']));
  t.add(1, parseAclEntry(false, ['10.1.0.0', '255.255.0.0']));
  expect(t.permits(1, ip('10.1.2.3'))).toBe(true); // first entry matches first
  expect(t.permits(1, ip('192.168.1.1'))).toBe(true); // no match, last was deny -> permit
  const u = new AclTable();
  u.add(2, parseAclEntry(true, ['192.168.0.0/16']));
  expect(u.permits(2, ip('192.168.4.4'))).toBe(true);
  expect(u.permits(2, ip('8.8.8.8'))).toBe(false); // no match, last was permit -> deny
});

test('IPv6 entries with a prefix length; families never cross; unix clients pass', () => {
  const t = new AclTable();
  t.add(4, parseAclEntry(false, ['2001:db8::/32']));
  expect(t.permits(4, ip('2001:db8:1::5'))).toBe(false);
  expect(t.permits(4, ip('2001:db9::5'))).toBe(true);
  expect(t.permits(4, ip('10.0.0.1'))).toBe(true); // IPv4 never matches an IPv6 entry
  expect(t.permits(4, ip(''))).toBe(true); // Unix-socket client
});

test('IPv4-mapped IPv6 clients match IPv4 entries', () => {
  const t = new AclTable();
  t.add(5, parseAclEntry(false, ['127.0.0.1']));
  expect(t.permits(5, ip('::ffff:127.0.0.1'))).toBe(false);
});

test('bad entries are refused with a reason', () => {
  expect(() => parseAclEntry(true, [])).toThrow(AclError);
  expect(() => parseAclEntry(true, ['300.1.1.1'])).toThrow(/not an IPv4 address/);
  expect(() => parseAclEntry(true, ['1.2.3.4', 'x'])).toThrow(/netmask/);
  expect(() => parseAclEntry(true, ['::1/129'])).toThrow(/0-128/);
  expect(() => parseAclEntry(true, ['country', 'SE'])).toThrow(/GeoIP/);
  expect(() => new AclTable().add(10, parseAclEntry(true, ['1.2.3.4']))).toThrow(/0-9/);
});

test('entries print back in pen syntax', () => {
  expect(formatAclEntry(1, parseAclEntry(true, ['10.0.0.0', '255.0.0.0']))).toBe('acl 1 permit 10.0.0.0 255.0.0.0');
  expect(formatAclEntry(2, parseAclEntry(false, ['2001:db8::/32']))).toBe('acl 2 deny 2001:db8::/32');
});
