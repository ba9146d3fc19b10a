/** The bench's pure parts: statistics, the command line, the CSV and the chart's axes. */
import { describe, expect, test } from 'bun:test';
import { OptionsError, estimateSeconds, parseOptions, workersConnectionLimit } from '../../../bench/lib/options.ts';
import { holdersFor } from '../../../bench/lib/idle.ts';
import { formatReport } from '../../../bench/lib/report.ts';
import { toCsv, type Row } from '../../../bench/lib/results.ts';
import { Samples, percentile, summarize } from '../../../bench/lib/stats.ts';
import { niceScale, scalingSvg } from '../../../bench/lib/svg.ts';

describe('statistics', () => {
  test('nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([], 50)).toBeNaN();
  });

  test('samples keep a fixed capacity and sort numerically', () => {
    const s = new Samples(3);
    for (const v of [10, 9, 100, 1]) s.add(v);
    expect(s.count).toBe(3);
    expect(s.dropped).toBe(1);
    expect(s.percentile(100)).toBe(100);
    expect(s.percentile(1)).toBe(9);
  });

  test('median and spread of repeats leave failed runs out', () => {
    expect(summarize([3, 1, 2])).toMatchObject({ median: 2, min: 1, max: 3 });
    expect(summarize([4, 1, NaN, 2, 3])).toMatchObject({ median: 2.5, min: 1, max: 4 });
    expect(summarize([NaN]).median).toBeNaN();
  });
});

describe('command line', () => {
  test('full and quick presets', () => {
    const full = parseOptions([]);
    expect(full).toMatchObject({ repeats: 3, durationMs: 5000, ladder: [0, 2000, 5000, 9000], memoryIdle: 9000, workersLadder: [0, 9000, 15000], pin: true });
    expect(full.only.has('workers')).toBe(true);
    const quick = parseOptions(['--quick']);
    expect(quick).toMatchObject({ repeats: 1, durationMs: 1000, ladder: [0, 1000], workersLadder: [0, 1000] });
    expect(estimateSeconds(quick)).toBeLessThan(estimateSeconds(full) / 5);
  });

  test('overrides, and the ladder always starts at 0', () => {
    const o = parseOptions(['--peers', 'haproxy,fulcrum', '--only', 'idle,memory', '--idle', '500,100', '--duration', '0.5']);
    expect(o.peers).toEqual(['fulcrum', 'haproxy']); // the report's order, not the flag's
    expect([...o.only]).toEqual(['idle', 'memory']);
    expect(o.ladder).toEqual([0, 100, 500]);
    expect(o.durationMs).toBe(500);
  });

  test('the cluster pair is opt-in: not in a default run, run when named', () => {
    expect(parseOptions([]).peers).not.toContain('fulcrum-cluster');
    expect(parseOptions([]).peers).not.toContain('fulcrum-tracked');
    expect(parseOptions([]).peers).toContain('fulcrum');
    expect(parseOptions(['--peers', 'fulcrum-cluster,fulcrum-tracked', '--only', 'connrate']).peers).toEqual(['fulcrum-tracked', 'fulcrum-cluster']);
  });

  test('the workers scenario: its own ladder, limit and time, for Fulcrum only', () => {
    const o = parseOptions(['--only', 'workers', '--peers', 'fulcrum', '--workers-idle', '15000,9000,9000']);
    expect(o.workersLadder).toEqual([0, 9000, 15000]);
    expect(workersConnectionLimit(o)).toBe(15_000 + 2 * 50 + 200);
    const withoutFulcrum = parseOptions(['--only', 'workers', '--peers', 'haproxy']);
    expect(estimateSeconds(o)).toBeGreaterThan(estimateSeconds(withoutFulcrum) + 100);
    // One listener per holder: a holder opens at most 9,000, one step may take several.
    expect(holdersFor(o.workersLadder)).toBe(2);
    expect(holdersFor([0, 2000, 5000, 9000])).toBe(3);
    expect(holdersFor([0, 20_000])).toBe(3);
    expect(holdersFor([0])).toBe(0);
  });

  test('mistakes are refused with a reason', () => {
    expect(() => parseOptions(['--peers', 'envoy'])).toThrow(OptionsError);
    expect(() => parseOptions(['--only', 'speed'])).toThrow(/unknown scenario/);
    expect(() => parseOptions(['--repeats', '0'])).toThrow(/--repeats/);
    expect(() => parseOptions(['--quick', '--publish'])).toThrow(/must not replace the published/);
    expect(() => parseOptions(['--balancer-cpu', '0'])).toThrow(/must differ/);
  });
});

