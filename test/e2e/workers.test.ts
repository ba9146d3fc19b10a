/**
 * --workers (docs/workers.md): the real CLI with two worker processes sharing the port, checked
 * for what makes them one balancer — tracking and hashing agree whichever worker accepts, limits
 * hold across workers, health is checked once, stats show the sum, a killed worker is replaced
 * without touching the other's connections, reloads reach every worker, and a stop leaves
 * nothing behind. Every scenario first proves that both workers accepted connections (their
 * counters in SIGUSR1's stats), so that a pass cannot come from one worker doing all the work.
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { penHashValue, parseClientIp } from '../../src/core/ip.ts';
import { bunPath, freePort, payload, pidAlive, repoRoot, sha256, useHarness, waitFor, whoServes, type Client, type RunningProcess } from '../harness/index.ts';

setDefaultTimeout(60_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-workers-'));

interface WorkerStats {
  pid: number;
  accepted: number;
  connections: number;
  waiting: number;
}

interface Stats {
  text: string;
  connections: number;
  waiting: number;
  accepted: number;
  workers: WorkerStats[];
}

/** Sends SIGUSR1 and parses the block it prints (totals, and one entry per worker). */
async function stats(p: RunningProcess): Promise<Stats> {
  const from = p.lines().length;
  p.kill('SIGUSR1');
  const block = await waitFor(
    () => {
      const lines = p.lines().slice(from).map((l) => l.text);
      const start = lines.findIndex((l) => /^fulcrum \d+: up/.test(l));
      const end = lines.findIndex((l, i) => i > start && l.includes('workers:'));
      return start >= 0 && end > start ? lines.slice(start, end + 1).join('\n') : null;
    },
    { what: 'the SIGUSR1 stats', details: () => p.describe() },
  );
  const head = /: up \d+ s, (\d+) connections \((\d+) waiting\), (\d+) accepted/.exec(block)!;
  const workers = [...block.matchAll(/worker \d+ \(pid (\d+)(?: starting)?\): (\d+) accepted, (\d+) connections, (\d+) waiting/g)].map((m) => ({
    pid: Number(m[1]),
    accepted: Number(m[2]),
    connections: Number(m[3]),
    waiting: Number(m[4]),
  }));
  return { text: block, connections: Number(head[1]), waiting: Number(head[2]), accepted: Number(head[3]), workers };
}

/** Starts fulcrum with two workers (-d for the readiness line) on a fresh port. */
async function startWorkers(args: string[], port = freePort()): Promise<{ p: RunningProcess; port: number }> {
  const p = await h.startFulcrum(['-d', '--workers=2', ...args.map((a) => (a === 'PORT' ? `127.0.0.1:${port}` : a))], { port, readyLine: /2 workers ready/ });
  return { p, port };
}

/** Until both workers have accepted at least once: more connections from `source` (whoServes). */
async function expectBothWorkersAccepted(p: RunningProcess): Promise<Stats> {
  const s = await stats(p);
  expect(s.workers.length).toBe(2);
  expect(s.workers.every((w) => w.accepted > 0)).toBe(true);
  expect(s.accepted).toBe(s.workers[0]!.accepted + s.workers[1]!.accepted);
  return s;
}

function shmFiles(pid: number): string[] {
  return readdirSync('/dev/shm').filter((n) => n.startsWith(`fulcrum-${pid}-`));
}

