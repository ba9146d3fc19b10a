// Tests of the test harness itself: if a backend, client or runner lied, every later feature test
// built on it would lie too. Everything runs over real loopback sockets and real processes.
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync } from 'node:fs';
import {
  Harness,
  TimeoutError,
  connect,
  download,
  echo,
  freePort,
  isListening,
  listenPortFromArgs,
  parseDigestReply,
  payload,
  penAvailable,
  pendingAfter,
  pidAlive,
  sequence,
  sha256,
  startFulcrum,
  tally,
  transfer,
  upload,
  useHarness,
  waitFor,
  whoServes,
} from '../harness/index.ts';

const FAKE = 'test/harness/fixtures/fake-balancer.ts';
/** More than loopback's kernel buffers hold for a reader that does not read (~4 MB here), so a writer must block. */
const MORE_THAN_KERNEL_BUFFERS = 12 * 1024 * 1024;

// Bounded waits inside each test are far shorter; this only caps a test that would otherwise hang.
setDefaultTimeout(20_000);

const h = useHarness();

describe('echo', () => {
  test('echoes, and answers our FIN with its own after the echo (half-close)', async () => {
    const server = h.echo();
    const c = await h.connect(server.port);
    await c.write('hello ');
    expect((await c.readExactly(6)).toString()).toBe('hello ');
    // We stop sending but keep reading: the echo of the last bytes must still arrive, then FIN.
    await c.end('world');
    expect((await c.readAll()).toString()).toBe('world');
    expect(await c.closed).toBe('fin');
    expect(server.connections).toBe(1);
    expect(server.bytesReceived).toBe(11);
  });

  test("a backend's FIN is a half-close: it still reads what the client sends afterwards", async () => {
    const received: Buffer[] = [];
    const server = h.custom('greet-then-read', {
      open(conn) {
        conn.write('hello\n');
        conn.end();
      },
      data(_conn, chunk) { received.push(chunk); },
    });
    const c = await h.connect(server);
    expect(await c.readAll()).toEqual(Buffer.from('hello\n'));
    expect(await c.closed).toBe('fin');
    await c.end('more after your FIN');
    await waitFor(() => server.active === 0, { what: 'the backend to close after both FINs' });
    expect(Buffer.concat(received).toString()).toBe('more after your FIN');
    expect(server.peers.length).toBe(1);
  });

  test('works on ::1 and on a Unix socket', async () => {
    const v6 = h.echo({ host: '::1' });
    expect(v6.address).toBe(`[::1]:${v6.port}`);
    const c6 = await h.connect(v6.address);
    await c6.end('six');
    expect((await c6.readAll()).toString()).toBe('six');

    const path = h.socketPath('echo');
    const unix = h.echo({ unix: path });
    expect(unix.address).toBe(path);
    const cu = await h.connectUnix(path);
    await cu.end('unix');
    expect((await cu.readAll()).toString()).toBe('unix');
  });

  test('a client bound to 127.0.0.2 is seen as 127.0.0.2', async () => {
    const server = h.echo();
    const result = await transfer(server, 1000, { localAddress: '127.0.0.2' });
    expect(result.localAddress).toBe('127.0.0.2');
    expect(server.peers.map((p) => p.address)).toEqual(['127.0.0.2']);
  });
});

describe('transfer', () => {
  test('verifies a multi-megabyte round trip', async () => {
    const server = h.echo();
    const result = await transfer(server.port, 3 * 1024 * 1024 + 7);
    expect(result.bytes).toBe(3 * 1024 * 1024 + 7);
    expect(server.bytesReceived).toBe(3 * 1024 * 1024 + 7);
  });

  test('detects a flipped byte', async () => {
    let seen = 0;
    const corrupting = h.custom('corrupting-echo', {
      data(conn, chunk) {
        const copy = Buffer.from(chunk);
        const at = 5000 - seen;
        if (at >= 0 && at < copy.length) copy[at] = (copy[at] ?? 0) ^ 0x01;
        seen += chunk.length;
        conn.write(copy);
      },
    });
    await expect(transfer(corrupting, 20_000)).rejects.toThrow(/corrupted.*first difference at offset 5000/);
  });

  test('detects a truncated stream', async () => {
    const truncating = h.custom('truncating-echo', {
      data(conn, chunk) { conn.write(chunk.subarray(0, chunk.length - 1)); },
    });
    await expect(transfer(truncating, 10_000)).rejects.toThrow(/corrupted/);
  });

  test('upload checks a sink digest, download checks a source', async () => {
    const s = h.sink();
    const up = await upload(s, 100_000);
    expect(s.results).toEqual([up]);

    // Larger than the kernel buffers: the source must queue, and its FIN must wait for the queue to drain.
    const src = h.source(MORE_THAN_KERNEL_BUFFERS);
    expect(src.sha256).toBe(sha256(src.data));
    expect(await download(src, src)).toEqual({ bytes: MORE_THAN_KERNEL_BUFFERS, sha256: src.sha256 });
    // A wrong expectation must fail.
    await expect(download(src, { bytes: MORE_THAN_KERNEL_BUFFERS, sha256: sha256('other') })).rejects.toThrow(/corrupted/);
  });
});

