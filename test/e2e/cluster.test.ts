/**
 * Issue 14's shared state, as an operator runs it: a real redis-server on a free loopback port and
 * two Fulcrum processes whose config files are the same but for their listen and admin ports and
 * instance names (B lists the servers in the other order: servers are shared by address). Clients
 * come from many loopback source addresses. Skipped with a message when redis-server is missing
 * (scripts/ensure-peers.sh installs it from Debian).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnProcess, useHarness, waitFor, whoServes, type Backend, type RunningProcess } from '../harness/index.ts';
import { httpHealth } from '../helpers/health.ts';

setDefaultTimeout(60_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-cluster-'));
const TOKEN = 'cluster-test-token-0123456789abcdef';
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
const redisPath = Bun.which('redis-server') ?? (Bun.file('/usr/bin/redis-server').size > 0 ? '/usr/bin/redis-server' : null);
if (redisPath === null) console.warn('cluster.test.ts: skipped, redis-server is not installed (scripts/ensure-peers.sh installs it as root)');

const redisPort = freePort();
let redis: RunningProcess | null = null;
async function startRedis(): Promise<void> {
  redis = await spawnProcess([redisPath!, '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { name: 'redis-server', port: redisPort });
}
async function stopRedis(): Promise<void> {
  await redis?.close();
  redis = null;
}
beforeAll(async () => {
  if (redisPath !== null) await startRedis();
});
afterAll(stopRedis);

interface Instance {
  name: string;
  prefix: string;
  port: number;
  admin: number;
  p: RunningProcess;
}
let prefixes = 0;

const newPrefix = (): string => `t${++prefixes}-${process.pid}:`;

/** One instance of the cluster under `prefix`: group `app` (round robin, tracking) with `order`'s servers. */
async function instance(prefix: string, name: string, order: Backend[], checkPorts?: number[]): Promise<Instance> {
  const port = freePort();
  const admin = freePort();
  const check = checkPorts === undefined ? '' : '    check: {type: http, path: /health, interval: 200ms, timeout: 3s, rise: 1, fall: 2}\n';
  const list = order.map((s, i) => `      - {address: "127.0.0.1:${s.port}"${checkPorts === undefined ? '' : `, check_port: ${checkPorts[i]}`}}`).join('\n');
  const file = join(dir, `${prefix.replace(/:$/, '')}-${name}.yaml`);
  writeFileSync(
    file,
    `cluster: {redis: "redis://127.0.0.1:${redisPort}", key_prefix: "${prefix}", instance: ${name}}
admin: {listen: "127.0.0.1:${admin}", token_file: ${tokenFile}}
groups:
  app:
    algorithm: roundrobin
${check}    servers:
${list}
listeners:
  - listen: 127.0.0.1:${port}
    group: app
`,
  );
  const p = await h.startFulcrum(['--config', file], { port: [port, admin] });
  return { name, prefix, port, admin, p };
}

/** A and B with the same servers, B's in the other order; only A checks health when `checkPortsA` is given. */
async function pair(servers: Backend[], checkPortsA?: number[]): Promise<[Instance, Instance, string]> {
  const prefix = newPrefix();
  const a = await instance(prefix, 'A', servers, checkPortsA);
  const b = await instance(prefix, 'B', [...servers].reverse());
  return [a, b, prefix];
}

async function api(i: Instance, method: string, path: string): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${i.admin}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return path === '/metrics' ? r.text() : r.json();
}

