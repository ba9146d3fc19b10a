// The config file's UDP listeners (protocol: udp, udp: settings): defaults, values, and the
// one-line errors for what a UDP listener cannot have.
import { expect, test } from 'bun:test';
import type { FulcrumConfig } from '../../../src/config/model.ts';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';

const y = (...lines: string[]): string => `${lines.join('\n')}\n`;
const GROUPS = ['groups:', '  dns:', '    servers: [127.0.0.1:5353]'];

function configOf(text: string): FulcrumConfig {
  const r = parseConfigText(text, 'f.yaml');
  if ('errors' in r) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}
function errorsOf(text: string): string[] {
  const r = parseConfigText(text, 'f.yaml');
  if (!('errors' in r)) throw new Error('expected errors');
  return r.errors.map(formatIssue);
}

test('protocol: udp takes the defaults; udp: settings override them', () => {
  expect(configOf(y(...GROUPS, 'listeners:', '  - {listen: 53, group: dns, protocol: udp}')).listeners[0]!.udp).toEqual({
    idleTimeoutMs: 30_000, maxSessions: 10_000, maxPerSource: 64, returnFactor: 3, returnFloorBytes: 1232, unansweredSessions: 10, replyTimeoutMs: 5000,
  });
  const c = configOf(y(...GROUPS, 'listeners:', '  - listen: 53', '    group: dns', '    protocol: udp', '    udp: {idle_timeout: 5s, max_sessions: 100, max_sessions_per_source: 0, amplification_factor: 0, amplification_floor: 512, unanswered_sessions: 0, reply_timeout: 2s}'));
  expect(c.listeners[0]!.udp).toEqual({ idleTimeoutMs: 5000, maxSessions: 100, maxPerSource: 0, returnFactor: 0, returnFloorBytes: 512, unansweredSessions: 0, replyTimeoutMs: 2000 });
  expect(configOf(y(...GROUPS, 'listeners:', '  - {listen: 53, group: dns}')).listeners[0]!.udp).toBeUndefined();
});

test('mistakes name the field and what to do', () => {
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 53, group: dns, udp: {max_sessions: 5}}')).join('\n')).toMatch(/udp settings need 'protocol: udp'/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 53, group: dns, protocol: udp, sni_routes: [{group: dns}]}')).join('\n')).toMatch(/'sni_routes' is for TCP listeners/);
  expect(errorsOf(y('global: {workers: 2}', ...GROUPS, 'listeners:', '  - {listen: 53, group: dns, protocol: udp}')).join('\n')).toMatch(/UDP listener runs in one process.*workers to 1/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 53, group: dns, protocol: udp, udp: {max_sesions: 5}}')).join('\n')).toMatch(/unknown field 'max_sesions'.*max_sessions/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 53, group: dns, protocol: quic}')).join('\n')).toMatch(/one of tcp, udp/);
});
