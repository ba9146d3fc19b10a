/**
 * The shared memory of one Fulcrum with workers, as the balancer uses it (docs/workers.md):
 * servers bound to slots, each group's shared client table and queue counters, the totals and
 * the global admission gauges. One object per process: the primary creates the blocks and
 * assigns slots; a worker maps what the primary names. What lives where is
 * src/core/workers/layout.ts; the mapping itself is src/dataplane/shared-memory.ts.
 */
import { SharedClientTable } from '../../core/clients/shared-client-table.ts';
import type { ClientTracker } from '../../core/clients/client-table.ts';
import { reclaimServerShare, SharedServer } from '../../core/servers/shared-server.ts';
import type { Server } from '../../core/servers/server.ts';
import {
  clientSlots,
  GROUP_COUNTERS,
  groupLayout,
  LISTENER_COUNTERS,
  listenerLayout,
  LAYOUT_MAGIC,
  LAYOUT_VERSION,
  MAIN,
  mainLayout,
  serverLayout,
  WORKER_I32,
  WORKER_TOTALS,
  type GroupLayout,
  type MainLayout,
  type ServerLayout,
} from '../../core/workers/layout.ts';
import type { GroupConfig, ServerConfig } from '../../config/model.ts';
import { createBlock, openBlock, pidAlive, removeBlocks, type MappedBlock } from '../../dataplane/shared-memory.ts';
import { TERMINATION_REASONS as REASONS, type TerminationReason } from '../../core/termination.ts';
import type { Totals } from '../totals.ts';
import type { GroupStats } from '../group-counters.ts';
import { defineCounter, GATE_FAILURES, shareListenerCounters, type ListenerCounters } from './shared-listener.ts';
import { FulcrumError } from '../../core/errors.ts';

/** node:path, taken on first use: not loaded at rest (docs/performance.md). */
function pathModule(): typeof import('node:path') {
  return process.getBuiltinModule('node:path');
}

/** A group's shared parts: its client table, queue counters and queue length. */
export interface GroupShared {
  clients: ClientTracker;
  stats: GroupStats;
  /** Mirrors this worker's queue length (worker), or sums them (primary). */
  setQueueLength(n: number): void;
  queueLength(): number;
}

export interface SharedSetup {
  /** Directory of the files (/dev/shm). */
  dir: string;
  /** File name prefix, unique to this Fulcrum: `fulcrum-<primary pid>-`. */
  prefix: string;
  workers: number;
  /** This process: a worker number, or -1 for the primary. */
  worker: number;
  /** Time 0 of the client tables' last-seen seconds (the primary's start). */
  epochMs: number;
}

/** What a worker needs to map the blocks the primary made (sent over IPC with each configuration). */
export interface SharedDirectory {
  /** Server slots allocated so far (blocks 0 .. ceil(slots / SERVERS_PER_BLOCK) - 1 exist). */
  slots: number;
  /** Group name → its block number and table size. */
  groups: Record<string, { block: number; slots: number }>;
  /** Listener name → its block number. */
  listeners: Record<string, number>;
}

export class SharedState {
  readonly setup: SharedSetup;
  readonly main: MappedBlock;
  readonly mainLayout: MainLayout;
  readonly serverLayout: ServerLayout;
  readonly #serverBlocks: MappedBlock[] = [];
  readonly #groupBlocks = new Map<number, { block: MappedBlock; layout: GroupLayout }>();
  /** Primary: slots handed out; worker: slots known from the directory. */
  #slots = 0;
  #nextGroupBlock = 0;
  readonly #groups = new Map<string, { block: number; slots: number }>();
  #nextListenerBlock = 0;
  readonly #listeners = new Map<string, number>();
  readonly #listenerBlocks = new Map<number, MappedBlock>();
  readonly #listenerLayout: ReturnType<typeof listenerLayout>;
  readonly #owner = { id: process.pid, isAlive: pidAlive };

  private constructor(setup: SharedSetup, main: MappedBlock) {
    this.setup = setup;
    this.main = main;
    this.mainLayout = mainLayout(setup.workers, REASONS.length);
    this.serverLayout = serverLayout(setup.workers);
    this.#listenerLayout = listenerLayout(setup.workers, GATE_FAILURES.length);
  }

  /** Primary: creates the main block. */
  static create(setup: SharedSetup): SharedState {
    const layout = mainLayout(setup.workers, REASONS.length);
    const main = createBlock(pathModule().join(setup.dir, `${setup.prefix}main`), layout.bytes);
    main.i32[MAIN.MAGIC] = LAYOUT_MAGIC;
    main.i32[MAIN.VERSION] = LAYOUT_VERSION;
    main.i32[MAIN.WORKERS] = setup.workers;
    main.i32[MAIN.REASONS] = REASONS.length;
    return new SharedState(setup, main);
  }

