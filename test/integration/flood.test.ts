/**
 * Floods of idle and trickling connections (issue 13): a well-behaved client from another address
 * is still served. Plain TCP with the config file's per-source connection limit and a rate
 * limit; plain TCP with pen's command line (no per-source limits), where the oldest client that
 * never sent a byte gives its slot up; and a TLS listener whose handshake stage is full of
 * connections that never send a ClientHello, where the oldest unfinished handshake is given up.
 * Scaled down from the figures (bench/flood.ts runs the large flood by hand).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { QUIET_EVICT_AFTER_MS } from '../../src/app/admission.ts';
import { freePort, transfer, useHarness, waitFor, type Client } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { startInProcess } from '../helpers/in-process.ts';
import { startFromYaml, tlsEcho } from '../helpers/tls-setup.ts';

const h = useHarness();

/** `n` connections from `from` that send nothing. */
async function idle(port: number, n: number, from: string): Promise<Client[]> {
  const out: Client[] = [];
  for (let i = 0; i < n; i++) out.push(await h.connect(port, { localAddress: from }));
  return out;
}

/** `n` connections from `from` that send one byte every 200 ms (until the test ends). */
async function trickling(port: number, n: number, from: string): Promise<Client[]> {
  const out = await idle(port, n, from);
  const timer = setInterval(() => {
    for (const c of out) if (!c.socket.destroyed) c.socket.write('.');
  }, 200);
  h.defer(() => clearInterval(timer));
  for (const c of out) c.socket.on('error', () => {}); // refused ones are closed under them
  return out;
}

describe('a flood of idle and trickling connections from one address', () => {
  test("with the config file's per-source default and a rate, 300 idle + 300 trickling take at most their share; another address is served", async () => {
    const echo = h.echo();
    const port = freePort();
    const { balancer: b } = await startFromYaml(h, ['global:', '  max_connections: 200', '  max_new_connections_per_source_per_second: 200', 'groups:', '  app:', `    servers: [${echo.address}]`, 'listeners:', `  - listen: 127.0.0.1:${port}`, '    group: app', ''].join('\n'));
    expect(b.global.maxPerSource).toBe(50); // the default: a quarter of max_connections
    await idle(port, 300, '127.0.0.2');
    await trickling(port, 300, '127.0.0.2');
    await waitFor(() => b.totals.accepted === 600, { what: 'the flood to be accepted' });
    expect(b.sources.counts.held('127.0.0.2')).toBeLessThanOrEqual(50);
    expect(b.totals.ends['rate-limit'] ?? 0).toBeGreaterThan(0);
    expect(b.sourceLimits().refusedForRate).toBe(b.totals.ends['rate-limit']!);
    const r = await transfer(port, 100_000, { localAddress: '127.0.0.3', timeoutMs: 3000 });
    expect(r.bytes).toBe(100_000);
  });

  test("with pen's command line (no per-source limit), the oldest client that never sent a byte gives its slot to a new one", async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-x', '200', 'LISTEN', echo.address]);
    const b = lb.balancer;
    // Clients that spoke keep their slots whatever happens.
    const talkers = await idle(lb.port, 20, '127.0.0.4');
    for (const c of talkers) {
      await c.write('hi\n');
      await c.readUntil('hi\n', 3000);
    }
    const flood = await idle(lb.port, 300, '127.0.0.2');
    await waitFor(() => b.activeCount === 200 && b.waitingCount === 120, { what: '200 admitted, 120 waiting' });
    await Bun.sleep(QUIET_EVICT_AFTER_MS + 100); // the flood is old enough to be given up
    // Served at once, not queued behind the 120 waiting.
    const r = await transfer(lb.port, 100_000, { localAddress: '127.0.0.3', timeoutMs: 3000 });
    expect(r.bytes).toBe(100_000);
    expect(b.totals.ends['idle-evicted']).toBe(1);
    expect(await flood[0]!.waitClosed(3000)).toBe('fin'); // the oldest silent one
    for (const c of talkers) {
      await c.write('still here\n');
      await c.readUntil('still here\n', 3000);
    }
  });
});

describe('a TLS listener whose handshake stage is full of connections that send nothing', () => {
  let pki: TestPki;
  let site: CertFiles;
  beforeAll(() => {
    pki = new TestPki();
    site = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  });
  afterAll(() => pki.close());

  test('gives up the oldest unfinished handshake for a real TLS client', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-x', '50', '-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    const l = lb.balancer.listeners[0]!;
    await idle(lb.port, 60, '127.0.0.2'); // no ClientHello: each holds a handshake until its 10 s deadline
    await waitFor(() => l.handshakes.failures.evicted === 10, { what: '10 handshakes given up for newer ones' });
    expect(l.handshakes.inProgress).toBe(50);
    const r = await tlsEcho({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' }, 'through the flood\n');
    if (!r.ok) throw new Error(r.error);
    r.session.close();
    expect(l.handshakes.ok).toBe(1);
    expect(l.handshakes.failures['handshake-limit'] ?? 0).toBe(0);
  });
});
