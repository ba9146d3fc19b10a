/**
 * Admission under the global limits: -x (admitted sessions), pending_max (connects in progress)
 * and -q (accepted clients waiting, unread, in a FIFO, served in order as slots free; beyond it
 * they are closed as 'queue-full'). Where the slots are counted is a strategy: in this process
 * (`localSlots`), or in memory shared by the workers (`sharedSlots`), where a slot can free in
 * another process without an event here, so a worker with waiting clients polls for it.
 *
 * When -x is full, the oldest admitted session whose client has sent nothing for at least
 * QUIET_EVICT_AFTER_MS since it was accepted is given up ('idle-evicted') and the new client
 * takes its slot at once (a burst of real clients does not evict itself): sessions are kept in admission
 * order and dropped from that list at their end, or lazily, when a look for one to give up finds
 * that they have sent something; each is dropped once, so the look is O(1) amortised. The list's
 * links are fields of the sessions (quietPrev, quietNext): nothing is allocated per session.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { GlobalConfig } from '../config/model.ts';
import type { Session } from '../dataplane/session.ts';
import type { Totals } from './totals.ts';

export type AdmissionLimits = Pick<GlobalConfig, 'maxConnections' | 'pendingMax' | 'backlog'>;

/** Where the -x and pending_max slots are counted. */
export interface AdmissionSlots {
  /** Takes a slot if the limits allow one more session (`active`, `pending`: this process's). */
  reserve(active: number, pending: number, limits: AdmissionLimits): boolean;
  /** Whether -x itself is reached (not only the pending-connect limit): only then is a quiet client given up. */
  sessionsFull(active: number, limits: AdmissionLimits): boolean;
  /** Connects in progress changed by `d`. */
  pendingDelta(d: number): void;
  /** An admitted session ended. */
  released(): void;
  /** This process's number of waiting clients changed. */
  waitingChanged(n: number): void;
  /** How often to look for slots freed elsewhere while clients wait; 0 = they free only here. */
  readonly pollMs: number;
  /** Admitted and waiting clients as reports show them (`local`: this process's). */
  activeCount(local: number): number;
  waitingCount(local: number): number;
}

/** One process serving on its own: the counts are this process's. */
export function localSlots(): AdmissionSlots {
  return {
    reserve: (active, pending, limits) => active < limits.maxConnections && pending < limits.pendingMax,
    sessionsFull: (active, limits) => active >= limits.maxConnections,
    pendingDelta: () => undefined,
    released: () => undefined,
    waitingChanged: () => undefined,
    pollMs: 0,
    activeCount: (local) => local,
    waitingCount: (local) => local,
  };
}

/** What admission needs of the workers' shared memory (app/workers/shared-state.ts). */
export interface SharedAdmission {
  reserveAdmission(maxActive: number, maxPending: number): boolean;
  pendingDelta(d: number): void;
  released(): void;
  setWaiting(n: number): void;
  activeTotal(): number;
  waitingTotal(): number;
}

/** How long a client may have sent nothing before a new client may take its slot when -x is full. */
export const QUIET_EVICT_AFTER_MS = 1000;

/** How often a worker with waiting clients looks whether another worker freed a slot. */
export const WAITER_POLL_MS = 20;

/**
 * The limits are global across workers (checked and taken atomically in shared memory). A
 * worker polls for slots freed by the others; the primary admits nothing and reports the sums.
 */
export function sharedSlots(shared: SharedAdmission, role: 'worker' | 'primary'): AdmissionSlots {
  const primary = role === 'primary';
  return {
    reserve: (_active, _pending, limits) => shared.reserveAdmission(limits.maxConnections, limits.pendingMax),
    sessionsFull: (_active, limits) => shared.activeTotal() >= limits.maxConnections,
    pendingDelta: (d) => shared.pendingDelta(d),
    released: () => shared.released(),
    waitingChanged: (n) => shared.setWaiting(n),
    pollMs: primary ? 0 : WAITER_POLL_MS,
    activeCount: (local) => (primary ? shared.activeTotal() : local),
    waitingCount: (local) => (primary ? shared.waitingTotal() : local),
  };
}

export interface AdmissionDeps {
  slots: AdmissionSlots;
  /** The current limits (pen commands and reloads change them). */
  limits(): AdmissionLimits;
  clock: Clock;
  totals: Totals;
  stopping(): boolean;
  /** The poll found time to look: serve the group queues; true while some client still waits in one. */
  serveGroupQueues(): boolean;
}

export class Admission {
  /** Sessions that have been admitted (began selection), by id. */
  readonly sessions = new Map<number, Session>();
  readonly #d: AdmissionDeps;
  /** Accepted clients waiting for a slot (FIFO with a head index). */
  #waiting: (Session | undefined)[] = [];
  #waitingHead = 0;
  #pendingConnects = 0;
  #pollTimer: TimerHandle | null = null;
  /** Admitted sessions not yet seen to have sent a byte, oldest first (linked through the sessions). */
  #quietHead: Session | null = null;
  #quietTail: Session | null = null;
  /** A session is being given up for a new client: the slot it frees is that client's. */
  #evicting = false;
  /** Sessions given up for a new client ('idle-evicted'), since start. */
  idleEvicted = 0;

  constructor(deps: AdmissionDeps) {
    this.#d = deps;
  }

