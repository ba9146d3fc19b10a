/**
 * Connect latency of one server in fixed logarithmic buckets: bucket 0 holds 0-1 ms, bucket i
 * holds (2^(i-1), 2^i] ms, the last one everything beyond. Recording is O(1) (one clz32, no
 * allocation); percentiles and the Prometheus histogram are read from the buckets at report time.
 */
export const LATENCY_BUCKETS = 18;

/** The upper bound of each bucket in ms (the last is +Infinity). */
export const LATENCY_BOUNDS_MS: readonly number[] = Array.from({ length: LATENCY_BUCKETS }, (_, i) => (i === LATENCY_BUCKETS - 1 ? Infinity : 2 ** i));

export function latencyBucket(ms: number): number {
  if (!(ms > 1)) return 0;
  return Math.min(LATENCY_BUCKETS - 1, 32 - Math.clz32(Math.ceil(ms) - 1));
}

export class LatencyHistogram {
  readonly counts = new Uint32Array(LATENCY_BUCKETS);
  count = 0;
  sumMs = 0;

  record(ms: number): void {
    this.counts[latencyBucket(ms)]!++;
    this.count++;
    this.sumMs += ms;
  }

  /**
   * The q-quantile (0 < q ≤ 1) in ms, interpolated linearly inside its bucket; null when empty.
   * The open last bucket answers with its lower bound.
   */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      const n = this.counts[i]!;
      if (n === 0 || seen + n < rank) {
        seen += n;
        continue;
      }
      const lo = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const hi = LATENCY_BOUNDS_MS[i]!;
      if (hi === Infinity) return lo;
      return lo + ((hi - lo) * Math.max(0, rank - seen)) / n;
    }
    return LATENCY_BOUNDS_MS[LATENCY_BUCKETS - 2]!;
  }
}
