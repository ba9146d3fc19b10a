/**
 * Slow clients on an HTTP listener (docs/http.md, "Slow clients"), with real sockets on one
 * listener at once: a new connection that sends nothing, and one that trickles its head a byte at
 * a time, are closed without an answer by the runtime's fixed 10 s first-head bound (the bytes do
 * not extend it); a kept-alive connection trickling its next head is closed by `header_timeout`;
 * a body trickled a byte at a time is cut by the idle timeout (the runtime's 16 KiB/s rule); a
 * server slower than the idle timeout still gets its answer to the client, and one slower than
 * `response_timeout` a 504 (the client timer waits for it); a streamed answer with gaps shorter
 * than the idle timeout goes through; and a normal client is served all along.
 *
 * Bounds are generous (the runtime sweeps its timers every 4 s; the machine may be loaded): the
 * assertions are on outcomes and on the order the bounds imply, not on durations.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { connect, freePort, Harness, type Client } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';

setDefaultTimeout(120_000);

/** Far beyond any bound in play (runtime's 10 s first head + a 4 s sweep, 12 s idle, 16 s response timeout). */
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

  test('slow heads and bodies are closed without an answer within their bounds; slow servers still answer; normal clients are served meanwhile', async () => {
    const path = join(tempDir(h), 'fulcrum.yaml');
    const port = freePort();
    writeYaml(path, {
      global: { idle_timeout: '12s' },
      groups: { web: { servers: [backend(h)] } },
      listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http', header_timeout: '5s', response_timeout: '16s' }],
    });
    await h.startFulcrum(['--config', path], { port: [port] });
    const open = async (): Promise<Client> => {
      const c = await connect(port, { timeoutMs: GENEROUS_MS });
      h.defer(() => c.close());
      return c;
    };
    const head = 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ' + 'x'.repeat(200);

    const t0 = performance.now();
    // (b') A kept-alive connection: one answer, then its next head trickled.
    const kept = await open();
    const first = await exchange(kept, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', '\r\n\r\nok');
    const keptTrickled = trickle(kept, head, 500);
    // (a) A new connection that sends nothing; (b) one that trickles its first head (both opened after
    // the kept-alive answer, so their 10 s ends at least a sweep after its 5 s).
    const silent = await open();
    const trickler = await open();
    const trickled = trickle(trickler, head, 500);
    // (c) A complete head with Content-Length: 100, then the body a byte every 500 ms.
    const body = await open();
    await body.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n');
    const bodyTrickled = trickle(body, 'b', 500);
    // A server slower than the idle timeout (12 s) but within response_timeout (16 s): answered.
    const slow = await open();
    const slowAnswer = exchange(slow, 'GET /slow?ms=13000 HTTP/1.1\r\nHost: a\r\n\r\n', 'slow done');
    // A server slower than response_timeout: 504, not a silent close.
    const late = await open();
    const lateAnswer = exchange(late, 'GET /slow?ms=30000 HTTP/1.1\r\nHost: a\r\n\r\n', 'in time\n');
    // A streamed answer with 5 s pauses: all of it (the idle timeout bounds its writes: 12 s is more than 8 s of
    // quiet whatever the sweep's phase), then header_timeout once it is complete.
    const streamed = await open();
    const streamAnswer = exchange(streamed, 'GET /stream?gap=5000 HTTP/1.1\r\nHost: a\r\n\r\n', '0\r\n\r\n');

    // (d) A normal client meanwhile: a fresh request every 500 ms until the slow ones are settled.
    const normal: number[] = [];
    let settled = false;
    const normalLoop = (async () => {
      while (!settled) {
        // A fresh connection each time: a kept-alive one may meet header_timeout's sweep between requests.
        const r = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(GENEROUS_MS) });
        normal.push(r.status);
        await r.text();
        await sleep(500);
      }
    })();

    const [silentAt, tricklerAt, keptAt, bodyAt] = await Promise.all([closedAt(silent, t0), closedAt(trickler, t0), closedAt(kept, t0), closedAt(body, t0)]);
    const [slowText, lateText, streamText] = await Promise.all([slowAnswer, lateAnswer, streamAnswer]);
    const streamedAt = await closedAt(streamed, t0);
    settled = true;
    await normalLoop;
    await Promise.all([trickled, keptTrickled, bodyTrickled]);

    // (a), (b): closed, never answered; the first head has the runtime's 10 s (swept every 4 s: after more than 8 s), whatever was trickled.
    expect(silentAt).not.toBeNull();
    expect(tricklerAt).not.toBeNull();
    expect(silent.bytesReceived).toBe(0);
    expect(trickler.bytesReceived).toBe(0);
    expect(silentAt!).toBeGreaterThan(7_000);
    expect(tricklerAt!).toBeGreaterThan(7_000);
    // (b'): the kept-alive connection's next head had header_timeout (5 s: two sweeps) from its answer, not the runtime's
    // 10 s (three sweeps) nor the 12 s idle timeout: closed before the fresh ones, with nothing more.
    expect(first).toStartWith('HTTP/1.1 200');
    expect(keptAt).not.toBeNull();
    expect(keptAt!).toBeLessThan(Math.min(silentAt!, tricklerAt!));
    expect(kept.peek().length).toBe(0);
    // (c): the trickled body was cut (16 KiB/s over the 12 s idle timeout not met); no answer reached the client.
    expect(bodyAt).not.toBeNull();
    expect(body.bytesReceived).toBe(0);
    // The servers slower than the idle timeout: an answer, and a 504 for the one past response_timeout.
    expect(slowText).toStartWith('HTTP/1.1 200');
    expect(lateText).toStartWith('HTTP/1.1 504');
    // The streamed answer whole, then closed while idle.
    expect(streamText).toStartWith('HTTP/1.1 200');
    expect(streamText).toContain('part1;');
    expect(streamText).toContain('part3;');
    expect(streamedAt).not.toBeNull();
    // Normal clients: every request answered.
    expect(normal.length).toBeGreaterThan(5);
    expect(normal.every((s) => s === 200)).toBe(true);
  });
});
