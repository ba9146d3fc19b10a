import { describe, expect, test } from 'bun:test';
import { seededRandom } from '../../../../src/core/clock.ts';
import { TimerHeap, type HeapEntry } from '../../../../src/core/health/timer-heap.ts';
import { TokenBucket } from '../../../../src/core/health/token-bucket.ts';

interface E extends HeapEntry {
  id: number;
}
const entry = (id: number): E => ({ id, dueMs: 0, heapIndex: -1 });

describe('timer heap', () => {
  test('pops due entries in time order and only when due', () => {
    const h = new TimerHeap<E>();
    const es = [5, 1, 4, 2, 3].map((d) => {
      const e = entry(d);
      h.schedule(e, d * 10);
      return e;
    });
    expect(h.size).toBe(5);
    expect(h.popDue(9)).toBeUndefined();
    const out: number[] = [];
    for (let e = h.popDue(35); e !== undefined; e = h.popDue(35)) out.push(e.id);
    expect(out).toEqual([1, 2, 3]);
    expect(h.peek()?.id).toBe(4);
    expect(es[0]!.heapIndex).toBeGreaterThanOrEqual(0);
  });

  test('reschedule and remove keep the order, whatever the sequence', () => {
    const rnd = seededRandom(7);
    const h = new TimerHeap<E>();
    const es = Array.from({ length: 500 }, (_, i) => entry(i));
    for (const e of es) h.schedule(e, Math.floor(rnd.next() * 1000));
    for (let i = 0; i < 300; i++) {
      const e = es[Math.floor(rnd.next() * es.length)]!;
      if (rnd.next() < 0.3) h.remove(e);
      else h.schedule(e, Math.floor(rnd.next() * 1000));
    }
    const inHeap = es.filter((e) => h.has(e));
    expect(h.size).toBe(inHeap.length);
    const expected = inHeap.map((e) => e.dueMs).sort((a, b) => a - b);
    const popped: number[] = [];
    for (let e = h.popDue(Infinity); e !== undefined; e = h.popDue(Infinity)) popped.push(e.dueMs);
    expect(popped).toEqual(expected);
    expect(es.every((e) => e.heapIndex === -1)).toBe(true);
  });

  test('removing an entry that is not in the heap does nothing', () => {
    const h = new TimerHeap<E>();
    const a = entry(1);
    h.remove(a);
    h.schedule(a, 1);
    h.remove(a);
    h.remove(a);
    expect(h.size).toBe(0);
  });
});

describe('token bucket (drain budget)', () => {
  test('at most the rate per second after the burst', () => {
    const b = new TokenBucket(2, 2, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([true, true, false]);
    expect(b.waitMs(0)).toBe(500);
    expect(b.take(499)).toBe(false);
    expect(b.take(500)).toBe(true);
    expect(b.take(1000)).toBe(true);
    expect(b.take(1000)).toBe(false);
  });

  test('rate 0 means unlimited', () => {
    const b = new TokenBucket(0, 1, 0);
    expect(Array.from({ length: 100 }, () => b.take(0)).every(Boolean)).toBe(true);
    expect(b.waitMs(0)).toBe(0);
  });
});
