/**
 * A server whose state and counters live in the memory that the worker processes of one Fulcrum
 * share (docs/workers.md; offsets in ../workers/layout.ts). It is a Server to everything that
 * uses one (selector, algorithms, health checker, reports), so no decision code forks:
 *
 * - operator state, health and agent state are one packed word: the primary writes it (checks,
 *   operator commands) and `isUnavailable` in every worker reads it directly, one load and one
 *   compare as in the single-process Server;
 * - ejection, slow start and the agent's weight are shared numbers any process may write;
 * - connections and pending connects are totals that every worker changes with Atomics, so
 *   limits and least-connections see the sum; `reserve` checks the limit and counts the connect
 *   in one atomic add (undone if it went over), so two workers never both take the last slot;
 *   each worker also keeps its own share, which the primary subtracts when the worker dies;
 * - traffic counters (totals, bytes, failures) have one slot per worker, written only by that
 *   worker; in the primary (worker = -1) they read as the sum over the workers.
 *
 * The single-process Server is untouched: a process with one worker never creates these.
 */
import type { AgentState } from '../health/agent-check.ts';
import {
  ADMIN_STATES,
  AGENT_STATES,
  packState,
  SERVER_F64,
  SERVER_I32,
  SERVER_WORKER_COUNTERS,
  SERVER_WORKER_I32,
  stateAdmin,
  stateAgent,
  stateDown,
  type ServerLayout,
} from '../workers/layout.ts';
import { Server, type AdminState, type ServerSettings, type ServerStatus } from './server.ts';

export interface SharedServerView {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly layout: ServerLayout;
  /** Byte offset of the server's record in the block. */
  readonly byteOffset: number;
  /** This process's worker number, or -1 in the primary (counters read as sums). */
  readonly worker: number;
}

const SHARED_F64_FIELDS: readonly [string, number][] = [
  ['blacklistedUntilMs', SERVER_F64.BLACKLISTED_UNTIL],
  ['lastEjectionMs', SERVER_F64.LAST_EJECTION],
  ['rampStartMs', SERVER_F64.RAMP_START],
  ['rampEndMs', SERVER_F64.RAMP_END],
  ['agentScale', SERVER_F64.AGENT_SCALE],
];
const SHARED_I32_FIELDS: readonly [string, number][] = [
  ['consecutiveFailures', SERVER_I32.CONSECUTIVE_FAILURES],
  ['ejections', SERVER_I32.EJECTIONS],
];

export class SharedServer extends Server {
  /** The server's slot in shared memory (the same in every process). */
  readonly slot: number;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #state: number;
  readonly #conn: number;
  readonly #pend: number;
  /** This worker's share of the gauges (-1 in the primary). */
  readonly #connMine: number;
  readonly #pendMine: number;
  readonly #totalMine: number;
  readonly #blacklisted: number;

