/**
 * HTTP mode's streaming end to end (docs/http.md): request bodies reach the server while the
 * client is still sending them (chunked, and by Content-Length), a chunked body over
 * max_body_size aborts the request at the server, WebSocket relayed both ways through a
 * byte tunnel after the server's 101 (Bun's WebSocket client against an echo server, and a
 * made-up protocol),
 * `Expect: 100-continue` with curl, and an HTTP/1.0 client without Host. The servers are
 * Bun.serve in this process; the fulcrum process is between.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Server as BunServer } from 'bun';
import { connect, freePort, Harness } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';
import { httpBackend } from '../helpers/http-backends.ts';

setDefaultTimeout(60_000);

/** A server that reports each body chunk as it arrives, and how the body ended. */
interface Streaming {
  address: string;
  /** Resolves with the request's first body chunk, as the server reads it. */
  firstChunk: Promise<string>;
  /** Resolves with the request's framing headers and whole body, or the read's error. */
  ended: Promise<{ body: string; te: string | null; cl: string | null; error: string | null }>;
}

function streamingServer(h: Harness): Streaming {
  let first!: (s: string) => void;
  let end!: (r: Awaited<Streaming['ended']>) => void;
  const s: Omit<Streaming, 'address'> = { firstChunk: new Promise((r) => (first = r)), ended: new Promise((r) => (end = r)) };
  const srv = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const dec = new TextDecoder();
      let body = '';
      let error: string | null = null;
      try {
        for await (const c of req.body!) {
          if (body === '') first(dec.decode(c));
          body += dec.decode(c);
        }
      } catch (e) {
        error = String(e);
      }
      end({ body, te: req.headers.get('transfer-encoding'), cl: req.headers.get('content-length'), error });
      return Response.json({ body });
    },
  });
  h.defer(() => void srv.stop(true));
  return { ...s, address: `127.0.0.1:${srv.port}` };
}

