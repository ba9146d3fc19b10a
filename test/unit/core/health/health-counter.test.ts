import { describe, expect, test } from 'bun:test';
import { HealthCounter } from '../../../../src/core/health/health-counter.ts';

describe('rise/fall hysteresis', () => {
  test('an up server goes down after `fall` failures in a row, not before', () => {
    const c = new HealthCounter(2, 3);
    expect([false, false, false].map((r) => c.observe(r))).toEqual(['pending', 'pending', 'changed']);
    expect(c.healthy).toBe(false);
  });

  test('a pass among failures starts the count over', () => {
    const c = new HealthCounter(2, 3);
    expect([false, false, true, false, false].map((r) => c.observe(r))).toEqual(['pending', 'pending', 'unchanged', 'pending', 'pending']);
    expect(c.healthy).toBe(true);
    expect(c.observe(false)).toBe('changed');
  });

  test('a down server comes back after `rise` passes in a row', () => {
    const c = new HealthCounter(2, 1, false);
    expect([true, false, true, true].map((r) => c.observe(r))).toEqual(['pending', 'unchanged', 'pending', 'changed']);
    expect(c.healthy).toBe(true);
  });

  test('rise and fall of 1 flip at once; thresholds below 1 count as 1', () => {
    const c = new HealthCounter(0, 0);
    expect(c.observe(false)).toBe('changed');
    expect(c.observe(true)).toBe('changed');
  });

  test('reset forces a state and clears the streak', () => {
    const c = new HealthCounter(2, 2);
    c.observe(false);
    c.reset(true);
    expect(c.observe(false)).toBe('pending');
  });
});
