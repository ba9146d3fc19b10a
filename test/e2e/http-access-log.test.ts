/**
 * HTTP mode's access log and /metrics per request (docs/http.md, "Access log and metrics"): the
 * real fulcrum with `mode: http` listeners, HTTP/1.1 backends the test starts, real clients. One
 * JSON line per request with method, path, status, who answered, the server and why (round
 * robin, the sticky cookie, failover after a refused connect), the pool connection (new or
 * reused), bytes and timings; Fulcrum's own 502/503 with their reasons; a WebSocket tunnel's
 * line when it ends; the text format; and the fulcrum_http_* families scraped from the admin API,
 * moving with the traffic.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import type { Server as BunServer } from 'bun';
import { join } from 'node:path';
import { freePort, Harness, waitFor } from '../harness/index.ts';
import { api, startWithAdmin, tempDir, waitForLogLine, type AdminFulcrum } from '../helpers/admin.ts';
import { httpBackend, type HttpBackend } from '../helpers/http-backends.ts';
import { parsePrometheusText, sampleValue, type PromFamily } from '../helpers/prom-parse.ts';

setDefaultTimeout(60_000);

type Line = Record<string, unknown>;

const LISTENERS = ['web', 'none', 'broken', 'retry', 'ws'] as const;
type Name = (typeof LISTENERS)[number];

/** The backend's JSON echo: which server answered. */
async function servedBy(r: Response): Promise<{ server: string; text: string }> {
  const text = await r.text();
  return { server: (JSON.parse(text) as { server: string }).server, text };
}

