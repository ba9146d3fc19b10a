/**
 * The UDP session table (pen -U, docs/udp.md): one session per client address:port, bound to one
 * server, with its traffic counters, an idle timeout, a maximum of sessions (the least recently
 * active one is evicted), a per-source-address session limit and a cap on the bytes a session may
 * return before its client sends again (so that a spoofed source cannot use Fulcrum as an
 * amplifier).
 *
 * Every operation is O(1): sessions live in a map of source address → (port → session), which
 * also counts sessions per address without allocating a key per datagram, and on an intrusive
 * doubly linked list in idle order (a touch moves a session to the tail, expiry and eviction take
 * the head). One timer, armed for the head's deadline, drives expiry; a touch never re-arms it:
 * when it fires early for a head touched since, it re-arms for that head's new deadline.
 *
 * Pure: time and timers come from the injected Clock; what a session carries for the data plane
 * (its upstream socket) is the opaque `T`; endings are reported to one handler object.
 */
import { MAX_TIMER_MS, type Clock, type TimerHandle } from '../clock.ts';
import { FulcrumError } from '../errors.ts';

export interface UdpSessionLimits {
  /** The most sessions at once (pen's -x); opening one more evicts the least recently active. */
  maxSessions: number;
  /** The most sessions of one source address; 0 = no limit. Further ones are refused. */
  maxPerSource: number;
  /** A session without a datagram either way for this long ends; 0 = never (pen's default). */
  idleTimeoutMs: number;
  /**
   * A session may return `max(returnFloorBytes, returnFactor × bytes received from the client)`
   * before the client sends again; returnFactor 0 = no cap.
   */
  returnFactor: number;
  /** The allowance however little the client sent (one full-size answer to a tiny query). */
  returnFloorBytes: number;
}

/** 1232 bytes: the EDNS buffer size DNS Flag Day 2020 settled on, so one DNS answer always fits. */
export const DEFAULT_UDP_LIMITS: Readonly<UdpSessionLimits> = {
  maxSessions: 500,
  maxPerSource: 64,
  idleTimeoutMs: 30_000,
  returnFactor: 3,
  returnFloorBytes: 1232,
};

export type UdpEndReason = 'idle' | 'evicted' | 'error' | 'closed';

/** Told when a session ends (the data plane closes the upstream socket and logs the session). */
export interface UdpSessionEvents<T> {
  sessionEnded(session: UdpSession<T>, reason: UdpEndReason): void;
}

export class UdpSession<T> {
  /** Client → server. */
  bytesIn = 0;
  datagramsIn = 0;
  /** Server → client, passed on. */
  bytesOut = 0;
  datagramsOut = 0;
  /** Server datagrams dropped by the amplification cap. */
  droppedDatagrams = 0;
  droppedBytes = 0;
  /** Bytes returned since the client last sent, and what the client sent before those. */
  returnedSinceClient = 0;
  receivedWindow = 0;
  lastActiveMs: number;
  readonly openedMs: number;
  /** False once ended; a late datagram for an ended session is ignored. */
  open = true;
  /** @internal idle-order list */
  prev: UdpSession<T> | null = null;
  /** @internal */
  next: UdpSession<T> | null = null;

  constructor(
    readonly address: string,
    readonly port: number,
    /** Index of the server in its group, as chosen by the selector. */
    readonly server: number,
    /** The data plane's side of the session (its upstream socket). */
    public data: T,
    nowMs: number,
  ) {
    this.lastActiveMs = nowMs;
    this.openedMs = nowMs;
  }
}

/** Totals since the table was made; `size` is the sessions open now. */
export interface UdpSessionStats {
  opened: number;
  expired: number;
  evicted: number;
  errored: number;
  closed: number;
  /** Sessions refused because their source address had maxPerSource already. */
  sourceRefused: number;
  /** Server datagrams dropped by the amplification cap, and their bytes. */
  capDroppedDatagrams: number;
  capDroppedBytes: number;
}

type PortMap<T> = Map<number, UdpSession<T>>;

