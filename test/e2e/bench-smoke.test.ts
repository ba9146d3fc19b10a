/**
 * The bench's machinery, end to end in a few seconds: generator, backend, idle holders, Fulcrum
 * as a real process (and with two workers), the report, the CSV and the chart. Only that numbers come out is checked;
 * timings are never assertions here (this runs unpinned, beside other tests, on any machine).
 */
import { afterAll, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bunPath, repoRoot } from '../harness/index.ts';

setDefaultTimeout(90_000);
const out = mkdtempSync(join(tmpdir(), 'fulcrum-bench-smoke-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface CsvRow {
  peer: string;
  scenario: string;
  idle: number;
  streams: number;
  metric: string;
  median: number;
}

function readCsv(path: string): CsvRow[] {
  const [header, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const names = (header ?? '').split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const get = (name: string): string => cells[names.indexOf(name)] ?? '';
    return { peer: get('peer'), scenario: get('scenario'), idle: Number(get('idle')), streams: Number(get('streams')), metric: get('metric'), median: get('median') === '' ? NaN : Number(get('median')) };
  });
}

test('a tiny bench run (direct path and Fulcrum) produces every figure', async () => {
  const proc = Bun.spawn({
    cmd: [
      bunPath(), 'bench/run.ts', '--quick', '--peers', 'direct,fulcrum', '--no-pin', '--no-install',
      '--repeats', '1', '--duration', '0.3', '--warmup', '0.1', '--idle', '0,50', '--memory-idle', '50', '--workers-idle', '0,50', '--connections', '8',
      '--udp-sessions', '50', '--http-clients', '50', '--out', out,
    ],
    cwd: repoRoot,
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toContain('SMOKE RUN');
  expect(stdout).toContain('Keep-alive forwarding');

  const files = readdirSync(out);
  const csv = files.find((f) => f.endsWith('.csv'));
  expect(csv).toBeDefined();
  expect(files.some((f) => f.endsWith('-scaling.svg'))).toBe(true);
  const rows = readCsv(join(out, csv!));
  const figure = (peer: string, scenario: string, metric: string, idle = 0, streams?: number): number =>
    rows.find((r) => r.peer === peer && r.scenario === scenario && r.metric === metric && r.idle === idle && (streams === undefined || r.streams === streams))?.median ?? NaN;

  for (const peer of ['direct', 'fulcrum']) {
    for (const idle of [0, 50]) {
      expect(figure(peer, 'keepalive', 'req_per_s', idle)).toBeGreaterThan(0);
      expect(figure(peer, 'keepalive', 'p99_us', idle)).toBeGreaterThan(0);
      expect(figure(peer, 'connrate', 'conn_per_s', idle)).toBeGreaterThan(0);
    }
    expect(figure(peer, 'bulk', 'mb_per_s', 0, 1)).toBeGreaterThan(0);
    expect(figure(peer, 'bulk', 'mb_per_s', 0, 8)).toBeGreaterThan(0);
  }
  // Memory per idle connection is a difference of two readings: only its presence is checked.
  expect(Number.isFinite(figure('fulcrum', 'memory', 'bytes_per_idle_conn', 50))).toBe(true);
  expect(figure('fulcrum', 'idle', 'rss_kib', 50)).toBeGreaterThan(0);
  for (const idle of [0, 50]) {
    expect(figure('fulcrum', 'workers-keepalive', 'req_per_s', idle)).toBeGreaterThan(0);
    expect(figure('fulcrum', 'workers-connrate', 'conn_per_s', idle)).toBeGreaterThan(0);
  }
  expect(figure('fulcrum', 'workers-idle', 'rss_kib', 50)).toBeGreaterThan(0);
  expect(stdout).toContain('Beyond one process: Fulcrum --workers 2');
  // The UDP row needs dnsperf (scripts/ensure-peers.sh --bench); without it the row says so.
  if (Bun.which('dnsperf') !== null) {
    for (const peer of ['direct', 'fulcrum']) expect(figure(peer, 'udp', 'dgram_per_s', 0, 16)).toBeGreaterThan(0);
    expect(figure('fulcrum', 'udp', 'cpu_us_per_dgram', 0, 16)).toBeGreaterThan(0);
    expect(Number.isFinite(figure('fulcrum', 'udp', 'bytes_per_session', 0, 50))).toBe(true);
    expect(stdout).toContain('UDP: a DNS query and its answer');
  } else {
    expect(stdout).toContain('udp dgram_per_s: skipped: dnsperf is not installed');
  }
  // The HTTP row: wrk's throughput needs wrk (scripts/ensure-peers.sh --bench); pooling does not.
  if (Bun.which('wrk') !== null) {
    for (const peer of ['direct', 'fulcrum']) expect(figure(peer, 'http', 'req_per_s', 0, 8)).toBeGreaterThan(0);
    expect(figure('fulcrum', 'http', 'cpu_us_per_req', 0, 8)).toBeGreaterThan(0);
    expect(stdout).toContain('HTTP: wrk, 8 keep-alive connections');
  } else {
    expect(stdout).toContain('http req_per_s: skipped: wrk is not installed');
  }
  // Without a balancer every client is a backend connection; through Fulcrum, at most its pool.
  expect(figure('direct', 'http-pool', 'backend_conns', 0, 50)).toBe(50);
  expect(figure('fulcrum', 'http-pool', 'backend_conns_max', 0, 50)).toBeGreaterThan(0);
  expect(figure('fulcrum', 'http-pool', 'req_per_s', 0, 50)).toBeGreaterThan(0);
  expect(stdout).toContain('HTTP pooling: 50 mostly idle keep-alive clients');

  const svg = readFileSync(join(out, files.find((f) => f.endsWith('-scaling.svg'))!), 'utf8');
  expect(svg).toContain('<polyline');
  expect(svg).toContain('SMOKE RUN');
});
