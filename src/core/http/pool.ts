/**
 * The pool policy of HTTP mode's backend connections (docs/http.md), without sockets: per server,
 * how many connections are open (idle or busy) against `maxPerServer`, the idle ones (reused last
 * in, first out, so the least used ones reach their idle timeout and close), and the requests
 * waiting for a connection when the server is at its maximum (first come, first served). Every
 * operation is O(1): the idle connections form a linked list through the connections themselves,
 * the waiters an ordered list, and idle timeouts run on one timer per server (the oldest idle
 * connection's), through the injected Clock: nothing per request. The owner opens and closes
 * sockets.
 */
import type { Clock, TimerHandle } from '../clock.ts';
import { OrderedList } from '../ordered-list.ts';

export interface PoolSettings {
  /** The most connections (idle and busy) to one server. */
  maxPerServer: number;
  /** An idle connection unused this long is closed. */
  idleTimeoutMs: number;
}

/** A pooled connection as the policy sees it (the owner's object carries these fields, set by the pool). */
export interface Pooled {
  /** The idle list's links (older, newer) while the connection is idle. */
  idlePrev: Pooled | null;
  idleNext: Pooled | null;
  /** When it was parked idle; -1 while it is not idle. */
  idleSince: number;
  /** The pool entry it belongs to. */
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

/** The connections to one server. */
interface Entry<C extends Pooled> {
  open: number;
  /** The idle ones, oldest first: reused from the newest end, timed out from the oldest. */
  oldest: C | null;
  newest: C | null;
  idle: number;
  readonly waiters: OrderedList<PoolWaiter<C>>;
  /** One timer per server for the oldest idle connection's timeout, not one per parking. */
  timer: TimerHandle | null;
}

/** What acquire() gives: an idle connection, leave to open one, or a place in the queue. */
export type Acquired<C> = C | 'open' | 'wait';

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
      e = { open: 0, oldest: null, newest: null, idle: 0, waiters: new OrderedList(), timer: null };
      this.#entries.set(server, e);
    }
    return e;
  }

  /**
   * A connection for a request to `server`: an idle one (the most recently used), leave to open
   * one (counted from now), or wait (`waiter` is queued and granted one later).
   */
  acquire(server: S, waiter: PoolWaiter<C>): Acquired<C> {
    const e = this.#entry(server);
    const conn = e.newest;
    if (conn !== null) {
      unlink(e, conn);
      this.reused++;
      return conn;
    }
    if (e.open < this.settings.maxPerServer) {
      e.open++;
      this.opened++;
      return 'open';
    }
    e.waiters.push(waiter);
    return 'wait';
  }

  /** A waiting request gave up (timeout, client gone). */
  cancel(server: S, waiter: PoolWaiter<C>): void {
    this.#entries.get(server)?.waiters.delete(waiter);
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
    conn.idleSince = this.#clock.now();
    conn.idlePrev = e.newest;
    conn.idleNext = null;
    if (e.newest === null) e.oldest = conn;
    else e.newest.idleNext = conn;
    e.newest = conn;
    e.idle++;
    if (e.timer === null) e.timer = this.#clock.setTimeout(this.#expire, this.settings.idleTimeoutMs, e);
  }

  /** The oldest idle connections whose time is up are closed; the timer follows the next oldest. */
  readonly #expire = (e: Entry<C>): void => {
    e.timer = null;
    const now = this.#clock.now();
    const limit = this.settings.idleTimeoutMs;
    for (let c = e.oldest; c !== null && now - c.idleSince >= limit; c = e.oldest) {
      // Out of the idle list at once: the socket closes later, and must not be reused meanwhile.
      unlink(e, c);
      this.#owner.closeIdle(c);
    }
    const next = e.oldest;
    if (next !== null && e.timer === null) e.timer = this.#clock.setTimeout(this.#expire, next.idleSince + limit - now, e);
  };

  /** A connection to `server` closed (or failed to open): its slot goes to a waiter, if any. */
  closed(server: S, conn: C | null): void {
    const e = this.#entries.get(server);
    if (e === undefined) return;
    if (conn !== null && conn.idleSince >= 0) unlink(e, conn);
    e.open--;
    const w = e.waiters.shift();
    if (w !== undefined) {
      e.open++;
      this.opened++;
      w.granted(null);
    } else if (e.open === 0) {
      this.#clock.clearTimer(e.timer);
      e.timer = null;
      this.#entries.delete(server);
    }
  }

  /** Closes every idle connection of `server` (it went down, or left the group). */
  closeIdle(server: S): void {
    const e = this.#entries.get(server);
    if (e === undefined) return;
    this.#clock.clearTimer(e.timer);
    e.timer = null;
    for (let c = e.oldest; c !== null; c = e.oldest) {
      unlink(e, c);
      this.#owner.closeIdle(c);
    }
  }

  /** Open (idle + busy) and idle connections to `server`, for reports and tests. */
  counts(server: S): { open: number; idle: number; waiting: number } {
    const e = this.#entries.get(server);
    return { open: e?.open ?? 0, idle: e?.idle ?? 0, waiting: e?.waiters.size ?? 0 };
  }

  /** The whole pool's counts (walks the servers with connections: for scrapes and reports only). */
  stats(): PoolStats {
    let open = 0;
    let idle = 0;
    let waiting = 0;
    for (const e of this.#entries.values()) {
      open += e.open;
      idle += e.idle;
      waiting += e.waiters.size;
    }
    return { open, idle, waiting, opened: this.opened, reused: this.reused };
  }

  /** Every server with connections, for stop(). */
  servers(): S[] {
    return [...this.#entries.keys()];
  }
}

/** Takes `c` out of `e`'s idle list. */
function unlink<C extends Pooled>(e: Entry<C>, c: C): void {
  const prev = c.idlePrev as C | null;
  const next = c.idleNext as C | null;
  if (prev === null) e.oldest = next;
  else prev.idleNext = next;
  if (next === null) e.newest = prev;
  else next.idlePrev = prev;
  c.idlePrev = null;
  c.idleNext = null;
  c.idleSince = -1;
  e.idle--;
}
