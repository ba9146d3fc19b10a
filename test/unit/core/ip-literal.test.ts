import { expect, test } from 'bun:test';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { fourPartDecimal, ipv4HashValue, isIpLiteral, parseClientIp, penHashValue } from '../../../src/core/ip.ts';

// The app decides "resolve this name or not" with isIpLiteral; it must agree with node:net's isIP.
test.each(['1.2.3.4', '::1', 'fe80::1%eth0', '::ffff:1.2.3.4', '2001:db8::', 'localhost', '1', '1.2.3', '300.1.1.1', '0x7f.1.1.1', 'example.com', ''])('isIpLiteral(%p) agrees with node:net isIP', (s) => {
  expect(isIpLiteral(s)).toBe(isIP(s) !== 0);
});

// ipaddr.js loads only for what is not dotted-quad IPv4: the hand-written path must read exactly
// what ipaddr reads, for the literal check and for the client address the decisions use.
const IPV4_LIKE = ['0.0.0.0', '255.255.255.255', '10.0.0.1', '1.2.3.4', '01.2.3.4', '1.2.3.04', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..3.4', '1.2.3.', '0x7f.0.0.1', '1.2.3.4 ', ' 1.2.3.4', '+1.2.3.4', '1e2.1.1.1', '1000.1.1.1', '00.0.0.0', '127.0.0.1%1'];

test.each(IPV4_LIKE)('fourPartDecimal(%p) accepts what ipaddr.IPv4.isValidFourPartDecimal accepts, with its bytes', (s) => {
  const bytes = fourPartDecimal(s);
  expect(bytes !== null).toBe(ipaddr.IPv4.isValidFourPartDecimal(s));
  if (bytes !== null) expect(bytes).toEqual(ipaddr.IPv4.parse(s).toByteArray());
});

test('fourPartDecimal agrees with ipaddr on every address of a sweep of generated strings', () => {
  const parts = ['0', '00', '1', '9', '10', '099', '99', '100', '199', '249', '250', '255', '256', '999', '1000', '', 'a', '-1'];
  for (let i = 0; i < 4000; i++) {
    const s = [0, 1, 2, 3].map((k) => parts[(i * (k * 7 + 3) + k * 5 + ((i >> k) % 5)) % parts.length]).join('.');
    expect(fourPartDecimal(s) !== null).toBe(ipaddr.IPv4.isValidFourPartDecimal(s));
  }
});

// The selector hashes dotted-quad keys in place (ipv4HashValue): the same accepted strings and
// the same hash as parsing them.
const hashByParse = (s: string): number => (fourPartDecimal(s) === null ? -1 : penHashValue(parseClientIp(s)));

test.each([...IPV4_LIKE, '255.255.255.254', '1.0.0.0', '0.0.0.1', '128.0.0.1', '1.2.3.4.', '.1.2.3.4', ''])('ipv4HashValue(%p) is penHashValue of the parsed address, or -1 where fourPartDecimal refuses it', (s) => {
  expect(ipv4HashValue(s)).toBe(hashByParse(s));
});

test('ipv4HashValue agrees with parsing on a sweep of generated strings', () => {
  const parts = ['0', '00', '1', '9', '10', '099', '99', '100', '199', '249', '250', '255', '256', '999', '1000', '', 'a', '-1'];
  for (let i = 0; i < 4000; i++) {
    const s = [0, 1, 2, 3].map((k) => parts[(i * (k * 7 + 3) + k * 5 + ((i >> k) % 5)) % parts.length]).join('.');
    expect(ipv4HashValue(s)).toBe(hashByParse(s));
  }
});

test.each(['1.2.3.4', '10.0.0.255', '::ffff:1.2.3.4', '::1', '2001:db8::1', 'fe80::1%eth0', '', 'unix-socket', '01.2.3.4'])('parseClientIp(%p) is what ipaddr makes of it', (s) => {
  const got = parseClientIp(s);
  if (s === '' || !ipaddr.isValid(s)) {
    expect(got.family).toBe(0);
    return;
  }
  let a = ipaddr.parse(s);
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
  expect(got.family).toBe(a.kind() === 'ipv4' ? 4 : 6);
  expect(got.key).toBe(a.kind() === 'ipv4' ? a.toString() : a.toNormalizedString());
  expect([...got.bytes]).toEqual(a.toByteArray());
});
