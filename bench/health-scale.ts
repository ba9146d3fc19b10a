/**
 * Does checking a thousand servers at a short interval keep the balancer responsive?
 *
 * Starts 1000 loopback check targets (one listener each) and one echo server, then runs the real
 * `fulcrum --config` twice: once without checks (baseline) and once with a TCP check of every
 * target at INTERVAL_MS. In each run it measures, through Fulcrum, the round trip of small
 * messages on one connection and the time to open a new connection and get a reply. The
 * balancer runs in its own process; targets and client share this one.
 *
 *   bun bench/health-scale.ts            # defaults: 1000 servers, 250 ms interval, 4 s per run
 *   SERVERS=1000 INTERVAL_MS=100 SECONDS=4 bun bench/health-scale.ts
 *
 * Not part of npm test. Keep it short on a shared machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';

const SERVERS = Number(process.env.SERVERS ?? 1000);
const INTERVAL_MS = Number(process.env.INTERVAL_MS ?? 250);
const SECONDS = Number(process.env.SECONDS ?? 4);
const ROOT = join(import.meta.dir, '..');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function summary(name: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (x: number): string => x.toFixed(3);
  return `${name}: n=${s.length} p50=${f(percentile(s, 50))} ms p99=${f(percentile(s, 99))} ms max=${f(s[s.length - 1] ?? NaN)} ms`;
}

// Check targets: accept and let the checker close.
const targets = Array.from({ length: SERVERS }, () =>
  Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {}, end(s) { s.end(); } } }),
);
const echo = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data(s, d) { s.write(d); } } });

function freePort(): number {
  const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

function config(withChecks: boolean, port: number, unusedPort: number): string {
  const servers = targets.map((t) => `      - 127.0.0.1:${t.port}\n`).join('');
  return `global:
  max_connections: 10000
groups:
  app:
    servers: [127.0.0.1:${echo.port}]
  checked:
${withChecks ? `    check: {type: tcp, interval: ${INTERVAL_MS}, timeout: 1s}\n` : ''}    servers:
${servers}listeners:
  - listen: 127.0.0.1:${port}
    group: app
  - listen: 127.0.0.1:${unusedPort}
    group: checked
`;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`fulcrum did not listen on ${port}`);
}

function roundTrip(sock: Socket): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    sock.once('data', () => resolve(performance.now() - t0));
    sock.write('x');
  });
}

async function newConnection(port: number): Promise<number> {
  const t0 = performance.now();
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => { s.once('connect', () => resolve()); s.once('error', reject); });
  await roundTrip(s);
  const ms = performance.now() - t0;
  s.destroy();
  return ms;
}

async function run(withChecks: boolean): Promise<{ rtt: number[]; conn: number[]; checks: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'fulcrum-health-bench-'));
  const file = join(dir, 'fulcrum.yaml');
  const port = freePort();
  writeFileSync(file, config(withChecks, port, freePort()));
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port);
    await Bun.sleep(Math.min(2000, INTERVAL_MS * 2)); // let the first round of checks spread out
    const sock = connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    const rtt: number[] = [];
    const conn: number[] = [];
    const end = performance.now() + SECONDS * 1000;
    let i = 0;
    while (performance.now() < end) {
      rtt.push(await roundTrip(sock));
      if (++i % 10 === 0) conn.push(await newConnection(port));
      await Bun.sleep(1);
    }
    sock.destroy();
    stderr = '';
    child.kill('SIGUSR1');
    await Bun.sleep(300);
    const checks = [...stderr.matchAll(/checks (\d+) passed (\d+) failed/g)].reduce((n, m) => n + Number(m[1]) + Number(m[2]), 0);
    return { rtt, conn, checks };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const lines: string[] = [`fulcrum health-scale bench: ${SERVERS} servers, TCP check every ${INTERVAL_MS} ms, ${SECONDS} s per run, bun ${Bun.version}`];
for (const withChecks of [false, true]) {
  const r = await run(withChecks);
  const label = withChecks ? `with checks (${r.checks} checks done, ~${Math.round(r.checks / (SECONDS + Math.min(2, (INTERVAL_MS * 2) / 1000)))}/s)` : 'baseline (no checks)';
  lines.push(label, '  ' + summary('round trip on an open connection', r.rtt), '  ' + summary('new connection + first reply  ', r.conn));
}
for (const t of targets) t.stop(true);
echo.stop(true);
console.log(lines.join('\n'));
