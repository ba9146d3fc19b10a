/**
 * The one time source. Time and timers are injected (docs/architecture.md, "One clock") so
 * that decision code is deterministic under test and no file reads the system clock on its own:
 * the system implementation is src/dataplane/system-clock.ts, test clocks live in test/.
 */
import { FulcrumError } from './errors.ts';

/** An armed timer; only the clock that armed it can cancel it. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** Milliseconds since the epoch (wall clock, monotonic enough for expiry decisions). */
  now(): number;
  /**
   * Calls `fn(arg)` once after `ms` milliseconds. `ms` must lie in [0, MAX_TIMER_MS]: an
   * out-of-range delay throws (E_TIMER_RANGE) instead of firing at once (the runtime's timers
   * overflow to 1 ms beyond ~24.8 days). Timers do not keep the process alive unless
   * `keepAlive` is set (for a timer that is the only thing left to do, such as restarting a
   * worker process after all of them died).
   */
  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A, keepAlive?: boolean): TimerHandle;
  /** Calls `fn()` every `ms` milliseconds (same range rule) until cleared. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer armed by this clock; a handle already fired or cleared is ignored. */
  clearTimer(handle: TimerHandle | null): void;
}

/** The longest delay a timer can be armed with (2^31 - 1 ms, ~24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/** Throws a FulcrumError (E_TIMER_RANGE) naming `what` when `ms` cannot arm a timer. */
export function checkTimerMs(ms: number, what = 'timer'): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIMER_MS) {
    throw new FulcrumError('E_TIMER_RANGE', `${what}: ${ms} ms is out of range (0 to ${MAX_TIMER_MS} ms, about 24.8 days)`);
  }
  return ms;
}

/**
 * `ms` cut to what a timer can be armed with, for delays that come from configuration and are
 * armed on an event path, where a RangeError would escape into the event loop: a delay of
 * more than ~24.8 days is as good as none.
 */
export function clampTimerMs(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms > 0 ? ms : 0;
}

export interface Random {
  /** A float in [0, 1). */
  next(): number;
}

/** A seeded generator (mulberry32) for tests and for reproducible jitter. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return {
    next(): number {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/**
 * A clock whose `now()` is a cached reading refreshed every `resolutionMs` (for per-chunk
 * activity stamps, where a system call per read would cost more than the precision is worth).
 * Timers go straight to the underlying clock. `stop()` ends the refresh.
 */
export class CoarseClock implements Clock {
  readonly #base: Clock;
  #now: number;
  #refresh: TimerHandle | null;

  constructor(base: Clock, resolutionMs = 200) {
    this.#base = base;
    this.#now = base.now();
    this.#refresh = base.setInterval(() => {
      this.#now = this.#base.now();
    }, resolutionMs);
  }
  now(): number {
    return this.#now;
  }
  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A, keepAlive?: boolean): TimerHandle {
    return this.#base.setTimeout(fn, ms, arg, keepAlive);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.#base.setInterval(fn, ms);
  }
  clearTimer(handle: TimerHandle | null): void {
    this.#base.clearTimer(handle);
  }
  stop(): void {
    this.#base.clearTimer(this.#refresh);
    this.#refresh = null;
  }
}
