/**
 * `npm run bench [-- --quick] [--only ...] [--peers ...]`: Fulcrum beside pen (epoll and poll),
 * HAProxy and nginx, each pinned to one core while this process (generator and backend) and the
 * idle-connection holders run on another; then Fulcrum with workers (not pinned) past what one
 * process can hold; the UDP row (dnsperf) and the HTTP row (wrk, pooling). Prints tables, writes bench/results/<time>.csv, .txt
 * and -scaling.svg; with --publish also docs/performance-data.csv and docs/scaling.svg.
 * Method and scenarios: docs/performance.md. Everything it starts is stopped by pid, every wait is
 * bounded, and a watchdog ends the run if it overstays its estimate by far.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../test/harness/process.ts';
import { errorMessage } from '../test/harness/util.ts';
import { Backend } from './lib/backend.ts';
import { PER_DESTINATION } from './lib/idle.ts';
import { describeMachine, machineLines } from './lib/machine.ts';
import { connectionLimit, estimateSeconds, FULCRUM_WORKERS, maxIdle, OptionsError, parseOptions, USAGE, workersConnectionLimit, type Options } from './lib/options.ts';
import { HTTP_ONLY_PEERS, PEERS } from './lib/peers.ts';
import { loadAverage, onlineCpus } from './lib/proc.ts';
import { formatReport } from './lib/report.ts';
import { toCsv, type Row } from './lib/results.ts';
import { runPeer } from './lib/suite.ts';
import { scalingSvg } from './lib/svg.ts';
import { runUdp, UDP_CLIENTS, UDP_OUTSTANDING } from './lib/udp.ts';
import { HTTP_DESCRIBE, HTTP_PEERS, runHttp } from './lib/http.ts';

/** A 1-minute load average above this at the start means something else is using the cores. */
const QUIET_LOAD = 0.5;
/** Open files a balancer needs per proxied connection (client side and server side). */
const FILES_PER_CONNECTION = 2;
/** The kernel spreads connections over workers by a hash, not by load: room for an uneven share. */
const UNEVEN_SPREAD = 1.1;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Moves this process (all its threads) to the load core; false if that is not possible. */
function pinSelf(cpu: number): boolean {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { encoding: 'utf8', timeout: 5_000 });
  return r.status === 0;
}

function stamp(): string {
  return new Date().toISOString().replace(/\..*$/, '').replaceAll(':', '-');
}

