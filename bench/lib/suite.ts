/**
 * Runs every selected scenario against one peer and returns its rows. The order keeps the
 * expensive part cheap: the idle-connection ladder climbs (2,000, then 3,000 more, ...) under a
 * single balancer process, measuring keep-alive and connection rate at each step; bulk follows
 * with the idle connections gone; memory starts a fresh process of its own so that nothing the
 * other scenarios allocated is counted. Last, for Fulcrum only, `workers` climbs a ladder of
 * its own under a fresh Fulcrum with several workers, beyond what one process can hold.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, freePort } from '../../test/harness/util.ts';
import type { Backend } from './backend.ts';
import { bulk, connectionRate, keepAlive, type RateResult } from './generator.ts';
import { holdersFor, IdlePool, PER_DESTINATION } from './idle.ts';
import { connectionLimit, FULCRUM_WORKERS, workersConnectionLimit, type Options } from './options.ts';
import type { Peer, PeerContext, RunningPeer } from './peers.ts';
import { cpuMicros, rssKiB } from './proc.ts';
import type { Metric, Row, Scenario } from './results.ts';
import { countSyscalls, formatSyscalls, straceMissing } from './syscalls.ts';

/** Requests per second a latency probe sends beside the load: about 1% of it. */
const KEEPALIVE_PROBE_MS = 2;
const CONNRATE_PROBE_MS = 10;
/** Sequential connections strace counts (per peer, once per run). */
const SYSCALL_CONNECTIONS = 2_000;
const SYSCALL_CONNECTIONS_QUICK = 300;
/** Lets a process return what it freed before its memory is read. */
const SETTLE_MS = 1_000;

export type Log = (line: string) => void;

export interface SuiteContext {
  options: Options;
  backend: Backend;
  /** Core for the balancer and for the load, or null when not pinning. */
  balancerCpu: number | null;
  loadCpu: number | null;
  /** CPUs Fulcrum's workers float over (a taskset list of every core), or null when not pinning. */
  workersCpus: string | null;
  log: Log;
}

class Collector {
  readonly rows: Row[] = [];
  constructor(readonly peer: Peer) {}

  add(scenario: Scenario, idle: number, streams: number, metric: Metric, values: number[], errors = 0, note = ''): void {
    this.rows.push({ peer: this.peer.name, scenario, idle, streams, metric, values, errors, note });
  }
}

function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

