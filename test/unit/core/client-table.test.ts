import { expect, test } from 'bun:test';
import { ClientTable } from '../../../src/core/clients/client-table.ts';

test('touch counts connects and refreshes recency; capacity evicts the least recent', () => {
  const t = new ClientTable(3, 0);
  t.touch('a', 1);
  t.touch('b', 2);
  t.touch('c', 3);
  expect(t.touch('a', 4).connects).toBe(2);
  t.touch('d', 5); // evicts b, the least recently seen
  expect([...t.values()].map((e) => e.key)).toEqual(['c', 'a', 'd']);
  expect(t.peek('b', 6)).toBeUndefined();
});

test('expiry: an entry older than the tracking time is invisible and resets on touch', () => {
  const t = new ClientTable(10, 1000);
  const e = t.touch('a', 0);
  e.server = 2;
  expect(t.peek('a', 1000)?.server).toBe(2);
  expect(t.peek('a', 1001)).toBeUndefined();
  const again = t.touch('a', 1001);
  expect(again.server).toBe(-1);
  expect(again.connects).toBe(1);
});

test('tracking 0 never expires', () => {
  const t = new ClientTable(10, 0);
  t.touch('a', 0).server = 1;
  expect(t.peek('a', Number.MAX_SAFE_INTEGER)?.server).toBe(1);
});

test('shrinking evicts the oldest; restore keeps order; forgetServer clears references', () => {
  const t = new ClientTable(5, 0);
  for (const k of ['a', 'b', 'c', 'd']) t.touch(k, 1).server = 1;
  t.setCapacity(2);
  expect([...t.values()].map((e) => e.key)).toEqual(['c', 'd']);
  t.restore('z', 0, 5);
  expect(t.size).toBe(2);
  t.forgetServer(1);
  expect(t.peek('d', 6)?.server).toBe(-1);
  expect(t.peek('z', 6)?.server).toBe(0);
});

test('recency order survives every operation: touch of the newest, oldest and middle, forget, restore, clear', () => {
  const t = new ClientTable(4, 0);
  const order = (): string[] => [...t.values()].map((e) => e.key);
  for (const k of ['a', 'b', 'c', 'd']) t.touch(k, 1);
  t.touch('d', 2); // already the newest
  t.touch('a', 3); // the oldest
  t.touch('c', 4); // in the middle
  expect(order()).toEqual(['b', 'd', 'a', 'c']);
  expect(t.forget('d')).toBe(true);
  expect(t.forget('d')).toBe(false);
  expect(order()).toEqual(['b', 'a', 'c']);
  t.restore('a', 1, 5); // an existing key: replaced, as the newest
  t.restore('e', 0, 6);
  expect(order()).toEqual(['b', 'c', 'a', 'e']);
  t.touch('f', 7); // full: b, the oldest, goes
  expect(order()).toEqual(['c', 'a', 'e', 'f']);
  expect(t.peek('a', 8)?.server).toBe(1);
  t.clear();
  expect([t.size, order()]).toEqual([0, []]);
  t.touch('g', 9);
  expect(order()).toEqual(['g']);
});

test('operations stay O(1): 200k distinct clients through a 2048-slot table', () => {
  const t = new ClientTable(2048, 0);
  for (let i = 0; i < 200_000; i++) t.touch(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i);
  expect(t.size).toBe(2048);
});

test('an observer hears of remembered servers (with the previous one) and of forgotten clients', () => {
  const t = new ClientTable(4, 0);
  const heard: string[] = [];
  t.observer = { remembered: (e, s, prev) => heard.push(`${e.key}:${prev}>${s}`), forgotten: (k) => heard.push(`-${k}`) };
  const e = t.touch('10.0.0.1', 1);
  t.remember(e, 2);
  t.remember(e, 2);
  expect(t.forget('10.0.0.1')).toBe(true);
  expect(t.forget('10.0.0.1')).toBe(false);
  t.restore('10.0.0.2', 1, 5); // loading is not a change to share
  expect(heard).toEqual(['10.0.0.1:-1>2', '10.0.0.1:2>2', '-10.0.0.1']);
});