  constructor(index: number, settings: ServerSettings, role: Server['role'], slot: number, view: SharedServerView) {
    super(index, settings, role);
    this.slot = slot;
    const { i32, f64, layout: L, byteOffset: off, worker } = view;
    this.#i32 = i32;
    this.#f64 = f64;
    this.#state = L.i32(off, SERVER_I32.STATE);
    this.#conn = L.i32(off, SERVER_I32.CONNECTIONS);
    this.#pend = L.i32(off, SERVER_I32.PENDING);
    this.#blacklisted = L.f64(off, SERVER_F64.BLACKLISTED_UNTIL);
    this.#connMine = worker < 0 ? -1 : L.workerI32(off, worker, SERVER_WORKER_I32.CONNECTIONS);
    this.#pendMine = worker < 0 ? -1 : L.workerI32(off, worker, SERVER_WORKER_I32.PENDING);
    this.#totalMine = worker < 0 ? -1 : L.workerCounter(off, worker, 0);
    // The first process to see the record sets what is not zero by default.
    if (Atomics.compareExchange(i32, L.i32(off, SERVER_I32.READY), 0, 1) === 0) f64[L.f64(off, SERVER_F64.AGENT_SCALE)] = 1;

    const define = (name: string, get: () => number, set: (v: number) => void): void => {
      Object.defineProperty(this, name, { get, set, enumerable: true, configurable: true });
    };
    const ignore = (): void => {};
    define('connections', () => Atomics.load(i32, this.#conn), ignore);
    define('pending', () => Atomics.load(i32, this.#pend), ignore);
    for (const [name, field] of SHARED_F64_FIELDS) {
      const at = L.f64(off, field);
      define(name, () => f64[at]!, (v) => (f64[at] = v));
    }
    for (const [name, field] of SHARED_I32_FIELDS) {
      const at = L.i32(off, field);
      define(name, () => i32[at]!, (v) => (i32[at] = v));
    }
    SERVER_WORKER_COUNTERS.forEach((name, c) => {
      if (worker >= 0) {
        const at = L.workerCounter(off, worker, c);
        define(name, () => f64[at]!, (v) => (f64[at] = v));
      } else {
        const at = Array.from({ length: L.workers }, (_, w) => L.workerCounter(off, w, c));
        define(name, () => at.reduce((sum, i) => sum + f64[i]!, 0), ignore);
      }
    });
  }

  #word(): number {
    return Atomics.load(this.#i32, this.#state);
  }

  /** Changes one axis of the packed state word (compare-and-swap, so axes set concurrently both stick). */
  #update(f: (word: number) => number): void {
    for (;;) {
      const w = Atomics.load(this.#i32, this.#state);
      if (Atomics.compareExchange(this.#i32, this.#state, w, f(w)) === w) return;
    }
  }

  override get admin(): AdminState {
    return ADMIN_STATES[stateAdmin(this.#word())] ?? 'enabled';
  }
  override set admin(v: AdminState) {
    const a = ADMIN_STATES.indexOf(v);
    this.#update((w) => packState(a, stateDown(w), stateAgent(w)));
  }
  override get healthy(): boolean {
    return !stateDown(this.#word());
  }
  override set healthy(v: boolean) {
    this.#update((w) => packState(stateAdmin(w), !v, stateAgent(w)));
  }
  override get agent(): AgentState {
    return AGENT_STATES[stateAgent(this.#word())] ?? 'up';
  }
  override set agent(v: AgentState) {
    const a = AGENT_STATES.indexOf(v);
    this.#update((w) => packState(stateAdmin(w), stateDown(w), a));
  }

  override isUnavailable(nowMs: number): boolean {
    return this.#i32[this.#state] !== 0 || nowMs < this.#f64[this.#blacklisted]!;
  }

  override get isOut(): boolean {
    return this.#word() !== 0;
  }

  override status(nowMs: number): ServerStatus {
    const w = this.#word();
    const admin = ADMIN_STATES[stateAdmin(w)];
    const agent = AGENT_STATES[stateAgent(w)];
    if (admin === 'maintenance' || agent === 'maint') return 'maintenance';
    if (stateDown(w) || agent === 'down') return 'down';
    if (admin === 'drain' || agent === 'drain') return 'drain';
    if (nowMs < this.blacklistedUntilMs) return 'ejected';
    if (nowMs < this.rampEndMs) return 'starting';
    return 'up';
  }

  override isFull(returningClient: boolean): boolean {
    const max = this.maxConnections;
    if (max === 0) return false;
    const active = Atomics.load(this.#i32, this.#conn) + Atomics.load(this.#i32, this.#pend);
    if (active < max) return false;
    return !returningClient || active >= Math.max(this.hardLimit, max);
  }

  override reserve(returningClient: boolean): boolean {
    const i32 = this.#i32;
    const max = this.maxConnections;
    const pending = Atomics.add(i32, this.#pend, 1) + 1;
    if (max !== 0) {
      const limit = returningClient ? Math.max(this.hardLimit, max) : max;
      // Connections go up before pending comes down (connectedNow), so this errs on "full".
      if (pending + Atomics.load(i32, this.#conn) > limit) {
        Atomics.sub(i32, this.#pend, 1);
        return false;
      }
    }
    if (this.#pendMine >= 0) i32[this.#pendMine]!++;
    return true;
  }

  override unreserve(): void {
    const i32 = this.#i32;
    if (this.#pendMine < 0 || i32[this.#pendMine]! <= 0) return;
    i32[this.#pendMine]!--;
    Atomics.sub(i32, this.#pend, 1);
  }

  override connectedNow(): void {
    const i32 = this.#i32;
    Atomics.add(i32, this.#conn, 1);
    Atomics.sub(i32, this.#pend, 1);
    if (this.#connMine >= 0) {
      i32[this.#connMine]!++;
      i32[this.#pendMine]!--;
      this.#f64[this.#totalMine]!++;
    }
  }

  override release(): void {
    const i32 = this.#i32;
    if (this.#connMine < 0 || i32[this.#connMine]! <= 0) return;
    i32[this.#connMine]!--;
    Atomics.sub(i32, this.#conn, 1);
  }
}

/**
 * A worker died: subtract its share of a server's gauges from the totals and zero it, so that
 * its lost connections stop counting against limits (run by the primary, once per server).
 * Returns the connections and pending connects reclaimed.
 */
export function reclaimServerShare(i32: Int32Array, layout: ServerLayout, byteOffset: number, worker: number): number {
  let n = 0;
  const pairs: [number, number][] = [
    [SERVER_WORKER_I32.CONNECTIONS, SERVER_I32.CONNECTIONS],
    [SERVER_WORKER_I32.PENDING, SERVER_I32.PENDING],
  ];
  for (const [mine, total] of pairs) {
    const at = layout.workerI32(byteOffset, worker, mine);
    const share = i32[at]!;
    if (share !== 0) {
      Atomics.sub(i32, layout.i32(byteOffset, total), share);
      i32[at] = 0;
      n += share;
    }
  }
  return n;
}
