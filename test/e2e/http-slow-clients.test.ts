/**
 * Slow clients on an HTTP listener (docs/http.md, "Slow clients"), with real sockets on one
 * listener at once: a new connection that sends nothing is closed without an answer after
 * `header_timeout`; one that trickles its head a byte at a time gets 408 at the same bound (the
 * bytes do not extend it), and so does a kept-alive connection trickling its next head, counted
 * from the end of its answer; a body that stalls gets 408 after the idle timeout; a server slower
 * than the idle timeout still gets its answer to the client (the client is not idle, the server
 * is), one slower than `response_timeout` a 504, and a streamed answer with gaps longer than the
 * idle timeout goes through; and a normal client is served all along.
 *
 * Bounds are generous (the machine may be loaded): the assertions are on outcomes and on the
 * order the bounds imply, with only lower bounds on durations.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { connect, freePort, Harness, type Client } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';

setDefaultTimeout(120_000);

/** Far beyond any bound in play (2 s header_timeout, 4 s idle, 8 s response timeout). */
const GENEROUS_MS = 45_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A server with a quick answer, a slow one, and a streamed one with pauses. */
function backend(h: Harness): string {
  const srv = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    // Longer than anything here: the server side never times out on its own.
    idleTimeout: 120,
    async fetch(req) {
      const u = new URL(req.url);
      if (u.pathname === '/slow') {
        await sleep(Number(u.searchParams.get('ms')));
        return new Response('slow done');
      }
      if (u.pathname === '/stream') {
        const gap = Number(u.searchParams.get('gap'));
        let n = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (n > 0) await sleep(gap);
            if (n++ < 3) c.enqueue(new TextEncoder().encode(`part${n};`));
            else c.close();
          },
        });
        return new Response(body);
      }
      if (req.body !== null) await req.arrayBuffer();
      return new Response('ok');
    },
  });
  h.defer(() => void srv.stop(true));
  return `127.0.0.1:${srv.port}`;
}

/** Writes `text` a byte every `everyMs` until the connection closes; resolves with the bytes written. */
async function trickle(c: Client, text: string, everyMs: number): Promise<number> {
  let i = 0;
  while (c.closeKind === undefined) {
    try {
      await c.write(text[i % text.length]!);
    } catch {
      break;
    }
    i++;
    await sleep(everyMs);
  }
  return i;
}

/** When (ms since `t0`) the connection closed, bounded: null if it was still open after `GENEROUS_MS`. */
async function closedAt(c: Client, t0: number): Promise<number | null> {
  const kind = await c.waitClosed(GENEROUS_MS);
  return kind === 'timeout' ? null : performance.now() - t0;
}

/** One request on a kept-alive connection; resolves with the whole answer once its end is read. */
async function exchange(c: Client, request: string, end: string): Promise<string> {
  await c.write(request);
  return c.readUntil(end, GENEROUS_MS);
}

describe('HTTP mode slow clients', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('silent heads are closed, slow heads and stalled bodies get 408 within their bounds; slow servers still answer; normal clients are served meanwhile', async () => {
    const path = join(tempDir(h), 'fulcrum.yaml');
    const port = freePort();
    writeYaml(path, {
      global: { idle_timeout: '4s' },
      groups: { web: { servers: [backend(h)] } },
      listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http', header_timeout: '2s', response_timeout: '8s' }],
    });
    await h.startFulcrum(['--config', path], { port: [port] });
    const open = async (): Promise<Client> => {
      const c = await connect(port, { timeoutMs: GENEROUS_MS });
      h.defer(() => c.close());
      return c;
    };
    const head = 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ' + 'x'.repeat(200);

    const t0 = performance.now();
    // (a) A new connection that sends nothing; (b) one that trickles its first head.
    const silent = await open();
    const trickler = await open();
    const trickled = trickle(trickler, head, 300);
    // (b') A kept-alive connection: one answer, then its next head trickled.
    const kept = await open();
    const first = await exchange(kept, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', '\r\n\r\nok');
    const tKept = performance.now();
    const keptTrickled = trickle(kept, head, 300);
    // (c) A complete head with Content-Length: 100, ten bytes of the body, then nothing.
    const body = await open();
    await body.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789');
    const tBody = performance.now();
    // A server slower than the idle timeout (4 s) but within response_timeout (8 s): answered.
    const slow = await open();
    const slowAnswer = exchange(slow, 'GET /slow?ms=5000 HTTP/1.1\r\nHost: a\r\n\r\n', 'slow done');
    // A server slower than response_timeout: 504.
    const late = await open();
    const lateAnswer = exchange(late, 'GET /slow?ms=20000 HTTP/1.1\r\nHost: a\r\n\r\n', 'in time\n');
    // A streamed answer with 5 s pauses (longer than the idle timeout): all of it.
    const streamed = await open();
    const streamAnswer = exchange(streamed, 'GET /stream?gap=5000 HTTP/1.1\r\nHost: a\r\n\r\n', '0\r\n\r\n');

    // (d) A normal client meanwhile: a fresh request every 300 ms until the slow ones are settled.
    const normal: number[] = [];
    let settled = false;
    const normalLoop = (async () => {
      while (!settled) {
        const r = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(GENEROUS_MS) });
        normal.push(r.status);
        await r.text();
        await sleep(300);
      }
    })();

    const [silentAt, tricklerAt, keptAt, bodyAt] = await Promise.all([closedAt(silent, t0), closedAt(trickler, t0), closedAt(kept, t0), closedAt(body, t0)]);
    const [slowText, lateText, streamText] = await Promise.all([slowAnswer, lateAnswer, streamAnswer]);
    settled = true;
    await normalLoop;
    await Promise.all([trickled, keptTrickled]);

    // (a): closed, never answered, after header_timeout.
    expect(silentAt).not.toBeNull();
    expect(silent.bytesReceived).toBe(0);
    expect(silentAt!).toBeGreaterThan(1_900);
    // (b), (b'): 408, then closed, after header_timeout whatever was trickled (the kept one from its answer's end).
    expect(tricklerAt).not.toBeNull();
    expect(trickler.peek().toString()).toStartWith('HTTP/1.1 408 ');
    expect(tricklerAt!).toBeGreaterThan(1_900);
    expect(first).toStartWith('HTTP/1.1 200');
    expect(keptAt).not.toBeNull();
    expect(kept.peek().toString()).toStartWith('HTTP/1.1 408 ');
    expect(keptAt! - (tKept - t0)).toBeGreaterThan(1_900);
    // (c): the stalled body got 408 after the idle timeout.
    expect(bodyAt).not.toBeNull();
    expect(body.peek().toString()).toStartWith('HTTP/1.1 408 ');
    expect(bodyAt! - (tBody - t0)).toBeGreaterThan(3_900);
    // The servers slower than the idle timeout: an answer, and a 504 for the one past response_timeout.
    expect(slowText).toStartWith('HTTP/1.1 200');
    expect(lateText).toStartWith('HTTP/1.1 504');
    // The streamed answer whole.
    expect(streamText).toStartWith('HTTP/1.1 200');
    expect(streamText).toContain('part1;');
    expect(streamText).toContain('part3;');
    // Normal clients: every request answered.
    expect(normal.length).toBeGreaterThan(5);
    expect(normal.every((s) => s === 200)).toBe(true);
  });
});
