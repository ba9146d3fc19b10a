/**
 * A clock for tests: time moves only when the test says so, and `advance` fires the timers that
 * fall due, in order of their due time (then of arming), each seeing `now()` at its due time.
 * (`keepAlive` means nothing here: no process waits on these timers.)
 */
import { checkTimerMs, type Clock, type TimerHandle } from '../../src/core/clock.ts';

interface ManualTimer {
  due: number;
  seq: number;
  every: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(start = 1_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A): TimerHandle {
    return this.#arm(() => fn(arg), checkTimerMs(ms), 0);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    const every = Math.max(1, checkTimerMs(ms));
    return this.#arm(fn, every, every);
  }
  clearTimer(handle: TimerHandle | null): void {
    if (handle !== null) (handle as ManualTimer).cancelled = true;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
  }
  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const next = this.#timers.filter((t) => !t.cancelled && t.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.#now = Math.max(this.#now, next.due);
      if (next.every > 0) {
        next.due += next.every;
        next.seq = this.#seq++;
      } else {
        next.cancelled = true;
        this.#timers = this.#timers.filter((t) => t !== next);
      }
      next.fn();
    }
    this.#now = end;
  }
  #arm(fn: () => void, ms: number, every: number): ManualTimer {
    const t: ManualTimer = { due: this.#now + ms, seq: this.#seq++, every, fn, cancelled: false };
    this.#timers.push(t);
    return t;
  }
}
