/**
 * GET /metrics: a scrape parsed by a strict Prometheus text-format parser, with values checked
 * against traffic that the test made; and a thousand servers scraped in process.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Balancer, type Diagnostics } from '../../src/app/balancer.ts';
import { defaultGlobal, defaultGroup, serverConfig, type FulcrumConfig } from '../../src/config/model.ts';
import { Metrics } from '../../src/control/metrics.ts';
import { TERMINATION_REASONS } from '../../src/dataplane/session.ts';
import { freePort, Harness, repoRoot, transfer, waitFor } from '../harness/index.ts';
import { api, change, startWithAdmin, type AdminFulcrum } from '../helpers/admin.ts';
import { parsePrometheusText, PromParseError, sampleValue, type PromFamily } from '../helpers/prom-parse.ts';

setDefaultTimeout(60_000);

describe('the strict text-format parser', () => {
  test('reads a well-formed exposition', () => {
    const f = parsePrometheusText(
      '# HELP a_total A counter.\n# TYPE a_total counter\na_total{x="1",y="q\\"\\\\\\n"} 3\na_total{x="2"} 4 1700000000000\n' +
        '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 0.5\nh_count 1\n# TYPE g gauge\ng NaN\ng{a="b",} -Inf\n',
    );
    expect(f.get('a_total')!.samples.map((s) => s.value)).toEqual([3, 4]);
    expect(f.get('a_total')!.samples[0]!.labels.y).toBe('q"\\\n');
    expect(f.get('h')!.samples).toHaveLength(3);
    expect(Number.isNaN(f.get('g')!.samples[0]!.value)).toBe(true);
  });

  test.each([
    ['a bad metric name', '1abc 1\n'],
    ['a bad label name', 'a{1x="1"} 1\n'],
    ['an unquoted label value', 'a{x=1} 1\n'],
    ['a bad escape', 'a{x="\\t"} 1\n'],
    ['a bad value', 'a 1,5\n'],
    ['no value', 'a{x="1"}\n'],
    ['a duplicate series', 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n'],
    ['a TYPE after samples', 'a 1\n# TYPE a gauge\n'],
    ['an unknown type', '# TYPE a meter\na 1\n'],
    ['a split family', '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n'],
    ['a negative counter', '# TYPE a_total counter\na_total -1\n'],
    ['no final line break', 'a 1'],
    ['a label given twice', 'a{x="1",x="2"} 1\n'],
  ])('rejects %s', (_what, text) => {
    expect(() => parsePrometheusText(text)).toThrow(PromParseError);
  });
});

function sum(families: Map<string, PromFamily>, name: string, labels: Record<string, string>): number {
  const f = families.get(name);
  if (f === undefined) throw new Error(`no metric family ${name}`);
  return f.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

describe('/metrics on the admin listener', () => {
  const h = new Harness();
  let f: AdminFulcrum;
  let web: number;
  let bad: number;
  let a: ReturnType<Harness['echo']>;
  let b: ReturnType<Harness['echo']>;
  let refused: ReturnType<Harness['refuse']>;

  beforeAll(async () => {
    a = h.echo();
    b = h.echo();
    refused = h.refuse();
    web = freePort();
    bad = freePort();
    f = await startWithAdmin(h, {
      ports: [web, bad],
      config: {
        groups: {
          app: { tracking: false, servers: [a.address, { address: b.address, weight: 3 }] },
          bad: { servers: [refused.address] },
        },
        listeners: [
          { name: 'web', listen: `127.0.0.1:${web}`, group: 'app' },
          { name: 'bad', listen: `127.0.0.1:${bad}`, group: 'bad' },
        ],
      },
    });
  });
  afterAll(() => h.close());

  async function scrape(): Promise<Map<string, PromFamily>> {
    const r = await api(f.base, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(r.text);
  }

  test('a scrape parses strictly, every name is fulcrum_, and the counters match the traffic', async () => {
    const sizes = [10_000, 70_000, 1, 300_000];
    for (const n of sizes) await transfer(web, n);
    const c = await h.connect(bad);
    expect(await c.closed).toBe('fin');
    // Byte totals per listener are counted when each connection ends: wait until all have.
    let m = await scrape();
    await waitFor(
      async () => {
        m = await scrape();
        return sampleValue(m, 'fulcrum_connections_current') === 0 && sampleValue(m, 'fulcrum_listener_bytes_to_clients_total', { listener: 'web' }) === sizes.reduce((x, y) => x + y);
      },
      { what: 'every connection to have ended in the metrics' },
    );
    for (const name of m.keys()) expect(name).toMatch(/^fulcrum_/);
    const total = sizes.reduce((x, y) => x + y);

    expect(m.get('fulcrum_server_connections_total')!.type).toBe('counter');
    expect(m.get('fulcrum_server_connections_current')!.type).toBe('gauge');
    expect(sum(m, 'fulcrum_server_connections_total', { group: 'app' })).toBe(sizes.length);
    expect(sampleValue(m, 'fulcrum_server_connections_total', { server: a.address })).toBeGreaterThan(0);
    expect(sampleValue(m, 'fulcrum_server_connections_total', { server: b.address })).toBeGreaterThan(0);
    expect(sum(m, 'fulcrum_server_bytes_to_server_total', { group: 'app' })).toBe(total);
    expect(sum(m, 'fulcrum_server_bytes_from_server_total', { group: 'app' })).toBe(total);
    expect(sum(m, 'fulcrum_server_connections_current', {})).toBe(0);
    expect(sampleValue(m, 'fulcrum_server_weight', { server: b.address })).toBe(3);

    expect(sampleValue(m, 'fulcrum_listener_connections_total', { listener: 'web' })).toBe(sizes.length);
    expect(sampleValue(m, 'fulcrum_listener_connections_total', { listener: 'bad', address: `127.0.0.1:${bad}` })).toBe(1);
    expect(sampleValue(m, 'fulcrum_listener_bytes_from_clients_total', { listener: 'web' })).toBe(total);
    expect(sampleValue(m, 'fulcrum_listener_connections_current', { listener: 'web' })).toBe(0);
    expect(sampleValue(m, 'fulcrum_listener_handshake_failures_total', { listener: 'web' })).toBe(0);
    expect(sampleValue(m, 'fulcrum_connections_accepted_total')).toBe(sizes.length + 1);
    expect(sampleValue(m, 'fulcrum_queue_length')).toBe(0);

    // The refused server: one failure, blacklisted, so not up; the connection ended connect-failed.
    expect(sampleValue(m, 'fulcrum_server_connect_failures_total', { group: 'bad' })).toBe(1);
    expect(sampleValue(m, 'fulcrum_server_connect_timeouts_total', { group: 'bad' })).toBe(0);
    expect(sampleValue(m, 'fulcrum_server_blacklisted', { group: 'bad' })).toBe(1);
    expect(sampleValue(m, 'fulcrum_server_up', { group: 'bad' })).toBe(0);
    expect(sampleValue(m, 'fulcrum_server_up', { server: a.address })).toBe(1);
    expect(sampleValue(m, 'fulcrum_connections_ended_total', { reason: 'connect-failed' })).toBe(1);
    expect(sampleValue(m, 'fulcrum_connections_ended_total', { reason: 'client-closed' }) + sampleValue(m, 'fulcrum_connections_ended_total', { reason: 'server-closed' })).toBe(sizes.length);
    expect(m.get('fulcrum_connections_ended_total')!.samples.map((s) => s.labels.reason).sort()).toEqual([...TERMINATION_REASONS].sort());
    expect(sampleValue(m, 'fulcrum_group_tracked_clients', { group: 'bad' })).toBe(1);

    // Connect latency: a histogram per server from its fixed buckets; every established connect is in it.
    const connect = m.get('fulcrum_server_connect_seconds')!;
    expect(connect.type).toBe('histogram');
    const counts = connect.samples.filter((s) => s.name === 'fulcrum_server_connect_seconds_count' && s.labels.group === 'app');
    expect(counts.reduce((n, s) => n + s.value, 0)).toBe(sizes.length);
    const inf = connect.samples.filter((s) => s.name === 'fulcrum_server_connect_seconds_bucket' && s.labels.group === 'app' && s.labels.le === '+Inf');
    expect(inf.map((s) => s.value)).toEqual(counts.map((s) => s.value));
  });

  test('event-loop lag and process figures are there, also in back-to-back scrapes', async () => {
    // The lag histogram is reset by each scrape: a second one at once has no samples (NaN figures).
    const [first, m] = [await scrape(), await scrape()];
    expect(first.get('fulcrum_nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    for (const name of ['fulcrum_nodejs_eventloop_lag_seconds', 'fulcrum_nodejs_eventloop_lag_p99_seconds', 'fulcrum_process_resident_memory_bytes', 'fulcrum_process_open_fds', 'fulcrum_process_start_time_seconds']) {
      expect(m.get(name)?.type).toBe('gauge');
    }
    expect(m.get('fulcrum_process_cpu_seconds_total')?.type).toBe('counter');
    expect(sampleValue(m, 'fulcrum_process_open_fds')).toBeGreaterThan(0);
    expect(sampleValue(m, 'fulcrum_build_info')).toBe(1);
  });

  test('the admin state is an enum with one current value; drain shows at the next scrape', async () => {
    expect((await change(f.base, 'POST', `/api/v1/groups/app/servers/${a.address}/drain`)).status).toBe(200);
    const m = await scrape();
    expect(sampleValue(m, 'fulcrum_server_admin_state', { server: a.address, state: 'drain' })).toBe(1);
    expect(sampleValue(m, 'fulcrum_server_admin_state', { server: a.address, state: 'enabled' })).toBe(0);
    expect(sum(m, 'fulcrum_server_admin_state', { server: b.address })).toBe(1);
    expect(sampleValue(m, 'fulcrum_server_up', { server: a.address })).toBe(0);
    expect(sampleValue(m, 'fulcrum_config_reloads_total', { result: 'success' })).toBe(0);
  });
});

describe('metrics at scale', () => {
  test('a thousand servers: one series per server and family, collected from the counters at scrape time', async () => {
    const servers = Array.from({ length: 1000 }, (_, i) => serverConfig({ kind: 'tcp', host: '10.0.0.1', port: 1000 + i }, { weight: i % 7 }));
    const config: FulcrumConfig = {
      global: defaultGlobal(),
      acls: [],
      groups: [{ ...defaultGroup('big'), servers }],
      listeners: [{ name: 'l', address: { kind: 'tcp', host: '127.0.0.1', port: 1 }, group: 'big' }],
    };
    const quiet: Diagnostics = { info() {}, error() {}, debug() {} };
    const b = new Balancer(config, quiet);
    const metrics = new Metrics(b, { version: 'test', defaultMetrics: false });
    const big = b.groups.get('big')!;
    big.servers[10]!.bytesToServer = 12345;
    big.servers[999]!.totalConnections = 7;
    const m = parsePrometheusText(await metrics.scrape());
    for (const [name, fam] of m) {
      if (!name.startsWith('fulcrum_server_')) continue;
      // The connect histogram: 18 buckets, a sum and a count per server.
      expect(fam.samples.length).toBe(name === 'fulcrum_server_admin_state' ? 3000 : name === 'fulcrum_server_connect_seconds' ? 20_000 : 1000);
    }
    expect(sampleValue(m, 'fulcrum_server_bytes_to_server_total', { server: '10.0.0.1:1010' })).toBe(12345);
    expect(sampleValue(m, 'fulcrum_server_connections_total', { server: '10.0.0.1:1999' })).toBe(7);
    expect(sampleValue(m, 'fulcrum_server_weight', { server: '10.0.0.1:1006' })).toBe(6);
    expect(sampleValue(m, 'fulcrum_group_servers', { group: 'big' })).toBe(1000);
  });

  test('back-to-back scrapes stay parseable (event-loop figures of an empty interval are NaN)', async () => {
    const b = new Balancer(
      { global: defaultGlobal(), acls: [], groups: [{ ...defaultGroup('g'), servers: [serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 1 })] }], listeners: [] },
      { info() {}, error() {}, debug() {} },
    );
    const metrics = new Metrics(b, { version: 'test' });
    await Bun.sleep(50);
    for (let i = 0; i < 3; i++) {
      const text = await metrics.scrape();
      expect(() => parsePrometheusText(text)).not.toThrow();
    }
  });

  test('label values are escaped (a socket path with a quote, a backslash and a line break)', async () => {
    const path = '/tmp/we"ird\\so\nck';
    const b = new Balancer(
      { global: defaultGlobal(), acls: [], groups: [{ ...defaultGroup('g'), servers: [serverConfig({ kind: 'unix', path })] }], listeners: [] },
      { info() {}, error() {}, debug() {} },
    );
    const m = parsePrometheusText(await new Metrics(b, { version: 'test', defaultMetrics: false }).scrape());
    expect(m.get('fulcrum_server_weight')!.samples[0]!.labels.server).toBe(path);
    expect(sampleValue(m, 'fulcrum_server_admin_state', { server: path, state: 'enabled' })).toBe(1);
  });

  test('every termination code is documented', () => {
    const doc = readFileSync(join(repoRoot, 'docs/termination-codes.md'), 'utf8');
    for (const code of TERMINATION_REASONS) expect(doc).toContain(`\`${code}\``);
  });
});
