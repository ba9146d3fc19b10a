/** HTTP mode's pure parts: the pool policy, routes, forwarding headers, sticky cookies, the client timer's seconds. */
import { expect, test } from 'bun:test';
import { ConnectionPool, type Pooled, type PoolWaiter } from '../../../../src/core/http/pool.ts';
import { matchRoute } from '../../../../src/core/http/routes.ts';
import { forwardedRequestLines, forwardedResponseLines } from '../../../../src/core/http/forwarding.ts';
import { StickyTable, takeCookie } from '../../../../src/core/http/sticky.ts';
import { TrustedSources } from '../../../../src/core/trusted-sources.ts';
import { ManualClock } from '../../../helpers/manual-clock.ts';

class Conn implements Pooled {
  idlePrev: Pooled | null = null;
  idleNext: Pooled | null = null;
  idleSince = -1;
  poolKey: unknown = null;
  closed = false;
}

test('pool: bounded per server, idle reuse, waiters, idle timeout, closing idle on down', () => {
  const clock = new ManualClock();
  const closedIdle: Conn[] = [];
  const pool = new ConnectionPool<string, Conn>({ maxPerServer: 2, idleTimeoutMs: 1000 }, clock, { closeIdle: (c) => closedIdle.push(c) });
  const got: (Conn | null)[] = [];
  const w: PoolWaiter<Conn> = { granted: (c) => got.push(c) };
  expect(pool.acquire('a', w)).toBe('open');
  expect(pool.acquire('a', w)).toBe('open');
  expect(pool.acquire('a', w)).toBe('wait');
  const c1 = new Conn();
  pool.release('a', c1); // goes straight to the waiter
  expect(got).toEqual([c1]);
  pool.release('a', c1);
  expect(pool.counts('a')).toEqual({ open: 2, idle: 1, waiting: 0 });
  // Two connections opened, one handed over to the waiter (a reuse).
  expect(pool.stats()).toEqual({ open: 2, idle: 1, waiting: 0, opened: 2, reused: 1 });
  expect(pool.acquire('a', w)).toBe(c1);
  pool.release('a', c1);
  clock.advance(999);
  expect(closedIdle).toEqual([]);
  clock.advance(1);
  expect(closedIdle).toEqual([c1]);
  expect(pool.counts('a').idle).toBe(0); // out of the list before the socket closes
  pool.closed('a', c1);
  expect(pool.counts('a').open).toBe(1);
  // A closed slot goes to a waiter as leave to open.
  expect(pool.acquire('a', w)).toBe('open');
  expect(pool.acquire('a', w)).toBe('wait');
  pool.closed('a', null);
  expect(got[got.length - 1]).toBeNull();
  const c2 = new Conn();
  pool.release('a', c2);
  pool.closeIdle('a');
  expect(closedIdle).toEqual([c1, c2]);
  expect(clock.pending).toBe(0);
  // Opened: two, one after the idle timeout, one granted to a waiter when a slot closed; reused: the waiter's and the idle one.
  expect(pool.stats()).toMatchObject({ idle: 0, waiting: 0, opened: 4, reused: 2 });
});

test('pool: newest idle reused first, each idle connection times out after its own parking, one timer per server', () => {
  const clock = new ManualClock();
  const closedIdle: Conn[] = [];
  const pool = new ConnectionPool<string, Conn>({ maxPerServer: 3, idleTimeoutMs: 1000 }, clock, { closeIdle: (c) => closedIdle.push(c) });
  const w: PoolWaiter<Conn> = { granted: () => {} };
  const [a, b, c] = [new Conn(), new Conn(), new Conn()];
  for (let i = 0; i < 3; i++) pool.acquire('s', w);
  pool.release('s', a); // t=0
  clock.advance(300);
  pool.release('s', b); // t=300
  clock.advance(300);
  pool.release('s', c); // t=600
  expect(clock.pending).toBe(1);
  expect(pool.acquire('s', w)).toBe(c); // the newest
  pool.release('s', c); // t=600 again
  clock.advance(400); // t=1000: a's time is up, not b's
  expect(closedIdle).toEqual([a]);
  expect(pool.counts('s').idle).toBe(2);
  clock.advance(299);
  expect(closedIdle).toEqual([a]);
  clock.advance(1); // t=1300: b
  expect(closedIdle).toEqual([a, b]);
  clock.advance(300); // t=1600: c
  expect(closedIdle).toEqual([a, b, c]);
  expect(clock.pending).toBe(0);
});

