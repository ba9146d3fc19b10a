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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bunPath } from '../harness/index.ts';

setDefaultTimeout(150_000);

const root = resolve(import.meta.dir, '../..');
const KEEPALIVED = ['/usr/sbin/keepalived', '/sbin/keepalived'].find((p) => existsSync(p));
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
const REDIS = ['/usr/bin/redis-server', '/usr/sbin/redis-server'].find((p) => existsSync(p));

function run(args: string[], allowFail = false): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  if (!allowFail && r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout ?? '';
}

/** Why the test cannot run here, or null. */
function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (IP === undefined) return 'needs iproute2 (ip)';
  if (KEEPALIVED === undefined) return 'needs keepalived (scripts/ensure-peers.sh installs it as root)';
  if (REDIS === undefined) return 'needs redis-server (scripts/ensure-peers.sh installs it as root)';
  const probe = `fkp${process.pid % 100000}`;
  const r = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) return `network namespaces are not allowed here: ${r.stderr.trim()}`;
  spawnSync(IP, ['netns', 'del', probe], { timeout: 5_000 });
  return null;
}

const why = unavailable();
if (why !== null) console.warn(`ha-cluster: skipped: ${why}`);

// Short unique names: interface names are at most 15 bytes.
const tag = String(process.pid % 100000);
const ns = { sw: `fks${tag}`, client: `fkc${tag}`, lb1: `fk1${tag}`, lb2: `fk2${tag}`, back: `fkb${tag}` };
const addr = { lb1: '10.78.0.1', lb2: '10.78.0.2', client: '10.78.0.10', back: '10.78.0.20', vip: '10.78.0.100' };
const PORT = 8080;
const ADMIN = 9900;
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-ha-cluster-'));

function inNs(name: string, cmd: string[]): string[] {
  return [IP!, 'netns', 'exec', name, ...cmd];
}

function start(name: string, cmd: string[], log: string): ChildProcess {
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
  child.on('exit', () => writeFileSync(join(dir, log), out.join('')));
  (child as ChildProcess & { output: string[] }).output = out;
  children.push(child);
  return child;
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      done();
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(t);
      done();
    });
    child.kill(signal);
  });
}

async function until<T>(what: string, ms: number, probe: () => T | null | undefined | Promise<T | null | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await Bun.sleep(50);
  }
}