export async function runPeer(peer: Peer, ctx: SuiteContext): Promise<Row[]> {
  const out = new Collector(peer);
  const o = ctx.options;
  const ladderWanted = o.only.has('idle') || o.only.has('keepalive') || o.only.has('connrate');
  // Fulcrum's own row: no other peer here runs several processes on one port.
  const workersWanted = o.only.has('workers') && peer.name === 'fulcrum';
  if (!ladderWanted && !o.only.has('bulk') && !o.only.has('memory') && !workersWanted) return out.rows;
  const missing = peer.missing();
  if (missing !== null) {
    ctx.log(`[${peer.name}] skipped: ${missing}`);
    out.add('keepalive', 0, o.connections, 'req_per_s', [], 0, `skipped: ${missing}`);
    return out.rows;
  }
  const dir = mkdtempSync(join(tmpdir(), `fulcrum-bench-${peer.name}-`));
  try {
    if (ladderWanted || o.only.has('bulk')) await withPeer(peer, ctx, dir, (running) => ladderAndBulk(running, peer, ctx, dir, out));
    if (o.only.has('memory')) await memory(peer, ctx, dir, out);
    if (workersWanted) await workers(peer, ctx, dir, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out.rows;
}

async function withPeer(peer: Peer, ctx: SuiteContext, dir: string, body: (running: RunningPeer) => Promise<void>, over: Partial<PeerContext> = {}): Promise<void> {
  const running = await peer.start({
    port: freePort(),
    backend: { host: '127.0.0.1', port: ctx.backend.port },
    cpu: ctx.balancerCpu,
    loadCpu: ctx.loadCpu,
    dir,
    maxConnections: connectionLimit(ctx.options),
    ...over,
  });
  try {
    await body(running);
  } finally {
    await running.close();
  }
}

/** Row names of one ladder: the one-process ladder's, or the workers scenario's; null: not measured. */
interface LadderRows {
  idle: Scenario;
  keepalive: Scenario | null;
  connrate: Scenario | null;
}

/**
 * Climbs a ladder of idle connections under one running balancer, opening only the difference
 * at each step, and measures at every step (with 0 first: the same process without them).
 */
async function climb(running: RunningPeer, peer: Peer, ctx: SuiteContext, out: Collector, steps: readonly number[], names: LadderRows): Promise<void> {
  const o = ctx.options;
  const pool = new IdlePool(running.idleTargets ?? [running.target], ctx.backend, ctx.loadCpu);
  try {
    for (const idle of steps) {
      if (idle > 0) {
        try {
          await pool.grow(idle);
        } catch (err) {
          const why = `could not hold ${idle} idle connections: ${errorMessage(err).split('\n')[0]}`;
          ctx.log(`[${peer.name}] ${why}`);
          out.add(names.idle, idle, 0, 'rss_kib', [], 0, why);
          break;
        }
      }
      if (running.pids().length > 0) out.add(names.idle, idle, 0, 'rss_kib', [totalRss(running)]);
      if (names.keepalive !== null) {
        await rate(running, peer, ctx, out, names.keepalive, 'req_per_s', idle, (onWindow) =>
          keepAlive(running.target, { connections: o.connections, depth: 1, warmupMs: o.warmupMs, durationMs: o.durationMs, probeIntervalMs: KEEPALIVE_PROBE_MS, onWindow }),
        );
      }
      if (names.connrate !== null) {
        await rate(running, peer, ctx, out, names.connrate, 'conn_per_s', idle, (onWindow) =>
          connectionRate(running.target, { concurrency: o.connections, warmupMs: o.warmupMs, durationMs: o.durationMs, probeIntervalMs: CONNRATE_PROBE_MS, onWindow }),
        );
      }
    }
  } finally {
    await pool.close();
  }
}

async function ladderAndBulk(running: RunningPeer, peer: Peer, ctx: SuiteContext, dir: string, out: Collector): Promise<void> {
  const o = ctx.options;
  const idleOn = o.only.has('idle');
  await climb(running, peer, ctx, out, idleOn ? o.ladder : [0], {
    idle: 'idle',
    keepalive: idleOn || o.only.has('keepalive') ? 'keepalive' : null,
    connrate: idleOn || o.only.has('connrate') ? 'connrate' : null,
  });
  if (idleOn || o.only.has('connrate')) await syscalls(running, peer, ctx, dir, out);
  if (!o.only.has('bulk')) return;
  for (const streams of o.bulkStreams) {
    const values: number[] = [];
    let errors = 0;
    for (let i = 0; i < o.repeats; i++) {
      try {
        const r = await bulk(running.target, { streams, warmupMs: o.warmupMs, durationMs: o.durationMs });
        values.push(r.megabytesPerSecond);
        errors += r.errors;
        ctx.log(`[${peer.name}] bulk ×${streams} run ${i + 1}/${o.repeats}: ${fmt(r.megabytesPerSecond)} MB/s`);
      } catch (err) {
        values.push(NaN);
        ctx.log(`[${peer.name}] bulk ×${streams} run ${i + 1} failed: ${errorMessage(err)}`);
      }
    }
    out.add('bulk', 0, streams, 'mb_per_s', values, errors);
  }
}

/**
 * System calls per proxied connection (bench/lib/syscalls.ts: strace over sequential connections,
 * exact on a busy machine), after the rates so that strace slows nothing measured.
 */
async function syscalls(running: RunningPeer, peer: Peer, ctx: SuiteContext, dir: string, out: Collector): Promise<void> {
  if (running.pids().length === 0) return;
  const why = straceMissing();
  if (why !== null) {
    out.add('connrate', 0, 1, 'syscalls_per_conn', [], 0, why);
    return;
  }
  const n = ctx.options.quick ? SYSCALL_CONNECTIONS_QUICK : SYSCALL_CONNECTIONS;
  try {
    const c = await countSyscalls(running.pids(), running.target, n, dir);
    ctx.log(`[${peer.name}] syscalls: ${formatSyscalls(c)}`);
    out.add('connrate', 0, 1, 'syscalls_per_conn', [c.total]);
  } catch (err) {
    ctx.log(`[${peer.name}] syscalls failed: ${errorMessage(err)}`);
    out.add('connrate', 0, 1, 'syscalls_per_conn', [], 0, `failed: ${errorMessage(err).split('\n')[0]}`);
  }
}

/**
 * Repeats a rate measurement and records throughput (as `metric`), probe latency and the
 * balancer's CPU time per request or connection: its processes' user + system time across the
 * measured window (read at the window's edges) over what completed in it.
 */
async function rate(
  running: RunningPeer,
  peer: Peer,
  ctx: SuiteContext,
  out: Collector,
  scenario: Scenario,
  metric: Metric,
  idle: number,
  measure: (onWindow: (edge: 'start' | 'end') => void) => Promise<RateResult>,
): Promise<void> {
  const o = ctx.options;
  const cpuPer: number[] = [];
  const perSecond: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  let errors = 0;
  for (let i = 0; i < o.repeats; i++) {
    let cpuStart = NaN;
    let cpuEnd = NaN;
    const onWindow = (edge: 'start' | 'end'): void => {
      if (edge === 'start') cpuStart = cpuMicros(running.pids());
      else cpuEnd = cpuMicros(running.pids());
    };
    try {
      const r = await measure(onWindow);
      cpuPer.push(r.completed > 0 ? (cpuEnd - cpuStart) / r.completed : NaN);
      perSecond.push(r.perSecond);
      p50.push(r.p50Us);
      p99.push(r.p99Us);
      errors += r.errors;
      ctx.log(
        `[${peer.name}] ${scenario} idle=${idle} run ${i + 1}/${o.repeats}: ${fmt(r.perSecond)}/s, probe p50 ${fmt(r.p50Us)} µs p99 ${fmt(r.p99Us)} µs` +
          (Number.isFinite(cpuPer[cpuPer.length - 1]) ? `, balancer CPU ${cpuPer[cpuPer.length - 1]!.toFixed(1)} µs each` : '') +
          (r.errors > 0 ? `, ${r.errors} errors` : ''),
      );
    } catch (err) {
      perSecond.push(NaN);
      cpuPer.push(NaN);
      p50.push(NaN);
      p99.push(NaN);
      ctx.log(`[${peer.name}] ${scenario} idle=${idle} run ${i + 1} failed: ${errorMessage(err)}`);
    }
  }
  const note = errors > 0 ? `${errors} failed requests or connections` : '';
  out.add(scenario, idle, o.connections, metric, perSecond, errors, note);
  out.add(scenario, idle, o.connections, 'p50_us', p50);
  out.add(scenario, idle, o.connections, 'p99_us', p99);
  if (running.pids().length > 0) out.add(scenario, idle, o.connections, metric === 'req_per_s' ? 'cpu_us_per_req' : 'cpu_us_per_conn', cpuPer);
}

function totalRss(running: RunningPeer): number {
  const pids = running.pids();
  return pids.length === 0 ? NaN : pids.reduce((sum, pid) => sum + rssKiB(pid), 0);
}

/**
 * Resident memory per idle proxied connection: a fresh process, warmed with a little keep-alive
 * traffic so its data path has allocated what it keeps, then read before and after opening the
 * idle connections.
 */
async function memory(peer: Peer, ctx: SuiteContext, dir: string, out: Collector): Promise<void> {
  const o = ctx.options;
  const n = o.memoryIdle;
  if (peer.name === 'direct') {
    out.add('memory', n, 0, 'bytes_per_idle_conn', [], 0, 'no balancer process');
    return;
  }
  const base: number[] = [];
  const perConn: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    try {
      await withPeer(peer, ctx, dir, async (running) => {
        await keepAlive(running.target, { connections: o.connections, depth: 1, warmupMs: 0, durationMs: Math.min(500, o.durationMs), probeIntervalMs: KEEPALIVE_PROBE_MS });
        await Bun.sleep(SETTLE_MS);
        const before = totalRss(running);
        const pool = new IdlePool([running.target], ctx.backend, ctx.loadCpu);
        try {
          await pool.grow(n);
          await Bun.sleep(SETTLE_MS);
          const after = totalRss(running);
          base.push(before);
          perConn.push(((after - before) * 1024) / n);
          ctx.log(`[${peer.name}] memory run ${i + 1}/${o.repeats}: ${fmt(before)} KiB, then ${fmt(after)} KiB with ${n} idle: ${fmt(((after - before) * 1024) / n)} B each`);
        } finally {
          await pool.close();
        }
      });
    } catch (err) {
      base.push(NaN);
      perConn.push(NaN);
      ctx.log(`[${peer.name}] memory run ${i + 1} failed: ${errorMessage(err)}`);
    }
  }
  out.add('memory', 0, 0, 'rss_base_kib', base);
  out.add('memory', n, 0, 'bytes_per_idle_conn', perConn);
}

/**
 * Fulcrum with FULCRUM_WORKERS workers climbs its own ladder, past the ~9,990 proxied
 * connections one process has files for. The workers are not pinned: they float over every
 * core, the load core included, so the figures show capacity and how flat throughput stays as
 * N grows, not a speed-up over one core. No loopback destination carries more than
 * PER_DESTINATION idle connections (idle.ts): each holder gets a listener of its own, the load
 * another, and Fulcrum forwards round robin to as many backend ports as that takes, all in the
 * bench's backend (run.ts checks that its files suffice).
 */
async function workers(peer: Peer, ctx: SuiteContext, dir: string, out: Collector): Promise<void> {
  const o = ctx.options;
  const top = o.workersLadder[o.workersLadder.length - 1] ?? 0;
  const backends = ctx.backend.ports(Math.max(1, Math.ceil(top / PER_DESTINATION))).map((port) => ({ host: '127.0.0.1', port }));
  const ports = new Set<number>();
  while (ports.size < 1 + Math.max(1, holdersFor(o.workersLadder))) ports.add(freePort());
  const [port, ...idlePorts] = [...ports] as [number, ...number[]];
  try {
    await withPeer(
      peer,
      ctx,
      dir,
      (running) => climb(running, peer, ctx, out, o.workersLadder, { idle: 'workers-idle', keepalive: 'workers-keepalive', connrate: 'workers-connrate' }),
      { port, maxConnections: workersConnectionLimit(o), cpu: ctx.workersCpus, workers: { count: FULCRUM_WORKERS, backends, idlePorts } },
    );
  } catch (err) {
    // The one-process figures above are kept: only this row is marked failed.
    const why = `failed: ${errorMessage(err).split('\n')[0]}`;
    ctx.log(`[${peer.name}] workers ${why}`);
    out.add('workers-keepalive', 0, o.connections, 'req_per_s', [], 0, why);
  }
}
