import { describe, expect, test } from 'bun:test';
import { ejectionMs, recordFailure, recordSuccess, type OutlierState } from '../../../../src/core/health/outlier.ts';

const fresh = (): OutlierState => ({ consecutiveFailures: 0, ejections: 0, blacklistedUntilMs: 0, lastEjectionMs: 0 });

describe('outlier detection', () => {
  test("pen's -b: one failure ejects for the blacklist time, every time", () => {
    const s = fresh();
    const pen = { consecutiveFailures: 1, baseEjectionMs: 30_000, maxEjectionMs: 0 };
    expect(recordFailure(s, pen, 1000)).toBe(30_000);
    expect(s.blacklistedUntilMs).toBe(31_000);
    expect(recordFailure(s, pen, 31_000)).toBe(30_000);
  });

  test('N failures in a row eject; a success in between starts over', () => {
    const s = fresh();
    const o = { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 8000 };
    expect(recordFailure(s, o, 0)).toBe(0);
    expect(recordFailure(s, o, 0)).toBe(0);
    recordSuccess(s, 0);
    expect(recordFailure(s, o, 0)).toBe(0);
    expect(recordFailure(s, o, 0)).toBe(0);
    expect(recordFailure(s, o, 0)).toBe(1000);
  });

  test('repeated ejections double, up to the bound', () => {
    const o = { consecutiveFailures: 1, baseEjectionMs: 1000, maxEjectionMs: 5000 };
    expect([0, 1, 2, 3, 10, 40].map((n) => ejectionMs(o, n))).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
    const s = fresh();
    const times = [0, 1, 2, 3].map(() => recordFailure(s, o, s.blacklistedUntilMs));
    expect(times).toEqual([1000, 2000, 4000, 5000]);
  });

  test('the count of ejections is forgotten once the server stays in for as long as it was out', () => {
    const o = { consecutiveFailures: 1, baseEjectionMs: 1000, maxEjectionMs: 60_000 };
    const s = fresh();
    recordFailure(s, o, 0); // out until 1000
    recordFailure(s, o, 1000); // 2000 ms: out until 3000
    expect(s.ejections).toBe(2);
    recordSuccess(s, 4000); // in for 1000 < 2000: remembered
    expect(s.ejections).toBe(2);
    recordSuccess(s, 5000);
    expect(s.ejections).toBe(0);
    expect(recordFailure(s, o, 6000)).toBe(1000);
  });

  test('base 0 disables ejection (pen -b 0)', () => {
    const s = fresh();
    expect(recordFailure(s, { consecutiveFailures: 1, baseEjectionMs: 0, maxEjectionMs: 0 }, 5)).toBe(0);
    expect(s.blacklistedUntilMs).toBe(0);
  });
});
