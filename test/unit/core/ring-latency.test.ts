/** The two fixed-size structures the dashboard reads: the ring buffer and the latency histogram. */
import { describe, expect, test } from 'bun:test';
import { Ring } from '../../../src/core/ring.ts';
import { LATENCY_BOUNDS_MS, LatencyHistogram, latencyBucket } from '../../../src/core/servers/latency-histogram.ts';

describe('Ring', () => {
  test('keeps the last N items, oldest first, and counts every push', () => {
    const r = new Ring<number>(3);
    expect([r.toArray(), r.last(), r.size]).toEqual([[], undefined, 0]);
    r.push(1);
    r.push(2);
    expect(r.toArray()).toEqual([1, 2]);
    for (const n of [3, 4, 5]) r.push(n);
    expect([r.toArray(), r.last(), r.size, r.total]).toEqual([[3, 4, 5], 5, 3, 5]);
    r.push(6);
    expect(r.toArray()).toEqual([4, 5, 6]);
  });

  test('refuses a capacity that is not a positive integer', () => {
    expect(() => new Ring(0)).toThrow(RangeError);
  });
});

describe('LatencyHistogram', () => {
  test('buckets are powers of two in ms, the last one open', () => {
    expect([0, 0.4, 1, 1.5, 2, 3, 4, 5, 1000, 1024, 1025].map(latencyBucket)).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 10, 10, 11]);
    expect(latencyBucket(1e9)).toBe(LATENCY_BOUNDS_MS.length - 1);
    expect(LATENCY_BOUNDS_MS.at(-1)).toBe(Infinity);
  });

  test('percentiles come from the buckets, interpolated inside one', () => {
    const h = new LatencyHistogram();
    expect(h.quantile(0.5)).toBe(null);
    for (let i = 0; i < 90; i++) h.record(1); // bucket 0: 0-1 ms
    for (let i = 0; i < 9; i++) h.record(100); // bucket (64, 128]
    h.record(5000); // bucket (4096, 8192]
    expect(h.count).toBe(100);
    expect(h.sumMs).toBe(90 + 900 + 5000);
    expect(h.quantile(0.5)).toBeCloseTo(50 / 90, 5);
    const p90 = h.quantile(0.9)!;
    expect(p90).toBeLessThanOrEqual(1);
    expect(h.quantile(0.95)).toBeGreaterThan(64);
    expect(h.quantile(0.95)).toBeLessThanOrEqual(128);
    expect(h.quantile(1)).toBeGreaterThan(4096);
    expect(h.quantile(1)).toBeLessThanOrEqual(8192);
  });
});
