/**
 * The access log: one line per finished connection with the termination code (each one that can
 * be provoked from outside), why that server was chosen, and bytes and times; the text format;
 * reopening on SIGHUP; pen's -l log still written beside it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, Harness, waitFor, type Backend, type RefusedPort } from '../harness/index.ts';
import { api, change, startWithAdmin, tempDir, waitForLogLine, type AdminFulcrum } from '../helpers/admin.ts';
import { blackhole, type Blackhole } from '../helpers/blackhole.ts';

setDefaultTimeout(60_000);

const LISTENERS = ['echo', 'ident', 'rst', 'refused', 'slow', 'denied', 'abuse', 'failover', 'emergency', 'stubborn'] as const;
type Name = (typeof LISTENERS)[number];

describe('access log (JSON)', () => {
  const h = new Harness();
  let f: AdminFulcrum;
  let log: string;
  const ports = {} as Record<Name, number>;
  let echo: Backend;
  let ident: Backend;
  let rst: Backend;
  let refused: RefusedPort;
  let hole: Blackhole;
  let abuse: Backend;
  let fo: Backend;
  let em: Backend;

  beforeAll(async () => {
    echo = h.echo();
    ident = h.identify('B');
    rst = h.reset({ afterBytes: 1 });
    refused = h.refuse();
    hole = h.add(await blackhole());
    abuse = h.identify('abuse');
    fo = h.identify('fo');
    em = h.identify('em');
    for (const n of LISTENERS) ports[n] = freePort();
    const dir = tempDir(h);
    log = join(dir, 'access.log');
    f = await startWithAdmin(h, {
      dir,
      ports: Object.values(ports),
      config: {
        global: { log_file: join(dir, 'pen.log'), log_format: 'fulcrum' },
        acls: { 1: ['deny 127.0.0.0/8'] },
        groups: {
          echo: { servers: [echo.address] },
          ident: { servers: [ident.address] },
          rst: { servers: [rst.address] },
          refused: { servers: [refused.address], blacklist: '30s' },
          slow: { servers: [hole.address], connect_timeout: '300ms' },
          denied: { client_acl: 1, servers: [echo.address] },
          abuse: { client_acl: 1, servers: [echo.address], abuse: abuse.address },
          failover: { tracking: false, servers: [refused.address, fo.address] },
          emergency: { servers: [refused.address], emergency: em.address },
          stubborn: { stubborn: true, servers: [refused.address] },
        },
        listeners: LISTENERS.map((n) => ({ name: n, listen: `127.0.0.1:${ports[n]}`, group: n })),
        access_log: { file: log, format: 'json' },
      },
    });
  });

  afterAll(() => h.close());

  const line = (listener: Name, end: string, extra: (r: Record<string, unknown>) => boolean = () => true) =>
    waitForLogLine(log, (r) => r.listener === listener && r.end === end && extra(r), `listener ${listener}, end ${end}`);

  test('client-closed: the client sent FIN first; the first choice is logged as the algorithm with its name', async () => {
    const c = await h.connect(ports.echo);
    await c.write('hi');
    expect((await c.readExactly(2)).toString()).toBe('hi');
    await c.end();
    await c.readAll();
    const r = await line('echo', 'client-closed');
    expect(r).toMatchObject({
      group: 'echo',
      server: echo.address,
      server_index: 0,
      why: 'algorithm',
      algorithm: 'roundrobin',
      failed: [],
      bytes_from_client: 2,
      bytes_to_client: 2,
    });
    expect(r.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(r.connect_ms).toBeGreaterThanOrEqual(0);
    expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    expect(Date.parse(String(r.time))).toBeGreaterThanOrEqual(Date.parse(String(r.start)));
  });

  test('a returning client is logged as tracked', async () => {
    const c = await h.connect(ports.echo);
    await c.write('again');
    await c.readExactly(5);
    await c.end();
    await c.readAll();
    const r = await line('echo', 'client-closed', (x) => x.bytes_from_client === 5);
    expect(r.why).toBe('tracked');
    expect(r.algorithm).toBeNull();
  });

  test('server-closed: the server sent FIN first', async () => {
    const c = await h.connect(ports.ident);
    expect((await c.readAll()).toString()).toBe('B\n');
    await c.close();
    const r = await line('ident', 'server-closed');
    expect(r).toMatchObject({ server: ident.address, bytes_to_client: 2, bytes_from_client: 0 });
  });

  test('client-reset: the client aborted with RST', async () => {
    const c = await h.connect(ports.echo);
    await c.write('x');
    await c.readExactly(1);
    c.reset();
    await line('echo', 'client-reset');
  });

  test('server-reset: the server aborted with RST, passed on to the client', async () => {
    const c = await h.connect(ports.rst);
    await c.write('x');
    expect(await c.closed).toBe('reset');
    const r = await line('rst', 'server-reset');
    expect(r.server).toBe(rst.address);
  });

  test('connect-failed, then no-server while the failed server is blacklisted', async () => {
    const c1 = await h.connect(ports.refused);
    expect(await c1.closed).toBe('fin');
    const failed = await line('refused', 'connect-failed');
    expect(failed).toMatchObject({ server: refused.address, why: 'algorithm', connect_ms: null, bytes_to_client: 0 });
    const c2 = await h.connect(ports.refused);
    expect(await c2.closed).toBe('fin');
    const none = await line('refused', 'no-server');
    expect(none).toMatchObject({ server: null, why: null, server_index: null });
  });

  test('connect-timeout: the server never completed the handshake', async () => {
    const c = await h.connect(ports.slow);
    expect(await c.closed).toBe('fin');
    const r = await line('slow', 'connect-timeout');
    expect(r).toMatchObject({ server: hole.address, connect_ms: null });
    expect(r.duration_ms).toBeGreaterThanOrEqual(250);
  });

  test('acl-denied: the client ACL refused the client', async () => {
    const c = await h.connect(ports.denied);
    expect(await c.closed).toBe('fin');
    const r = await line('denied', 'acl-denied');
    expect(r).toMatchObject({ server: null, why: null });
  });

  test('abuse: a client the ACL denies is sent to the abuse server', async () => {
    const c = await h.connect(ports.abuse);
    expect((await c.readAll()).toString()).toBe('abuse\n');
    await c.close();
    const r = await line('abuse', 'server-closed');
    expect(r).toMatchObject({ why: 'abuse', server: abuse.address, server_index: -2 });
  });

  test('failover: the log names the server whose connect failed before', async () => {
    // Round robin over [refused, fo]: one of two connections tries the refused server first.
    for (let i = 0; i < 2; i++) {
      const c = await h.connect(ports.failover);
      expect((await c.readAll()).toString()).toBe('fo\n');
      await c.close();
    }
    const r = await line('failover', 'server-closed', (x) => Array.isArray(x.failed) && x.failed.length === 1);
    expect(r).toMatchObject({ why: 'failover', server: fo.address, server_index: 1 });
    expect((r.failed as { server: string; error: string }[])[0]!.server).toBe(refused.address);
  });

  test('emergency: every server failed, the emergency server served', async () => {
    const c = await h.connect(ports.emergency);
    expect((await c.readAll()).toString()).toBe('em\n');
    await c.close();
    const r = await line('emergency', 'server-closed');
    expect(r).toMatchObject({ why: 'emergency', server: em.address, server_index: -1 });
    expect((r.failed as { server: string }[]).map((x) => x.server)).toEqual([refused.address]);
  });

  test('stubborn: the first choice failed and the group does not fail over', async () => {
    const c = await h.connect(ports.stubborn);
    expect(await c.closed).toBe('fin');
    await line('stubborn', 'stubborn');
  });

  test('closed-by-operator: DELETE /api/v1/connections/ID', async () => {
    const c = await h.connect(ports.echo);
    await c.write('op');
    await c.readExactly(2);
    const list = await api(f.base, '/api/v1/connections');
    const mine = (list.body.connections as { id: number; listener: string; bytes_from_client: number }[]).find((x) => x.listener === 'echo' && x.bytes_from_client === 2);
    expect(mine).toBeDefined();
    expect((await change(f.base, 'DELETE', `/api/v1/connections/${mine!.id}`)).status).toBe(200);
    expect(await c.closed).toBe('fin');
    const r = await line('echo', 'closed-by-operator');
    expect(r.id).toBe(mine!.id);
  });

  test('the -l log in Fulcrum\'s format (log_format: fulcrum) beside the access log', async () => {
    const pen = join(f.dir, 'pen.log');
    await waitFor(() => existsSync(pen) && readFileSync(pen, 'utf8').includes('end=server-closed'), { what: 'lines in the -l log' });
    expect(readFileSync(pen, 'utf8')).toMatch(/client=127\.0\.0\.1:\d+ server=\S+ why="\w+.*" bytes_in=\d+ bytes_out=\d+ connect_ms=-?\d+ duration_ms=\d+ end=[a-z-]+/);
  });

  test('SIGHUP reopens the file (rotation by mv), then shutdown is logged for open connections', async () => {
    const before = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').length;
    renameSync(log, log + '.1');
    f.proc.kill('SIGHUP');
    await waitFor(() => existsSync(log), { what: 'the access log to be reopened after SIGHUP' });
    const c = await h.connect(ports.ident);
    await c.readAll();
    await c.close();
    await line('ident', 'server-closed');
    expect(readFileSync(log + '.1', 'utf8').split('\n').filter((l) => l !== '').length).toBe(before);

    const open = await h.connect(ports.echo);
    await open.write('z');
    await open.readExactly(1);
    f.proc.kill('SIGTERM');
    expect(await f.proc.waitForExit(10_000)).toBe(0);
    const r = await line('echo', 'shutdown');
    expect(r.bytes_from_client).toBe(1);
  });
});

describe('access log (text)', () => {
  const h = new Harness();
  afterAll(() => h.close());

  function parseText(text: string): Record<string, string>[] {
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const m = /^(\S+) (.*)$/.exec(l)!;
        const out: Record<string, string> = { time: m[1]! };
        for (const kv of m[2]!.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[kv[1]!] = kv[2]!.startsWith('"') ? (JSON.parse(kv[2]!) as string) : kv[2]!;
        return out;
      });
  }

  test('idle-timeout and queue-full, one key=value line each', async () => {
    const hold = h.hold();
    const port = freePort();
    const dir = tempDir(h);
    const log = join(dir, 'access.txt');
    await startWithAdmin(h, {
      dir,
      ports: [port],
      config: {
        global: { idle_timeout: '1s', max_connections: 1, backlog: 0 },
        groups: { app: { servers: [hold.address] } },
        listeners: [{ name: 'idle', listen: `127.0.0.1:${port}`, group: 'app' }],
        access_log: { file: log, format: 'text' },
      },
    });
    const first = await h.connect(port);
    await first.write('x');
    await hold.waitForConnections(1);
    const second = await h.connect(port); // no slot (max_connections 1) and no room to wait (backlog 0)
    expect(await second.closed).toBe('fin');
    expect(await first.waitClosed(20_000)).toBe('fin'); // idle for a second (Bun checks socket timeouts every few seconds)
    let lines: Record<string, string>[] = [];
    await waitFor(() => (lines = existsSync(log) ? parseText(readFileSync(log, 'utf8')) : []).length >= 2, { what: 'two text lines' });
    const full = lines.find((l) => l.end === 'queue-full');
    const idle = lines.find((l) => l.end === 'idle-timeout');
    expect(full).toMatchObject({ listener: 'idle', group: 'app', server: '-', why: '-', bytes_from_client: '0' });
    expect(idle).toMatchObject({ listener: 'idle', group: 'app', server: hold.address, why: 'algorithm', algorithm: 'roundrobin', bytes_from_client: '1' });
    expect(Number(idle!.duration_ms)).toBeGreaterThanOrEqual(900);
    expect(idle!.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });
});

describe('access log: endings from the server lifecycle (queue, age, health)', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('all-full, queue-timeout, max-age and server-down', async () => {
    const [busy, busyQueued, downed] = [h.hold(), h.hold(), h.hold()];
    const echo = h.echo();
    const checkTarget = h.echo(); // the health endpoint of `downed` (its check_port)
    const names = ['full', 'queued', 'aged', 'downed'] as const;
    const ports = Object.fromEntries(names.map((n) => [n, freePort()])) as Record<(typeof names)[number], number>;
    const dir = tempDir(h);
    const log = join(dir, 'access.log');
    await startWithAdmin(h, {
      dir,
      ports: Object.values(ports),
      config: {
        groups: {
          full: { servers: [{ address: busy.address, max_connections: 1 }] },
          queued: { servers: [{ address: busyQueued.address, max_connections: 1 }], queue: { max: 5, timeout: '300ms' } },
          aged: { servers: [echo.address], max_connection_age: '500ms', max_connection_age_jitter: 0 },
          downed: {
            servers: [{ address: downed.address, check_port: checkTarget.port }],
            check: { type: 'tcp', interval: '200ms', timeout: '150ms', rise: 1, fall: 1 },
            on_server_down: 'close',
          },
        },
        listeners: names.map((n) => ({ name: n, listen: `127.0.0.1:${ports[n]}`, group: n })),
        access_log: { file: log, format: 'json' },
      },
    });
    const line = (listener: string, end: string) => waitForLogLine(log, (r) => r.listener === listener && r.end === end, `listener ${listener}, end ${end}`);

    // all-full: the only server is at max_connections and the group has no queue.
    const holder = await h.connect(ports.full);
    await holder.write('x');
    await busy.waitForConnections(1);
    const refused = await h.connect(ports.full);
    expect(await refused.closed).toBe('fin');
    expect(await line('full', 'all-full')).toMatchObject({ server: null, why: null, bytes_from_client: 0 });

    // queue-timeout: the client waits in the group's queue, and no slot frees in time.
    const holder2 = await h.connect(ports.queued);
    await holder2.write('x');
    await busyQueued.waitForConnections(1);
    const waiter = await h.connect(ports.queued);
    expect(await waiter.waitClosed(10_000)).toBe('fin');
    const timedOut = await line('queued', 'queue-timeout');
    expect(timedOut.duration_ms).toBeGreaterThanOrEqual(250);

    // max-age: an established connection is closed gracefully at its age limit.
    const old = await h.connect(ports.aged);
    await old.write('age');
    expect((await old.readExactly(3)).toString()).toBe('age');
    expect(await old.waitClosed(10_000)).toBe('fin');
    expect(await line('aged', 'max-age')).toMatchObject({ server: echo.address, bytes_from_client: 3, bytes_to_client: 3 });

    // server-down: the server's health endpoint stops answering; its connections are closed.
    const victim = await h.connect(ports.downed);
    await victim.write('x');
    await downed.waitForConnections(1);
    await checkTarget.close();
    expect(await victim.waitClosed(10_000)).toBe('fin');
    expect(await line('downed', 'server-down')).toMatchObject({ server: downed.address, why: 'algorithm' });
  });
});