export class UdpSessionTable<T> {
  readonly stats: UdpSessionStats = {
    opened: 0,
    expired: 0,
    evicted: 0,
    errored: 0,
    closed: 0,
    sourceRefused: 0,
    capDroppedDatagrams: 0,
    capDroppedBytes: 0,
  };
  readonly #bySource = new Map<string, PortMap<T>>();
  #size = 0;
  #head: UdpSession<T> | null = null;
  #tail: UdpSession<T> | null = null;
  #limits: UdpSessionLimits;
  #timer: TimerHandle | null = null;
  #timerDue = 0;

  constructor(
    readonly clock: Clock,
    readonly events: UdpSessionEvents<T>,
    limits: Partial<UdpSessionLimits> = {},
  ) {
    this.#limits = checkLimits({ ...DEFAULT_UDP_LIMITS, ...limits });
  }

  get size(): number {
    return this.#size;
  }
  get limits(): Readonly<UdpSessionLimits> {
    return this.#limits;
  }
  /** Sessions open for one source address (for the per-source limit and reports). */
  sessionsOf(address: string): number {
    return this.#bySource.get(address)?.size ?? 0;
  }

  /** The open session of a client address:port, if any. No allocation: called per datagram. */
  get(address: string, port: number): UdpSession<T> | undefined {
    return this.#bySource.get(address)?.get(port);
  }

