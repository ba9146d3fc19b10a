/** Small statistics for the bench: percentiles of latency samples and medians of repeats. */

/** A fixed-capacity sample store (no growth while a measurement runs); extra samples are dropped. */
export class Samples {
  readonly #values: Float64Array;
  #count = 0;
  dropped = 0;

  constructor(capacity: number) {
    this.#values = new Float64Array(Math.max(1, capacity));
  }

  add(value: number): void {
    if (this.#count < this.#values.length) this.#values[this.#count++] = value;
    else this.dropped++;
  }

  get count(): number {
    return this.#count;
  }

  /** The p-th percentile (0–100) by nearest rank; NaN when empty. */
  percentile(p: number): number {
    return percentile(this.#values.subarray(0, this.#count).slice().sort(), p);
  }
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sorted[rank - 1]!;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  values: number[];
}

/** Median and range of repeated measurements (NaNs, from failed runs, are left out). */
export function summarize(values: readonly number[]): Summary {
  const ok = values.filter((v) => Number.isFinite(v));
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, values: [...values] };
  const sorted = [...ok].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, values: [...values] };
}