describe('HTTP mode: the access log (JSON) and /metrics per request', () => {
  const h = new Harness();
  let f: AdminFulcrum;
  let log: string;
  const ports = {} as Record<Name, number>;
  let a: HttpBackend;
  let b: HttpBackend;
  let bad: HttpBackend;
  let gone: HttpBackend;
  let wsServer: BunServer<undefined>;
  const address = (name: string): string => ({ a: a.address, b: b.address })[name]!;

  beforeAll(async () => {
    a = httpBackend('a');
    b = httpBackend('b');
    bad = httpBackend('bad', { mode: 'reset' });
    gone = httpBackend('gone');
    gone.close(); // nothing listens there: connects are refused
    for (const x of [a, b, bad]) h.defer(() => x.close());
    wsServer = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (req, server) => (server.upgrade(req, { data: undefined }) ? undefined : new Response('no', { status: 400 })),
      websocket: { message: (ws, m) => void ws.send(typeof m === 'string' ? `echo:${m}` : m) },
    });
    h.defer(() => void wsServer.stop(true));
    for (const n of LISTENERS) ports[n] = freePort();
    const dir = tempDir(h);
    log = join(dir, 'access.log');
    f = await startWithAdmin(h, {
      dir,
      ports: Object.values(ports),
      config: {
        access_log: { file: log, format: 'json' },
        groups: {
          web: { servers: [a.address, b.address], tracking: false, sticky_cookie: 'SRV' },
          none: { servers: [{ address: a.address, state: 'maintenance' }] },
          broken: { servers: [bad.address] },
          retry: { servers: [gone.address, a.address], tracking: false, blacklist: 0 },
          ws: { servers: [`127.0.0.1:${wsServer.port}`] },
        },
        listeners: LISTENERS.map((n) => ({ name: n, listen: `127.0.0.1:${ports[n]}`, group: n, mode: 'http' })),
      },
    });
  });
  afterAll(() => h.close());

  const line = (listener: Name, what: string, pred: (r: Line) => boolean) => waitForLogLine(log, (r) => r.type !== undefined && r.listener === listener && pred(r), `${listener}: ${what}`);

  /** One sample of a histogram family (`_bucket`, `_sum`, `_count`) by its listener (and `le`). */
  function histogramSample(m: Map<string, PromFamily>, name: string, part: string, listener: string, le?: string): number {
    const found = m.get(name)!.samples.filter((s) => s.name === `${name}_${part}` && s.labels.listener === listener && (le === undefined || s.labels.le === le));
    expect(found).toHaveLength(1);
    return found[0]!.value;
  }

  async function scrape(): Promise<Map<string, PromFamily>> {
    const r = await api(f.base, '/metrics');
    expect(r.status).toBe(200);
    return parsePrometheusText(r.text); // strict: a malformed family fails here
  }

  test('a request balanced by round robin, then a sticky one on the pooled connection, then a POST: method, path, status, server, why, bytes, timings', async () => {
    const url = `http://127.0.0.1:${ports.web}`;
    const first = await fetch(`${url}/first?x=1`, { headers: { host: 'shop.example' } });
    expect(first.status).toBe(200);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const one = await servedBy(first);
    const l1 = await line('web', '/first', (r) => r.path === '/first?x=1');
    expect(l1).toMatchObject({
      type: 'http',
      listener: 'web',
      group: 'web',
      method: 'GET',
      host: 'shop.example',
      status: 200,
      by: 'server',
      server: address(one.server),
      server_index: one.server === 'a' ? 0 : 1,
      why: 'algorithm',
      algorithm: 'roundrobin',
      retry: null,
      failed: [],
      connection: 'new',
      bytes_from_client: 0,
      bytes_to_client: Buffer.byteLength(one.text),
      end: 'ok',
      detail: null,
    });
    expect(l1.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(l1.head_ms).toBeGreaterThanOrEqual(0);
    expect(l1.duration_ms as number).toBeGreaterThanOrEqual(l1.head_ms as number);
    expect(Date.parse(l1.time as string)).toBeGreaterThanOrEqual(Date.parse(l1.start as string));

    // The cookie brings the client back to the same server, on the connection the first request left idle.
    const again = await fetch(`${url}/again`, { headers: { cookie } });
    expect((await servedBy(again)).server).toBe(one.server);
    const l2 = await line('web', '/again', (r) => r.path === '/again');
    expect(l2).toMatchObject({ status: 200, server: address(one.server), why: 'sticky-cookie', algorithm: null, connection: 'reused', end: 'ok' });

    const post = await fetch(`${url}/form`, { method: 'POST', body: 'hello=world', headers: { cookie } });
    expect(post.status).toBe(200);
    await post.text();
    const l3 = await line('web', 'the POST', (r) => r.method === 'POST');
    expect(l3).toMatchObject({ path: '/form', status: 200, why: 'sticky-cookie', bytes_from_client: 11 });
  });

  test("Fulcrum's own answers: 503 with the group's refusal, 502 when the server fails before answering", async () => {
    const r503 = await fetch(`http://127.0.0.1:${ports.none}/nothing`);
    expect(r503.status).toBe(503);
    await r503.text();
    const l503 = await line('none', '503', (r) => r.status === 503);
    expect(l503).toMatchObject({ path: '/nothing', by: 'fulcrum', server: null, server_index: null, why: null, connection: null, end: 'no-server' });
    // Answered at once: its head time is its own answer's (a clock tick may pass, so no exact value).
    expect(l503.head_ms).toBeGreaterThanOrEqual(0);
    expect(l503.detail).toContain('no server available in group none');

    const r502 = await fetch(`http://127.0.0.1:${ports.broken}/boom`);
    expect(r502.status).toBe(502);
    await r502.text();
    const l502 = await line('broken', '502', (r) => r.status === 502);
    expect(l502).toMatchObject({ path: '/boom', by: 'fulcrum', server: bad.address, why: 'algorithm', connection: 'new', end: 'server-failed' });
    expect(l502.detail).toStartWith('the server failed before answering: ');
  });

  test('a refused connect is retried on the other server: failover, with the failed attempt', async () => {
    // Round robin: of two requests, one goes to the refused server first.
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`http://127.0.0.1:${ports.retry}/r${i}`);
      expect(r.status).toBe(200);
      await r.text();
    }
    const l = await line('retry', 'the retried request', (r) => r.retry !== null);
    expect(l).toMatchObject({ status: 200, by: 'server', server: a.address, why: 'failover', retry: 'connect-failed' });
    expect(l.failed).toEqual([{ server: gone.address, error: expect.stringMatching(/^connect failed/) }]);
  });

  test("a WebSocket tunnel's line when it ends: 101, the tunnel's bytes each way (frames), who closed", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${ports.ws}/chat`);
    const got = new Promise<string>((res) => (ws.onmessage = (e) => res(String(e.data))));
    await new Promise<void>((res, rej) => {
      ws.onopen = () => res();
      ws.onerror = () => rej(new Error('the WebSocket did not open'));
    });
    ws.send('hello');
    expect(await got).toBe('echo:hello');
    ws.close(1000, 'done');
    const l = await line('ws', 'the tunnel', () => true);
    expect(l).toMatchObject({ type: 'websocket', method: 'GET', path: '/chat', status: 101, by: 'server', server: `127.0.0.1:${wsServer.port}`, connection: 'new', bytes_from_client: 23, bytes_to_client: 20, end: 'client-closed' });
    // 23: 'hello' in a masked frame (2 + 4 + 5) and the close frame with its code and 'done' (2 + 4 + 2 + 4); 20: 'echo:hello' (2 + 10) and the close frame back (2 + 2 + 4).
  });

  test('/metrics: requests by group and status class, own answers by status, the response head histogram and the pool, moving with the traffic', async () => {
    const before = await scrape();
    const twoXX = { listener: 'web', group: 'web', class: '2xx' };
    const okBefore = sampleValue(before, 'fulcrum_http_requests_total', twoXX);
    const HEAD = 'fulcrum_http_response_head_seconds';
    const headBefore = histogramSample(before, HEAD, 'count', 'web');
    const pooled = (m: Map<string, PromFamily>) => sampleValue(m, 'fulcrum_http_pool_connections_reused_total', { listener: 'web' }) + sampleValue(m, 'fulcrum_http_pool_connections_opened_total', { listener: 'web' });
    const pooledBefore = pooled(before);
    const own503 = sampleValue(before, 'fulcrum_http_error_answers_total', { listener: 'none', status: '503' });
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${ports.web}/m${i}`);
      expect(r.status).toBe(200);
      await r.text();
    }
    const r503 = await fetch(`http://127.0.0.1:${ports.none}/`);
    expect(r503.status).toBe(503);
    await r503.text();
    // Counted when each request ends (at once here: the server's body is all read before the client has it).
    let m = before;
    await waitFor(
      async () => {
        m = await scrape();
        return sampleValue(m, 'fulcrum_http_requests_total', twoXX) === okBefore + 3;
      },
      { what: 'three more 2xx requests in /metrics' },
    );
    expect(m.get('fulcrum_http_requests_total')!.type).toBe('counter');
    expect(sampleValue(m, 'fulcrum_http_requests_total', { listener: 'web', group: 'web', class: '5xx' })).toBe(0);
    expect(sampleValue(m, 'fulcrum_http_requests_total', { listener: 'none', group: 'none', class: '5xx' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(m, 'fulcrum_http_error_answers_total', { listener: 'none', status: '503' })).toBe(own503 + 1);
    expect(sampleValue(m, 'fulcrum_http_error_answers_total', { listener: 'broken', status: '502' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'fulcrum_http_error_answers_total', { listener: 'web', status: '504' })).toBe(0);
    // Only servers' answers are timed: three more on web, none on the listener that only answered 503.
    expect(m.get(HEAD)!.type).toBe('histogram');
    expect(histogramSample(m, HEAD, 'count', 'web')).toBe(headBefore + 3);
    expect(histogramSample(m, HEAD, 'bucket', 'web', '+Inf')).toBe(headBefore + 3);
    expect(histogramSample(m, HEAD, 'count', 'none')).toBe(0);
    // The pool: each request had a connection, new or reused; one at a time needs at most one per server.
    expect(pooled(m)).toBe(pooledBefore + 3);
    expect(sampleValue(m, 'fulcrum_http_pool_connections_reused_total', { listener: 'web' })).toBeGreaterThanOrEqual(3);
    expect(sampleValue(m, 'fulcrum_http_pool_connections_opened_total', { listener: 'web' })).toBeLessThanOrEqual(2);
    expect(sampleValue(m, 'fulcrum_http_pool_connections', { listener: 'web', state: 'open' })).toBeLessThanOrEqual(2);
    expect(sampleValue(m, 'fulcrum_http_pool_connections', { listener: 'web', state: 'idle' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'fulcrum_http_requests_in_flight', { listener: 'web' })).toBe(0);
  });
});