  /** Admitted connections (in the primary: of all workers). */
  get activeCount(): number {
    return this.#d.slots.activeCount(this.sessions.size);
  }
  /** Clients waiting under -x (in the primary: in all workers). */
  get waitingCount(): number {
    return this.#d.slots.waitingCount(this.#waitingLocal);
  }
  get #waitingLocal(): number {
    return this.#waiting.length - this.#waitingHead;
  }

  /** An accepted client: admitted now, held in the FIFO, or refused when the FIFO is full. */
  offer(session: Session): void {
    // A quiet client is given up only for -x: a burst waiting on pending connects (pending_max)
    // is served in order, and clients that connected and have not spoken yet are left alone.
    if (this.#reserve() || (this.#d.slots.sessionsFull(this.sessions.size, this.#d.limits()) && this.#evictQuiet() && this.#reserve())) {
      this.#admit(session);
    } else if (this.#waitingLocal < this.#d.limits().backlog) {
      // pen stops accepting at -x and lets the kernel backlog hold clients; the runtime accepts
      // for us, so we hold them here instead, unread, and serve them in order as slots free.
      this.#d.totals.queued++;
      session.hold();
      this.#waiting.push(session);
      this.#waitingChanged();
    } else {
      session.close('queue-full', false);
    }
  }

  #reserve(): boolean {
    return this.#d.slots.reserve(this.sessions.size, this.#pendingConnects, this.#d.limits());
  }

  /**
   * Gives up the oldest admitted session that has not sent a byte, if there is one; its slot is
   * kept for the caller (waiting clients are not admitted into it).
   */
  #evictQuiet(): boolean {
    for (;;) {
      const s = this.#quietHead;
      if (s === null) return false;
      // A client that has spoken, or waited in a group queue (held unread there: its silence
      // proves nothing), stays, and is never looked at again.
      if (s.finished || s.client.bytesRead > 0 || s.queuedMs !== 0) {
        this.#unlinkQuiet(s);
        continue;
      }
      if (this.#d.clock.now() - s.startMs < QUIET_EVICT_AFTER_MS) return false; // the oldest is too young
      this.#unlinkQuiet(s);
      this.#evicting = true;
      try {
        s.close('idle-evicted', false);
      } finally {
        this.#evicting = false;
      }
      this.idleEvicted++;
      return true;
    }
  }

  #admit(session: Session): void {
    this.sessions.set(session.id, session);
    if (session.client.bytesRead === 0) this.#linkQuiet(session);
    this.#pendingConnects++;
    session.begin();
  }

  /** Appends a session to the quiet list (once: a session is admitted once). */
  #linkQuiet(s: Session): void {
    const tail = this.#quietTail;
    s.quietPrev = tail;
    s.quietNext = null;
    if (tail === null) this.#quietHead = s;
    else tail.quietNext = s;
    this.#quietTail = s;
  }

  /** Takes a session out of the quiet list; nothing if it is not in it. O(1). */
  #unlinkQuiet(s: Session): void {
    const prev = s.quietPrev;
    const next = s.quietNext;
    if (prev === null && this.#quietHead !== s) return;
    if (prev === null) this.#quietHead = next;
    else prev.quietNext = next;
    if (next === null) this.#quietTail = prev;
    else next.quietPrev = prev;
    s.quietPrev = null;
    s.quietNext = null;
  }

  /** Admits waiting clients in order while slots are free (finished ones are dropped). */
  admitWaiting(): void {
    if (this.#evicting) return;
    const before = this.#waitingHead;
    while (this.#waitingHead < this.#waiting.length) {
      const s = this.#waiting[this.#waitingHead]!;
      if (!s.finished && !this.#reserve()) break;
      this.#waiting[this.#waitingHead++] = undefined;
      if (!s.finished) this.#admit(s);
    }
    if (this.#waitingHead > 1024 && this.#waitingHead * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
    if (this.#waitingHead !== before) this.#waitingChanged();
  }

  /** An admitted session's server connected: its connect slot frees. */
  connected(): void {
    this.#pendingConnects--;
    this.#d.slots.pendingDelta(-1);
    this.admitWaiting();
  }

  /** A client waiting in a group queue holds no connect slot; it takes one again when served. */
  queued(): void {
    this.#pendingConnects--;
    this.#d.slots.pendingDelta(-1);
    this.#armPoll();
    this.admitWaiting();
  }

  dequeued(): void {
    this.#pendingConnects++;
    this.#d.slots.pendingDelta(1);
  }

  /** A session ended; true if it had been admitted (its slot is free: call admitWaiting). */
  ended(session: Session): boolean {
    const admitted = this.sessions.delete(session.id);
    this.#unlinkQuiet(session);
    if (admitted && session.connectedMs === 0) {
      this.#pendingConnects--;
      this.#d.slots.pendingDelta(-1);
    }
    if (admitted) this.#d.slots.released();
    return admitted;
  }

  /** Shutdown: closes every admitted and waiting client and stops polling. */
  closeAll(): void {
    for (const s of [...this.sessions.values()]) s.close('shutdown', false);
    for (let i = this.#waitingHead; i < this.#waiting.length; i++) this.#waiting[i]?.close('shutdown', false);
    this.#d.clock.clearTimer(this.#pollTimer);
    this.#pollTimer = null;
  }

  #waitingChanged(): void {
    this.#d.slots.waitingChanged(this.#waitingLocal);
    this.#armPoll();
  }

  /**
   * While clients wait (here, or in a group queue), looks every pollMs whether another process
   * freed a slot; costs nothing while nobody waits, and never runs with local slots.
   */
  #armPoll(): void {
    const ms = this.#d.slots.pollMs;
    if (ms === 0 || this.#pollTimer !== null || this.#d.stopping()) return;
    this.#pollTimer = this.#d.clock.setTimeout(
      (self: Admission) => {
        self.#pollTimer = null;
        if (self.#d.stopping()) return;
        self.admitWaiting();
        const queued = self.#d.serveGroupQueues();
        if (queued || self.#waitingLocal > 0) self.#armPoll();
      },
      ms,
      this,
    );
  }
}