async function main(o: Options): Promise<number> {
  if (o.install) spawnSync('bash', [join(repoRoot, 'scripts/ensure-peers.sh'), '--bench'], { stdio: 'inherit', timeout: 600_000 });
  const machine = describeMachine();

  // Each proxied connection costs a balancer two files: refuse a ladder no single process can hold.
  const limit = connectionLimit(o);
  if (FILES_PER_CONNECTION * limit + 100 > machine.openFiles) {
    throw new OptionsError(
      `${maxIdle(o)} idle connections need ${FILES_PER_CONNECTION * limit + 100} files in one balancer process; the limit here is ${machine.openFiles}.` +
        ' Beyond that takes several worker processes: --only workers --workers-idle LIST.',
    );
  }
  const workersRun = o.only.has('workers') && o.peers.includes('fulcrum');
  if (workersRun) {
    // Files are counted per worker, each taking its share of the connections; the backend, in
    // this process, takes one file per idle connection and two per connection of the load.
    const total = workersConnectionLimit(o);
    const perWorker = FILES_PER_CONNECTION * Math.ceil((total / FULCRUM_WORKERS) * UNEVEN_SPREAD) + 100;
    const here = total + 2 * o.connections + 100;
    if (perWorker > machine.openFiles || here > machine.openFiles) {
      throw new OptionsError(
        `--workers-idle up to ${o.workersLadder[o.workersLadder.length - 1]} needs ${perWorker} files in each of ${FULCRUM_WORKERS} Fulcrum workers and ${here} in the bench process` +
          ` (its backend holds every idle connection); the limit here is ${machine.openFiles} per process.`,
      );
    }
  }

  let pinned = false;
  if (o.pin) {
    if (machine.cpus < 2) log('bench: fewer than 2 CPUs: running unpinned (results are not comparable)');
    else if (!pinSelf(o.loadCpu)) log('bench: taskset failed (util-linux missing?): running unpinned (results are not comparable)');
    else pinned = true;
  }
  const balancerCpu = pinned ? o.balancerCpu : null;
  const loadCpu = pinned ? o.loadCpu : null;
  // Children inherit this process's pinning: workers float only when given every core.
  const workersCpus = pinned ? onlineCpus() : null;

  const preamble = [
    o.quick ? 'Fulcrum bench — SMOKE RUN (--quick): these numbers only show that the machinery works; do not publish them' : 'Fulcrum bench',
    ...machineLines(machine),
    ...(machine.loadAverage > QUIET_LOAD ? [`WARNING     the machine was not quiet when the run began (load ${machine.loadAverage.toFixed(2)}): do not publish these figures`] : []),
    ...o.peers.map((p) => `${p.padEnd(11)} ${PEERS[p].version()} — ${PEERS[p].describe}`),
    `method      ${pinned ? `balancer pinned to CPU ${o.balancerCpu}; generator, backend and idle holders pinned to CPU ${o.loadCpu}` : 'NOT PINNED'};` +
      ` ${o.repeats} run(s) of ${o.durationMs / 1000} s after ${o.warmupMs / 1000} s warm-up each; median [min–max]; latency from a ~1% probe beside the load`,
    ...(workersRun
      ? [
          `workers     Fulcrum with workers: ${FULCRUM_WORKERS} (config file: as -r -x N, with a port for the load, one per idle holder and one toward the backend per ${PER_DESTINATION.toLocaleString('en-US')} idle),` +
            ` ${workersCpus === null ? 'not pinned' : `not pinned (taskset -c ${workersCpus}: every core, the load core included)`}; idle ladder ${o.workersLadder.join(', ')}`,
        ]
      : []),
    ...(o.only.has('udp')
      ? [
          `udp         dnsperf (${UDP_CLIENTS} clients = sessions, ${UDP_OUTSTANDING} queries outstanding) on the load core; a DNS responder in the bench process;` +
            ` fulcrum -U -r, pen -U -r, nginx stream listen udp with proxy_responses 1; memory per session with ${o.udpSessions.toLocaleString('en-US')} held`,
        ]
      : []),
    ...(o.only.has('http')
      ? [
          `http        wrk -t1 -c${o.connections} (keep-alive) on the load core; an HTTP/1.1 backend in the bench process; pooling: ${o.httpClients.toLocaleString('en-US')} keep-alive clients, a request each about every second`,
          ...HTTP_PEERS.filter((p) => p !== 'direct' && o.peers.includes(p)).map((p) => `  ${p.padEnd(9)} ${HTTP_DESCRIBE[p]}`),
        ]
      : []),
  ];
  log(`bench: ${o.peers.join(', ')}; ${pinned ? 'pinned' : 'NOT pinned'}; about ${Math.ceil(estimateSeconds(o) / 60)} min (load average ${machine.loadAverage.toFixed(2)})`);

  const backend = new Backend('127.0.0.1');
  const rows: Row[] = [];
  try {
    for (const name of o.peers) {
      if (HTTP_ONLY_PEERS.includes(name)) continue;
      try {
        rows.push(...(await runPeer(PEERS[name], { options: o, backend, balancerCpu, loadCpu, workersCpus, log })));
      } catch (err) {
        log(`[${name}] failed: ${errorMessage(err)}`);
        rows.push({ peer: name, scenario: 'keepalive', idle: 0, streams: o.connections, metric: 'req_per_s', values: [], errors: 0, note: `failed: ${errorMessage(err).split('\n')[0]}` });
      }
    }
    if (o.only.has('udp')) {
      const dir = mkdtempSync(join(tmpdir(), 'fulcrum-bench-udp-'));
      try {
        rows.push(...(await runUdp({ options: o, balancerCpu, log }, dir)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (o.only.has('http')) {
      const dir = mkdtempSync(join(tmpdir(), 'fulcrum-bench-http-'));
      try {
        rows.push(...(await runHttp({ options: o, balancerCpu, log }, dir)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    backend.close();
  }

  const report = formatReport(
    {
      rows,
      peers: o.peers,
      ladder: o.only.has('idle') ? o.ladder : [0],
      bulkStreams: o.bulkStreams,
      connections: o.connections,
      memoryIdle: o.memoryIdle,
      workersLadder: o.workersLadder,
      workers: FULCRUM_WORKERS,
    },
    [...preamble, `load after  ${loadAverage().toFixed(2)} (1-minute load average at the end)`],
  );
  process.stdout.write(report + '\n');

  const out = resolve(repoRoot, o.outDir);
  mkdirSync(out, { recursive: true });
  const base = join(out, stamp());
  const csv = toCsv(rows);
  const svg = scalingSvg({
    rows,
    peers: o.peers,
    ladder: o.only.has('idle') ? o.ladder : [0],
    subtitle: `${o.quick ? 'SMOKE RUN, not for publication — ' : ''}${machine.cpus} CPUs (${machine.cpuModel}), Linux ${machine.kernel}, ${machine.date.slice(0, 10)}; medians of ${o.repeats}`,
  });
  writeFileSync(`${base}.csv`, csv);
  writeFileSync(`${base}.txt`, report + '\n');
  writeFileSync(`${base}-scaling.svg`, svg);
  log(`bench: wrote ${base}.csv, ${base}.txt and ${base}-scaling.svg`);
  if (o.publish) {
    writeFileSync(join(repoRoot, 'docs/performance-data.csv'), csv);
    writeFileSync(join(repoRoot, 'docs/scaling.svg'), svg);
    log('bench: published docs/performance-data.csv and docs/scaling.svg; paste the table into docs/performance.md');
  }
  return 0;
}

let options: Options;
try {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${errorMessage(err)}\n\n${USAGE}`);
  process.exit(2);
}

// Interrupted or overdue, the run still ends its children: exit runs the harness's kill-by-pid.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
const budgetMs = (estimateSeconds(options) * 3 + 300) * 1000;
setTimeout(() => {
  log(`bench: still running after ${Math.round(budgetMs / 60_000)} min, 3× its estimate: giving up`);
  process.exit(3);
}, budgetMs).unref();

main(options).then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`bench: ${errorMessage(err)}`);
    process.exit(err instanceof OptionsError ? 2 : 1);
  },
);
