/**
 * The per-source rate limit (core/source-rates.ts) and the ordered list behind it: buckets per
 * address, forgotten once refilled, so that the table never outgrows the recent addresses.
 */
import { expect, test } from 'bun:test';
import { OrderedList } from '../../../src/core/ordered-list.ts';
import { SourceRates } from '../../../src/core/source-rates.ts';

test('ordered list: oldest first, O(1) delete anywhere, no duplicates', () => {
  const l = new OrderedList<string>();
  for (const v of ['a', 'b', 'c', 'd']) l.push(v);
  l.push('a'); // already there: keeps its place
  expect(l.delete('c')).toBe(true);
  expect(l.delete('c')).toBe(false);
  expect(l.first()).toBe('a');
  expect([l.shift(), l.shift(), l.shift(), l.shift()]).toEqual(['a', 'b', 'd', undefined]);
  expect(l.size).toBe(0);
  l.push('e');
  expect(l.delete('e')).toBe(true);
  expect(l.first()).toBeUndefined();
});

test('an address gets a second of burst, then the rate; another address is not affected', () => {
  const r = new SourceRates();
  const t = 1_000_000;
  let allowed = 0;
  for (let i = 0; i < 15; i++) if (r.take('10.0.0.1', 10, t)) allowed++;
  expect(allowed).toBe(10);
  expect(r.refused).toBe(5);
  expect(r.take('10.0.0.2', 10, t)).toBe(true);
  // 100 ms later one more token has come.
  expect(r.take('10.0.0.1', 10, t + 100)).toBe(true);
  expect(r.take('10.0.0.1', 10, t + 100)).toBe(false);
});

test('no limit tracks nothing; quiet addresses are forgotten, and the table has a cap', () => {
  const r = new SourceRates(3);
  expect(r.take('a', 0, 0)).toBe(true);
  expect(r.sources).toBe(0);
  for (const a of ['a', 'b', 'c']) r.take(a, 5, 0);
  expect(r.sources).toBe(3);
  r.take('d', 5, 10); // at the cap: the least recently seen ('a') is forgotten
  expect(r.sources).toBe(3);
  r.take('e', 5, 2000); // a second later every earlier one has refilled: forgotten
  expect(r.sources).toBe(1);
});