describe('scripted backends', () => {
  test('identify writes its name then closes, echoes or holds', async () => {
    const closing = h.identify('alpha');
    expect(await whoServes(closing)).toBe('alpha');
    const c = await h.connect(closing);
    expect(await c.readLine()).toBe('alpha');
    expect(await c.closed).toBe('fin');

    const echoing = h.identify('beta', { after: 'echo' });
    const e = await h.connect(echoing);
    expect(await e.readLine()).toBe('beta');
    await e.write('ping');
    expect((await e.readExactly(4)).toString()).toBe('ping');

    const holding = h.identify('gamma', { keepOpen: true });
    const g = await h.connect(holding);
    expect(await g.readLine()).toBe('gamma');
    expect(await g.waitClosed(200)).toBe('timeout');
  });

  test('sequence and tally report who served each connection', async () => {
    const a = h.identify('a');
    const names = await sequence(a, 3, { sourceIp: '127.0.0.3' });
    expect(names).toEqual(['a', 'a', 'a']);
    expect(tally(['a', 'b', 'a'])).toEqual({ a: 2, b: 1 });
    expect(a.peers.every((p) => p.address === '127.0.0.3')).toBe(true);
  });

  test('hold reads but never answers or closes, even after our FIN', async () => {
    const server = h.hold();
    const c = await h.connect(server);
    await c.end('some bytes');
    await waitFor(() => server.bytesReceived === 10, { what: 'hold to read 10 bytes' });
    expect(await c.waitClosed(200)).toBe('timeout');
    expect(c.bytesReceived).toBe(0);
    await server.close();
    expect(await c.closed).not.toBe('timeout');
  });

  test('closeAtOnce closes with FIN', async () => {
    const c = await h.connect(h.closeAtOnce());
    expect(await c.closed).toBe('fin');
    expect((await c.readAll()).length).toBe(0);
  });

  test('reset is observed as a reset, and reads fail saying so', async () => {
    const c = await h.connect(h.reset());
    expect(await c.closed).toBe('reset');
    await expect(c.readAll()).rejects.toThrow(/reset/);

    // And the other way: a backend sees a client's RST as a reset, a FIN as a FIN.
    const held = h.hold();
    const r = await h.connect(held);
    const f = await h.connect(held);
    await held.waitForConnections(2);
    const [rConn, fConn] = [...held.conns];
    r.reset();
    await f.end();
    f.destroy();
    await waitFor(() => rConn?.closeKind, { what: 'the reset connection to close' });
    expect(rConn?.closeKind).toBe('reset');
    // hold never closes on FIN by itself: the FIN is seen, the socket stays open until we close it.
    await waitFor(() => fConn?.peerEnded, { what: 'hold to see the FIN' });
    await held.close();
    expect(fConn?.closeKind).toBe('fin');

    const late = h.reset({ afterBytes: 3 });
    const d = await h.connect(late);
    await d.write('abc');
    expect(await d.closed).toBe('reset');
  });

  test('refuse gives a port where connecting is refused', async () => {
    const port = h.refuse().port;
    const err = await connect(port).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
  });

  test('stall never reads, so a big write stays blocked', async () => {
    const server = h.stall();
    const c = await h.connect(server, { timeoutMs: 10_000 });
    const writing = c.write(payload(MORE_THAN_KERNEL_BUFFERS, 7));
    expect(await pendingAfter(writing, 300)).toBe(true);
    await waitFor(() => server.active === 1, { what: 'stall to hold the connection' });
    expect(server.bytesReceived).toBe(0);
  });

  test('slowReader builds backpressure, then delivers everything intact once sped up', async () => {
    const server = h.slowReader();
    const data = payload(MORE_THAN_KERNEL_BUFFERS, 11);
    const c = await h.connect(server, { timeoutMs: 20_000 });
    const reply = c.readAll();
    const writing = c.write(data);
    expect(await pendingAfter(writing, 200)).toBe(true);
    await waitFor(() => server.bytesReceived > 0, { what: 'slowReader to read something' });
    expect(server.bytesReceived).toBeLessThan(data.length);
    server.speedUp();
    await writing;
    await c.end();
    expect(parseDigestReply((await reply).toString())).toEqual({ bytes: data.length, sha256: sha256(data) });
  });

  test('waitForConnections and waitForActive track accepted and open connections', async () => {
    const server = h.echo();
    const c1 = await h.connect(server);
    await h.connect(server);
    await server.waitForConnections(2);
    await server.waitForActive(2);
    await c1.close();
    await server.waitForActive(1);
    expect(server.connections).toBe(2);
  });
});

