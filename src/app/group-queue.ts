/**
 * A group's queue for "every eligible server is full": a bounded FIFO of clients held unread,
 * each served when a slot frees, or closed ('queue-timeout') when it has waited
 * `queue_timeout`. Entries leave in arrival order, so one timer (for the oldest, through the
 * injected Clock) covers them all.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { GroupConfig } from '../config/model.ts';
import type { Session } from '../dataplane/session.ts';

/** The queue's counters (part of the group's stats). */
export interface QueueStats {
  /** Clients that had to wait in the queue. */
  queued: number;
  /** Of those, served when a slot freed. */
  queueServed: number;
  queueTimeouts: number;
  /** Refused because the queue was at its bound. */
  queueFull: number;
  /** Refused because every eligible server was full and there is no queue. */
  allFull: number;
}

export interface QueueHost {
  /** The group's current settings (a reload replaces them). */
  settings(): Pick<GroupConfig, 'queueMax' | 'queueTimeoutMs'>;
  readonly stats: QueueStats;
  /** The number of waiting clients changed (with workers: published in shared memory). */
  lengthChanged(n: number): void;
  /** A session starts or stops waiting (it holds no connect slot meanwhile). */
  queued(session: Session): void;
  dequeued(session: Session): void;
}

export class GroupQueue {
  readonly #clock: Clock;
  readonly #host: QueueHost;
  /** FIFO with a head index; finished ones are skipped. */
  #queue: (Session | undefined)[] = [];
  #head = 0;
  #length = 0;
  #timer: TimerHandle | null = null;
  /** The session being served from the head (it stays at the head if still refused). */
  #retrying: Session | null = null;

  constructor(clock: Clock, host: QueueHost) {
    this.#clock = clock;
    this.#host = host;
  }

  /** Clients waiting in this process. */
  get length(): number {
    return this.#length;
  }

  /** True for the session being served from the head right now. */
  isRetrying(session: Session): boolean {
    return session === this.#retrying;
  }

  #changed(delta: number): void {
    this.#length += delta;
    this.#host.lengthChanged(this.#length);
  }

  /** Every eligible server is full: false when the session cannot wait (no queue). */
  enqueue(session: Session): boolean {
    const host = this.#host;
    if (session === this.#retrying) {
      // Still no slot for the head of the queue: it keeps its place.
      session.inGroupQueue = true;
      this.#changed(1);
      host.queued(session);
      return true;
    }
    const max = host.settings().queueMax;
    if (max <= 0) {
      host.stats.allFull++;
      return false;
    }
    if (this.#length >= max) {
      host.stats.queueFull++;
      session.close('queue-full', false);
      return true;
    }
    host.stats.queued++;
    session.inGroupQueue = true;
    session.queuedMs = this.#clock.now();
    this.#queue.push(session);
    this.#changed(1);
    host.queued(session);
    this.#arm();
    return true;
  }

  /** A waiting session ended (client left, queue timeout, shutdown): it leaves the queue. */
  left(session: Session): void {
    session.inGroupQueue = false;
    this.#changed(-1);
    this.#host.dequeued(session);
  }

  /** Serves waiting clients in order while servers have room (a slot freed, a server came up). */
  serve(): void {
    while (this.#length > 0 && this.#head < this.#queue.length) {
      const s = this.#queue[this.#head];
      if (s === undefined || s.finished || !s.inGroupQueue) {
        this.#queue[this.#head++] = undefined;
        continue;
      }
      s.inGroupQueue = false;
      this.#changed(-1);
      this.#host.dequeued(s);
      this.#retrying = s;
      s.begin();
      this.#retrying = null;
      if (s.inGroupQueue) break; // no slot for it after all: it stays first
      this.#queue[this.#head++] = undefined;
      if (!s.finished) this.#host.stats.queueServed++;
    }
    this.#compact();
    this.#arm();
  }

  stop(): void {
    this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /** One timer, for the oldest waiting client. */
  #arm(): void {
    if (this.#timer !== null) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = null;
    }
    while (this.#head < this.#queue.length) {
      const s = this.#queue[this.#head];
      if (s !== undefined && !s.finished && s.inGroupQueue) break;
      this.#queue[this.#head++] = undefined;
    }
    const head = this.#queue[this.#head];
    if (head === undefined) return;
    const wait = Math.max(0, head.queuedMs + this.#host.settings().queueTimeoutMs - this.#clock.now());
    this.#timer = this.#clock.setTimeout((self: GroupQueue) => self.#expire(), wait, this);
  }

  #expire(): void {
    this.#timer = null;
    const now = this.#clock.now();
    const timeoutMs = this.#host.settings().queueTimeoutMs;
    while (this.#head < this.#queue.length) {
      const s = this.#queue[this.#head];
      if (s !== undefined && !s.finished && s.inGroupQueue) {
        if (s.queuedMs + timeoutMs > now) break;
        this.#host.stats.queueTimeouts++;
        s.close('queue-timeout', false); // leaves the queue through the group's sessionEnded
      }
      this.#queue[this.#head++] = undefined;
    }
    this.#compact();
    this.#arm();
  }
}
