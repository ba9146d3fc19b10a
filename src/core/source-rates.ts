/**
 * New connections per second per client address, for the per-source rate limit (global
 * `max_new_connections_per_source_per_second`): a token bucket per address (burst: one second's
 * worth), created on the address's first connection and forgotten once it would be full again
 * (an address that has been quiet that long is indistinguishable from a new one). The buckets
 * are kept in order of last use, so forgetting is a pop from the front: O(1) amortised per
 * connection, and the table never holds more than the addresses seen within the last second or
 * so (bounded besides by MAX_TRACKED_SOURCES; forgetting early only ever lets a client in).
 */
import { TokenBucket } from './health/token-bucket.ts';
import { OrderedList } from './ordered-list.ts';

/** At most this many addresses are tracked; beyond it the least recently seen is forgotten. */
export const MAX_TRACKED_SOURCES = 65_536;

interface Entry {
  readonly bucket: TokenBucket;
  lastMs: number;
}

export class SourceRates {
  readonly #entries = new Map<string, Entry>();
  /** Addresses by last use, oldest first. */
  readonly #order = new OrderedList<string>();
  readonly #max: number;
  /** New connections refused for the rate, since start. */
  refused = 0;

  constructor(maxTracked = MAX_TRACKED_SOURCES) {
    this.#max = maxTracked;
  }

  /** One new connection from `source` at `nowMs`; false beyond `perSecond` (0 = no limit: nothing is tracked). */
  take(source: string, perSecond: number, nowMs: number): boolean {
    if (perSecond <= 0) return true;
    this.#expire(nowMs);
    let e = this.#entries.get(source);
    if (e === undefined) {
      e = { bucket: new TokenBucket(perSecond, perSecond, nowMs), lastMs: nowMs };
      this.#entries.set(source, e);
    } else {
      this.#order.delete(source);
      e.bucket.ratePerSec = perSecond; // the limit may have changed (reload, admin API)
      e.bucket.burst = Math.max(1, perSecond);
      e.lastMs = nowMs;
    }
    this.#order.push(source);
    if (e.bucket.take(nowMs)) return true;
    this.refused++;
    return false;
  }

  /** Addresses tracked now. */
  get sources(): number {
    return this.#entries.size;
  }

  /** Forgets addresses quiet long enough to have refilled (one second), and the oldest beyond the cap. */
  #expire(nowMs: number): void {
    const refillMs = 1000; // a burst of one second's worth refills in one second
    for (;;) {
      const oldest = this.#order.first();
      if (oldest === undefined) return;
      const e = this.#entries.get(oldest)!;
      if (nowMs - e.lastMs < refillMs && this.#entries.size < this.#max) return;
      this.#order.shift();
      this.#entries.delete(oldest);
    }
  }
}
