/** What a run measured: one row per figure (all its repeats), and the CSV written from them. */
import type { PeerName } from './peers.ts';
import { summarize, type Summary } from './stats.ts';

/** The `workers` scenario's rows are named apart: its idle 0 is not the one-process idle 0. */
export type Scenario = 'keepalive' | 'connrate' | 'bulk' | 'memory' | 'idle' | 'workers-keepalive' | 'workers-connrate' | 'workers-idle' | 'udp' | 'http' | 'http-pool';

export type Metric =
  | 'req_per_s'
  | 'conn_per_s'
  | 'p50_us'
  | 'p99_us'
  | 'mb_per_s'
  | 'rss_kib'
  | 'rss_base_kib'
  | 'bytes_per_idle_conn'
  /** The UDP row (bench/lib/udp.ts): datagrams relayed per second, CPU per datagram, memory per session. */
  | 'dgram_per_s'
  | 'cpu_us_per_dgram'
  | 'bytes_per_session'
  /** The balancer's CPU time (user + system, all its processes) in the window per request or connection. */
  | 'cpu_us_per_req'
  | 'cpu_us_per_conn'
  /** System calls per proxied connection, counted with strace (bench/lib/syscalls.ts). */
  | 'syscalls_per_conn'
  /** The HTTP row (bench/lib/http.ts, CPU per request as cpu_us_per_req): backend connections accepted, and open at once. */
  | 'backend_conns'
  | 'backend_conns_max';

export interface Row {
  peer: PeerName;
  scenario: Scenario;
  /** Idle connections held during the measurement. */
  idle: number;
  /** Concurrent streams (bulk) or connections (keepalive, connrate). */
  streams: number;
  metric: Metric;
  /** One value per repeat; NaN for a repeat that failed. */
  values: number[];
  /** Failed requests or connections, summed over the repeats. */
  errors: number;
  /** Why a figure is missing or suspect. */
  note: string;
}

export function summaryOf(row: Row): Summary {
  return summarize(row.values);
}

const HEADER = ['peer', 'scenario', 'idle', 'streams', 'metric', 'median', 'min', 'max', 'repeats', 'values', 'errors', 'note'];

function cell(v: string | number): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(Math.round(v * 100) / 100) : '') : v;
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(rows: readonly Row[]): string {
  const lines = [HEADER.join(',')];
  for (const r of rows) {
    const s = summaryOf(r);
    const values = r.values.map((v) => (Number.isFinite(v) ? String(Math.round(v * 100) / 100) : 'NaN')).join(' ');
    lines.push([r.peer, r.scenario, r.idle, r.streams, r.metric, s.median, s.min, s.max, r.values.length, values, r.errors, r.note].map(cell).join(','));
  }
  return lines.join('\n') + '\n';
}

/** The row for a figure, if it was measured. */
export function find(rows: readonly Row[], peer: PeerName, scenario: Scenario, metric: Metric, idle = 0, streams?: number): Row | undefined {
  return rows.find((r) => r.peer === peer && r.scenario === scenario && r.metric === metric && r.idle === idle && (streams === undefined || r.streams === streams));
}