test('pool: waiters are served in order and leave in O(1), wherever they are in the queue', () => {
  const clock = new ManualClock();
  const pool = new ConnectionPool<string, Conn>({ maxPerServer: 1, idleTimeoutMs: 1000 }, clock, { closeIdle: () => {} });
  const got: number[] = [];
  const waiters = Array.from({ length: 5 }, (_, i): PoolWaiter<Conn> => ({ granted: () => got.push(i) }));
  expect(pool.acquire('s', waiters[0]!)).toBe('open');
  for (const w of waiters) expect(pool.acquire('s', w)).toBe('wait');
  pool.cancel('s', waiters[2]!);
  expect(pool.counts('s').waiting).toBe(4);
  const conn = new Conn();
  for (let i = 0; i < 4; i++) pool.release('s', conn);
  expect(got).toEqual([0, 1, 3, 4]);
  expect(pool.counts('s')).toEqual({ open: 1, idle: 0, waiting: 0 });
});

test('routes: first match wins, host without port, path prefix', () => {
  const routes = [
    { host: 'api.example', pathPrefix: '/v2', target: 'v2' },
    { host: 'api.example', pathPrefix: null, target: 'api' },
    { host: null, pathPrefix: '/static/', target: 'static' },
  ];
  expect(matchRoute(routes, 'API.example:8080', '/v2/x')?.target).toBe('v2');
  expect(matchRoute(routes, 'api.example', '/v1')?.target).toBe('api');
  expect(matchRoute(routes, 'www.example', '/static/a.css')?.target).toBe('static');
  expect(matchRoute(routes, 'www.example', '/')).toBeNull();
});

