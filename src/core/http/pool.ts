/**
 * The pool policy of HTTP mode's backend connections (docs/http.md), without sockets: per server,
 * how many connections are open (idle or busy) against `maxPerServer`, the idle ones (reused last
 * in, first out, so the least used ones reach their idle timeout and close), and the requests
 * waiting for a connection when the server is at its maximum (first come, first served). Idle
 * timeouts run through the injected Clock, one timer per idle connection, armed with the
 * connection as its argument (no closure per park). The owner opens and closes sockets.
 */
import type { Clock, TimerHandle } from '../clock.ts';

export interface PoolSettings {
  /** The most connections (idle and busy) to one server. */
  maxPerServer: number;
  /** An idle connection unused this long is closed. */
  idleTimeoutMs: number;
}

/** A pooled connection as the policy sees it (the owner's object carries these fields). */
export interface Pooled {
  idleTimer: TimerHandle | null;
  /** The pool entry it belongs to, set by the pool. */
  poolKey: unknown;
}

/** A request waiting for a connection: `granted(c)` gives it an idle one, or null to open one. */
export interface PoolWaiter<C> {
  granted(conn: C | null): void;
}

/** What the pool asks its owner to do. */
export interface PoolOwner<C> {
  /** Close an idle connection (timed out, or its server went down); then call closed(). */
  closeIdle(conn: C): void;
}

interface Entry<C> {
  open: number;
  idle: C[];
  waiters: PoolWaiter<C>[];
}

export type Acquired<C> = { kind: 'idle'; conn: C } | { kind: 'open' } | { kind: 'wait' };

/** The pool's connections now (summed over its servers) and since start, for /metrics. */
export interface PoolStats {
  /** Open now: idle and busy (a connect in progress counts). */
  open: number;
  idle: number;
  /** Requests waiting for a connection. */
  waiting: number;
  /** Connections opened for a request (new), and requests given an idle one (reused), since start. */
  opened: number;
  reused: number;
}

export class ConnectionPool<S, C extends Pooled> {
  settings: PoolSettings;
  /** Connections opened (a request given a slot to open one) and reused (given an idle one), since start. */
  opened = 0;
  reused = 0;
  readonly #entries = new Map<S, Entry<C>>();
  readonly #clock: Clock;
  readonly #owner: PoolOwner<C>;

  constructor(settings: PoolSettings, clock: Clock, owner: PoolOwner<C>) {
    this.settings = settings;
    this.#clock = clock;
    this.#owner = owner;
  }

  #entry(server: S): Entry<C> {
    let e = this.#entries.get(server);
    if (e === undefined) {
      e = { open: 0, idle: [], waiters: [] };
      this.#entries.set(server, e);
    }
    return e;
  }

  /**
   * A connection for a request to `server`: an idle one, leave to open one (counted from now),
   * or wait (`waiter` is queued and granted one later).
   */
  acquire(server: S, waiter: PoolWaiter<C>): Acquired<C> {
    const e = this.#entry(server);
    const conn = e.idle.pop();
    if (conn !== undefined) {
      this.#clock.clearTimer(conn.idleTimer);
      conn.idleTimer = null;
      this.reused++;
      return { kind: 'idle', conn };
    }
    if (e.open < this.settings.maxPerServer) {
      e.open++;
      this.opened++;
      return { kind: 'open' };
    }
    e.waiters.push(waiter);
    return { kind: 'wait' };
  }

  /** A waiting request gave up (timeout, client gone). */
  cancel(server: S, waiter: PoolWaiter<C>): void {
    const w = this.#entries.get(server)?.waiters;
    const i = w === undefined ? -1 : w.indexOf(waiter);
    if (i >= 0) w!.splice(i, 1);
  }

  /** A connection finished a request and may be reused: given to a waiter, or parked idle. */
  release(server: S, conn: C): void {
    const e = this.#entry(server);
    const w = e.waiters.shift();
    if (w !== undefined) {
      this.reused++;
      w.granted(conn);
      return;
    }
    conn.poolKey = server;
    conn.idleTimer = this.#clock.setTimeout(this.#expire, this.settings.idleTimeoutMs, conn);
    e.idle.push(conn);
  }

  readonly #expire = (conn: C): void => {
    conn.idleTimer = null;
    // Out of the idle list at once: the socket closes later, and must not be reused meanwhile.
    const idle = this.#entries.get(conn.poolKey as S)?.idle;
    const i = idle === undefined ? -1 : idle.indexOf(conn);
    if (i >= 0) idle!.splice(i, 1);
    this.#owner.closeIdle(conn);
  };

  /** A connection to `server` closed (or failed to open): its slot goes to a waiter, if any. */
  closed(server: S, conn: C | null): void {
    const e = this.#entries.get(server);
    if (e === undefined) return;
    if (conn !== null) {
      this.#clock.clearTimer(conn.idleTimer);
      conn.idleTimer = null;
      const i = e.idle.indexOf(conn);
      if (i >= 0) e.idle.splice(i, 1);
    }
    e.open--;
    const w = e.waiters.shift();
    if (w !== undefined) {
      e.open++;
      this.opened++;
      w.granted(null);
    } else if (e.open === 0) {
      this.#entries.delete(server);
    }
  }

  /** Closes every idle connection of `server` (it went down, or left the group). */
  closeIdle(server: S): void {
    const e = this.#entries.get(server);
    if (e === undefined) return;
    for (const c of e.idle.splice(0)) {
      this.#clock.clearTimer(c.idleTimer);
      c.idleTimer = null;
      this.#owner.closeIdle(c);
    }
  }

  /** Open (idle + busy) and idle connections to `server`, for reports and tests. */
  counts(server: S): { open: number; idle: number; waiting: number } {
    const e = this.#entries.get(server);
    return { open: e?.open ?? 0, idle: e?.idle.length ?? 0, waiting: e?.waiters.length ?? 0 };
  }

  /** The whole pool's counts (walks the servers with connections: for scrapes and reports only). */
  stats(): PoolStats {
    let open = 0;
    let idle = 0;
    let waiting = 0;
    for (const e of this.#entries.values()) {
      open += e.open;
      idle += e.idle.length;
      waiting += e.waiters.length;
    }
    return { open, idle, waiting, opened: this.opened, reused: this.reused };
  }

  /** Every server with connections, for stop(). */
  servers(): S[] {
    return [...this.#entries.keys()];
  }
}
