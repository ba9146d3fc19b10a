/**
 * The text report: absolute figures (median of the repeats, with their min–max spread) and
 * ratios to HAProxy, the reference, plus how close each balancer came to the direct path
 * (which tells whether the load core, not the balancer, was the limit). Fulcrum with workers
 * has a table of its own, compared only with itself.
 */
import type { PeerName } from './peers.ts';
import { find, summaryOf, type Metric, type Row, type Scenario } from './results.ts';

/** A balancer this close to the direct path may have been held back by the load core. */
export const NEAR_CEILING = 0.9;

function num(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';
}

function spread(row: Row | undefined, digits = 0): string {
  if (row === undefined) return 'n/a';
  const s = summaryOf(row);
  if (!Number.isFinite(s.median)) return row.note !== '' ? 'n/a *' : 'n/a';
  const range = row.values.length > 1 ? ` [${num(s.min, digits)}–${num(s.max, digits)}]` : '';
  return `${num(s.median, digits)}${range}${row.errors > 0 ? ' *' : ''}`;
}

function median(row: Row | undefined): number {
  return row === undefined ? NaN : summaryOf(row).median;
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '-';
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export interface ReportInput {
  rows: readonly Row[];
  peers: readonly PeerName[];
  ladder: readonly number[];
  bulkStreams: readonly number[];
  connections: number;
  memoryIdle: number;
  /** The workers scenario: its ladder and how many workers. */
  workersLadder: readonly number[];
  workers: number;
}

function rateSection(input: ReportInput, scenario: 'keepalive' | 'connrate', title: string, unit: string): string[] {
  const metric: Metric = scenario === 'keepalive' ? 'req_per_s' : 'conn_per_s';
  const cpu: Metric = scenario === 'keepalive' ? 'cpu_us_per_req' : 'cpu_us_per_conn';
  const withSyscalls = scenario === 'connrate' && input.rows.some((r) => r.metric === 'syscalls_per_conn');
  const hap = median(find(input.rows, 'haproxy', scenario, metric));
  const hapCpu = median(find(input.rows, 'haproxy', scenario, cpu));
  const hapSyscalls = median(find(input.rows, 'haproxy', scenario, 'syscalls_per_conn', 0, 1));
  const direct = median(find(input.rows, 'direct', scenario, metric));
  const body = input.peers
    .filter((p) => find(input.rows, p, scenario, metric) !== undefined)
    .map((p) => {
      const r = find(input.rows, p, scenario, metric);
      const c = find(input.rows, p, scenario, cpu);
      const sys = find(input.rows, p, scenario, 'syscalls_per_conn', 0, 1);
      return [
        p,
        spread(r),
        ratio(median(r), hap),
        ratio(median(r), direct),
        c === undefined ? '-' : spread(c, 1),
        ratio(median(c), hapCpu),
        ...(withSyscalls ? [sys === undefined ? '-' : spread(sys, 1), ratio(median(sys), hapSyscalls)] : []),
        spread(find(input.rows, p, scenario, 'p50_us')),
        spread(find(input.rows, p, scenario, 'p99_us')),
      ];
    });
  if (body.length === 0) return [];
  const per = scenario === 'keepalive' ? 'req' : 'conn';
  const header = ['peer', unit, '×haproxy', '×direct', `CPU µs/${per}`, '×haproxy', ...(withSyscalls ? ['syscalls/conn', '×haproxy'] : []), 'probe p50 µs', 'probe p99 µs'];
  return [title, ...table(header, body), ''];
}

function ladderSection(input: ReportInput, scenario: 'keepalive' | 'connrate', title: string): string[] {
  const metric: Metric = scenario === 'keepalive' ? 'req_per_s' : 'conn_per_s';
  const steps = input.ladder.filter((n) => n > 0);
  if (steps.length === 0 || !input.rows.some((r) => r.scenario === scenario && r.idle > 0)) return [];
  const body = input.peers
    .filter((p) => input.rows.some((r) => r.peer === p && r.scenario === scenario))
    .map((p) => [
      p,
      ...input.ladder.map((n) => {
        const m = median(find(input.rows, p, scenario, metric, n));
        const hap = median(find(input.rows, 'haproxy', scenario, metric, n));
        return Number.isFinite(m) ? `${num(m)} (${ratio(m, hap)})` : 'n/a';
      }),
    ]);
  return [title, ...table(['peer', ...input.ladder.map((n) => `idle ${num(n)}`)], body), ''];
}

/** Fulcrum with workers at each step of its ladder; throughput also as a ratio to its own idle 0. */
function workersSection(input: ReportInput): string[] {
  if (!input.rows.some((r) => r.peer === 'fulcrum' && r.scenario.startsWith('workers-'))) return [];
  const at = (scenario: Scenario, metric: Metric, n: number): Row | undefined => find(input.rows, 'fulcrum', scenario, metric, n);
  const flat = (scenario: Scenario, metric: Metric): string[] =>
    input.workersLadder.map((n) => {
      const m = median(at(scenario, metric, n));
      return Number.isFinite(m) ? `${num(m)} (${ratio(m, median(at(scenario, metric, 0)))})` : spread(at(scenario, metric, n));
    });
  const plain = (scenario: Scenario, metric: Metric): string[] => input.workersLadder.map((n) => spread(at(scenario, metric, n)));
  const body = [
    ['keep-alive req/s', ...flat('workers-keepalive', 'req_per_s')],
    ['  probe p99 µs', ...plain('workers-keepalive', 'p99_us')],
    ['new connections/s', ...flat('workers-connrate', 'conn_per_s')],
    ['  probe p99 µs', ...plain('workers-connrate', 'p99_us')],
    ['RSS KiB, primary + workers', ...plain('workers-idle', 'rss_kib')],
  ];
  return [
    `Beyond one process: Fulcrum --workers ${input.workers}, ${input.connections} connections or loops while N idle connections are held (×idle 0)`,
    `  the workers are not pinned: they float over all the machine's cores and share them with the generator, backend and`,
    `  holders, so this shows capacity (N beyond one process's files) and flatness against N, not a multi-core speed-up;`,
    `  compare it with its own idle 0, not with the one-core tables`,
    ...table(['', ...input.workersLadder.map((n) => `idle ${num(n)}`)], body),
    '',
  ];
}

function bulkSection(input: ReportInput): string[] {
  const body = input.peers
    .filter((p) => find(input.rows, p, 'bulk', 'mb_per_s') !== undefined)
    .map((p) => [
      p as string,
      ...input.bulkStreams.flatMap((k) => {
        const r = find(input.rows, p, 'bulk', 'mb_per_s', 0, k);
        return [spread(r), ratio(median(r), median(find(input.rows, 'haproxy', 'bulk', 'mb_per_s', 0, k)))];
      }),
    ]);
  if (body.length === 0) return [];
  const header = ['peer', ...input.bulkStreams.flatMap((k) => [`${k} stream${k > 1 ? 's' : ''} MB/s`, '×haproxy'])];
  return ['Bulk throughput: concurrent downloads from the backend (MB/s = 10^6 bytes per second)', ...table(header, body), ''];
}

function memorySection(input: ReportInput): string[] {
  const hap = median(find(input.rows, 'haproxy', 'memory', 'bytes_per_idle_conn', input.memoryIdle));
  const body = input.peers
    .filter((p) => p !== 'direct' && find(input.rows, p, 'memory', 'bytes_per_idle_conn', input.memoryIdle) !== undefined)
    .map((p) => {
      const r = find(input.rows, p, 'memory', 'bytes_per_idle_conn', input.memoryIdle);
      return [p, spread(find(input.rows, p, 'memory', 'rss_base_kib')), spread(r), ratio(median(r), hap)];
    });
  if (body.length === 0) return [];
  return [
    `Memory: resident set (VmRSS) before, and its growth per idle proxied connection with ${num(input.memoryIdle)} held (nginx: master + worker)`,
    ...table(['peer', 'RSS at rest KiB', 'bytes per idle connection', '×haproxy'], body),
    '',
  ];
}

/** The UDP row: a DNS-shaped exchange through each balancer (bench/lib/udp.ts), compared with nginx. */
function udpSection(input: ReportInput): string[] {
  const at = (p: PeerName, metric: Metric): Row | undefined => input.rows.find((r) => r.peer === p && r.scenario === 'udp' && r.metric === metric);
  const ng = (metric: Metric): number => median(at('nginx', metric));
  const direct = median(at('direct', 'dgram_per_s'));
  const body = input.peers
    .filter((p) => at(p, 'dgram_per_s') !== undefined)
    .map((p) => {
      const rate = at(p, 'dgram_per_s');
      const cpu = at(p, 'cpu_us_per_dgram');
      const mem = at(p, 'bytes_per_session');
      return [p, spread(rate), ratio(median(rate), ng('dgram_per_s')), ratio(median(rate), direct), spread(cpu, 2), ratio(median(cpu), ng('cpu_us_per_dgram')), spread(mem)];
    });
  if (body.length === 0) return [];
  const sessions = input.rows.find((r) => r.scenario === 'udp' && r.metric === 'bytes_per_session')?.streams;
  return [
    'UDP: a DNS query and its answer through the balancer (a datagram = one relayed: the query out, the answer back)',
    ...table(['peer', 'datagrams/s', '×nginx', '×direct', 'CPU µs/datagram', '×nginx', `bytes/session${sessions === undefined ? '' : ` (${num(sessions)} held)`}`], body),
    '',
  ];
}

/** The HTTP row: wrk through each balancer's HTTP mode, and the backend connections mostly idle clients need. */
function httpSection(input: ReportInput): string[] {
  const at = (p: PeerName, scenario: Scenario, metric: Metric): Row | undefined => input.rows.find((r) => r.peer === p && r.scenario === scenario && r.metric === metric);
  const hap = (scenario: Scenario, metric: Metric): number => median(at('haproxy', scenario, metric));
  const direct = median(at('direct', 'http', 'req_per_s'));
  const lines: string[] = [];
  const rate = input.peers
    .filter((p) => at(p, 'http', 'req_per_s') !== undefined)
    .map((p) => {
      const r = at(p, 'http', 'req_per_s');
      const cpu = at(p, 'http', 'cpu_us_per_req');
      return [p, spread(r), ratio(median(r), hap('http', 'req_per_s')), ratio(median(r), direct), spread(cpu, 2), ratio(median(cpu), hap('http', 'cpu_us_per_req'))];
    });
  if (rate.length > 0) {
    lines.push(
      `HTTP: wrk, ${input.connections} keep-alive connections, GET / with 64-byte answers; keep-alive toward the backend too (direct: the ceiling)`,
      ...table(['peer', 'req/s', '×haproxy', '×direct', 'CPU µs/request', '×haproxy'], rate),
      '',
    );
  }
  const pool = input.peers
    .filter((p) => at(p, 'http-pool', 'backend_conns_max') !== undefined)
    .map((p) => {
      const max = at(p, 'http-pool', 'backend_conns_max');
      return [p, spread(at(p, 'http-pool', 'backend_conns')), spread(max), ratio(median(max), hap('http-pool', 'backend_conns_max')), spread(at(p, 'http-pool', 'req_per_s'))];
    });
  if (pool.length > 0) {
    const clients = input.rows.find((r) => r.scenario === 'http-pool')?.streams ?? 0;
    lines.push(
      `HTTP pooling: ${num(clients)} mostly idle keep-alive clients, each a request about every second: connections the backend accepted, and held at once`,
      ...table(['peer', 'backend connections', 'at most open at once', '×haproxy', 'requests/s answered'], pool),
      '',
    );
  }
  return lines;
}

/** How close each balancer came to the direct path; near it, the load core may have been the limit. */
function headroomSection(input: ReportInput): string[] {
  const lines: string[] = [];
  const checks: Array<[Scenario, Metric, number, string]> = [
    ['keepalive', 'req_per_s', 0, 'keep-alive'],
    ['connrate', 'conn_per_s', 0, 'connection rate'],
    ['http', 'req_per_s', 0, 'HTTP'],
    ...input.bulkStreams.map((k): [Scenario, Metric, number, string] => ['bulk', 'mb_per_s', k, `bulk ×${k}`]),
  ];
  for (const [scenario, metric, streams, label] of checks) {
    const direct = median(find(input.rows, 'direct', scenario, metric, 0, scenario === 'bulk' ? streams : undefined));
    if (!Number.isFinite(direct)) continue;
    let best: { peer: string; value: number } | undefined;
    for (const p of input.peers) {
      if (p === 'direct') continue;
      const v = median(find(input.rows, p, scenario, metric, 0, scenario === 'bulk' ? streams : undefined));
      if (Number.isFinite(v) && (best === undefined || v > best.value)) best = { peer: p, value: v };
    }
    if (best === undefined) continue;
    const share = best.value / direct;
    lines.push(
      `  ${label}: the fastest balancer (${best.peer}) reached ${(share * 100).toFixed(0)}% of the direct path` +
        (share >= 1
          ? ' — at or above the ceiling: the load core was the limit (or the direct run was disturbed)'
          : share >= NEAR_CEILING
            ? ' — near the ceiling: the load core may be the limit, not the balancer'
            : ''),
    );
  }
  return lines.length === 0 ? [] : ['Generator headroom (direct path = what the load core can drive)', ...lines, ''];
}

export function formatReport(input: ReportInput, preamble: readonly string[]): string {
  const c = input.connections;
  const lines = [
    ...preamble,
    '',
    ...rateSection(input, 'keepalive', `Keep-alive forwarding: ${c} persistent connections, 64-byte requests and responses, no idle connections`, 'req/s'),
    ...rateSection(input, 'connrate', `Connection rate: ${c} loops, a new TCP connection per request (the backend closes first)`, 'conn/s'),
    ...ladderSection(input, 'keepalive', 'Idle-connection scaling, keep-alive req/s (×haproxy at the same N)'),
    ...ladderSection(input, 'connrate', 'Idle-connection scaling, new connections/s (×haproxy at the same N)'),
    ...workersSection(input),
    ...bulkSection(input),
    ...memorySection(input),
    ...udpSection(input),
    ...httpSection(input),
    ...headroomSection(input),
  ];
  const notes = input.rows.filter((r) => r.note !== '').map((r) => `  ${r.peer} ${r.scenario}${r.idle > 0 ? ` idle=${r.idle}` : ''} ${r.metric}: ${r.note}`);
  if (notes.length > 0) lines.push('Notes (* in the tables)', ...notes, '');
  return lines.join('\n');
}
