// accept_proxy in the config file: the trusted list is required, entries are checked, and the
// PROXY settings are refused on listeners that do not read a header.
import { expect, test } from 'bun:test';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';
import { TrustedSources } from '../../../src/core/trusted-sources.ts';

const base = (listener: string[]): string => ['groups:', '  web:', '    servers: [127.0.0.1:9000]', 'listeners:', '  - listen: 8080', '    group: web', ...listener, ''].join('\n');

function errors(text: string): string[] {
  const r = parseConfigText(text, 'f.yaml');
  return 'errors' in r ? r.errors.map((e) => e.message) : [];
}

test('accept_proxy with a trusted list and a timeout builds the listener setting', () => {
  const r = parseConfigText(base(['    accept_proxy: true', '    proxy_trusted: [10.0.0.0/8, "::1"]', '    proxy_timeout: 500ms']), 'f.yaml');
  expect('config' in r && r.config.listeners[0]!.acceptProxy).toEqual({ trusted: ['10.0.0.0/8', '::1'], timeoutMs: 500 });
});

test('the timeout defaults to 3 s; without accept_proxy there is no setting', () => {
  const r = parseConfigText(base(['    accept_proxy: true', '    proxy_trusted: [10.0.0.1]']), 'f.yaml');
  expect('config' in r && r.config.listeners[0]!.acceptProxy?.timeoutMs).toBe(3000);
  const plain = parseConfigText(base([]), 'f.yaml');
  expect('config' in plain && plain.config.listeners[0]!.acceptProxy).toBeUndefined();
});

test('accept_proxy without a trusted list (or an empty one) is a config error', () => {
  expect(errors(base(['    accept_proxy: true'])).join()).toContain('accept_proxy needs proxy_trusted');
  expect(errors(base(['    accept_proxy: true', '    proxy_trusted: []'])).join()).toContain('accept_proxy needs proxy_trusted');
});

test('a bad trusted entry is named; PROXY settings without accept_proxy are refused', () => {
  expect(errors(base(['    accept_proxy: true', '    proxy_trusted: [10.0.0.0/33]'])).join()).toContain('"10.0.0.0/33" is not an IP address or CIDR block');
  expect(errors(base(['    accept_proxy: true', '    proxy_trusted: [lb.example]'])).join()).toContain('not an IP address');
  expect(errors(base(['    proxy_trusted: [10.0.0.1]'])).join()).toContain('proxy_trusted applies only with accept_proxy: true');
  expect(errors(base(['    proxy_timeout: 1s'])).join()).toContain('proxy_timeout applies only with accept_proxy: true');
});

test('TrustedSources: CIDRs and single addresses, IPv4-mapped peers as IPv4, Unix peers never', () => {
  const t = TrustedSources.parse(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32']) as TrustedSources;
  expect(t.trusts('10.200.3.4')).toBe(true);
  expect(t.trusts('::ffff:10.1.2.3')).toBe(true);
  expect(t.trusts('192.168.1.7')).toBe(true);
  expect(t.trusts('192.168.1.8')).toBe(false);
  expect(t.trusts('2001:db8:1::5')).toBe(true);
  expect(t.trusts('2001:db9::5')).toBe(false);
  expect(t.trusts('')).toBe(false);
  expect(t.trusts(undefined)).toBe(false);
  expect(typeof TrustedSources.parse(['nope'])).toBe('string');
});