describe('HTTP mode: the access log (text)', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('one key=value line per request, in the JSON record\'s order', async () => {
    const a = httpBackend('a');
    h.defer(() => a.close());
    const dir = tempDir(h);
    const log = join(dir, 'access.log');
    const web = freePort();
    const none = freePort();
    await startWithAdmin(h, {
      dir,
      ports: [web, none],
      config: {
        access_log: { file: log, format: 'text' },
        groups: { web: { servers: [a.address], sticky_cookie: 'SRV' }, none: { servers: [{ address: a.address, state: 'maintenance' }] } },
        listeners: [
          { name: 'web', listen: `127.0.0.1:${web}`, group: 'web', mode: 'http' },
          { name: 'none', listen: `127.0.0.1:${none}`, group: 'none', mode: 'http' },
        ],
      },
    });
    const first = await fetch(`http://127.0.0.1:${web}/a?b=c`);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    await first.text();
    const sticky = await fetch(`http://127.0.0.1:${web}/sticky`, { headers: { cookie } });
    await sticky.text();
    const refused = await fetch(`http://127.0.0.1:${none}/x`);
    expect(refused.status).toBe(503);
    await refused.text();
    const lines = await waitFor(
      async () => {
        const file = Bun.file(log);
        const text = (await file.exists()) ? await file.text() : '';
        const all = text.split('\n').filter((l) => l.includes(' type=http '));
        return all.length >= 3 ? all : undefined;
      },
      { what: 'three HTTP lines in the text access log' },
    );
    const ts = '\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z';
    expect(lines[0]).toMatch(
      new RegExp(
        `^${ts} type=http start=${ts} listener=web group=web client=127\\.0\\.0\\.1:\\d+ method=GET path="/a\\?b=c" host=127\\.0\\.0\\.1:${web} status=200 by=server ` +
          `server=${a.address} server_index=0 why=algorithm algorithm=roundrobin retry=- failed=- connection=new bytes_from_client=0 bytes_to_client=\\d+ head_ms=\\d+ duration_ms=\\d+ end=ok detail=-$`,
      ),
    );
    expect(lines[1]).toContain(' path=/sticky ');
    expect(lines[1]).toContain(' why=sticky-cookie algorithm=- ');
    expect(lines[1]).toContain(' connection=reused ');
    expect(lines[2]).toMatch(/ listener=none group=none .* status=503 by=fulcrum server=- server_index=- why=- .* connection=- .* end=no-server detail="no server available in group none \(no-server\)"$/);
  });
});
