// The config file's HTTP listeners (mode: http and its fields) and groups' sticky_cookie:
// defaults, values, and the one-line errors for mistakes.
import { expect, test } from 'bun:test';
import type { FulcrumConfig } from '../../../src/config/model.ts';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';

const y = (...lines: string[]): string => `${lines.join('\n')}\n`;
const GROUPS = ['groups:', '  web:', '    servers: [127.0.0.1:8001]', '    sticky_cookie: SRV', '  api:', '    servers: [127.0.0.1:8002]'];

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

test('mode: http takes the defaults; its fields override them', () => {
  const d = configOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http}'));
  expect(d.listeners[0]!.http).toEqual({ routes: [], trustedProxies: [], pool: { maxPerServer: 64, idleTimeoutMs: 30_000 }, responseTimeoutMs: 30_000, headerTimeoutMs: 10_000, maxBodyBytes: 10 * 1024 * 1024, maxHeadBytes: 32 * 1024 });
  expect(d.groups.find((g) => g.name === 'web')!.stickyCookie).toBe('SRV');
  const c = configOf(
    y(...GROUPS, 'listeners:', '  - listen: 80', '    group: web', '    mode: http', '    routes: [{host: api.example, group: api}, {path_prefix: /v1/, group: api}]', '    trusted_proxies: [10.0.0.0/8]', '    pool: {max_per_server: 8, idle_timeout: 5s}', '    response_timeout: 2s', '    header_timeout: 5s', '    max_body_size: 1000', '    max_head_size: 8192'),
  );
  expect(c.listeners[0]!.http).toEqual({
    routes: [
      { host: 'api.example', pathPrefix: null, group: 'api' },
      { host: null, pathPrefix: '/v1/', group: 'api' },
    ],
    trustedProxies: ['10.0.0.0/8'],
    pool: { maxPerServer: 8, idleTimeoutMs: 5000 },
    responseTimeoutMs: 2000,
    headerTimeoutMs: 5000,
    maxBodyBytes: 1000,
    maxHeadBytes: 8192,
  });
  expect(configOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web}')).listeners[0]!.http).toBeUndefined();
});

test('mistakes name the field and what to do', () => {
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, routes: [{host: a, group: api}]}'))).toMatch(/'routes' is an HTTP setting: it needs 'mode: http'/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, routes: [{host: a, group: apj}]}'))).toMatch(/unknown group 'apj'.*api/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, routes: [{group: api}]}'))).toMatch(/a route needs host, path_prefix or both/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, routes: [{path_prefix: v1, group: api}]}'))).toMatch(/path prefix starting with '\/'/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, pool: {max_per_srv: 2}}'))).toMatch(/unknown field 'max_per_srv'.*max_per_server/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, trusted_proxies: [not-an-ip]}'))).toMatch(/trusted_proxies/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, sni_routes: []}'))).toMatch(/'sni_routes' is not supported with 'mode: http' yet/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: https}'))).toMatch(/one of tcp, http/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, header_timeout: 0s}'))).toMatch(/header_timeout.*from 1 to 3600000 ms/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, header_timeout: 2h}'))).toMatch(/header_timeout.*from 1 to 3600000 ms/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, header_timeout: 5s}'))).toMatch(/'header_timeout' is an HTTP setting/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, max_head_size: 100}'))).toMatch(/max_head_size/);
  expect(errorsOf(y('groups:', '  web:', '    servers: [127.0.0.1:8001]', '    sticky_cookie: "a b"', 'listeners:', '  - {listen: 80, group: web}'))).toMatch(/cookie name/);
});

test('error_pages maps HTTP error statuses to files; anything else is refused', () => {
  const c = configOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, error_pages: {502: /srv/502.html, 503: /srv/503.html}}'));
  expect(c.listeners[0]!.http!.errorPages).toEqual({ 502: '/srv/502.html', 503: '/srv/503.html' });
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, mode: http, error_pages: {200: /srv/ok.html}}'))).toMatch(/HTTP error status/);
  expect(errorsOf(y(...GROUPS, 'listeners:', '  - {listen: 80, group: web, error_pages: {502: /srv/502.html}}'))).toMatch(/'error_pages' is an HTTP setting/);
});