describe('HTTP mode streaming', () => {
  const h = new Harness();
  afterAll(() => h.close());

  async function start(servers: string[], listener: Record<string, unknown> = {}): Promise<number> {
    const path = join(tempDir(h), 'fulcrum.yaml');
    const port = freePort();
    writeYaml(path, { groups: { web: { servers } }, listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http', ...listener }] });
    await h.startFulcrum(['--config', path], { port: [port] });
    return port;
  }

  test('a chunked request body reaches the server while the client is still sending it', async () => {
    const s = streamingServer(h);
    const port = await start([s.address]);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nfirst-part;\r\n');
    // Without streaming the server would see nothing before the body's end, which has not been sent.
    expect(await s.firstChunk).toBe('first-part;');
    await c.write('b\r\nsecond-part\r\n0\r\n\r\n');
    expect(await c.readUntil('\r\n')).toMatch(/^HTTP\/1\.1 200/);
    const got = await s.ended;
    expect(got).toEqual({ body: 'first-part;second-part', te: 'chunked', cl: null, error: null });
  });

  test('a body with a Content-Length is streamed with its length', async () => {
    const s = streamingServer(h);
    const port = await start([s.address]);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 22\r\n\r\nfirst-part;');
    expect(await s.firstChunk).toBe('first-part;');
    await c.write('second-part');
    expect(await c.readUntil('\r\n')).toMatch(/^HTTP\/1\.1 200/);
    expect(await s.ended).toEqual({ body: 'first-part;second-part', te: null, cl: '22', error: null });
  });

  test('a chunked body that goes over max_body_size once streaming began aborts the request at the server', async () => {
    const s = streamingServer(h);
    const port = await start([s.address], { max_body_size: 100 });
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n${'x'.repeat(80)}\r\n`);
    expect(await s.firstChunk).toBe('x'.repeat(80));
    await c.write(`50\r\n${'y'.repeat(80)}\r\n0\r\n\r\n`);
    expect(await c.readUntil('\r\n')).toMatch(/^HTTP\/1\.1 413/);
    const got = await s.ended;
    expect(got.error).not.toBeNull(); // the server's read failed: it never got a complete body
    expect(got.body).not.toContain('y');
  });

  test('WebSocket: messages relayed both ways, the subprotocol and forwarding headers passed, closes relayed both ways', async () => {
    const seen: { xff: string | null; path: string; closed: [number, string] | null } = { xff: null, path: '', closed: null };
    let serverClosed!: () => void;
    const closeAtServer = (): Promise<void> => new Promise<void>((r) => (serverClosed = r));
    let closedAtServer = closeAtServer();
    const srv: BunServer<undefined> = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(req, server) {
        seen.xff = req.headers.get('x-forwarded-for');
        seen.path = new URL(req.url).pathname + new URL(req.url).search;
        return server.upgrade(req, { data: undefined, headers: { 'sec-websocket-protocol': 'chat' } }) ? undefined : new Response('no', { status: 400 });
      },
      websocket: {
        message(ws, m) {
          if (m === 'bye') ws.close(4001, 'server done');
          else ws.send(typeof m === 'string' ? `echo:${m}` : m);
        },
        close(_ws, code, reason) {
          seen.closed = [code, reason];
          serverClosed();
        },
      },
    });
    h.defer(() => void srv.stop(true));
    const port = await start([`127.0.0.1:${srv.port}`]);
    const open = async (): Promise<{ ws: WebSocket; next: () => Promise<MessageEvent>; closed: Promise<CloseEvent> }> => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/chat?room=1`, ['chat']);
      ws.binaryType = 'arraybuffer';
      const queue: MessageEvent[] = [];
      let wake: (() => void) | null = null;
      ws.onmessage = (e) => {
        queue.push(e);
        wake?.();
      };
      const closed = new Promise<CloseEvent>((r) => (ws.onclose = r));
      await new Promise<void>((res, rej) => {
        ws.onopen = () => res();
        ws.onerror = () => rej(new Error('the WebSocket did not open'));
      });
      const next = async (): Promise<MessageEvent> => {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        return queue.shift()!;
      };
      return { ws, next, closed };
    };
    const a = await open();
    expect(a.ws.protocol).toBe('chat');
    expect(seen.path).toBe('/chat?room=1');
    expect(seen.xff).toBe('127.0.0.1');
    a.ws.send('hello');
    expect((await a.next()).data).toBe('echo:hello');
    a.ws.send(new Uint8Array([1, 2, 3]));
    expect([...new Uint8Array((await a.next()).data as ArrayBuffer)]).toEqual([1, 2, 3]);
    a.ws.send('bye'); // the server closes: the client hears its code and reason
    const ev = await a.closed;
    expect([ev.code, ev.reason]).toEqual([4001, 'server done']);
    // The client closes: the server hears its code and reason.
    const b = await open();
    await closedAtServer; // (a's close reached it first)
    closedAtServer = closeAtServer();
    b.ws.close(4000, 'client done');
    await closedAtServer;
    expect(seen.closed).toEqual([4000, 'client done']);
  });

  test('any Upgrade the server accepts with 101 becomes a byte tunnel both ways; one it refuses is an ordinary answer', async () => {
    // A server speaking a made-up protocol after its 101: it echoes each read upper-cased.
    let seenHead = '';
    const srv = Bun.listen<{ upgraded: boolean }>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open(s) {
          s.data = { upgraded: false };
        },
        data(s, d) {
          const text = d.toString('latin1');
          if (s.data.upgraded) {
            s.write(text.toUpperCase());
            return;
          }
          seenHead = text;
          if (!/^upgrade: *shout/im.test(text)) {
            s.write('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 4\r\n\r\nnope');
            return;
          }
          s.data.upgraded = true;
          // The first tunnel bytes come with the 101, in the same write.
          s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nready;');
        },
      },
    });
    h.defer(() => srv.stop(true));
    const port = await start([`127.0.0.1:${srv.port}`]);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n');
    const head = await c.readUntil('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head.toLowerCase()).toContain('upgrade: shout');
    expect(seenHead.toLowerCase()).toContain('connection: upgrade');
    expect(seenHead.toLowerCase()).toContain('x-forwarded-for: 127.0.0.1');
    expect((await c.readExactly(6)).toString()).toBe('ready;');
    await c.write('hello');
    expect((await c.readExactly(5)).toString()).toBe('HELLO');
    await c.write('GET / HTTP/1.1\r\n'); // not parsed any more: tunnel bytes like any others
    expect((await c.readExactly(16)).toString()).toBe('GET / HTTP/1.1\r\n');
    await c.close();

    const d = await connect(port);
    h.defer(() => d.close());
    await d.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n');
    const refused = await d.readUntil('nope');
    expect(refused).toMatch(/^HTTP\/1\.1 426 /);
  });

  const curl = spawnSync('curl', ['--version']).status === 0;
  test.skipIf(!curl)('curl with Expect: 100-continue gets 100 Continue and its body reaches the server (without Expect)', async () => {
    const a = httpBackend('a');
    h.defer(() => a.close());
    const port = await start([a.address]);
    const file = join(tempDir(h), 'body.bin');
    const body = 'z'.repeat(70_000);
    writeFileSync(file, body);
    const run = promisify(execFile);
    const r = await run('curl', ['-sS', '-v', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/upload`], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toContain('< HTTP/1.1 100 Continue');
    const got = JSON.parse(r.stdout) as { body: string; headers: Record<string, string> };
    expect(got.body.length).toBe(body.length);
    expect(got.headers['expect']).toBeUndefined(); // answered here, not by the server
    expect(got.headers['content-length']).toBe(String(body.length));
  });

  test('an HTTP/1.0 client without Host is served, and its connection closed after the answer', async () => {
    const a = httpBackend('a');
    h.defer(() => a.close());
    const port = await start([a.address]);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET /old?q=1 HTTP/1.0\r\n\r\n');
    const all = (await c.readAll()).toString();
    expect(all).toMatch(/^HTTP\/1\.1 200/);
    expect(all.toLowerCase()).not.toContain('transfer-encoding'); // an HTTP/1.0 client cannot read chunks
    const got = JSON.parse(all.slice(all.indexOf('\r\n\r\n') + 4)) as { path: string; headers: Record<string, string> };
    expect(got.path).toBe('/old?q=1');
    expect(got.headers['host']).toBe(''); // HTTP/1.1 to the server needs one: empty (RFC 9112 §3.2)
  });

  /** A raw server: each connection gets `answer` (the head and what part of the body it sends), then `then` decides. */
  function rawServer(answer: string, then: 'close' | 'stall'): { address: string; finish: () => void } {
    const held: { end(): void }[] = [];
    const l = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s) {
          s.write(answer);
          if (then === 'close') s.end();
          else held.push(s);
        },
      },
    });
    h.defer(() => l.stop(true));
    return { address: `127.0.0.1:${l.port}`, finish: () => held.forEach((s) => s.end()) };
  }

  test('a small response cut short by the server is a 502, not a torn answer', async () => {
    const s = rawServer('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b', 'close');
    const port = await start([s.address]);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const all = (await c.readAll()).toString();
    expect(all).toStartWith('HTTP/1.1 502 ');
    expect(all).toContain('the server failed during its response');
  });

  test('a large response is streamed: its first bytes reach the client before the server has sent it all', async () => {
    const first = 'x'.repeat(100 * 1024);
    const s = rawServer(`HTTP/1.1 200 OK\r\nContent-Length: ${first.length + 5}\r\n\r\n${first}`, 'stall');
    const port = await start([s.address]);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    // The head and the first 100 KiB come while the server still owes 5 bytes.
    const head = await c.readUntil('\r\n\r\n');
    expect(head).toStartWith('HTTP/1.1 200 ');
    s.finish();
  });
});
