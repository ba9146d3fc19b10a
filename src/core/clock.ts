/** Time and randomness are injected so that the decision code is deterministic under test. */
export interface Clock {
  /** Milliseconds, monotonic enough for expiry decisions. */
  now(): number;
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

export class ManualClock implements Clock {
  #now: number;
  constructor(start = 1_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}