async function metric(i: Instance, name: string): Promise<number> {
  const text = (await api(i, 'GET', '/metrics')) as string;
  const m = new RegExp(`^fulcrum_${name} (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** Client source addresses 127.0.1.x / 127.0.2.x, one per client. */
const sources = (base: number, n: number): string[] => Array.from({ length: n }, (_, i) => `127.0.${base + Math.floor(i / 250)}.${(i % 250) + 1}`);

describe.skipIf(redisPath === null)('instances sharing state through Redis', () => {
  test('a client tracked through A goes to the same server through B', async () => {
    const servers = ['s0', 's1', 's2'].map((n) => h.identify(n));
    const [a, b, prefix] = await pair(servers);
    const clients = sources(1, 200);
    const first = new Map<string, string>();
    for (const ip of clients) first.set(ip, await whoServes(a.port, { sourceIp: ip }));
    await waitFor(async () => (await metric(b, 'cluster_changes_received_total')) >= clients.length, { what: 'B to hear of every client', timeoutMs: 15_000 });
    let same = 0;
    for (const ip of clients) if ((await whoServes(b.port, { sourceIp: ip })) === first.get(ip)) same++;
    expect(same / clients.length).toBeGreaterThanOrEqual(0.99);
    // An instance started now loads the table from Redis before it serves.
    const c = await instance(prefix, 'C', [servers[1]!, servers[2]!, servers[0]!]);
    same = 0;
    for (const ip of clients) if ((await whoServes(c.port, { sourceIp: ip })) === first.get(ip)) same++;
    expect(same / clients.length).toBeGreaterThanOrEqual(0.99);
  });

  test('a drain made through A is obeyed by B', async () => {
    const servers = ['s0', 's1'].map((n) => h.identify(n));
    const [a, b] = await pair(servers);
    await api(a, 'POST', `/api/v1/groups/app/servers/127.0.0.1:${servers[0]!.port}/drain`);
    await b.p.waitForLine(/enabled -> drain \(cluster: set by A\)/, 10_000);
    const seen = new Set<string>();
    for (const ip of sources(3, 10)) seen.add(await whoServes(b.port, { sourceIp: ip }));
    expect([...seen]).toEqual(['s1']);
    await api(a, 'POST', `/api/v1/groups/app/servers/127.0.0.1:${servers[0]!.port}/enable`);
    await b.p.waitForLine(/drain -> enabled \(cluster: set by A\)/, 10_000);
  });

  test('a server that A finds down is avoided by B, which does not check it', async () => {
    const servers = ['s0', 's1'].map((n) => h.identify(n));
    const health = servers.map(() => httpHealth(h, 200));
    const [a, b] = await pair(servers, health.map((x) => x.backend.port));
    health[0]!.status = 503;
    await a.p.waitForLine(/server \d \(127\.0\.0\.1:\d+\) is DOWN/, 10_000);
    await b.p.waitForLine(/is DOWN: http check .*HTTP status 503 \(seen by A\) \(cluster: A\)/, 10_000);
    const seen = new Set<string>();
    for (const ip of sources(4, 10)) seen.add(await whoServes(b.port, { sourceIp: ip }));
    expect([...seen]).toEqual(['s1']);
    health[0]!.status = 200;
    await b.p.waitForLine(/is UP: found up \(cluster: A\)/, 10_000);
  });

  test('a verdict does not outlive its instance: A finds a server down and is killed, B uses it again', async () => {
    const servers = ['s0', 's1'].map((n) => h.identify(n));
    const health = servers.map(() => httpHealth(h, 200));
    const [a, b] = await pair(servers, health.map((x) => x.backend.port));
    health[0]!.status = 503;
    await b.p.waitForLine(/is DOWN: http check .*\(cluster: A\)/, 10_000);
    const killedAt = Date.now();
    a.p.kill('SIGKILL');
    // B has no check of its own: once A is no longer heard of (the lease, 5 s), A's verdict goes.
    await b.p.waitForLine(/is UP: found up \(cluster: the verdict of A dropped, A is gone\)/, 15_000);
    console.log(`cluster: A killed -> its DOWN verdict dropped by B after ${Date.now() - killedAt} ms`);
    const seen = new Set<string>();
    for (const ip of sources(7, 10)) seen.add(await whoServes(b.port, { sourceIp: ip }));
    expect([...seen].sort()).toEqual(['s0', 's1']);
    // A newcomer does not load the dead instance's verdict either.
    const c = await instance(b.prefix, 'C', servers);
    seen.clear();
    for (const ip of sources(8, 10)) seen.add(await whoServes(c.port, { sourceIp: ip }));
    expect([...seen].sort()).toEqual(['s0', 's1']);
  });

  test('Redis stopped: both keep serving; restarted: they resync', async () => {
    const servers = ['s0', 's1', 's2'].map((n) => h.identify(n));
    const [a, b] = await pair(servers);
    await stopRedis();
    await a.p.waitForLine(/cluster: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/, 10_000);
    await b.p.waitForLine(/cluster: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/, 10_000);
    expect(await metric(a, 'cluster_redis_up')).toBe(0);
    // Every connection through either instance is served meanwhile (a refused one would throw).
    const clients = sources(5, 40);
    const first = new Map<string, string>();
    for (const ip of clients) first.set(ip, await whoServes(a.port, { sourceIp: ip }));
    for (const ip of sources(6, 20)) expect(await whoServes(b.port, { sourceIp: ip })).toMatch(/^s\d$/);
    await api(a, 'POST', `/api/v1/groups/app/servers/127.0.0.1:${servers[2]!.port}/drain`);
    expect(await metric(a, 'cluster_redis_outages_total')).toBe(1);

    await startRedis(); // empty: A publishes what it changed meanwhile
    await a.p.waitForLine(/cluster: Redis at .* reachable again as instance A: \d+ shared item\(s\) loaded, \d+ local change\(s\) published/, 20_000);
    await b.p.waitForLine(/cluster: Redis at .* reachable again as instance B/, 20_000);
    await b.p.waitForLine(/enabled -> drain \(cluster: set by A\)/, 10_000);
    // B learns them by pub/sub or by loading the shared state when it reconnects, whichever comes
    // first: wait for what it knows, not for a count of messages.
    const knowsAll = async (): Promise<boolean> => {
      const r = (await api(b, 'GET', '/api/v1/groups/app/clients?limit=1000')) as { clients: { client: string }[] };
      const known = new Set(r.clients.map((c) => c.client));
      return clients.every((ip) => known.has(ip));
    };
    await waitFor(knowsAll, { what: 'B to know the clients A tracked while Redis was down', timeoutMs: 15_000 });
    // Clients of the drained server move (drain moves tracked clients); the others stay.
    const kept = clients.filter((ip) => first.get(ip) !== 's2');
    let same = 0;
    for (const ip of kept) if ((await whoServes(b.port, { sourceIp: ip })) === first.get(ip)) same++;
    expect(kept.length).toBeGreaterThan(20);
    expect(same / kept.length).toBeGreaterThanOrEqual(0.99);
  });
});
