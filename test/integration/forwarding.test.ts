import { describe, expect, test } from 'bun:test';
import net from 'node:net';
import { download, transfer, upload, useHarness, waitFor, withTimeout } from '../harness/index.ts';
import { startInProcess } from '../helpers/in-process.ts';

const h = useHarness();

describe('forwarding', () => {
  test('large transfers both ways arrive intact (sha256), several at once', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${echo.port}`]);
    const results = await Promise.all([1, 2, 3, 4].map((i) => transfer(lb.port, i * 2_000_000)));
    expect(results.map((r) => r.bytes)).toEqual([2_000_000, 4_000_000, 6_000_000, 8_000_000]);
    const server = lb.balancer.defaultGroup.servers[0]!;
    expect(server.bytesToServer).toBe(20_000_000);
    expect(server.bytesFromServer).toBe(20_000_000);
    await waitFor(() => lb.balancer.activeCount === 0, { what: 'sessions to finish' });
    expect(server.connections).toBe(0);
  });

  test('half-close: the client FIN reaches the server, whose reply still flows back', async () => {
    const sink = h.sink();
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${sink.port}`]);
    // The sink answers only after it has seen the FIN: the reply must come back through.
    const reply = await upload(lb.port, 3_000_000);
    expect(reply.bytes).toBe(3_000_000);
  });

  test('half-close the other way: the server FIN reaches the client after all data', async () => {
    const src = h.source(5_000_000);
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${src.port}`]);
    await download(lb.port, { bytes: src.bytes, sha256: src.sha256 });
  });

  test('a client that keeps sending after the server half-closed is still delivered', async () => {
    const received: Buffer[] = [];
    let closedAfterReading: () => void = () => {};
    const done = new Promise<void>((r) => (closedAfterReading = r));
    const backend = h.custom('greet-then-read', {
      open(conn) {
        conn.write('hello\n');
        conn.socket.shutdown(); // FIN first (a half-close: Bun's end() would close both ways)
      },
      data(_conn, chunk) {
        received.push(Buffer.from(chunk));
      },
      end(conn) {
        conn.end();
        closedAfterReading();
      },
      // Bun reports the peer's FIN on a socket that already sent its own as `close`, not `end`.
      close() {
        closedAfterReading();
      },
    });
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${backend.port}`]);
    const c = net.connect({ port: lb.port, host: '127.0.0.1', allowHalfOpen: true });
    h.defer(() => void c.destroy());
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    await withTimeout(new Promise<void>((r) => c.once('end', () => r())), 5000, 'the server FIN to reach the client');
    expect(got).toBe('hello\n');
    c.write('more data after your FIN');
    c.end();
    await withTimeout(done, 5000, 'the server to read the client data and FIN');
    expect(Buffer.concat(received).toString()).toBe('more data after your FIN');
  });
});

describe('resets', () => {
  test('a server reset reaches the client as a reset', async () => {
    const rst = h.reset();
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${rst.port}`]);
    const c = await h.connect(lb.port);
    expect(await c.waitClosed()).toBe('reset');
    await waitFor(() => (lb.balancer.totals.ends['server-reset'] ?? 0) === 1, { what: 'server-reset to be counted' });
  });

  test('a client reset reaches the server as a reset', async () => {
    let closedWith: string | undefined;
    const hold = h.custom('hold-and-watch', {
      close(_conn, error) {
        closedWith = error === undefined ? 'clean' : `error: ${error.message}`;
      },
    });
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${hold.port}`]);
    const c = await h.connect(lb.port);
    await c.write('x');
    await hold.waitForConnections(1);
    await waitFor(() => hold.bytesReceived === 1, { what: 'the byte to reach the server' });
    c.reset();
    await waitFor(() => closedWith !== undefined, { what: 'the server side to close' });
    expect(closedWith).toMatch(/ECONNRESET/);
    await waitFor(() => (lb.balancer.totals.ends['client-reset'] ?? 0) === 1, { what: 'client-reset to be counted' });
  });
});

describe('backpressure', () => {
  test('a slow reader pauses the client: what Fulcrum holds stays bounded', async () => {
    const slow = h.slowReader({ bytesPerSecond: 4 * 1024 * 1024 });
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${slow.port}`]);
    let maxPending = 0;
    const sampler = setInterval(() => {
      for (const s of lb.balancer.sessions.values()) {
        const held = (s.serverSide.pending?.length ?? 0) + (s.client.pending?.length ?? 0);
        maxPending = Math.max(maxPending, held);
      }
    }, 2);
    try {
      const reply = await upload(lb.port, 8_000_000, { timeoutMs: 25_000 });
      expect(reply.bytes).toBe(8_000_000);
    } finally {
      clearInterval(sampler);
    }
    // Without backpressure Fulcrum would buffer most of the 8 MB; with it, at most a few chunks.
    expect(maxPending).toBeLessThan(2 * 1024 * 1024);
  });
});

describe('addresses', () => {
  test('Unix domain sockets for the listener and for servers', async () => {
    const path = h.socketPath('backend');
    const echo = h.echo({ unix: path });
    expect(echo.unix).toBe(path);
    const listenPath = h.socketPath('listen');
    const lb = await startInProcess(h, [listenPath, path]);
    expect(lb.balancer.listeners[0]!.config.address).toEqual({ kind: 'unix', path: listenPath });
    const c = await h.connectUnix(listenPath);
    await c.write('over unix sockets');
    await c.end();
    expect((await c.readAll()).toString()).toBe('over unix sockets');
  });

  test('IPv6 listener and server', async () => {
    const echo = h.echo({ host: '::1' });
    const lb = await startInProcess(h, ['LISTEN', `[::1]:${echo.port}`], '::1');
    const r = await transfer({ host: '::1', port: lb.port }, 100_000);
    expect(r.bytes).toBe(100_000);
    expect(lb.balancer.defaultGroup.clients.peek('::1', Date.now())).toBeDefined();
  });

  test('host names are resolved at start', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['LISTEN', `localhost:${echo.port}`]);
    expect(lb.balancer.defaultGroup.servers[0]!.hostname).toBe('localhost');
    await transfer(lb.port, 1000);
  });
});

describe('PROXY protocol to servers (--send-proxy)', () => {
  for (const version of ['v1', 'v2'] as const) {
    test(`${version}: the server learns the client's address before the client's bytes`, async () => {
      const { decodeProxyHeader } = await import('../../src/protocol/proxy-protocol.ts');
      const received: Buffer[] = [];
      const backend = h.custom('proxy-reader', {
        data(_c, chunk) {
          received.push(Buffer.from(chunk));
        },
      });
      const lb = await startInProcess(h, ['--send-proxy', version, 'LISTEN', `127.0.0.1:${backend.port}`]);
      const c = await h.connect(lb.port, { localAddress: '127.0.0.9' });
      await c.write('payload');
      await waitFor(() => Buffer.concat(received).includes('payload'), { what: 'the payload at the server' });
      const all = Buffer.concat(received);
      const r = decodeProxyHeader(all);
      expect(r.kind).toBe('parsed');
      if (r.kind !== 'parsed') return;
      expect(r.header).toEqual({ family: 'tcp4', sourceAddress: '127.0.0.9', sourcePort: c.localPort!, destinationAddress: '127.0.0.1', destinationPort: lb.port });
      expect(all.subarray(r.length).toString()).toBe('payload');
    });
  }
});