describe('bounded waits', () => {
  test('reads reject with a descriptive timeout instead of hanging', async () => {
    const c = await h.connect(h.hold(), { timeoutMs: 150 });
    await expect(c.readExactly(1)).rejects.toThrow(TimeoutError);
    await expect(c.readUntil('\n', 100)).rejects.toThrow(/timed out after 100ms waiting for "\\n"/);
    await expect(c.readAll(100)).rejects.toThrow(/timed out after 100ms waiting for FIN/);
    expect(await c.waitClosed(100)).toBe('timeout');
  });

  test('waitFor names what it waited for; reads fail fast when the stream ends early', async () => {
    await expect(waitFor(() => false, { timeoutMs: 100, what: 'the impossible' })).rejects.toThrow(/timed out after 100ms waiting for the impossible/);
    expect(await waitFor(() => 42, { timeoutMs: 100 })).toBe(42);
    const c = await h.connect(h.identify('short'));
    await expect(c.readExactly(100)).rejects.toThrow(/closed \(FIN\) before 100 bytes/);
  });

  test('freePort returns a bindable port', () => {
    const port = freePort();
    const server = echo({ port });
    expect(server.port).toBe(port);
    return server.close();
  });
});

describe('process runner', () => {
  test('infers the listen port from pen-style arguments', () => {
    expect(listenPortFromArgs(['-f', '-r', '8080', 'a:1'])).toBe(8080);
    expect(listenPortFromArgs(['-f', '-x', '100', '-C', '9000', '127.0.0.1:8081', 'a:1'])).toBe(8081);
    expect(listenPortFromArgs(['[::1]:8082', 'a:1'])).toBe(8082);
    expect(listenPortFromArgs(['-f'])).toBeUndefined();
  });

  test('starts a stand-in balancer, forwards through it, and kills it on close', async () => {
    const a = h.identify('a');
    const b = h.identify('b');
    const e = h.echo();
    const port = freePort();
    const proc = await h.startFulcrum(['-r', String(port), a.address, b.address, e.address], { entry: FAKE, readyLine: /listening/ });
    expect(isListening(port)).toBe(true);
    // Readiness used /proc, not a probe connection, so no backend has seen a connection yet.
    expect(a.connections + b.connections + e.connections).toBe(0);
    expect(await sequence(port, 2)).toEqual(['a', 'b']);
    await transfer(port, 500_000);
    expect(e.connections).toBe(1);
    expect(proc.stderr()).toContain(`listening on 127.0.0.1:${port}`);
    expect(await proc.waitForLine(/fake-balancer listening/)).toContain(String(port));

    await h.close();
    expect(pidAlive(proc.pid)).toBe(false);
    expect(proc.exitCode ?? proc.signalCode).not.toBeNull();
  });

  test('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const e = h.echo();
    const port = freePort();
    await using harness = new Harness();
    const proc = await harness.startFulcrum(['--ignore-sigterm', String(port), e.address], { entry: FAKE, readyLine: /listening/, killGraceMs: 300 });
    await harness.close();
    expect(pidAlive(proc.pid)).toBe(false);
    expect(proc.signalCode).toBe('SIGKILL');
    expect(proc.stderr()).toContain('ignoring SIGTERM');
  });

  test('polls until a delayed listener is up, by port and by Unix path', async () => {
    const e = h.echo();
    const port = freePort();
    await h.startFulcrum(['--listen-delay=300', String(port), e.address], { entry: FAKE });
    await transfer(port, 1000);

    const path = h.socketPath('lb');
    await h.startFulcrum([`--unix=${path}`, String(freePort()), e.address], { entry: FAKE, unix: path });
    expect(existsSync(path)).toBe(true);
    await transfer({ port: 0, unix: path }, 1000);
  });

  test('a process that exits before listening rejects with its output', async () => {
    const e = h.echo();
    const started = startFulcrum(['--exit-early=3', String(freePort()), e.address], { entry: FAKE });
    await expect(started).rejects.toThrow(/exited \(code 3\) before it was ready[\s\S]*exiting early as asked/);
  });

  test('readiness and waitForLine time out with the output in the message', async () => {
    const e = h.echo();
    const port = freePort();
    const slow = startFulcrum(['--listen-delay=5000', String(port), e.address], { entry: FAKE, timeoutMs: 300 });
    await expect(slow).rejects.toThrow(/timed out after 300ms waiting for fulcrum to be ready: a listening socket on port/);
    const proc = await h.startFulcrum([String(freePort()), e.address], { entry: FAKE });
    await expect(proc.waitForLine(/never printed/, 150)).rejects.toThrow(/timed out after 150ms waiting for fulcrum to print/);
  });
});

describe.skipIf(!penAvailable())('pen', () => {
  test('the harness drives the real pen', async () => {
    const a = h.identify('a');
    const b = h.identify('b');
    const port = freePort();
    const pen = await h.startPen(['-r', `127.0.0.1:${port}`, a.address, b.address]);
    const names = await sequence(port, 4);
    expect(new Set(names)).toEqual(new Set(['a', 'b']));
    await h.close();
    expect(pidAlive(pen.pid)).toBe(false);
  });
});