describe('fulcrum --workers 2', () => {
  test('client tracking: every connection of a source address reaches the same server, whichever worker accepts it', async () => {
    const a = h.identify('a');
    const b = h.identify('b');
    const { p, port } = await startWorkers(['PORT', a.address, b.address]);
    const seen = new Map<string, Set<string>>();
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      const names = new Set<string>();
      for (let i = 0; i < 12; i++) names.add(await whoServes(port, { sourceIp: ip }));
      seen.set(ip, names);
    }
    for (const [ip, names] of seen) expect([ip, names.size]).toEqual([ip, 1]);
    // Both servers are used (round robin per worker for new clients), and both workers accepted.
    expect(new Set([...seen.values()].flatMap((s) => [...s])).size).toBe(2);
    const s = await expectBothWorkersAccepted(p);
    expect(s.accepted).toBe(48);
  });

  test('-N hashing sends each address where pen would, in every worker', async () => {
    const a = h.identify('a');
    const b = h.identify('b');
    const c = h.identify('c');
    const { p, port } = await startWorkers(['-N', 'PORT', a.address, b.address, c.address]);
    const names = ['a', 'b', 'c'];
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']) {
      const expected = names[penHashValue(parseClientIp(ip)) % 3];
      for (let i = 0; i < 6; i++) expect([ip, await whoServes(port, { sourceIp: ip })]).toEqual([ip, expected!]);
    }
    await expectBothWorkersAccepted(p);
  });

  test("a server's maxc holds across workers", async () => {
    const a = h.hold();
    const b = h.hold();
    const { p, port } = await startWorkers(['-r', 'PORT', `${a.address}:2`, `${b.address}:2`]);
    const clients: Client[] = [];
    const accepted = async (): Promise<boolean> => (await stats(p)).workers.every((w) => w.accepted > 0);
    while (clients.length < 12 || !(await accepted())) {
      clients.push(await h.connect(port));
      expect(clients.length).toBeLessThan(60);
    }
    // Every client is either forwarded (held open) or refused (closed) once all are settled.
    await waitFor(() => a.active + b.active + clients.filter((c) => c.closeKind !== undefined).length === clients.length, {
      what: 'every client forwarded or refused',
      details: () => `a ${a.active}, b ${b.active}, closed ${clients.filter((c) => c.closeKind !== undefined).length}\n${p.describe()}`,
    });
    expect([a.connections, b.connections]).toEqual([2, 2]);
    await expectBothWorkersAccepted(p);
    // Fulcrum counts a connection when its connect completes, just after the backend did.
    await waitFor(async () => /server 0 127\.0\.0\.1:\d+: up, 2 connections[^]*server 1 127\.0\.0\.1:\d+: up, 2 connections/.test((await stats(p)).text), {
      what: 'both servers at 2 connections in the stats',
    });
  });

  test('-x holds across workers; a slot freed in one worker serves a client waiting in the other', async () => {
    const a = h.identify('a', { after: 'hold' }); // an admitted client gets "a\n", a waiting one nothing
    const { p, port } = await startWorkers(['-x', '4', 'PORT', a.address]);
    // Open clients one at a time; the stats say which worker took each (its connections or its
    // waiting count went up). Stop once some worker A holds an admitted client while the other
    // worker B has one waiting.
    const worker = new Map<Client, number>();
    let before = [0, 0];
    let pair: { A: number; B: number } | null = null;
    for (let i = 0; i < 40 && (pair === null || worker.size < 10); i++) {
      const c = await h.connect(port);
      const now = await waitFor(
        async () => {
          const s = await stats(p);
          return s.connections + s.waiting === worker.size + 1 ? s : null;
        },
        { what: `client ${worker.size + 1} admitted or waiting`, details: () => p.describe() },
      );
      const counts = now.workers.map((w) => w.connections + w.waiting);
      worker.set(c, counts.findIndex((n, k) => n > before[k]!));
      before = counts;
      const A = now.workers.findIndex((w) => w.connections > 0);
      if (A >= 0 && now.workers[1 - A]!.waiting > 0) pair = { A, B: 1 - A };
    }
    expect(pair).not.toBeNull();
    const { A, B } = pair!;
    const admitted = (c: Client): boolean => c.bytesReceived > 0;
    // Never more than 4 at the backend, whichever worker admitted them.
    const total = worker.size;
    await waitFor(() => [...worker.keys()].filter(admitted).length === 4, { what: '4 clients admitted' });
    let s = await stats(p);
    expect([s.connections, s.waiting, a.connections]).toEqual([4, total - 4, 4]);
    // Free A's slots until A has nobody waiting (A's own waiters take them first), then once more:
    // that slot can only go to B's waiting client, through the shared count.
    const servedBefore = (): number => [...worker.keys()].filter(admitted).length;
    for (;;) {
      s = await stats(p);
      const last = s.workers[A]!.waiting === 0;
      const victim = [...worker].find(([c, w]) => w === A && admitted(c) && c.closeKind === undefined)?.[0];
      expect(victim).toBeDefined();
      const bWaiting = s.workers[B]!.waiting;
      const served = servedBefore();
      victim!.reset();
      worker.delete(victim!);
      await waitFor(() => servedBefore() === served, { what: 'a waiting client admitted', details: () => p.describe() });
      if (last) {
        s = await stats(p);
        expect(s.workers[B]!.waiting).toBe(bWaiting - 1);
        break;
      }
    }
    expect(a.active).toBe(4);
    s = await stats(p);
    expect(s.connections).toBe(4);
  });

  test('health is checked once, by the primary, and its verdict reaches every worker', async () => {
    const a = h.identify('a');
    const b = h.identify('b');
    const { p, port } = await startWorkers(['-r', '--check', 'tcp', '--check-interval', '100', '--rise', '1', '--fall', '1', 'PORT', a.address, b.address]);
    // Without traffic, every connection a server sees is a check: exactly the primary's count
    // (or one more, in flight). A checker in each worker would make it about three times as many.
    const checked = await waitFor(
      async () => {
        const s = await stats(p);
        const m = /server 0 127\.0\.0\.1:\d+: up, .* checks (\d+) passed/.exec(s.text);
        return m !== null && Number(m[1]) >= 10 ? Number(m[1]) : null;
      },
      { what: '10 checks of server 0', details: () => p.describe() },
    );
    expect(a.connections - checked).toBeGreaterThanOrEqual(0);
    expect(a.connections - checked).toBeLessThanOrEqual(2);
    // Server 0 goes down: the primary sees it, every worker stops using it.
    await a.close();
    await p.waitForLine(/server 0 .* is DOWN: tcp check/, 10_000);
    const names = new Set<string>();
    for (let i = 0; i < 16; i++) names.add(await whoServes(port));
    expect([...names]).toEqual(['b']);
    await expectBothWorkersAccepted(p);
  });

  test('kill -9 of a worker: it is replaced, its connections are lost, the other worker’s transfer goes on', async () => {
    const e = h.echo();
    const { p, port } = await startWorkers(['PORT', e.address]);
    // Open connections until each worker holds one; the stats say which worker took each.
    const owner = new Map<Client, number>();
    let before = [0, 0];
    for (let i = 0; i < 40 && new Set(owner.values()).size < 2; i++) {
      const c = await h.connect(port);
      await c.write('x');
      expect((await c.readExactly(1)).toString()).toBe('x');
      const now = await stats(p);
      owner.set(c, now.workers.findIndex((w, k) => w.connections > before[k]!));
      before = now.workers.map((w) => w.connections);
    }
    expect(new Set(owner.values())).toEqual(new Set([0, 1]));
    const s = await stats(p);
    const transferClient = [...owner.keys()][0]!;
    const survivor = owner.get(transferClient)!;
    const victim = s.workers[1 - survivor]!;
    const data = payload(4 << 20, 9);
    const reading = transferClient.readAll(30_000);
    await transferClient.write(data.subarray(0, 1 << 20));
    process.kill(victim.pid, 'SIGKILL');
    await p.waitForLine(new RegExp(`worker \\d \\(pid ${victim.pid}\\) killed by SIGKILL; \\d+ connection\\(s\\) lost; starting a replacement`), 10_000);
    // The victim's connections are gone; the survivor's others still answer.
    for (const [c, w] of owner) {
      if (w !== survivor) {
        await c.waitClosed(10_000);
      } else if (c !== transferClient) {
        await c.write('again');
        expect((await c.readExactly(5)).toString()).toBe('again');
      }
    }
    await transferClient.write(data.subarray(1 << 20));
    await transferClient.end();
    const back = Buffer.from(await reading);
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
    // Replaced: a new pid serves, the totals counted only the survivor's connection meanwhile.
    await waitFor(
      async () => {
        const now = await stats(p);
        return now.workers.length === 2 && now.workers.every((w) => w.pid !== victim.pid && pidAlive(w.pid)) && now.text.includes('1 replaced');
      },
      { what: 'a replacement worker', details: () => p.describe() },
    );
    await waitFor(() => p.lines().some((l) => /2 workers ready|worker \d serving/.test(l.text)), { what: 'the replacement serving' });
    for (let i = 0; i < 8; i++) {
      const c = await h.connect(port);
      await c.write('y');
      expect((await c.readExactly(1)).toString()).toBe('y');
      await c.close();
    }
    for (const c of owner.keys()) await c.close();
    await waitFor(async () => (await stats(p)).connections === 0, { what: 'no connections left', details: () => p.describe() });
  });

  test('on_server_down: close — a server the primary marks down loses its connections in every worker', async () => {
    const a = h.identify('a', { after: 'echo' });
    const b = h.identify('b', { after: 'echo' });
    const healthA = h.echo();
    const healthB = h.echo();
    const port = freePort();
    const file = join(dir, `down-${port}.yaml`);
    writeFileSync(
      file,
      `
global:
  debug: 1
  workers: 2
checks:
  t: {type: tcp, interval: 100ms, timeout: 500ms, rise: 1, fall: 1}
groups:
  app:
    check: t
    tracking: false
    on_server_down: close
    servers:
      - {address: "${a.address}", check_port: ${healthA.port}}
      - {address: "${b.address}", check_port: ${healthB.port}}
listeners:
  - listen: 127.0.0.1:${port}
    group: app
`,
    );
    const p = await h.startFulcrum(['--config', file], { port, readyLine: /2 workers ready/ });
    // Connections to each server in each worker: the stats say which worker took each client.
    const held: { c: Client; server: string; worker: number }[] = [];
    let before = [0, 0];
    const onA = (): Set<number> => new Set(held.filter((x) => x.server === 'a').map((x) => x.worker));
    for (let i = 0; i < 60 && (onA().size < 2 || held.length < 6); i++) {
      const c = await h.connect(port);
      const server = (await c.readLine()).trim();
      const now = await stats(p);
      held.push({ c, server, worker: now.workers.findIndex((w, k) => w.connections > before[k]!) });
      before = now.workers.map((w) => w.connections);
    }
    expect(onA()).toEqual(new Set([0, 1]));
    await healthA.close();
    await p.waitForLine(/server 0 .* is DOWN: tcp check t/, 10_000);
    for (const x of held) {
      if (x.server === 'a') {
        expect(await x.c.waitClosed(10_000)).toBe('fin');
      } else {
        await x.c.write('still\n');
        expect((await x.c.readLine()).trim()).toBe('still');
      }
    }
    await p.waitForLine(/fulcrum worker 0: group app server 0 .*: closed \d+ connection\(s\) of the server marked down/, 5_000);
    await p.waitForLine(/fulcrum worker 1: group app server 0 .*: closed \d+ connection\(s\) of the server marked down/, 5_000);
  });

  test('SIGHUP reloads the config file in every worker', async () => {
    const a = h.identify('a');
    const b = h.identify('b');
    const port = freePort();
    const file = join(dir, `reload-${port}.yaml`);
    const config = (server: string): string => `
global:
  debug: 1
  workers: 2
groups:
  app:
    tracking: false
    servers: ["${server}"]
listeners:
  - listen: 127.0.0.1:${port}
    group: app
`;
    writeFileSync(file, config(a.address));
    const p = await h.startFulcrum(['--config', file], { port, readyLine: /2 workers ready/ });
    for (let i = 0; i < 6; i++) expect(await whoServes(port)).toBe('a');
    writeFileSync(file, config(b.address));
    p.kill('SIGHUP');
    await p.waitForLine(/fulcrum worker 0\[debug1\]: configuration 1 applied: server 127\.0\.0\.1:\d+ added/, 10_000);
    await p.waitForLine(/fulcrum worker 1\[debug1\]: configuration 1 applied: server 127\.0\.0\.1:\d+ added/, 10_000);
    for (let i = 0; i < 16; i++) expect(await whoServes(port)).toBe('b');
    await expectBothWorkersAccepted(p);
  });

  test('the control port, status file and metrics show the sums; control commands reach every worker', async () => {
    const a = h.hold();
    const b = h.hold();
    const ctlPort = freePort();
    const adminPort = freePort();
    const statusFile = join(dir, `status-${ctlPort}.html`);
    const asRoot = process.getuid?.() === 0;
    const { p, port } = await startWorkers([
      ...(asRoot ? ['-u', 'root'] : []),
      '-r',
      '-C',
      `127.0.0.1:${ctlPort}`,
      '-w',
      statusFile,
      '--admin',
      `127.0.0.1:${adminPort}`,
      'PORT',
      a.address,
      b.address,
    ]);
    const ctl = async (...words: string[]): Promise<string> => {
      const r = Bun.spawn([bunPath(), 'src/cli/main.ts', 'ctl', `127.0.0.1:${ctlPort}`, ...words], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe' });
      const [out, err, code] = await Promise.all([new Response(r.stdout).text(), new Response(r.stderr).text(), r.exited]);
      if (code !== 0) throw new Error(`ctl ${words.join(' ')}: ${code} ${out}${err}`);
      return out;
    };
    for (let i = 0; i < 8; i++) await h.connect(port);
    await waitFor(() => a.active + b.active === 8, { what: '8 connections held', details: () => p.describe() });
    await expectBothWorkersAccepted(p);
    // pen's `servers`: each server's connections, summed over the workers (counted by Fulcrum
    // when the connect completes, just after the backend counts it).
    await waitFor(
      async () => {
        const conns = [...(await ctl('servers')).matchAll(/ conn (\d+) /g)].map((m) => Number(m[1]));
        return conns.length === 2 && conns[0] === a.active && conns[1] === b.active;
      },
      { what: "`servers` showing each server's connections" },
    );
    // The -w status page (written on SIGUSR1) and /metrics count all workers' connections.
    p.kill('SIGUSR1');
    await waitFor(() => existsSync(statusFile) && readFileSync(statusFile, 'utf8').includes('500 max, 8 used'), { what: 'the status page with 8 connections' });
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      return /^fulcrum_connections_current 8$/m.test(text) ? text : null;
    }, { what: '/metrics' });
    expect(metrics).toMatch(/^fulcrum_connections_accepted_total 8$/m);
    expect(metrics).toMatch(/^fulcrum_listener_connections_current\{listener="default",[^}]*\} 8$/m);
    const perServer = [...metrics.matchAll(/^fulcrum_server_connections_current\{[^}]*\} (\d+)$/gm)].map((m) => Number(m[1]));
    expect(perServer).toEqual([a.active, b.active]);
    // A client ACL set on the control port applies in every worker.
    await ctl('acl', '1', 'deny', '127.0.0.9');
    await ctl('client_acl', '1');
    const before = a.connections + b.connections;
    const acceptedBefore = (await stats(p)).workers.map((w) => w.accepted);
    let denied = 0;
    for (;;) {
      const c = await h.connect(port, { localAddress: '127.0.0.9' });
      expect(await c.waitClosed(5_000)).toBe('fin');
      denied++;
      // The worker counts the ending right after sending the FIN: wait for it.
      const now = await waitFor(
        async () => {
          const st = await stats(p);
          return st.text.includes(`acl-denied=${denied}`) ? st : null;
        },
        { what: `${denied} connections denied`, details: () => p.describe() },
      );
      if (denied >= 6 && now.workers.every((w, k) => w.accepted > acceptedBefore[k]!)) break;
      expect(denied).toBeLessThan(40);
    }
    expect(a.connections + b.connections).toBe(before);
    expect(await ctl('close', '1').catch((e: Error) => e.message)).toMatch(/connections are held by the worker processes/);
    const listing = await fetch(`http://127.0.0.1:${adminPort}/api/v1/connections`);
    expect([listing.status, ((await listing.json()) as { error: { code: string } }).error.code]).toEqual([409, 'held_by_workers']);
  });

  test('SIGTERM stops the workers and removes the shared memory and the pid file', async () => {
    const e = h.echo();
    const pidFile = join(dir, `fulcrum-${process.pid}-${Date.now()}.pid`);
    const { p, port } = await startWorkers(['-p', pidFile, 'PORT', e.address]);
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(p.pid));
    expect(shmFiles(p.pid).length).toBeGreaterThanOrEqual(3);
    const workers = (await stats(p)).workers.map((w) => w.pid);
    const c = await h.connect(port);
    await c.write('z');
    expect((await c.readExactly(1)).toString()).toBe('z');
    p.kill('SIGTERM');
    expect(await p.waitForExit(15_000)).toBe(0);
    await c.waitClosed(5_000);
    expect(existsSync(pidFile)).toBe(false);
    expect(shmFiles(p.pid)).toEqual([]);
    await waitFor(() => workers.every((pid) => !pidAlive(pid)), { what: 'the workers gone' });
  });

  test('a primary killed with SIGKILL leaves no worker behind', async () => {
    const e = h.echo();
    const { p } = await startWorkers(['PORT', e.address]);
    const workers = (await stats(p)).workers.map((w) => w.pid);
    h.defer(() => {
      for (const f of shmFiles(p.pid)) rmSync(join('/dev/shm', f), { force: true });
    });
    p.kill('SIGKILL');
    await p.waitForExit(10_000);
    // Their IPC channel closes: each worker stops on its own.
    await waitFor(() => workers.every((pid) => !pidAlive(pid)), { what: 'the workers of a killed primary to exit' });
  });

  test('a Unix socket listener is refused with --workers', async () => {
    const e = h.echo();
    const path = h.socketPath('w');
    const proc = Bun.spawn(['./node_modules/.bin/bun', 'src/cli/main.ts', '-f', '--workers', '2', path, e.address], { stdout: 'pipe', stderr: 'pipe' });
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(2);
    expect(err).toContain('cannot share the Unix socket listener');
  });
});
