/**
 * The primary's side of --workers (docs/workers.md): starts N worker processes (the same command
 * with FULCRUM_WORKER set), hands each the running configuration, tells them about changes and
 * server state changes, replaces a worker that dies, and stops them all.
 *
 * A worker that exits unexpectedly is logged and counted; its share of the shared gauges is
 * reclaimed at once (its connections are lost, so they stop counting against -x and the
 * servers' limits); then it is started again after a delay that doubles from 100 ms up to 10 s
 * while replacements keep dying young, and starts over at 100 ms once one has lived 10 s.
 */
import type { Subprocess } from 'bun';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import type { FulcrumConfig } from '../../config/model.ts';
import type { Balancer, Diagnostics } from '../balancer.ts';
import { snapshotConfig, snapshotKey, WORKER_COUNT_ENV, WORKER_ENV, WORKER_EPOCH_ENV, WORKER_SHM_ENV, type FromWorker, type ToWorker } from './protocol.ts';
import type { SharedState } from './shared-state.ts';

export interface PoolOptions {
  count: number;
  shared: SharedState;
  balancer: Balancer;
  /** The command line that started the primary (a worker runs the same). */
  command: string[];
  /** The environment for the workers (the primary's, minus what only concerns it). */
  env: Record<string, string | undefined>;
  diag: Diagnostics;
}

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 10_000;
/** A worker that lived this long resets the replacement delay. */
const HEALTHY_LIFE_MS = 10_000;
const START_TIMEOUT_MS = 30_000;

interface WorkerSlot {
  readonly index: number;
  proc: Subprocess | null;
  startedMs: number;
  ready: boolean;
  /** The last configuration sent to it. */
  seq: number;
  delayMs: number;
  timer: TimerHandle | null;
}

/**
 * A promise settled after `ms` on `clock`. Its timer keeps the process alive: the pool's waits
 * (start-up, replacement, stop) may be all there is left to do.
 */
function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms, undefined, true));
}

export class WorkerPool {
  readonly #o: PoolOptions;
  /** The balancer's clock: time and timers of starts, replacements and stops. */
  readonly #clock: Clock;
  readonly #slots: WorkerSlot[];
  #seq = 0;
  #config: FulcrumConfig;
  #key: string;
  #stopping = false;
  /** Start-up: settles once every worker is ready, or the first fails. */
  #starting: { resolve: () => void; reject: (e: Error) => void } | null = null;
  /** Workers that died and were replaced. */
  restarts = 0;
  /** Connections the drain deadline closed, as the drained workers report them. */
  #drainedLeft = 0;

  constructor(o: PoolOptions) {
    this.#o = o;
    this.#clock = o.balancer.clock;
    this.#slots = Array.from({ length: o.count }, (_, index) => ({ index, proc: null, startedMs: 0, ready: false, seq: -1, delayMs: FIRST_DELAY_MS, timer: null }));
    this.#config = snapshotConfig(o.balancer);
    this.#key = snapshotKey(this.#config);
    o.balancer.onServerChanged.push((group, server, up) => {
      const slot = (server as { slot?: number }).slot;
      if (slot !== undefined) this.#broadcast({ t: 'server', group: group.name, slot, up });
    });
  }

  get count(): number {
    return this.#slots.length;
  }

  /** Pids of the running workers. */
  get pids(): number[] {
    return this.#slots.flatMap((s) => (s.proc === null || s.proc.exitCode !== null || s.proc.signalCode !== null ? [] : [s.proc.pid]));
  }