function network(): void {
  for (const n of Object.values(ns)) run([IP!, 'netns', 'add', n]);
  for (const n of Object.values(ns)) run(inNs(n, [IP!, 'link', 'set', 'lo', 'up']));
  run(inNs(ns.sw, [IP!, 'link', 'add', 'br0', 'type', 'bridge']));
  run(inNs(ns.sw, [IP!, 'link', 'set', 'br0', 'up']));
  const hosts: [keyof typeof ns, string][] = [['client', addr.client], ['lb1', addr.lb1], ['lb2', addr.lb2], ['back', addr.back]];
  for (const [host, ip] of hosts) {
    const outer = `k${host}${tag}`.slice(0, 15);
    run([IP!, 'link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[host]]);
    run([IP!, 'link', 'set', outer, 'netns', ns.sw]);
    run(inNs(ns.sw, [IP!, 'link', 'set', outer, 'master', 'br0', 'up']));
    run(inNs(ns[host], [IP!, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']));
    run(inNs(ns[host], [IP!, 'link', 'set', 'eth0', 'up']));
  }
}

function teardown(): void {
  for (const n of Object.values(ns)) spawnSync(IP!, ['netns', 'del', n], { timeout: 5_000 });
}

/** The shipped template with this machine's values. */
function keepalivedConf(self: 'lb1' | 'lb2'): string {
  const values: Record<string, string> = {
    ROUTER_ID: self,
    STATE: self === 'lb1' ? 'MASTER' : 'BACKUP',
    PRIORITY: self === 'lb1' ? '150' : '100',
    INTERFACE: 'eth0',
    SELF: addr[self],
    PEER: self === 'lb1' ? addr.lb2 : addr.lb1,
    VIP: `${addr.vip}/16`,
    VRID: '52',
    CHECK: `${join(dir, 'fulcrum-check')} http://127.0.0.1:${ADMIN}/healthz`,
    PASSWORD: 'fulcrum',
  };
  return readFileSync(join(root, 'deploy/keepalived/keepalived.conf'), 'utf8').replace(/\{\{([A-Z_]+)\}\}/g, (_m, k: string) => values[k] ?? `{{${k}}}`);
}

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

// Connects to the VIP every 100 ms and prints "<ms since start> <server> <via>" or "<ms> <error>".
const PROBER = `
const t0 = Date.now();
async function once() {
  return await new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve('timeout'), 500);
    Bun.connect({ hostname: '${addr.vip}', port: ${PORT}, socket: {
      data(s, d) { text += Buffer.from(d).toString(); },
      close() { clearTimeout(timer); resolve(text.trim() || 'closed'); },
      error(s, e) { clearTimeout(timer); resolve('error'); },
      connectError() { clearTimeout(timer); resolve('refused'); },
    } }).catch(() => { clearTimeout(timer); resolve('refused'); });
  });
}
for (;;) { const a = await once(); console.log(Date.now() - t0, a); await Bun.sleep(100); }
`;

// An admin API call from inside a namespace: prints the status and the body.
const ADMIN_CALL = `
const [method, path] = process.argv.slice(2);
const r = await fetch('http://127.0.0.1:${ADMIN}' + path, { method, headers: { authorization: 'Bearer ${TOKEN}' }, signal: AbortSignal.timeout(5000) });
console.log(r.status, await r.text());
`;

const output = (c: ChildProcess): string => (c as ChildProcess & { output: string[] }).output.join('');

afterAll(async () => {
  await Promise.all(children.map((c) => stop(c)));
  if (IP !== undefined && why === null) teardown();
  if (process.env.FULCRUM_KEEP_HA_LOGS === undefined) rmSync(dir, { recursive: true, force: true });
  else console.log(`ha-cluster: logs in ${dir}`);
});

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
  return start('redis', inNs(ns.back, [REDIS!, '--port', '6379', '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no']), 'redis.log');
}

test.skipIf(why !== null)('the pair with a shared cluster: drain, tracking across a failover, Redis restarted', async () => {
  network();
  run(inNs(ns.client, [IP!, 'addr', 'add', `${CLIENTS[0]}/16`, 'dev', 'eth0']));
  for (const ip of CLIENTS.slice(1)) run(inNs(ns.client, [IP!, 'addr', 'add', `${ip}/16`, 'dev', 'eth0']));
  chmodSync(dir, 0o700);
  writeFileSync(join(dir, 'fulcrum-check'), readFileSync(join(root, 'deploy/keepalived/fulcrum-check')));
  chmodSync(join(dir, 'fulcrum-check'), 0o755);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  for (const [f, text] of [['backend.ts', BACKEND], ['client.ts', CLIENT], ['prober.ts', PROBER], ['admin.ts', ADMIN_CALL]] as const) writeFileSync(join(dir, f), text);
  const backend = start('backend', inNs(ns.back, [bunPath(), join(dir, 'backend.ts')]), 'backend.log');
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
    fulcrum[lb] = start(`fulcrum-${lb}`, inNs(ns[lb], [bunPath(), 'src/cli/main.ts', '--config', config]), `fulcrum-${lb}.log`);
  }
  const check = (lb: 'lb1' | 'lb2'): boolean => spawnSync(IP!, ['netns', 'exec', ns[lb], join(dir, 'fulcrum-check'), `http://127.0.0.1:${ADMIN}/healthz`], { timeout: 5_000 }).status === 0;
  await until('both Fulcrums to pass fulcrum-check', 20_000, () => check('lb1') && check('lb2'));
  await until('both Fulcrums connected to Redis', 10_000, () => metric('lb1', 'cluster_redis_up') === 1 && metric('lb2', 'cluster_redis_up') === 1);

  for (const lb of ['lb1', 'lb2'] as const) {
    const conf = join(dir, `keepalived-${lb}.conf`);
    writeFileSync(conf, keepalivedConf(lb));
    const pids = (n: string): string => join(dir, `${lb}-${n}.pid`);
    start(`keepalived-${lb}`, inNs(ns[lb], [KEEPALIVED!, '--dont-fork', '--log-console', '--log-detail', '--vrrp', '-f', conf, '-p', pids('main'), '-r', pids('vrrp'), '-c', pids('checkers')]), `keepalived-${lb}.log`);
  }
  const holds = (lb: 'lb1' | 'lb2'): boolean => run(inNs(ns[lb], [IP!, '-o', 'addr', 'show', 'dev', 'eth0']), true).includes(`${addr.vip}/`);
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
  const prober = start('prober', inNs(ns.client, [bunPath(), join(dir, 'prober.ts')]), 'prober.log');
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
  await stop(redis);
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
