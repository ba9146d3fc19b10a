/**
 * The system clock: the only file that reads the wall clock or arms the runtime's timers
 * (the linter forbids Date.now, setTimeout and setInterval everywhere else). Every delay is
 * range-checked here, so no source of a duration can arm a timer that overflows.
 */
import { checkTimerMs, type Clock, type Random, type TimerHandle } from '../core/clock.ts';

type RuntimeTimer = ReturnType<typeof setTimeout>;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A, keepAlive = false): TimerHandle {
    const t = setTimeout(fn, checkTimerMs(ms), arg);
    if (!keepAlive) t.unref?.();
    return t as TimerHandle;
  },
  setInterval(fn: () => void, ms: number): TimerHandle {
    const t = setInterval(fn, Math.max(1, checkTimerMs(ms)));
    t.unref?.();
    return t as TimerHandle;
  },
  clearTimer(handle: TimerHandle | null): void {
    // clearTimeout and clearInterval share one id space in Bun and Node.
    if (handle !== null) clearTimeout(handle as RuntimeTimer);
  },
};

export const systemRandom: Random = { next: () => Math.random() };