  /** Starts every worker; resolves when all serve, rejects (having stopped them) when one cannot. */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      this.#starting = { resolve, reject };
    });
    for (const s of this.#slots) this.#spawn(s);
    const timer = this.#clock.setTimeout((pool) => pool.#failStart(new Error(`the workers did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS, this, true);
    try {
      await started;
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      this.#clock.clearTimer(timer);
    }
  }

  #failStart(e: Error): void {
    const s = this.#starting;
    this.#starting = null;
    s?.reject(e);
  }

  #spawn(slot: WorkerSlot): void {
    slot.timer = null;
    if (this.#stopping) return;
    const { shared } = this.#o;
    slot.ready = false;
    slot.seq = -1;
    slot.startedMs = this.#clock.now();
    const proc = Bun.spawn({
      cmd: this.#o.command,
      env: {
        ...this.#o.env,
        [WORKER_ENV]: String(slot.index),
        [WORKER_COUNT_ENV]: String(this.#slots.length),
        [WORKER_SHM_ENV]: `${shared.setup.dir}/${shared.setup.prefix}`,
        [WORKER_EPOCH_ENV]: String(shared.setup.epochMs),
      },
      stdin: 'ignore',
      stdout: 'inherit',
      stderr: 'inherit',
      serialization: 'advanced',
      ipc: (m: FromWorker) => this.#onMessage(slot, m),
      onExit: (p, code, signal) => this.#onExit(slot, p, code, signal),
    });
    slot.proc = proc;
    shared.workerStarted(slot.index, proc.pid);
  }

  #send(slot: WorkerSlot, m: ToWorker): void {
    const p = slot.proc;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    try {
      p.send(m);
    } catch (e) {
      this.#o.diag.error(`worker ${slot.index}: cannot send ${m.t}: ${(e as Error).message}`);
    }
  }

  #sendConfig(slot: WorkerSlot): void {
    slot.seq = this.#seq;
    this.#send(slot, { t: 'config', seq: this.#seq, config: this.#config, directory: this.#o.shared.directory() });
  }

  #broadcast(m: ToWorker): void {
    for (const s of this.#slots) if (s.ready) this.#send(s, m);
  }

  #onMessage(slot: WorkerSlot, m: FromWorker): void {
    const diag = this.#o.diag;
    switch (m.t) {
      case 'hello':
        this.#sendConfig(slot);
        return;
      case 'ready': {
        slot.ready = true;
        diag.debug(1, `worker ${slot.index} serving (pid ${slot.proc?.pid})`);
        if (this.#starting !== null && this.#slots.every((s) => s.ready)) {
          const s = this.#starting;
          this.#starting = null;
          s.resolve();
        }
        // The configuration may have changed while it started.
        if (slot.seq !== this.#seq) this.#sendConfig(slot);
        return;
      }
      case 'applied':
        return;
      case 'drained':
        this.#drainedLeft += m.left;
        return;
      case 'failed':
        if (m.seq === 0) {
          if (this.#starting !== null) this.#failStart(new Error(`worker ${slot.index}: ${m.error}`));
          else diag.error(`worker ${slot.index} could not start: ${m.error}`);
        } else {
          diag.error(`worker ${slot.index} did not apply configuration ${m.seq}: ${m.error}`);
        }
        return;
    }
  }

  #onExit(slot: WorkerSlot, proc: Subprocess, code: number | null, signal: number | null | string): void {
    if (slot.proc !== proc) return;
    slot.proc = null;
    const wasReady = slot.ready;
    slot.ready = false;
    if (this.#stopping) return;
    const how = signal !== null && signal !== undefined ? `killed by ${typeof signal === 'number' ? `signal ${signal}` : signal}` : `exited with code ${code}`;
    if (this.#starting !== null) {
      this.#failStart(new Error(`worker ${slot.index} ${how} while starting`));
      return;
    }
    const lost = this.#o.shared.reclaim(slot.index);
    this.#o.shared.restarted();
    this.restarts++;
    const lived = this.#clock.now() - slot.startedMs;
    slot.delayMs = lived >= HEALTHY_LIFE_MS ? FIRST_DELAY_MS : slot.delayMs;
    const delay = slot.delayMs;
    slot.delayMs = Math.min(MAX_DELAY_MS, slot.delayMs * 2);
    this.#o.diag.error(
      `worker ${slot.index} (pid ${proc.pid}) ${how}${wasReady ? '' : ' before serving'}; ${lost} connection(s) lost; ` +
        `starting a replacement in ${delay} ms (${this.restarts} replacement(s) so far)`,
    );
    slot.timer = this.#clock.setTimeout((s) => this.#spawn(s), delay, slot, true);
  }

  /** The primary's configuration may have changed (reload, control command): send it if it did. */
  configChanged(): void {
    const next = snapshotConfig(this.#o.balancer);
    const key = snapshotKey(next);
    if (key === this.#key) return;
    this.#key = key;
    this.#config = next;
    this.#seq++;
    for (const s of this.#slots) if (s.ready) this.#sendConfig(s);
  }

  /** SIGHUP: the workers reopen their log files and re-read certificate files too. */
  reopenLogs(): void {
    this.#broadcast({ t: 'reopen' });
  }

  /** Stops every worker: SIGTERM, then SIGKILL for any still running after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    for (const s of this.#slots) {
      this.#clock.clearTimer(s.timer);
      s.timer = null;
    }
    const running = this.#slots.flatMap((s) => (s.proc === null ? [] : [s.proc]));
    for (const p of running) p.kill('SIGTERM');
    const all = Promise.all(running.map((p) => p.exited));
    let timer: TimerHandle | null = null;
    const late = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = this.#clock.setTimeout(r, graceMs, true, true)))]);
    this.#clock.clearTimer(timer);
    if (late) {
      for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await Promise.race([all, sleep(this.#clock, 2_000)]);
    }
  }

  /**
   * An upgrade: the new primary's workers serve (their own SO_REUSEPORT sockets), so these stop
   * accepting, finish their connections within `ms` and exit. Closing a SO_REUSEPORT socket
   * resets the connections in its accept queue that it had not accepted yet (unless the kernel's
   * net.ipv4.tcp_migrate_req is 1): the window is the instant between its last accept and the
   * close (docs/operations.md has the measurements). Returns the connections the deadline closed.
   */
  async drain(ms: number): Promise<number> {
    this.#stopping = true;
    for (const s of this.#slots) {
      this.#clock.clearTimer(s.timer);
      s.timer = null;
    }
    const running = this.#slots.flatMap((s) => (s.proc === null ? [] : [{ s, p: s.proc }]));
    for (const { s } of running) this.#send(s, { t: 'drain', ms });
    await Promise.race([Promise.all(running.map(({ p }) => p.exited)), sleep(this.#clock, ms + 5_000)]);
    await this.stop(2_000);
    return this.#drainedLeft;
  }

  /** For SIGUSR1: each worker's pid, accepted connections, admitted and waiting ones. */
  statsLines(): string[] {
    const sh = this.#o.shared;
    const parts = this.#slots.map((s) => {
      const w = sh.workerSummary(s.index);
      const state = s.proc === null ? 'down' : s.ready ? `pid ${s.proc.pid}` : `pid ${s.proc.pid} starting`;
      return `worker ${s.index} (${state}): ${w.accepted} accepted, ${w.active} connections, ${w.waiting} waiting`;
    });
    return [`  workers: ${this.#slots.length}, ${this.restarts} replaced; ${parts.join('; ')}`];
  }
}
