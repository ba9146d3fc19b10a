/**
 * HTTP mode end to end (docs/http.md): the fulcrum process with a `mode: http` listener, real
 * clients (fetch, raw sockets, curl when installed) and HTTP/1.1 backends the test starts
 * (test/helpers/http-backends.ts). Per-request round robin over one keep-alive connection,
 * forwarding headers (XFF appended for trusted proxies, replaced otherwise; hop-by-hop dropped),
 * cookie stickiness and its fallback, the pool's bound on backend connections, 502/503 answers,
 * and routing by Host and path prefix.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { connect, freePort, Harness, type Client } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';
import { httpBackend, type HttpBackend } from '../helpers/http-backends.ts';

setDefaultTimeout(60_000);

interface Answer {
  status: number;
  head: string;
  // The backend's JSON echo (or our error text).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** The backend's echo of a request (test/helpers/http-backends.ts). */
interface Echo {
  server: string;
  path: string;
  headers: Record<string, string | undefined>;
  body: string;
}

async function echo(r: Response | Promise<Response>): Promise<Echo> {
  return (await (await r).json()) as Echo;
}

/** One request on a raw keep-alive connection; the answer is read by its Content-Length or chunks. */
async function rawRequest(c: Client, path: string, extra = '', host = 'test'): Promise<Answer> {
  await c.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`);
  return rawRequestAnswer(c);
}

/** The answer to a request already written on `c`. */
async function rawRequestAnswer(c: Client): Promise<Answer> {
  const head = await c.readUntil('\r\n\r\n');
  const status = Number(head.split(' ')[1]);
  const len = /content-length: *(\d+)/i.exec(head);
  let text = '';
  if (len !== null) text = (await c.readExactly(Number(len[1]))).toString();
  else {
    // chunked
    for (;;) {
      const size = parseInt(await c.readUntil('\r\n'), 16);
      if (size === 0) {
        await c.readUntil('\r\n');
        break;
      }
      text += (await c.readExactly(size)).toString();
      await c.readUntil('\r\n');
    }
  }
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // an error page of ours
  }
  return { status, head, body };
}

describe('HTTP mode', () => {
  const h = new Harness();
  afterAll(() => h.close());

  async function start(groups: Record<string, Record<string, unknown>>, listener: Record<string, unknown> = {}, more: Record<string, unknown>[] = []): Promise<{ port: number; ports: number[] }> {
    const dir = tempDir(h);
    const ports = [freePort(), ...more.map(() => freePort())];
    const listeners = [{ listen: `127.0.0.1:${ports[0]}`, group: Object.keys(groups)[0], mode: 'http', ...listener }, ...more.map((m, i) => ({ listen: `127.0.0.1:${ports[i + 1]}`, mode: 'http', ...m }))];
    const path = join(dir, 'fulcrum.yaml');
    writeYaml(path, { global: { max_connections_per_source: 0 }, groups, listeners });
    await h.startFulcrum(['--config', path], { port: ports });
    return { port: ports[0]!, ports };
  }

  function backends(...names: string[]): HttpBackend[] {
    return names.map((n) => {
      const b = httpBackend(n);
      h.defer(() => b.close());
      return b;
    });
  }

  test('each request of one keep-alive connection is balanced (round robin); hop-by-hop headers are dropped', async () => {
    const [a, b] = backends('a', 'b');
    const { port } = await start({ web: { servers: [a!.address, b!.address], tracking: false } });
    const c = await connect(port);
    h.defer(() => c.close());
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await rawRequest(c, `/n${i}`, 'Connection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n');
      expect(r.status).toBe(200);
      served.push(r.body.server);
      expect(r.body.path).toBe(`/n${i}`);
      expect(r.body.headers['x-secret']).toBeUndefined();
      expect(r.body.headers['keep-alive']).toBeUndefined();
      expect(r.body.headers['connection']).toBeUndefined();
      // The backend's own Connection header does not reach the client either.
      expect(r.head.toLowerCase()).not.toContain('connection: keep-alive');
    }
    // Alternating, whichever server round robin starts with.
    expect(served[0]).not.toBe(served[1]);
    expect(served.slice(2)).toEqual(served.slice(0, 2));
    expect(a!.accepted + b!.accepted).toBe(2); // one pooled connection each
  });

  test('X-Forwarded-For is appended to from a trusted proxy and replaced from anyone else', async () => {
    const [a] = backends('a');
    const { ports } = await start({ web: { servers: [a!.address] } }, { trusted_proxies: ['127.0.0.0/8'] }, [{ group: 'web' }]);
    const trusted = await echo(fetch(`http://127.0.0.1:${ports[0]}/`, { headers: { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=203.0.113.9' } }));
    expect(trusted.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(trusted.headers['forwarded']).toBe('for=203.0.113.9, for=127.0.0.1;proto=http;host="127.0.0.1:' + ports[0] + '"');
    expect(trusted.headers['x-forwarded-proto']).toBe('http');
    const untrusted = await echo(fetch(`http://127.0.0.1:${ports[1]}/`, { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' } }));
    expect(untrusted.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(untrusted.headers['x-forwarded-proto']).toBe('http');
  });

  test('a sticky cookie keeps a client on its server while it is up, then moves it and re-sticks it', async () => {
    const [a, b] = backends('a', 'b');
    const { port } = await start({ web: { servers: [a!.address, b!.address], tracking: false, sticky_cookie: 'SRV' } });
    const first = await fetch(`http://127.0.0.1:${port}/`);
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^SRV=[0-9a-f]{32}; Path=\/; HttpOnly$/);
    expect(cookie).not.toContain(String(a!.port));
    expect(first.headers.get('cache-control')).toBe('private');
    const home = (await echo(first)).server;
    const value = cookie.split(';')[0]!;
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: `theme=dark; ${value}` } });
      expect(r.headers.get('set-cookie')).toBeNull(); // already stuck
      const body = await echo(r);
      expect(body.server).toBe(home);
      expect(body.headers.cookie).toBe('theme=dark'); // indirect: ours is removed
    }
    const forged = await echo(fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: 'SRV=00000000000000000000000000000000' } }));
    expect(forged.headers.cookie).toBeUndefined();
    // The home server goes away: the request fails over and the answer sticks the client anew.
    (home === 'a' ? a! : b!).close();
    const moved = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: value } });
    expect(moved.status).toBe(200);
    expect((await echo(moved)).server).toBe(home === 'a' ? 'b' : 'a');
    const again = moved.headers.get('set-cookie')!;
    expect(again).toMatch(/^SRV=/);
    expect(again.split(';')[0]).not.toBe(value);
  });

  test('200 keep-alive clients taking turns need no more backend connections than the pool allows', async () => {
    const [a, b] = backends('a', 'b');
    // From one address: more than the default per-source limit (a quarter of max_connections).
    const { port } = await start({ web: { servers: [a!.address, b!.address], tracking: false } }, { pool: { max_per_server: 2, idle_timeout: '60s' } });
    const clients: Client[] = [];
    for (let i = 0; i < 200; i++) {
      const c = await connect(port);
      clients.push(c);
      h.defer(() => c.close());
      expect((await rawRequest(c, `/c${i}`)).status).toBe(200);
    }
    expect(a!.requests.length + b!.requests.length).toBe(200);
    expect(a!.accepted).toBeLessThanOrEqual(2);
    expect(b!.accepted).toBeLessThanOrEqual(2);
    expect(a!.open + b!.open).toBeLessThanOrEqual(4);
    // And several requests at once stay within the bound too (they wait for a pooled connection).
    await Promise.all(clients.slice(0, 20).map((c, i) => rawRequest(c, `/p${i}`)));
    expect(a!.peak).toBeLessThanOrEqual(2);
    expect(b!.peak).toBeLessThanOrEqual(2);
  });

  test('502 when the server fails before answering, 503 when no server is available', async () => {
    const bad = httpBackend('bad', { mode: 'reset' });
    h.defer(() => bad.close());
    const { ports } = await start({ broken: { servers: [bad.address] }, none: { servers: [{ address: bad.address, state: 'maintenance' }] } }, {}, [{ group: 'none' }]);
    const r502 = await fetch(`http://127.0.0.1:${ports[0]}/`);
    expect(r502.status).toBe(502);
    await r502.text();
    const r503 = await fetch(`http://127.0.0.1:${ports[1]}/`);
    expect(r503.status).toBe(503);
    expect(await r503.text()).toContain('no server available');
  });

  test('an idempotent request a server drops unanswered is sent once more to another server; a POST gets 502', async () => {
    const bad = httpBackend('bad', { mode: 'reset' });
    h.defer(() => bad.close());
    const [a] = backends('a');
    const { port } = await start({ web: { servers: [bad.address, a!.address], tracking: false, blacklist: 0 } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/get${i}`);
      statuses.push(r.status);
      if (r.status === 200) expect((await echo(r)).server).toBe('a');
      else await r.text();
    }
    expect(statuses).toEqual([200, 200, 200, 200]);
    // Round robin sent half of them to the server that drops requests first.
    expect(bad.accepted).toBeGreaterThan(0);
    const posts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/post${i}`, { method: 'POST', body: 'x' });
      posts.push(r.status);
      await r.text();
    }
    expect(posts).toContain(502);
    expect(posts).toContain(200);
  });

  test('504 when the server does not answer in time; 413 over the body limit; 400 for a malformed request', async () => {
    const slow = httpBackend('slow', { mode: 'hold' });
    h.defer(() => slow.close());
    const { port } = await start({ web: { servers: [slow.address] } }, { response_timeout: '300ms', max_body_size: 10 });
    const r504 = await fetch(`http://127.0.0.1:${port}/`);
    expect(r504.status).toBe(504);
    await r504.text();
    const r413 = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x'.repeat(100) });
    expect(r413.status).toBe(413);
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(await c.readUntil('\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(slow.requests.length).toBe(1); // neither the large body nor the smuggling attempt reached it
  });

  test('accept_proxy: the PROXY header names the client (X-Forwarded-For, per-source limits); a connection without the header is closed unanswered', async () => {
    const [a] = backends('a');
    const { port } = await start({ web: { servers: [a!.address] } }, { accept_proxy: true, proxy_trusted: ['127.0.0.1'] });
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\nGET /p HTTP/1.1\r\nHost: test\r\n\r\n');
    const first = await rawRequestAnswer(c);
    expect(first.status).toBe(200);
    expect((first.body as Echo).headers['x-forwarded-for']).toBe('198.51.100.7');
    // The next request on the connection: same client.
    const again = await rawRequest(c, '/q');
    expect((again.body as Echo).headers['x-forwarded-for']).toBe('198.51.100.7');
    // Without the header the stage waits for it and refuses a request line as a malformed one.
    const d = await connect(port);
    h.defer(() => d.close());
    await d.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
    expect(await d.waitClosed(10_000)).not.toBe('timeout');
    expect(d.bytesReceived).toBe(0);
  });

  test('max_connections_per_source bounds one address\'s HTTP client connections too', async () => {
    const [a] = backends('a');
    const dir = tempDir(h);
    const port = freePort();
    const path = join(dir, 'fulcrum.yaml');
    writeYaml(path, { global: { max_connections_per_source: 2 }, groups: { web: { servers: [a!.address] } }, listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http' }] });
    await h.startFulcrum(['--config', path], { port: [port] });
    const held = [await connect(port), await connect(port)];
    for (const c of held) {
      h.defer(() => c.close());
      expect((await rawRequest(c, '/')).status).toBe(200);
    }
    const third = await connect(port);
    h.defer(() => third.close());
    expect(await third.waitClosed(10_000)).not.toBe('timeout');
    await held[0]!.close();
    // A slot is free again once one of them closed.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      const c = await connect(port);
      h.defer(() => c.close());
      try {
        ok = (await rawRequest(c, '/')).status === 200;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(ok).toBe(true);
  });

  test('a pipelining client: requests sent in one write are each balanced and answered in order, a POST body between them included', async () => {
    const [a, b] = backends('a', 'b');
    const { port } = await start({ web: { servers: [a!.address, b!.address], tracking: false } });
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET /p1 HTTP/1.1\r\nHost: test\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhelloGET /p3 HTTP/1.1\r\nHost: test\r\n\r\nHEAD /p4 HTTP/1.1\r\nHost: test\r\n\r\nGET /p5 HTTP/1.1\r\nHost: test\r\n\r\n');
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) answers.push(await rawRequestAnswer(c));
    // HEAD: a head with the GET's length and no body; the next answer follows it directly.
    const headOnly = await c.readUntil('\r\n\r\n');
    expect(headOnly).toMatch(/^HTTP\/1\.1 200/);
    expect(headOnly.toLowerCase()).toMatch(/content-length: \d+/);
    answers.push(await rawRequestAnswer(c));
    expect(answers.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    expect(answers.map((x) => (x.body as Echo).path)).toEqual(['/p1', '/p2', '/p3', '/p5']);
    expect((answers[1]!.body as Echo).body).toBe('hello');
    // Each request was balanced on its own (round robin over two servers).
    expect(new Set(answers.map((x) => (x.body as Echo).server))).toEqual(new Set(['a', 'b']));
  });

  test('HTTP/1.0: kept alive only when asked, with a length; chunked answers reach it close-delimited', async () => {
    const [a] = backends('a');
    const { port } = await start({ web: { servers: [a!.address] } });
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET /k1 HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n');
    const first = await rawRequestAnswer(c);
    expect(first.head.toLowerCase()).toContain('connection: keep-alive');
    await c.write('GET /k2 HTTP/1.0\r\nHost: test\r\n\r\n');
    const second = await rawRequestAnswer(c);
    expect((second.body as Echo).path).toBe('/k2');
    expect(second.head.toLowerCase()).toContain('connection: close');
    expect(await c.waitClosed(10_000)).not.toBe('timeout');
    // A chunked answer from the server: de-chunked, delimited by the close for an HTTP/1.0 client.
    const chunky = Bun.listen<undefined>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s) {
          s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
        },
      },
    });
    h.defer(() => chunky.stop(true));
    const p2 = await start({ web: { servers: [`127.0.0.1:${chunky.port}`] } });
    const d = await connect(p2.port);
    h.defer(() => d.close());
    await d.write('GET / HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n');
    expect(await d.waitClosed(10_000)).not.toBe('timeout');
    const all = d.peek().toString();
    expect(all).toMatch(/^HTTP\/1\.1 200/);
    expect(all.toLowerCase()).not.toContain('transfer-encoding');
    expect(all.endsWith('\r\n\r\nhello world')).toBe(true);
    // The same to an HTTP/1.1 client: chunked again, and the connection stays open.
    const e = await connect(p2.port);
    h.defer(() => e.close());
    const ans = await rawRequest(e, '/');
    expect(ans.body).toBe('hello world');
    expect(ans.head.toLowerCase()).toContain('transfer-encoding: chunked');
  });

  test('max_head_size: a head over it gets 431 and never reaches a server; one within it is served', async () => {
    const [a] = backends('a');
    const { port } = await start({ web: { servers: [a!.address] } }, { max_head_size: 1024 });
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write(`GET /big HTTP/1.1\r\nHost: test\r\nX-Big: ${'b'.repeat(1100)}\r\n\r\n`);
    expect(await c.readUntil('\r\n')).toMatch(/^HTTP\/1\.1 431/);
    const d = await connect(port);
    h.defer(() => d.close());
    expect((await rawRequest(d, '/small', `X-Small: ${'s'.repeat(800)}\r\n`)).status).toBe(200);
    expect(a!.requests.map((r) => r.path)).toEqual(['/small']);
  });

  test('a refused connect is retried once on another server', async () => {
    const [a] = backends('a');
    const gone = httpBackend('gone');
    gone.close();
    const { port } = await start({ web: { servers: [gone.address, a!.address], tracking: false } });
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/`);
      expect(r.status).toBe(200);
      expect((await echo(r)).server).toBe('a');
    }
  });

  test('routes by Host and path prefix, first match wins, the listener group otherwise', async () => {
    const [web, api, assets] = backends('web', 'api', 'assets');
    const { port } = await start(
      { web: { servers: [web!.address] }, api: { servers: [api!.address] }, assets: { servers: [assets!.address] } },
      { routes: [{ host: 'api.example', group: 'api' }, { path_prefix: '/static/', group: 'assets' }] },
    );
    const c = await connect(port);
    h.defer(() => c.close());
    const who = async (host: string, path: string) => (await rawRequest(c, path, '', host)).body.server;
    expect(await who('api.example:80', '/static/x.css')).toBe('api');
    expect(await who('www.example', '/static/x.css')).toBe('assets');
    expect(await who('www.example', '/')).toBe('web');
  });

  const curl = spawnSync('curl', ['--version']).status === 0;
  test.skipIf(!curl)('curl: a POST body reaches the server; HEAD has no body', async () => {
    const [a] = backends('a');
    const { port } = await start({ web: { servers: [a!.address] } });
    // Asynchronously: the backends live in this process and must keep answering.
    const run = promisify(execFile);
    const post = await run('curl', ['-sS', '-d', 'hello=world', `http://127.0.0.1:${port}/form`], { encoding: 'utf8', timeout: 20_000 });
    expect((JSON.parse(post.stdout) as Echo).body).toBe('hello=world');
    const head = await run('curl', ['-sS', '-I', `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 20_000 });
    expect(head.stdout).toMatch(/^HTTP\/1\.1 200/);
  });
});
