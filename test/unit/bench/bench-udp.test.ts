// The bench's UDP row (bench/lib/udp.ts): the DNS responder's answers, dnsperf's summary, the
// memory clients' source addresses, its option and its table.
import { expect, test } from 'bun:test';
import { parseOptions } from '../../../bench/lib/options.ts';
import { formatReport } from '../../../bench/lib/report.ts';
import type { Row } from '../../../bench/lib/results.ts';
import { dnsAnswer, parseDnsperf, SESSIONS_PER_SOURCE, sourceAddress } from '../../../bench/lib/udp.ts';
import { buildDnsQuery, parseDnsResponse } from '../../../src/protocol/dns.ts';

test('the responder answers a query with NOERROR and one record, and ignores answers', () => {
  const q = { id: 4242, name: 'bench.example', type: 'A' as const };
  const query = buildDnsQuery(q);
  if (query.kind !== 'query') throw new Error(query.reason);
  const a = dnsAnswer(query.bytes)!;
  expect(parseDnsResponse(a, q)).toEqual({ kind: 'answer', rcode: 0, rcodeName: 'NOERROR', answers: 1, authoritative: false, truncated: false });
  expect(dnsAnswer(a)).toBeNull();
  expect(dnsAnswer(Uint8Array.of(1, 2, 3))).toBeNull();
});

test("dnsperf's summary", () => {
  const text = `Statistics:

  Queries sent:         120345
  Queries completed:    120300 (99.96%)
  Queries lost:         45 (0.04%)

  Response codes:       NOERROR 120300 (100.00%)
  Run time (s):         1.000123
  Queries per second:   120285.2
`;
  expect(parseDnsperf(text)).toEqual({ completed: 120300, lost: 45, seconds: 1.000123 });
  expect(parseDnsperf('Error: socket: Too many open files')).toBeNull();
});

test('memory clients: at most SESSIONS_PER_SOURCE per source address, all in 127/8', () => {
  expect(sourceAddress(0)).toBe('127.0.1.1');
  expect(sourceAddress(SESSIONS_PER_SOURCE - 1)).toBe('127.0.1.1');
  expect(sourceAddress(SESSIONS_PER_SOURCE)).toBe('127.0.1.2');
  expect(sourceAddress(250 * SESSIONS_PER_SOURCE)).toBe('127.0.2.1');
  const counts = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) counts.set(sourceAddress(i), (counts.get(sourceAddress(i)) ?? 0) + 1);
  expect(Math.max(...counts.values())).toBe(SESSIONS_PER_SOURCE);
});

test('--only udp and --udp-sessions', () => {
  expect(parseOptions(['--quick']).udpSessions).toBe(500);
  const o = parseOptions(['--only', 'udp', '--udp-sessions', '2000']);
  expect([...o.only]).toEqual(['udp']);
  expect(o.udpSessions).toBe(2000);
  expect(() => parseOptions(['--udp-sessions', '0'])).toThrow(/--udp-sessions/);
});

test('report: the UDP table, with ratios to nginx and the direct path', () => {
  const row = (peer: Row['peer'], metric: Row['metric'], v: number, streams = 16): Row => ({ peer, scenario: 'udp', idle: 0, streams, metric, values: [v], errors: 0, note: '' });
  const rows = [
    row('direct', 'dgram_per_s', 200_000),
    row('fulcrum', 'dgram_per_s', 100_000),
    row('fulcrum', 'cpu_us_per_dgram', 5),
    row('fulcrum', 'bytes_per_session', 900, 500),
    row('nginx', 'dgram_per_s', 80_000),
    row('nginx', 'cpu_us_per_dgram', 10),
    row('nginx', 'bytes_per_session', 1200, 500),
  ];
  const text = formatReport({ rows, peers: ['direct', 'fulcrum', 'nginx'], ladder: [0], bulkStreams: [], connections: 50, memoryIdle: 0, workersLadder: [0], workers: 2 }, []);
  expect(text).toContain('bytes/session (500 held)');
  expect(text).toMatch(/fulcrum\s+100,000\s+1\.25\s+0\.50\s+5\.00\s+0\.50\s+900/);
  expect(text).toMatch(/direct\s+200,000\s+2\.50\s+1\.00\s+n\/a/);
});
