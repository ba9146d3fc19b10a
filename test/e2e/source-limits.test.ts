/**
 * The per-source limits through the admin API (GET and PUT /api/v1/source-limits, checked with the
 * config file's rules, a token required to change them) and their counters in /metrics.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { freePort, Harness, waitFor } from '../harness/index.ts';
import { api, change, startWithAdmin, type AdminFulcrum } from '../helpers/admin.ts';
import { parsePrometheusText } from '../helpers/prom-parse.ts';

setDefaultTimeout(60_000);

describe('per-source limits in the admin API', () => {
  const h = new Harness();
  let f: AdminFulcrum;

  beforeAll(async () => {
    const echo = h.echo();
    const web = freePort();
    f = await startWithAdmin(h, {
      ports: [web],
      config: {
        global: { max_connections: 100 },
        groups: { app: { servers: [echo.address] } },
        listeners: [{ name: 'web', listen: `127.0.0.1:${web}`, group: 'app' }],
      },
    });
  });
  afterAll(() => h.close());

  test('GET shows the defaults; PUT needs the token, is checked like the file, and applies at once', async () => {
    const r = await api(f.base, '/api/v1/source-limits');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ max_connections_per_source: 25, max_new_connections_per_source_per_second: 0, refused: { 'source-limit': 0, 'rate-limit': 0 }, idle_evicted: 0 });
    expect((await api(f.base, '/api/v1/source-limits', { method: 'PUT', body: { max_new_connections_per_source_per_second: 3 } })).status).toBe(401);
    const bad = await change(f.base, 'PUT', '/api/v1/source-limits', { max_new_connections_per_source_per_second: -1, max_connection_per_source: 3 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('validation_failed');
    expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['max_connection_per_source', 'max_new_connections_per_source_per_second']);
    const ok = await change(f.base, 'PUT', '/api/v1/source-limits', { max_new_connections_per_source_per_second: 3 });
    expect(ok.status).toBe(200);
    expect(ok.body.changes).toEqual(['max_new_connections_per_source_per_second 0 -> 3']);
    expect(ok.body.max_new_connections_per_source_per_second).toBe(3);
    // Ten new connections at once from one address: three pass, the rest are refused and counted.
    const clients = await Promise.all(Array.from({ length: 10 }, () => h.connect(f.port, { localAddress: '127.0.0.2' })));
    await waitFor(async () => (await api(f.base, '/api/v1/source-limits')).body.refused['rate-limit'] === 7, { what: '7 refusals for the rate' });
    for (const c of clients) c.destroy();
    const families = parsePrometheusText((await api(f.base, '/metrics')).text);
    const sample = (name: string, label: Record<string, string>) => families.get(name)?.samples.find((s) => Object.entries(label).every(([k, v]) => s.labels[k] === v))?.value;
    expect(sample('fulcrum_source_refusals_total', { reason: 'rate-limit' })).toBe(7);
    expect(sample('fulcrum_connections_ended_total', { reason: 'rate-limit' })).toBe(7);
    expect(sample('fulcrum_source_limit', { limit: 'new_per_second' })).toBe(3);
    expect(sample('fulcrum_source_limit', { limit: 'connections' })).toBe(25);
  });
});