  /** Worker: maps the main block and checks it is the layout this code knows. */
  static open(setup: SharedSetup): SharedState {
    const layout = mainLayout(setup.workers, REASONS.length);
    const main = openBlock(pathModule().join(setup.dir, `${setup.prefix}main`), layout.bytes);
    const h = main.i32;
    if (h[MAIN.MAGIC] !== LAYOUT_MAGIC || h[MAIN.VERSION] !== LAYOUT_VERSION || h[MAIN.WORKERS] !== setup.workers || h[MAIN.REASONS] !== REASONS.length) {
      throw new FulcrumError('E_SHARED_MEMORY', `shared memory ${main.path} has another layout (a different Fulcrum version?)`);
    }
    return new SharedState(setup, main);
  }

  get isPrimary(): boolean {
    return this.setup.worker < 0;
  }

  /** Every file of this Fulcrum's shared memory (for chown and tests). */
  get paths(): string[] {
    return [
      this.main.path,
      ...this.#serverBlocks.filter((b) => b !== undefined).map((b) => b.path),
      ...[...this.#groupBlocks.values()].map((g) => g.block.path),
      ...[...this.#listenerBlocks.values()].map((b) => b.path),
    ];
  }

  /** Removes every file (primary, at exit). */
  remove(): number {
    return removeBlocks(this.setup.dir, this.setup.prefix);
  }

  // -------------------------------------------------------------------------------------------
  // Directory (primary → workers)

  directory(): SharedDirectory {
    return { slots: this.#slots, groups: Object.fromEntries(this.#groups), listeners: Object.fromEntries(this.#listeners) };
  }

  /** Worker: learns the blocks the primary made since the last configuration. */
  useDirectory(d: SharedDirectory): void {
    this.#slots = Math.max(this.#slots, d.slots);
    for (const [name, g] of Object.entries(d.groups)) this.#groups.set(name, g);
    for (const [name, l] of Object.entries(d.listeners)) this.#listeners.set(name, l);
  }

  // -------------------------------------------------------------------------------------------
  // Listeners

  /**
   * Makes a listener's counters shared: this worker's slots (worker), or sums over the workers
   * (primary). A listener made again (reload) gets a new block in the primary, as groups do.
   */
  bindListener(name: string, counters: ListenerCounters): void {
    let block = this.#listeners.get(name);
    let mapped: MappedBlock;
    const L = this.#listenerLayout;
    if (this.isPrimary) {
      block = this.#nextListenerBlock++;
      this.#listeners.set(name, block);
      mapped = createBlock(pathModule().join(this.setup.dir, `${this.setup.prefix}listener-${block}`), L.bytes);
      this.#listenerBlocks.set(block, mapped);
    } else {
      if (block === undefined) throw new FulcrumError('E_INTERNAL', `listener ${name} has no shared block (the primary assigns them)`);
      mapped = this.#listenerBlocks.get(block) ?? openBlock(pathModule().join(this.setup.dir, `${this.setup.prefix}listener-${block}`), L.bytes);
      this.#listenerBlocks.set(block, mapped);
    }
    shareListenerCounters(mapped.f64, L, this.setup.worker, this.setup.workers, counters);
  }

  // -------------------------------------------------------------------------------------------
  // Servers

  #serverBlock(block: number): MappedBlock {
    let b = this.#serverBlocks[block];
    if (b === undefined) {
      const path = pathModule().join(this.setup.dir, `${this.setup.prefix}servers-${block}`);
      b = this.isPrimary ? createBlock(path, this.serverLayout.blockBytes) : openBlock(path, this.serverLayout.blockBytes);
      this.#serverBlocks[block] = b;
    }
    return b;
  }

  /**
   * A server bound to its slot: the primary gives each new server the next slot (slots are never
   * reused: a removed server's connections may still be counted); a worker uses the slot the
   * primary wrote into the server's config.
   */
  createServer(index: number, c: ServerConfig, role: Server['role']): SharedServer {
    let slot = c.sharedSlot;
    if (this.isPrimary) {
      slot = this.#slots++;
    } else if (slot === undefined) {
      throw new FulcrumError('E_INTERNAL', `server ${JSON.stringify(c.address)} has no shared slot (the primary assigns them)`);
    }
    const { block, byteOffset } = this.serverLayout.locate(slot);
    const b = this.#serverBlock(block);
    return new SharedServer(index, { ...c }, role, slot, { i32: b.i32, f64: b.f64, layout: this.serverLayout, byteOffset, worker: this.setup.worker });
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /** A group's table and counters: a new block in the primary, the primary's block in a worker. */
  groupShared(config: GroupConfig): GroupShared {
    let entry = this.#groups.get(config.name);
    let mapped: MappedBlock;
    let layout: GroupLayout;
    if (this.isPrimary) {
      // A group made again (removed, then added by a reload) gets a new block: the old one may
      // still be used by connections of the old group.
      entry = { block: this.#nextGroupBlock++, slots: clientSlots(config.clientsMax) };
      this.#groups.set(config.name, entry);
      layout = groupLayout(this.setup.workers, entry.slots);
      mapped = createBlock(pathModule().join(this.setup.dir, `${this.setup.prefix}group-${entry.block}`), layout.bytes);
      mapped.i32[layout.slotsWord] = entry.slots;
      this.#groupBlocks.set(entry.block, { block: mapped, layout });
    } else {
      if (entry === undefined) throw new FulcrumError('E_INTERNAL', `group ${config.name} has no shared block (the primary assigns them)`);
      const known = this.#groupBlocks.get(entry.block);
      layout = known?.layout ?? groupLayout(this.setup.workers, entry.slots);
      mapped = known?.block ?? openBlock(pathModule().join(this.setup.dir, `${this.setup.prefix}group-${entry.block}`), layout.bytes);
      if (known === undefined) this.#groupBlocks.set(entry.block, { block: mapped, layout });
    }
    const clients = new SharedClientTable({
      i32: mapped.i32,
      f64: mapped.f64,
      layout,
      clientsMax: config.clientsMax,
      expiryMs: config.trackingMs,
      epochMs: this.setup.epochMs,
      owner: this.#owner,
      remaps: this.isPrimary,
    });
    const f64 = mapped.f64;
    const w = this.setup.worker;
    const stats = {} as GroupStats;
    const counter = (name: (typeof GROUP_COUNTERS)[number]): number => GROUP_COUNTERS.indexOf(name);
    for (const name of GROUP_COUNTERS) {
      if (name === 'queueLength') continue;
      const c = counter(name);
      if (w >= 0) {
        const at = layout.counter(w, c);
        defineCounter(stats, name, () => f64[at]!, (v) => (f64[at] = v));
      } else {
        defineCounter(stats, name, () => this.#sumGroup(f64, layout, c), () => {});
      }
    }
    const q = counter('queueLength');
    return {
      clients,
      stats,
      setQueueLength: (n) => {
        if (w >= 0) f64[layout.counter(w, q)] = n;
      },
      queueLength: () => (w >= 0 ? f64[layout.counter(w, q)]! : this.#sumGroup(f64, layout, q)),
    };
  }

  #sumGroup(f64: Float64Array, layout: GroupLayout, c: number): number {
    let n = 0;
    for (let w = 0; w < this.setup.workers; w++) n += f64[layout.counter(w, c)]!;
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Totals and admission

  /** The balancer's totals: this worker's slots (worker), or sums over the workers (primary). */
  totals(): Totals {
    const { f64 } = this.main;
    const L = this.mainLayout;
    const w = this.setup.worker;
    const totals = {} as Totals;
    WORKER_TOTALS.forEach((name, t) => {
      if (w >= 0) {
        const at = L.workerTotal(w, t);
        defineCounter(totals, name, () => f64[at]!, (v) => (f64[at] = v));
      } else {
        defineCounter(totals, name, () => this.#sumMain((x) => L.workerTotal(x, t)), () => {});
      }
    });
    if (w >= 0) {
      const ends = {} as Record<TerminationReason, number>;
      REASONS.forEach((r, i) => {
        const at = L.workerEnd(w, i);
        defineCounter(ends, r, () => f64[at]!, (v) => (f64[at] = v));
      });
      totals.ends = ends;
    } else {
      Object.defineProperty(totals, 'ends', {
        enumerable: true,
        get: () => {
          const out: Partial<Record<TerminationReason, number>> = {};
          REASONS.forEach((r, i) => {
            const n = this.#sumMain((x) => L.workerEnd(x, i));
            if (n > 0) out[r] = n;
          });
          return out;
        },
      });
    }
    return totals;
  }

  #sumMain(index: (worker: number) => number): number {
    let n = 0;
    for (let w = 0; w < this.setup.workers; w++) n += this.main.f64[index(w)]!;
    return n;
  }

  #mine(field: number): number {
    return this.mainLayout.workerI32(this.setup.worker, field);
  }

  /**
   * -x and pending_max across workers: counts one more admitted session and connect in
   * progress if both stay within their limits, in one atomic step each (undone on failure).
   */
  reserveAdmission(maxActive: number, maxPending: number): boolean {
    const a = this.main.i32;
    if (Atomics.add(a, MAIN.ACTIVE, 1) + 1 > maxActive) {
      Atomics.sub(a, MAIN.ACTIVE, 1);
      return false;
    }
    if (Atomics.add(a, MAIN.PENDING, 1) + 1 > maxPending) {
      Atomics.sub(a, MAIN.PENDING, 1);
      Atomics.sub(a, MAIN.ACTIVE, 1);
      return false;
    }
    a[this.#mine(WORKER_I32.ACTIVE)]!++;
    a[this.#mine(WORKER_I32.PENDING)]!++;
    return true;
  }

  /** A connect of an admitted session started (+1) or ended (-1). */
  pendingDelta(d: number): void {
    const a = this.main.i32;
    Atomics.add(a, MAIN.PENDING, d);
    a[this.#mine(WORKER_I32.PENDING)]! += d;
  }

  /** An admitted session ended. */
  released(): void {
    const a = this.main.i32;
    Atomics.sub(a, MAIN.ACTIVE, 1);
    a[this.#mine(WORKER_I32.ACTIVE)]!--;
  }

  setWaiting(n: number): void {
    this.main.i32[this.#mine(WORKER_I32.WAITING)] = n;
  }

  /** Sessions admitted in all workers. */
  activeTotal(): number {
    return Atomics.load(this.main.i32, MAIN.ACTIVE);
  }

  waitingTotal(): number {
    let n = 0;
    for (let w = 0; w < this.setup.workers; w++) n += this.main.i32[this.mainLayout.workerI32(w, WORKER_I32.WAITING)]!;
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Workers (primary)

  /** A worker (re)starts in slot `w` with this pid. */
  workerStarted(w: number, pid: number): void {
    const a = this.main.i32;
    a[this.mainLayout.workerI32(w, WORKER_I32.PID)] = pid;
    a[this.mainLayout.workerI32(w, WORKER_I32.STARTS)]!++;
  }

  restarted(): void {
    Atomics.add(this.main.i32, MAIN.RESTARTS, 1);
  }

  get restarts(): number {
    return Atomics.load(this.main.i32, MAIN.RESTARTS);
  }

  /** One worker's accepted count, admitted sessions and waiting clients, for reports. */
  workerSummary(w: number): { pid: number; starts: number; accepted: number; active: number; waiting: number } {
    const a = this.main.i32;
    const L = this.mainLayout;
    return {
      pid: a[L.workerI32(w, WORKER_I32.PID)]!,
      starts: a[L.workerI32(w, WORKER_I32.STARTS)]!,
      accepted: this.main.f64[L.workerTotal(w, WORKER_TOTALS.indexOf('accepted'))]!,
      active: a[L.workerI32(w, WORKER_I32.ACTIVE)]!,
      waiting: a[L.workerI32(w, WORKER_I32.WAITING)]!,
    };
  }

  /**
   * A worker died: its connections are gone, so its share of every gauge leaves the totals
   * (admission, every server's connections and pending connects, its queue). Counters (totals,
   * bytes) stay: the replacement continues them. O(servers + groups), once per death.
   */
  reclaim(w: number): number {
    const a = this.main.i32;
    const L = this.mainLayout;
    let n = 0;
    for (const [field, total] of [
      [WORKER_I32.ACTIVE, MAIN.ACTIVE],
      [WORKER_I32.PENDING, MAIN.PENDING],
    ] as const) {
      const at = L.workerI32(w, field);
      const share = a[at]!;
      if (share !== 0) Atomics.sub(a, total, share);
      a[at] = 0;
      if (field === WORKER_I32.ACTIVE) n = share;
    }
    a[L.workerI32(w, WORKER_I32.WAITING)] = 0;
    for (let slot = 0; slot < this.#slots; slot++) {
      const { block, byteOffset } = this.serverLayout.locate(slot);
      const b = this.#serverBlocks[block];
      if (b !== undefined) reclaimServerShare(b.i32, this.serverLayout, byteOffset, w);
    }
    const q = GROUP_COUNTERS.indexOf('queueLength');
    for (const { block, layout } of this.#groupBlocks.values()) block.f64[layout.counter(w, q)] = 0;
    const gauges = [LISTENER_COUNTERS.indexOf('active'), LISTENER_COUNTERS.indexOf('handshakesInProgress')];
    for (const block of this.#listenerBlocks.values()) for (const c of gauges) block.f64[this.#listenerLayout.counter(w, c)] = 0;
    return n;
  }
}
