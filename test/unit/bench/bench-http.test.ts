// The bench's HTTP row (bench/lib/http.ts): wrk's summary, its options and its two tables.
import { expect, test } from 'bun:test';
import { parseWrk } from '../../../bench/lib/http.ts';
import { estimateSeconds, parseOptions } from '../../../bench/lib/options.ts';
import { formatReport } from '../../../bench/lib/report.ts';
import type { Row } from '../../../bench/lib/results.ts';

test("wrk's summary: requests, window, socket errors and non-2xx answers", () => {
  const text = `Running 1s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.71ms    1.20ms  20.00ms   90.00%
    Req/Sec    18.20k     1.00k   19.00k    80.00%
  18194 requests in 1.00s, 2.50MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:  18139.58
Transfer/sec:      2.49MB
`;
  expect(parseWrk(text)).toEqual({ requests: 18194, seconds: 1, errors: 6 });
  expect(parseWrk('  500 requests in 999.50ms, 1MB read\n')).toEqual({ requests: 500, seconds: 0.9995, errors: 0 });
  expect(parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).toBeNull();
});

test('--only http and --http-clients', () => {
  expect(parseOptions([]).httpClients).toBe(1000);
  const o = parseOptions(['--only', 'http', '--http-clients', '200']);
  expect([...o.only]).toEqual(['http']);
  expect(o.httpClients).toBe(200);
  expect(estimateSeconds(o)).toBeGreaterThan(0);
  expect(() => parseOptions(['--http-clients', '0'])).toThrow(/--http-clients/);
});

test('report: the HTTP tables, with ratios to HAProxy and the direct path', () => {
  const row = (peer: Row['peer'], scenario: Row['scenario'], metric: Row['metric'], v: number, streams = 50): Row => ({ peer, scenario, idle: 0, streams, metric, values: [v], errors: 0, note: '' });
  const rows = [
    row('direct', 'http', 'req_per_s', 40_000),
    row('fulcrum', 'http', 'req_per_s', 10_000),
    row('fulcrum', 'http', 'cpu_us_per_req', 40),
    row('haproxy', 'http', 'req_per_s', 20_000),
    row('haproxy', 'http', 'cpu_us_per_req', 20),
    row('direct', 'http-pool', 'backend_conns', 1000, 1000),
    row('direct', 'http-pool', 'backend_conns_max', 1000, 1000),
    row('fulcrum', 'http-pool', 'backend_conns', 64, 1000),
    row('fulcrum', 'http-pool', 'backend_conns_max', 32, 1000),
    row('fulcrum', 'http-pool', 'req_per_s', 990, 1000),
    row('haproxy', 'http-pool', 'backend_conns', 100, 1000),
    row('haproxy', 'http-pool', 'backend_conns_max', 64, 1000),
  ];
  const text = formatReport({ rows, peers: ['direct', 'fulcrum', 'haproxy'], ladder: [0], bulkStreams: [], connections: 50, memoryIdle: 0, workersLadder: [0], workers: 2 }, []);
  expect(text).toMatch(/fulcrum\s+10,000\s+0\.50\s+0\.25\s+40\.00\s+2\.00/);
  expect(text).toContain('HTTP pooling: 1,000 mostly idle keep-alive clients');
  expect(text).toMatch(/fulcrum\s+64\s+32\s+0\.50\s+990/);
  expect(text).toMatch(/direct\s+1,000\s+1,000\s+15\.63/);
  expect(text).toContain('HTTP: the fastest balancer (haproxy) reached 50% of the direct path');
});
