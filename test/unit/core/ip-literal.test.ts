import { expect, test } from 'bun:test';
import { isIP } from 'node:net';
import { isIpLiteral } from '../../../src/core/ip.ts';

// The app decides "resolve this name or not" with isIpLiteral; it must agree with node:net's isIP.
test.each(['1.2.3.4', '::1', 'fe80::1%eth0', '::ffff:1.2.3.4', '2001:db8::', 'localhost', '1', '1.2.3', '300.1.1.1', '0x7f.1.1.1', 'example.com', ''])('isIpLiteral(%p) agrees with node:net isIP', (s) => {
  expect(isIpLiteral(s)).toBe(isIP(s) !== 0);
});
