/**
 * The access log's HTTP line built from a request's record (control/access-log.ts): why from the
 * sticky cookie or the selection, the retry and its failed attempts, new or reused connection, a
 * long path cut, and the text format's quoting.
 */
import { expect, test } from 'bun:test';
import { formatHttpTextRecord, httpAccessRecord, TARGET_MAX } from '../../../src/control/access-log.ts';
import type { HttpRequestRecord } from '../../../src/control/observed.ts';
import type { Server } from '../../../src/core/servers/server.ts';

const server = (port: number, index: number): Server => ({ address: { kind: 'tcp', host: '10.0.0.1', port }, index, role: 'regular' }) as unknown as Server;

function record(over: Partial<HttpRequestRecord> = {}): HttpRequestRecord {
  return {
    listener: { name: 'web' },
    group: { name: 'app', config: { algorithm: 'leastconn' } },
    websocket: false,
    st: { clientKey: '192.0.2.7', clientPort: 51234, reason: 'algorithm' },
    method: 'GET',
    target: '/index.html?q=1',
    host: 'shop.example',
    status: 200,
    own: false,
    startMs: Date.UTC(2025, 4, 1, 12, 0, 1, 2),
    headMs: Date.UTC(2025, 4, 1, 12, 0, 1, 14),
    endMs: Date.UTC(2025, 4, 1, 12, 0, 1, 20),
    bytesFromClient: 0,
    bytesToClient: 5120,
    server: server(80, 1),
    sticky: false,
    retry: null,
    failures: null,
    connectionUses: 3,
    end: 'ok',
    detail: null,
    ...over,
  };
}

test('a request a server answered: why the algorithm (named), a reused connection, head and total times', () => {
  const r = httpAccessRecord(record());
  expect(r).toEqual({
    type: 'http',
    start: '2025-05-01T12:00:01.002Z',
    listener: 'web',
    group: 'app',
    client: '192.0.2.7:51234',
    method: 'GET',
    path: '/index.html?q=1',
    host: 'shop.example',
    status: 200,
    by: 'server',
    server: '10.0.0.1:80',
    server_index: 1,
    why: 'algorithm',
    algorithm: 'leastconn',
    retry: null,
    failed: [],
    connection: 'reused',
    bytes_from_client: 0,
    bytes_to_client: 5120,
    head_ms: 12,
    duration_ms: 18,
    end: 'ok',
    detail: null,
  });
  expect(formatHttpTextRecord(r, new Date(Date.UTC(2025, 4, 1, 12, 0, 1, 20)))).toBe(
    '2025-05-01T12:00:01.020Z type=http start=2025-05-01T12:00:01.002Z listener=web group=app client=192.0.2.7:51234 method=GET path="/index.html?q=1" ' +
      'host=shop.example status=200 by=server server=10.0.0.1:80 server_index=1 why=algorithm algorithm=leastconn retry=- failed=- connection=reused ' +
      'bytes_from_client=0 bytes_to_client=5120 head_ms=12 duration_ms=18 end=ok detail=-\n',
  );
});

test('the sticky cookie, a stale keep-alive retry with its failed attempt, a new connection', () => {
  const s = server(80, 1);
  const r = httpAccessRecord(record({ sticky: true, st: { clientKey: '192.0.2.7', clientPort: 1, reason: 'tracked' }, retry: 'stale-connection', failures: [{ server: s, error: 'stale keep-alive connection: reset' }], connectionUses: 1 }));
  expect(r).toMatchObject({ why: 'sticky-cookie', algorithm: null, retry: 'stale-connection', failed: [{ server: '10.0.0.1:80', error: 'stale keep-alive connection: reset' }], connection: 'new' });
  expect(formatHttpTextRecord(r, new Date(0))).toContain(' why=sticky-cookie algorithm=- retry=stale-connection failed="10.0.0.1:80/stale keep-alive connection: reset" connection=new ');
});

test("Fulcrum's own answer: no server, no connection, no status class from a server; a WebSocket tunnel's type", () => {
  const r = httpAccessRecord(record({ status: 503, own: true, server: null, connectionUses: 0, headMs: Date.UTC(2025, 4, 1, 12, 0, 1, 2), end: 'no-server', detail: 'no server available in group app (all-full)' }));
  expect(r).toMatchObject({ status: 503, by: 'fulcrum', server: null, server_index: null, why: null, algorithm: null, connection: null, head_ms: 0, end: 'no-server' });
  const none = httpAccessRecord(record({ status: 0, headMs: 0, end: 'client-aborted' }));
  expect(none).toMatchObject({ status: null, by: null, head_ms: null });
  expect(httpAccessRecord(record({ websocket: true, status: 101 })).type).toBe('websocket');
});

test('a long path is cut in the line (the request went on whole)', () => {
  const long = '/' + 'a'.repeat(5000);
  const r = httpAccessRecord(record({ target: long }));
  expect(r.path).toBe(long.slice(0, TARGET_MAX) + '...');
});
