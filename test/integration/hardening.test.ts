/**
 * Hardening of the data plane (issue 13): refusals end with a FIN, a slow reader costs a bounded
 * amount of buffered memory, and a flood of silent connections from one address does not keep a
 * client from another address out. Out-of-descriptor handling runs the CLI under a low open-files
 * limit: test/e2e/resources.test.ts.
 */
import { describe, expect, test } from 'bun:test';
import net from 'node:net';
import { sha256, transfer, useHarness, waitFor, type Client } from '../harness/index.ts';
import { startInProcess } from '../helpers/in-process.ts';

const h = useHarness();

/**
 * A refused client that sends a request before the balancer looks at it, and more after the FIN
 * it gets; it then ends its side. Resolves with what it saw: 'fin' then 'closed', and any error.
 */
function refusedClient(port: number): Promise<string[]> {
  return new Promise((resolve) => {
    const seen: string[] = [];
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    c.on('connect', () => {
      c.write(Buffer.alloc(3000, 65));
      // The balancer runs in this process: blocking here lets the bytes land in its receive
      // queue before it accepts, so it closes over unread bytes (a reset, unless it drains them).
      Bun.sleepSync(20);
    });
    c.on('data', () => seen.push('data'));
    c.on('end', () => {
      seen.push('fin');
      c.end('more after the FIN'); // reaches a closed socket: a reset, unless it still drains
    });
    c.on('error', (e: NodeJS.ErrnoException) => seen.push(`error ${e.code ?? e.message}`));
    c.on('close', () => resolve(seen));
    setTimeout(() => c.destroy(), 5000); // bound: 'fin' missing from `seen` then fails the test
  });
}

describe('refusals', () => {
  test('a client refused by the ACL gets a FIN and no reset, whatever it sends', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['LISTEN', echo.address]);
    await lb.commands.execute('acl 1 deny 127.0.0.0/8');
    await lb.commands.execute('client_acl 1');
    for (let i = 0; i < 3; i++) expect(await refusedClient(lb.port)).toEqual(['fin']);
    expect(lb.balancer.totals.ends['acl-denied']).toBe(3);
    expect(echo.connections).toBe(0);
  });
});

/** What Bun reads from a socket at most at a time: the most a side can hold beyond a pause. */
const MAX_READ_BYTES = 512 * 1024;

describe('a slow reader', () => {
  test('costs at most one read of buffered memory per direction, and every byte arrives', async () => {
    const src = h.source(12_000_000);
    const lb = await startInProcess(h, ['LISTEN', src.address]);
    const c = await h.connect(lb.port, { timeoutMs: 20_000 });
    c.pause(); // reads nothing: backpressure builds through Fulcrum to the server
    await waitFor(() => [...lb.balancer.sessions.values()].some((s) => s.client.pending !== null), { what: 'backpressure toward the client' });
    let max = 0;
    let serverRead = -1;
    // The server keeps pushing until the kernel buffers fill; sample until Fulcrum stops reading.
    for (let i = 0; i < 200; i++) {
      const s = [...lb.balancer.sessions.values()][0]!;
      max = Math.max(max, s.buffered, lb.balancer.bufferedBytes());
      if (s.serverSide.bytesRead === serverRead) break;
      serverRead = s.serverSide.bytesRead;
      await Bun.sleep(20);
    }
    expect(max).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(MAX_READ_BYTES);
    expect(serverRead).toBeLessThan(src.bytes); // the server was held back, not read ahead
    // Now a slow reader: 1 KB at a time for a while, then the rest; all of it arrives intact.
    for (let i = 0; i < 20; i++) {
      c.resume();
      await c.readExactly(1024);
      c.pause();
      max = Math.max(max, lb.balancer.bufferedBytes());
    }
    expect(max).toBeLessThanOrEqual(MAX_READ_BYTES);
    c.resume();
    const rest = await c.readAll();
    expect(20 * 1024 + rest.length).toBe(src.bytes);
    expect(sha256(Buffer.concat([src.data.subarray(0, 20 * 1024), rest]))).toBe(src.sha256);
    expect(rest.equals(src.data.subarray(20 * 1024))).toBe(true);
  });
});

describe('a flood of idle connections from one address', () => {
  test('takes at most its per-source share of -x; a client from another address is served at once', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-x', '200', 'LISTEN', echo.address]);
    lb.balancer.global.maxPerSource = 50; // the config file's default would be 200 / 4
    const idle: Client[] = [];
    for (let i = 0; i < 300; i++) idle.push(await h.connect(lb.port, { localAddress: '127.0.0.2' }));
    // 50 held (each connected to the server, as pen does), 250 closed at once with a FIN.
    await waitFor(() => lb.balancer.totals.ends['source-limit'] === 250, { what: '250 refusals for the source limit' });
    expect(lb.balancer.activeCount).toBe(50);
    expect(lb.balancer.sources.counts.held('127.0.0.2')).toBe(50);
    expect(await idle[299]!.waitClosed(5000)).toBe('fin');
    // A well-behaved client from another address is served, not queued behind the flood.
    const r = await transfer(lb.port, 100_000, { localAddress: '127.0.0.3', timeoutMs: 3000 });
    expect(r.bytes).toBe(100_000);
    // The flood leaving gives its counts back.
    await Promise.all(idle.map((c) => c.close()));
    await waitFor(() => lb.balancer.sources.counts.sources === 0, { what: 'the per-source table to empty' });
  });
});