const row = (over: Partial<Row>): Row => ({ peer: 'fulcrum', scenario: 'keepalive', idle: 0, streams: 50, metric: 'req_per_s', values: [1, 2, 3], errors: 0, note: '', ...over });

test('CSV: one line per figure, median and range, notes quoted', () => {
  const csv = toCsv([row({}), row({ peer: 'pen', values: [NaN], note: 'skipped: pen, "missing"' })]).split('\n');
  expect(csv[0]).toBe('peer,scenario,idle,streams,metric,median,min,max,repeats,values,errors,note');
  expect(csv[1]).toBe('fulcrum,keepalive,0,50,req_per_s,2,1,3,3,1 2 3,0,');
  expect(csv[2]).toBe('pen,keepalive,0,50,req_per_s,,,,1,NaN,0,"skipped: pen, ""missing"""');
});

test('chart axes are round and cover the data', () => {
  expect(niceScale(87_000)).toEqual({ top: 100_000, step: 20_000 });
  expect(niceScale(9000, 4)).toEqual({ top: 10_000, step: 2500 });
  expect(niceScale(0).top).toBeGreaterThan(0);
  const svg = scalingSvg({
    rows: [row({ values: [10] }), row({ idle: 1000, values: [8] }), row({ scenario: 'connrate', metric: 'conn_per_s', values: [5] })],
    peers: ['fulcrum'],
    ladder: [0, 1000],
    subtitle: 'test <run>',
  });
  expect(svg).toStartWith('<svg');
  expect(svg).toContain('test &lt;run&gt;');
  expect(svg.match(/<polyline/g)?.length).toBe(2);
});

test('report: the workers table compares Fulcrum with workers only with its own idle 0', () => {
  const rows = [
    row({ scenario: 'workers-keepalive', values: [100] }),
    row({ scenario: 'workers-keepalive', idle: 15_000, values: [90] }),
    row({ scenario: 'workers-connrate', metric: 'conn_per_s', idle: 15_000, values: [], note: 'could not' }),
    row({ scenario: 'workers-idle', idle: 15_000, streams: 0, metric: 'rss_kib', values: [123_456] }),
  ];
  const text = formatReport({ rows, peers: ['fulcrum'], ladder: [0], bulkStreams: [], connections: 50, memoryIdle: 1000, workersLadder: [0, 15_000], workers: 2 }, []);
  expect(text).toContain('Beyond one process: Fulcrum --workers 2');
  expect(text).toContain('not a multi-core speed-up');
  expect(text).toMatch(/keep-alive req\/s +100 \(1\.00\) +90 \(0\.90\)/);
  expect(text).toMatch(/new connections\/s +n\/a +n\/a \*/);
  expect(text).toContain('123,456');
  // The one-process tables do not pick up the workers' rows.
  expect(text).not.toContain('Keep-alive forwarding');
});

test('report: CPU per connection and system calls per connection, each also as a ratio to HAProxy', () => {
  const rows = [
    row({ peer: 'fulcrum', scenario: 'connrate', metric: 'conn_per_s', values: [900] }),
    row({ peer: 'fulcrum', scenario: 'connrate', metric: 'cpu_us_per_conn', values: [150] }),
    row({ peer: 'fulcrum', scenario: 'connrate', metric: 'syscalls_per_conn', streams: 1, values: [26.5] }),
    row({ peer: 'haproxy', scenario: 'connrate', metric: 'conn_per_s', values: [1000] }),
    row({ peer: 'haproxy', scenario: 'connrate', metric: 'cpu_us_per_conn', values: [100] }),
    row({ peer: 'haproxy', scenario: 'connrate', metric: 'syscalls_per_conn', streams: 1, values: [25] }),
  ];
  const text = formatReport({ rows, peers: ['fulcrum', 'haproxy'], ladder: [0], bulkStreams: [], connections: 50, memoryIdle: 1000, workersLadder: [0], workers: 2 }, []);
  expect(text).toMatch(/CPU µs\/conn +×haproxy +syscalls\/conn +×haproxy/);
  expect(text).toMatch(/fulcrum +900 +0\.90 +- +150\.0 +1\.50 +26\.5 +1\.06/);
  expect(text).toMatch(/haproxy +1,000 +1\.00 +- +100\.0 +1\.00 +25\.0 +1\.00/);
});
