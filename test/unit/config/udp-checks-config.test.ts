// The udp and dns check kinds in the config file: what they build, and the one-line mistakes.
import { expect, test } from 'bun:test';
import type { FulcrumConfig } from '../../../src/config/model.ts';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';

const file = (check: string): string => `checks:\n  c: ${check}\ngroups:\n  dns:\n    check: c\n    servers: [127.0.0.1:5353]\nlisteners:\n  - {listen: 53, group: dns, protocol: udp}\n`;

function configOf(text: string): FulcrumConfig {
  const r = parseConfigText(text, 'f.yaml');
  if ('errors' in r) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}
function errorsOf(text: string): string {
  const r = parseConfigText(text, 'f.yaml');
  if (!('errors' in r)) throw new Error('expected errors');
  return r.errors.map(formatIssue).join('\n');
}

test('a udp check: the payload as text or hex, the expected reply and how it matches', () => {
  const c = configOf(file('{type: udp, send: "hex:00 01 ff", expect: "text:pong", expect_match: prefix}')).groups[0]!.check!;
  expect(c.kind).toBe('udp');
  expect(c.udp).toEqual({ send: Uint8Array.of(0, 1, 0xff), expect: { bytes: new TextEncoder().encode('pong'), match: 'prefix' } });
  expect(c.agentSend).toBeNull();
  const plain = configOf(file('{type: udp, send: ping}')).groups[0]!.check!;
  expect(plain.udp).toEqual({ send: new TextEncoder().encode('ping'), expect: null });
  expect(configOf(file('{type: udp, send: ping, expect: "hex:0a"}')).groups[0]!.check!.udp!.expect!.match).toBe('exact');
});

test('a dns check: name, type and the RCODEs that pass (NOERROR by default)', () => {
  const c = configOf(file('{type: dns, query: example.com, query_type: AAAA, expect_rcode: [NOERROR, nxdomain]}')).groups[0]!.check!;
  expect(c.dns).toEqual({ name: 'example.com', type: 'AAAA', rcodes: [0, 3] });
  expect(configOf(file('{type: dns, query: example.com.}')).groups[0]!.check!.dns).toEqual({ name: 'example.com.', type: 'A', rcodes: [0] });
  expect(configOf(file('{type: dns, query: ., query_type: 6}')).groups[0]!.check!.dns!.type).toBe(6);
});

test('mistakes say what is wrong', () => {
  expect(errorsOf(file('{type: udp}'))).toContain('a udp check needs send');
  expect(errorsOf(file('{type: udp, send: "hex:0"}'))).toContain('odd number of hex digits');
  expect(errorsOf(file('{type: udp, send: ping, expect: "hex:zz"}'))).toContain('not hex');
  expect(errorsOf(file('{type: dns}'))).toContain('a dns check needs query');
  expect(errorsOf(file('{type: dns, query: "a..b"}'))).toContain('empty label');
  expect(errorsOf(file('{type: dns, query: x, query_type: AAA}'))).toContain("did you mean 'AAAA'");
  expect(errorsOf(file('{type: dns, query: x, expect_rcode: BOGUS}'))).toContain('not an RCODE');
  expect(errorsOf(file('{type: tcp, query: x}'))).toContain("'query' does not apply to tcp checks (only to dns)");
  expect(errorsOf(file('{type: dns, query: x, send: y}'))).toContain("'send' does not apply to dns checks (only to agent, udp)");
});
