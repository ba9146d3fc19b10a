/**
 * Issue 14's "Done when", in one run: the active/standby pair of ha-pair.test.ts (namespaces, a
 * bridge, keepalived in lb1 and lb2 with the shipped files) whose two Fulcrums share state through
 * a redis-server in the backend namespace (`cluster: { redis }`, docs/cluster.md). In order:
 * a drain made through lb2's admin API is obeyed by lb1 (which holds the virtual address); 200
 * clients from as many source addresses are tracked through lb1; lb1's Fulcrum is killed and the
 * virtual address answers from lb2 (the time printed, the wait bounded at 10 s); the same clients
 * reach the same servers through lb2 (≥ 99%); redis-server is stopped and restarted while a
 * client keeps connecting, and no connection is refused meanwhile.
 *
 * Needs root, `ip`, keepalived and redis-server (scripts/ensure-peers.sh installs them); skipped
 * with a message otherwise. Every namespace and process is removed at the end, also on failure.
 */
import { afterAll, expect, setDefaultTimeout, test } from 'bun:test';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bunPath } from '../harness/index.ts';
import { HaLab, IP, labUnavailable, proberScript, REDIS, run, stopChild, until } from '../helpers/ha-lab.ts';

setDefaultTimeout(150_000);

const why = labUnavailable('k', { redis: true });
if (why !== null) console.warn(`ha-cluster: skipped: ${why}`);

const PORT = 8080;
const ADMIN = 9900;
const lab = new HaLab({ letter: 'k', net: '10.78', mask: 16, vrid: 52, adminPort: ADMIN });
const { ns, addr, dir } = lab;

const TOKEN = 'ha-cluster-token-0123456789abcdef';
const CLIENTS = Array.from({ length: 200 }, (_, i) => `10.78.1.${i + 1}`);
const SERVERS = ['s0', 's1', 's2', 's3'];

// Each server answers a connection with its name and the address the connection came from (which balancer).
const BACKEND = `
const names = ${JSON.stringify(SERVERS)};
names.forEach((name, i) => Bun.listen({ hostname: '0.0.0.0', port: 9000 + i, socket: {
  open(s) { s.write(name + ' ' + s.remoteAddress + '\\n'); s.end(); }, data() {}, close() {}, error() {},
} }));
console.log('backend ready');
`;

// One connection per source address given on the command line (20 at a time); prints {source: answer}.
const CLIENT = `
import net from 'node:net';
const sources = process.argv.slice(2);
const out = {};
function once(localAddress) {
  return new Promise((resolve) => {
    let text = '';
    const s = net.connect({ host: '${addr.vip}', port: ${PORT}, localAddress });
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, 3000);
    s.on('data', (d) => (text += d.toString()));
    s.on('close', () => { clearTimeout(timer); resolve(text.trim() || 'closed'); });
    s.on('error', (e) => { clearTimeout(timer); resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'error'); });
  });
}
for (let i = 0; i < sources.length; i += 20) {
  const batch = sources.slice(i, i + 20);
  const answers = await Promise.all(batch.map(once));
  batch.forEach((src, k) => (out[src] = answers[k]));
}
console.log(JSON.stringify(out));
`;

const PROBER = proberScript(addr.vip, PORT);

// An admin API call from inside a namespace: prints the status and the body.
const ADMIN_CALL = `
const [method, path] = process.argv.slice(2);
const r = await fetch('http://127.0.0.1:${ADMIN}' + path, { method, headers: { authorization: 'Bearer ${TOKEN}' }, signal: AbortSignal.timeout(5000) });
console.log(r.status, await r.text());
`;

const output = (c: ChildProcess): string => (c as ChildProcess & { output: string[] }).output.join('');

afterAll(() => lab.cleanup('ha-cluster', why === null));