  /**
   * Whether a new session from `address` would be admitted; when not, the refusal is counted.
   * Asked before the selector chooses a server, so that a refused client costs nothing more.
   */
  admits(address: string): boolean {
    const max = this.#limits.maxPerSource;
    if (max > 0 && (this.#bySource.get(address)?.size ?? 0) >= max) {
      this.stats.sourceRefused++;
      return false;
    }
    return true;
  }

  /**
   * Opens the session of `address:port` on `server`, evicting the least recently active session
   * if the table is full. The caller asked `get` (none open) and `admits` (allowed) first.
   */
  open(address: string, port: number, server: number, data: T): UdpSession<T> {
    if (this.get(address, port) !== undefined) throw new FulcrumError('E_INTERNAL', `udp session ${address}:${port} is already open`);
    while (this.#size >= this.#limits.maxSessions && this.#head !== null) this.#end(this.#head, 'evicted');
    const now = this.clock.now();
    const s = new UdpSession(address, port, server, data, now);
    let ports = this.#bySource.get(address);
    if (ports === undefined) {
      ports = new Map();
      this.#bySource.set(address, ports);
    }
    ports.set(port, s);
    this.#size++;
    this.stats.opened++;
    this.#append(s);
    this.#arm();
    return s;
  }

  /**
   * A datagram of `bytes` from the client: counts it, refreshes the session and opens a new
   * return allowance if the server had answered since the client's last datagram.
   */
  fromClient(s: UdpSession<T>, bytes: number): void {
    if (!s.open) return;
    s.datagramsIn++;
    s.bytesIn += bytes;
    if (s.returnedSinceClient > 0) {
      s.returnedSinceClient = 0;
      s.receivedWindow = 0;
    }
    s.receivedWindow += bytes;
    this.#touch(s);
  }

  /**
   * A datagram of `bytes` from the server: true if it may go to the client (counted and the
   * session refreshed), false if it is over the amplification cap (dropped and counted; a
   * dropped datagram does not refresh the session, so a server flooding a silent client cannot
   * keep its session alive).
   */
  fromServer(s: UdpSession<T>, bytes: number): boolean {
    if (!s.open) return false;
    const { returnFactor, returnFloorBytes } = this.#limits;
    if (returnFactor > 0) {
      const allowance = Math.max(returnFloorBytes, returnFactor * s.receivedWindow);
      if (s.returnedSinceClient + bytes > allowance) {
        s.droppedDatagrams++;
        s.droppedBytes += bytes;
        this.stats.capDroppedDatagrams++;
        this.stats.capDroppedBytes += bytes;
        return false;
      }
    }
    s.returnedSinceClient += bytes;
    s.datagramsOut++;
    s.bytesOut += bytes;
    this.#touch(s);
    return true;
  }

  /** Ends a session now: 'error' (e.g. ICMP port unreachable from its server) or 'closed'. */
  close(s: UdpSession<T>, reason: 'error' | 'closed' = 'closed'): void {
    if (s.open) this.#end(s, reason);
  }

  /**
   * New limits (reload). A lower maximum evicts the least recently active sessions down to it;
   * a new idle timeout applies to every session from its last activity.
   */
  setLimits(limits: Partial<UdpSessionLimits>): void {
    this.#limits = checkLimits({ ...this.#limits, ...limits });
    while (this.#size > this.#limits.maxSessions && this.#head !== null) this.#end(this.#head, 'evicted');
    this.#disarm();
    this.#arm();
  }

  /** Ends every session (shutdown). Walks the table: never on the datagram path. */
  closeAll(reason: UdpEndReason = 'closed'): void {
    while (this.#head !== null) this.#end(this.#head, reason);
    this.#disarm();
  }

  /** Sessions, least recently active first. For reports, never per datagram. */
  *values(): IterableIterator<UdpSession<T>> {
    for (let s = this.#head; s !== null; s = s.next) yield s;
  }

  /** Runs when the expiry timer fires: ends every session past its deadline, then re-arms. */
  expireDue(): void {
    this.#timer = null;
    const idle = this.#limits.idleTimeoutMs;
    if (idle > 0) {
      const now = this.clock.now();
      while (this.#head !== null && this.#head.lastActiveMs + idle <= now) this.#end(this.#head, 'idle');
    }
    this.#arm();
  }

  #touch(s: UdpSession<T>): void {
    s.lastActiveMs = this.clock.now();
    if (this.#tail === s) return;
    this.#unlink(s);
    this.#append(s);
  }

  #end(s: UdpSession<T>, reason: UdpEndReason): void {
    s.open = false;
    this.#unlink(s);
    const ports = this.#bySource.get(s.address);
    if (ports !== undefined && ports.get(s.port) === s) {
      ports.delete(s.port);
      if (ports.size === 0) this.#bySource.delete(s.address);
    }
    this.#size--;
    switch (reason) {
      case 'idle':
        this.stats.expired++;
        break;
      case 'evicted':
        this.stats.evicted++;
        break;
      case 'error':
        this.stats.errored++;
        break;
      case 'closed':
        this.stats.closed++;
        break;
    }
    if (this.#head === null) this.#disarm();
    this.events.sessionEnded(s, reason);
  }

  #append(s: UdpSession<T>): void {
    s.prev = this.#tail;
    s.next = null;
    if (this.#tail !== null) this.#tail.next = s;
    else this.#head = s;
    this.#tail = s;
  }

  #unlink(s: UdpSession<T>): void {
    if (s.prev !== null) s.prev.next = s.next;
    else if (this.#head === s) this.#head = s.next;
    if (s.next !== null) s.next.prev = s.prev;
    else if (this.#tail === s) this.#tail = s.prev;
    s.prev = s.next = null;
  }

  /** Arms the one timer for the head's deadline, unless one is armed that fires no later. */
  #arm(): void {
    const idle = this.#limits.idleTimeoutMs;
    if (idle <= 0 || this.#head === null) return;
    const due = this.#head.lastActiveMs + idle;
    // An armed timer due earlier is kept: when it fires it re-arms for the head of that moment.
    if (this.#timer !== null && this.#timerDue <= due) return;
    this.#disarm();
    this.#timerDue = due;
    this.#timer = this.clock.setTimeout(fireExpiry, Math.max(0, due - this.clock.now()), this);
  }

  #disarm(): void {
    if (this.#timer !== null) this.clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}

/** The timer callback: module level, so arming allocates no closure. */
function fireExpiry<T>(table: UdpSessionTable<T>): void {
  table.expireDue();
}

function checkLimits(l: UdpSessionLimits): UdpSessionLimits {
  const whole = (name: keyof UdpSessionLimits, min: number): void => {
    const v = l[name];
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`udp ${name}: ${v} is not an integer ≥ ${min}`);
  };
  whole('maxSessions', 1);
  whole('maxPerSource', 0);
  whole('idleTimeoutMs', 0);
  whole('returnFloorBytes', 0);
  if (!Number.isFinite(l.returnFactor) || l.returnFactor < 0) throw new RangeError(`udp returnFactor: ${l.returnFactor} is not a number ≥ 0`);
  if (l.idleTimeoutMs > MAX_TIMER_MS) throw new RangeError(`udp idleTimeoutMs: ${l.idleTimeoutMs} is over the longest timer (about 24.8 days)`);
  return l;
}