test('forwarding: XFF appended for trusted proxies, replaced otherwise; hop-by-hop, framing and Expect dropped; names keep their case', () => {
  const trusted = TrustedSources.parse(['10.0.0.0/8']) as TrustedSources;
  const pairs = (lines: string): Map<string, string> => new Map(lines.split('\r\n').filter((l) => l !== '').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
  const incoming: [string, string][] = [['Host', 'h'], ['X-Forwarded-For', '1.2.3.4'], ['connection', 'x-secret, keep-alive'], ['X-Secret', 's'], ['keep-alive', '5'], ['Accept', '*/*'], ['Content-Length', '3'], ['Expect', '100-continue'], ['Cookie', 'a=1'], ['X-Forwarded-Proto', 'gopher']];
  const fromProxy = pairs(forwardedRequestLines(incoming, { clientAddress: '::ffff:10.1.1.1', proto: 'http', host: 'h' }, trusted));
  expect(fromProxy.get('x-forwarded-for')).toBe('1.2.3.4, 10.1.1.1');
  expect(fromProxy.get('forwarded')).toBe('for=10.1.1.1;proto=http;host="h"');
  expect(fromProxy.get('x-forwarded-proto')).toBe('http');
  expect([...fromProxy.keys()]).toEqual(['Host', 'Accept', 'Cookie', 'x-forwarded-for', 'x-forwarded-proto', 'forwarded']);
  const fromClient = pairs(forwardedRequestLines(incoming, { clientAddress: '192.0.2.7', proto: 'https', host: null }, trusted, true));
  expect(fromClient.get('x-forwarded-for')).toBe('192.0.2.7');
  expect(fromClient.get('x-forwarded-proto')).toBe('https');
  expect(fromClient.get('Accept')).toBe('*/*');
  expect(fromClient.has('Cookie')).toBe(false);
  // A field the Connection header names is hop-by-hop too, even the forwarding ones.
  expect([...pairs(forwardedRequestLines([['X-Forwarded-For', '9.9.9.9'], ['Connection', 'X-Forwarded-For'], ['A', 'b']], { clientAddress: '10.0.0.1', proto: 'http', host: null }, trusted)).entries()]).toEqual([
    ['A', 'b'],
    ['x-forwarded-for', '10.0.0.1'],
    ['x-forwarded-proto', 'http'],
    ['forwarded', 'for=10.0.0.1;proto=http'],
  ]);
  expect(forwardedResponseLines([['Connection', 'close, X-Drop'], ['Transfer-Encoding', 'chunked'], ['Content-Length', '3'], ['X-A', 'b'], ['X-Drop', '1'], ['Cache-Control', 'max-age=60']])).toBe('X-A: b\r\nCache-Control: max-age=60\r\n');
  expect(forwardedResponseLines([['Cache-Control', 'max-age=60'], ['X-A', 'b']], true)).toBe('X-A: b\r\n');
  // Lines as received, when nothing in them needs rewriting: the same text, with the forwarding fields after it.
  const raw = 'Host:  h \r\nAccept: */*\r\n';
  const facts = { clientAddress: '192.0.2.7', proto: 'http', host: 'h' };
  expect(forwardedRequestLines([['Host', 'h'], ['Accept', '*/*']], facts, trusted, false, raw)).toBe(`${raw}x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\nforwarded: for=192.0.2.7;proto=http;host="h"\r\n`);
  // ... and the same result as field by field whenever some field must go.
  for (const [extra, dropCookie] of [[['Connection', 'close'], false], [['Cookie', 'a=1'], true], [['X-Forwarded-For', '1.1.1.1'], false], [['Content-Length', '0'], false]] as const) {
    const fields: [string, string][] = [['Host', 'h'], [extra[0], extra[1]]];
    const text = `Host: h\r\n${extra[0]}: ${extra[1]}\r\n`;
    expect(forwardedRequestLines(fields, facts, trusted, dropCookie, text)).toBe(forwardedRequestLines(fields, facts, trusted, dropCookie));
  }
  const rawResponse = 'Content-Length: 3\r\nX-A: b\r\n';
  expect(forwardedResponseLines([['Content-Length', '3'], ['X-A', 'b']], false, rawResponse)).toBe(rawResponse);
  expect(forwardedResponseLines([['Content-Length', '3'], ['Keep-Alive', 'timeout=5']], false, 'Content-Length: 3\r\nKeep-Alive: timeout=5\r\n')).toBe('');
});

test('sticky: opaque values, a table by server, the cookie taken out', () => {
  const t = new StickyTable<number>(new Uint8Array(32).fill(7), 'web');
  t.set([
    [0, '127.0.0.1:8001'],
    [1, '127.0.0.1:8002'],
  ]);
  const v0 = t.valueOf(0)!;
  expect(v0).toMatch(/^[0-9a-f]{32}$/);
  expect(v0).not.toContain('8001');
  expect(t.serverOf(v0)).toBe(0);
  expect(t.serverOf('forged')).toBeNull();
  const other = new StickyTable<number>(new Uint8Array(32).fill(8), 'web');
  other.set([[0, '127.0.0.1:8001']]);
  expect(other.valueOf(0)).not.toBe(v0);
  expect(takeCookie(`a=1; SRV=${v0}; b=2`, 'SRV')).toEqual({ value: v0, rest: 'a=1; b=2' });
  expect(takeCookie('SRV=x', 'SRV')).toEqual({ value: 'x', rest: null });
  expect(takeCookie(null, 'SRV')).toEqual({ value: null, rest: null });
});