/** The clients' answers through the VIP, from the client namespace: source → "server via" (or an error). */
function clients(sources: string[]): Record<string, string> {
  const r = spawnSync(IP!, ['netns', 'exec', ns.client, bunPath(), join(dir, 'client.ts'), ...sources], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`clients failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
}

function admin(lb: 'lb1' | 'lb2', method: string, path: string): string {
  const r = spawnSync(IP!, ['netns', 'exec', ns[lb], bunPath(), join(dir, 'admin.ts'), method, path], { encoding: 'utf8', timeout: 15_000 });
  return r.stdout.trim();
}

function metric(lb: 'lb1' | 'lb2', name: string): number {
  const m = new RegExp(`^fulcrum_${name} (\\S+)$`, 'm').exec(admin(lb, 'GET', '/metrics'));
  return m === null ? NaN : Number(m[1]);
}

function startRedis(): ChildProcess {
  return lab.start(lab.inNs('back', [REDIS!, '--port', '6379', '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no']), 'redis.log');
}

test.skipIf(why !== null)('the pair with a shared cluster: drain, tracking across a failover, Redis restarted', async () => {
  lab.network();
  run(lab.inNs('client', [IP!, 'addr', 'add', `${CLIENTS[0]}/16`, 'dev', 'eth0']));
  for (const ip of CLIENTS.slice(1)) run(lab.inNs('client', [IP!, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']));
  lab.installCheckScript();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  for (const [f, text] of [['backend.ts', BACKEND], ['client.ts', CLIENT], ['prober.ts', PROBER], ['admin.ts', ADMIN_CALL]] as const) writeFileSync(join(dir, f), text);
  const backend = lab.start(lab.inNs('back', [bunPath(), join(dir, 'backend.ts')]), 'backend.log');
  await until('the backend', 10_000, () => output(backend).includes('backend ready'));
  let redis = startRedis();
  await until('redis-server', 10_000, () => output(redis).includes('Ready to accept connections'));

  const fulcrum = {} as Record<'lb1' | 'lb2', ChildProcess>;
  for (const lb of ['lb1', 'lb2'] as const) {
    const config = join(dir, `${lb}.yaml`);
    writeFileSync(
      config,
      [
        `cluster: {redis: "redis://${addr.back}:6379", key_prefix: "ha:", instance: ${lb}}`,
        `admin: {listen: "127.0.0.1:${ADMIN}", token_file: ${join(dir, 'token')}}`,
        'groups:',
        '  web:',
        '    algorithm: roundrobin',
        '    tracking: true',
        `    servers: [${SERVERS.map((_, i) => `${addr.back}:${9000 + i}`).join(', ')}]`,
        'listeners:',
        `  - listen: 0.0.0.0:${PORT}`,
        '    group: web',
        '',
      ].join('\n'),
    );
    fulcrum[lb] = lab.start(lab.inNs(lb, [bunPath(), 'src/cli/main.ts', '--config', config]), `fulcrum-${lb}.log`);
  }
  await until('both Fulcrums to pass fulcrum-check', 20_000, () => lab.fulcrumCheck('lb1') && lab.fulcrumCheck('lb2'));
  await until('both Fulcrums connected to Redis', 10_000, () => metric('lb1', 'cluster_redis_up') === 1 && metric('lb2', 'cluster_redis_up') === 1);

  for (const lb of ['lb1', 'lb2'] as const) lab.startKeepalived(lb);
  const holds = (lb: 'lb1' | 'lb2'): boolean => lab.holds(lb);
  await until('lb1 to hold the virtual address', 20_000, () => holds('lb1'));

  // A drain made through lb2's admin API is obeyed by lb1, which serves the virtual address.
  expect(admin('lb2', 'POST', `/api/v1/groups/web/servers/${addr.back}:9003/drain`)).toMatch(/^200 /);
  await until("lb1 to apply lb2's drain", 10_000, () => /enabled -> drain \(cluster: set by lb2\)/.test(output(fulcrum.lb1)));

  // Clients tracked through lb1 (none sent to the drained s3).
  const before = clients(CLIENTS);
  const answers = Object.values(before);
  expect(answers.every((a) => a.endsWith(` ${addr.lb1}`))).toBe(true);
  expect(answers.some((a) => a.startsWith('s3 '))).toBe(false);
  expect(new Set(answers.map((a) => a.split(' ')[0])).size).toBe(3);
  await until('lb2 to hear of every tracked client', 15_000, () => metric('lb2', 'cluster_changes_received_total') >= CLIENTS.length);

  // lb1's Fulcrum killed: the virtual address answers from lb2.
  const prober = lab.start(lab.inNs('client', [bunPath(), join(dir, 'prober.ts')]), 'prober.log');
  const lines = (): string[][] => output(prober).split('\n').filter((l) => l.includes(' ')).map((l) => l.split(' '));
  await until('an answer through lb1', 10_000, () => lines().some((a) => a[2] === addr.lb1));
  const seenBefore = lines().length;
  const killedAt = Date.now();
  fulcrum.lb1.kill('SIGKILL');
  const answeredAt = await until('an answer through lb2 after lb1 was killed', 10_000, () => (lines().slice(seenBefore).some((a) => a[2] === addr.lb2) ? Date.now() : null));
  console.log(`ha-cluster: lb1's Fulcrum killed -> the virtual address answered through lb2 after ${answeredAt - killedAt} ms`);
  expect(holds('lb2')).toBe(true);

  // The same clients reach the same servers through lb2.
  const after = clients(CLIENTS);
  let same = 0;
  for (const ip of CLIENTS) if (after[ip] === `${before[ip]!.split(' ')[0]} ${addr.lb2}`) same++;
  console.log(`ha-cluster: ${same}/${CLIENTS.length} tracked clients reached the same server through lb2`);
  expect(same / CLIENTS.length).toBeGreaterThanOrEqual(0.99);

  // redis-server stopped and restarted: no connection refused meanwhile.
  const fromLine = lines().length;
  await stopChild(redis);
  await until('lb2 to notice Redis is gone', 10_000, () => /cluster: Redis at .* is unreachable/.test(output(fulcrum.lb2)));
  const during = clients(CLIENTS.slice(0, 50));
  expect(Object.values(during).every((a) => /^s[0-2] /.test(a))).toBe(true);
  redis = startRedis();
  await until('lb2 to resync with the restarted Redis', 20_000, () => /cluster: Redis at .* reachable again as instance lb2/.test(output(fulcrum.lb2)));
  await until('two more probes', 5_000, () => lines().length >= fromLine + 2 + 1);
  const window = lines().slice(fromLine);
  const failed = window.filter((a) => !/^s[0-2]$/.test(a[1] ?? ''));
  console.log(`ha-cluster: Redis stopped and restarted: ${window.length} probes, ${failed.length} failed`);
  expect(failed).toEqual([]);
});
