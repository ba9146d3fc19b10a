/**
 * The primary's side of --workers (docs/workers.md): starts N worker processes (the same command
 * with FULCRUM_WORKER set), hands each the running configuration, tells them about changes and
 * server state changes, replaces a worker that dies, and stops them all.
 *
 * A worker that exits unexpectedly is logged and counted; its share of the shared gauges is
 * reclaimed at once (its connections are lost, so they stop counting against -x and the
 * servers' limits); then it is started again after a delay that doubles from 100 ms up to 10 s
 * while replacements keep dying young, and starts over at 100 ms once one has lived 10 s.
 *
 * Every worker inherits the listening sockets the primary holds (listeners.ts): all of them
 * accept from ONE queue per port, so a worker that stops or dies leaves what is queued to the
 * others. A rolling restart (restartWorkers) replaces them one at a time: the new one is started
 * with the same sockets, serves, and only then the old one drains. Each worker has two records
 * in the shared memory, used in turn, so an old worker that drains and its successor never write
 * the same per-worker numbers.
 */
import type { Subprocess } from 'bun';
import { FulcrumError } from '../../core/errors.ts';
import type { Clock, TimerHandle } from '../../core/clock.ts';
import type { FulcrumConfig } from '../../config/model.ts';
import type { Balancer, Diagnostics } from '../balancer.ts';
import { formatAddress } from '../../core/address.ts';
import { UPGRADE_FDS_ENV } from '../inherited-sockets.ts';
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
  /** Its record in the shared memory: index, or index + count (they alternate at each rolling restart). */
  record: number;
  /** During a rolling restart: the worker being replaced, until its successor serves. */
  previous: { proc: Subprocess; record: number } | null;
  /** Settles when the worker started for a rolling restart serves (or fails). */
  onReady: ((ok: boolean) => void) | null;
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
  /** A rolling restart is under way. */
  #rolling = false;
  /** Workers a rolling restart replaced that are still draining (a stop stops them too). */
  readonly #retiring = new Set<Subprocess>();

  constructor(o: PoolOptions) {
    this.#o = o;
    this.#clock = o.balancer.clock;
    this.#slots = Array.from({ length: o.count }, (_, index) => ({ index, record: index, previous: null, onReady: null, proc: null, startedMs: 0, ready: false, seq: -1, delayMs: FIRST_DELAY_MS, timer: null }));
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
    // The listening sockets this process holds, as the worker's fds 3, 4, ... (inherited-sockets.ts).
    const fds: number[] = [];
    const names: string[] = [];
    for (const l of this.#o.balancer.listeners) {
      const fd = l.handle?.fd;
      if (fd === undefined || fd < 0 || l.mode === 'udp') continue;
      names.push(`${3 + fds.length}=${formatAddress(l.handle!.address)}`);
      fds.push(fd);
    }
    const proc = Bun.spawn({
      cmd: this.#o.command,
      env: {
        ...this.#o.env,
        [UPGRADE_FDS_ENV]: names.join(','),
        [WORKER_ENV]: String(slot.record),
        [WORKER_COUNT_ENV]: String(shared.setup.workers),
        [WORKER_SHM_ENV]: `${shared.setup.dir}/${shared.setup.prefix}`,
        [WORKER_EPOCH_ENV]: String(shared.setup.epochMs),
      },
      stdio: ['ignore', 'inherit', 'inherit', ...fds],
      serialization: 'advanced',
      ipc: (m: FromWorker) => this.#onMessage(slot, m),
      onExit: (p, code, signal) => this.#onExit(slot, p, code, signal),
    });
    slot.proc = proc;
    shared.workerStarted(slot.record, proc.pid);
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
        slot.onReady?.(true);
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
    const previous = slot.previous;
    if (previous !== null && !slot.ready) {
      // A rolling restart's new worker failed before serving: the old one goes on.
      slot.proc = previous.proc;
      slot.record = previous.record;
      slot.previous = null;
      slot.ready = true;
      this.#o.shared.reclaim(slot.record === slot.index ? slot.index + this.#slots.length : slot.index);
      slot.onReady?.(false);
      return;
    }
    slot.proc = null;
    const wasReady = slot.ready;
    slot.ready = false;
    if (this.#stopping) return;
    const how = signal !== null && signal !== undefined ? `killed by ${typeof signal === 'number' ? `signal ${signal}` : signal}` : `exited with code ${code}`;
    if (this.#starting !== null) {
      this.#failStart(new Error(`worker ${slot.index} ${how} while starting`));
      return;
    }
    const lost = this.#o.shared.reclaim(slot.record);
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
    const running = [...this.#slots.flatMap((s) => (s.proc === null ? [] : [s.proc])), ...this.#retiring];
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
   * An upgrade: the new primary's workers serve on the same listening sockets (handed to the new
   * primary, which handed them to its workers), so these stop accepting, finish their connections
   * within `ms` and exit. A worker's stop closes only its own descriptor: the accept queue stays
   * with the others. Returns the connections the deadline closed.
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

  /**
   * A rolling restart (SIGTTIN, docs/workers.md): each worker in turn is replaced by a new one
   * started with the same listening sockets; once the new one serves, the old one stops accepting
   * (the queue is theirs in common, so nothing is reset), finishes its connections within
   * `drainMs` and exits. Resolves with a report when every old worker has exited; a new worker
   * that cannot start leaves its old one serving and ends the restart with an error.
   */
  async restartWorkers(drainMs: number): Promise<string> {
    if (this.#rolling || this.#stopping || this.#starting !== null) throw new FulcrumError('E_UPGRADE', 'a start, stop or rolling restart of the workers is already under way');
    this.#rolling = true;
    const exits: Promise<unknown>[] = [];
    let replaced = 0;
    try {
      for (const slot of this.#slots) {
        const old = slot.proc;
        if (old === null || !slot.ready || this.#stopping) continue; // dead: its replacement is on its way
        slot.previous = { proc: old, record: slot.record };
        slot.record = slot.record === slot.index ? slot.index + this.#slots.length : slot.index;
        const ready = new Promise<boolean>((resolve) => (slot.onReady = resolve));
        this.#spawn(slot);
        const started = slot.proc;
        const timeout = this.#clock.setTimeout(() => (slot.proc === started ? started?.kill('SIGKILL') : undefined), START_TIMEOUT_MS, undefined, true);
        const ok = await ready;
        this.#clock.clearTimer(timeout);
        slot.onReady = null;
        if (!ok) throw new FulcrumError('E_UPGRADE', `worker ${slot.index}: the new worker did not start; the old one (pid ${old.pid}) goes on serving`);
        const previous = slot.previous;
        slot.previous = null;
        try {
          old.send({ t: 'drain', ms: drainMs } satisfies ToWorker);
        } catch {
          old.kill('SIGTERM');
        }
        const shared = this.#o.shared;
        this.#retiring.add(old);
        exits.push(
          old.exited.then(() => {
            this.#retiring.delete(old);
            shared.reclaim(previous.record);
          }),
        );
        replaced++;
      }
    } finally {
      await Promise.race([Promise.all(exits), sleep(this.#clock, drainMs + 5_000)]);
      this.#rolling = false;
    }
    return `${replaced} worker(s) replaced one at a time (pids ${this.pids.join(', ')})`;
  }

  /** For SIGUSR1: each worker's pid, accepted connections, admitted and waiting ones. */
  statsLines(): string[] {
    const sh = this.#o.shared;
    const parts = this.#slots.map((s) => {
      const w = sh.workerSummary(s.record);
      const state = s.proc === null ? 'down' : s.ready ? `pid ${s.proc.pid}` : `pid ${s.proc.pid} starting`;
      return `worker ${s.index} (${state}): ${w.accepted} accepted, ${w.active} connections, ${w.waiting} waiting`;
    });
    return [`  workers: ${this.#slots.length}, ${this.restarts} replaced; ${parts.join('; ')}`];
  }
}
