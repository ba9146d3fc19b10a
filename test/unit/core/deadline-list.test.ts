import { describe, expect, test } from 'bun:test';
import { seededRandom, type Clock } from '../../../src/core/clock.ts';
import { DeadlineList, type DeadlineEntry } from '../../../src/core/deadline-list.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

interface E extends DeadlineEntry<E> {
  id: number;
}
const entry = (id: number): E => ({ id, deadlineMs: 0, deadlinePrev: null, deadlineNext: null });

/** A manual clock that counts the timers armed on it. */
class CountingClock extends ManualClock implements Clock {
  armed = 0;
  override setTimeout<A>(fn: (arg: A) => void, ms: number, arg: A): ReturnType<Clock['setTimeout']> {
    this.armed++;
    return super.setTimeout(fn, ms, arg);
  }
}

function setup(start = 0) {
  const clock = new CountingClock(start);
  const expired: { id: number; at: number }[] = [];
  const list = new DeadlineList<E>(clock, (e) => expired.push({ id: e.id, at: clock.now() }));
  return { clock, list, expired };
}

describe('deadline list', () => {
  test('entries expire at their deadline, in order, not before; one timer at a time', () => {
    const { clock, list, expired } = setup();
    const es = [1, 2, 3].map(entry);
    for (const e of es) {
      list.add(e, 1000);
      clock.advance(10);
    }
    expect([list.size, clock.pending]).toEqual([3, 1]);
    clock.advance(979); // t = 1009: the first is due at 1000
    expect(expired).toEqual([{ id: 1, at: 1000 }]);
    clock.advance(100);
    expect(expired.map((x) => [x.id, x.at])).toEqual([
      [1, 1000],
      [2, 1010],
      [3, 1020],
    ]);
    expect([list.size, clock.pending]).toEqual([0, 0]);
    expect(es.every((e) => !list.has(e) && e.deadlinePrev === null && e.deadlineNext === null)).toBe(true);
  });

  test('entries that leave in time never expire, and a steady flow of them arms one timer per deadline length', () => {
    const { clock, list, expired } = setup();
    for (let i = 0; i < 1000; i++) {
      const e = entry(i);
      list.add(e, 1000);
      clock.advance(5);
      list.remove(e); // connected in time
    }
    expect(expired).toEqual([]);
    expect(list.size).toBe(0);
    // 5,000 ms of entries, each listed for 5 ms of a 1,000 ms deadline: a handful of timers.
    expect(clock.armed).toBeLessThanOrEqual(6);
  });

  test('removing the first entry leaves the timer armed; when it fires it follows the next entry', () => {
    const { clock, list, expired } = setup();
    const [a, b] = [entry(1), entry(2)];
    list.add(a, 100);
    clock.advance(50);
    list.add(b, 100);
    list.remove(a);
    list.remove(a); // twice: nothing
    expect([list.size, list.has(a), list.has(b)]).toEqual([1, false, true]);
    clock.advance(50); // t = 100: a's timer fires for nobody and is armed for b
    expect([expired.length, clock.pending]).toEqual([0, 1]);
    clock.advance(50);
    expect(expired).toEqual([{ id: 2, at: 150 }]);
  });

  test('a shorter length (a reload) places new entries before the longer ones, and the timer follows', () => {
    const { clock, list, expired } = setup();
    list.add(entry(1), 5000);
    list.add(entry(2), 5000);
    clock.advance(10);
    list.add(entry(3), 100); // due at 110, before both
    list.add(entry(4), 3000); // due at 3010: between
    list.add(entry(5), 100); // due at 110: after 3, still before the rest
    clock.advance(10_000);
    expect(expired.map((x) => [x.id, x.at])).toEqual([
      [3, 110],
      [5, 110],
      [4, 3010],
      [1, 5000],
      [2, 5000],
    ]);
  });

  test('an entry added again during its expiry (a retry) is listed anew and expires in turn', () => {
    const clock = new CountingClock(0);
    const expired: number[] = [];
    const retries = new Map<number, number>();
    const list: DeadlineList<E> = new DeadlineList<E>(clock, (e) => {
      expired.push(clock.now());
      const n = (retries.get(e.id) ?? 0) + 1;
      retries.set(e.id, n);
      if (n < 3) list.add(e, 1000);
    });
    const e = entry(1);
    list.add(e, 1000);
    list.add(entry(2), 1500);
    clock.advance(10_000);
    expect(expired).toEqual([1000, 1500, 2000, 2500, 3000, 3500]);
    expect(list.size).toBe(0);
  });

  test('adding a listed entry again moves it', () => {
    const { clock, list, expired } = setup();
    const e = entry(1);
    list.add(e, 100);
    list.add(e, 300);
    expect(list.size).toBe(1);
    clock.advance(200);
    expect(expired).toEqual([]);
    clock.advance(100);
    expect(expired).toEqual([{ id: 1, at: 300 }]);
  });

  test('stop disarms the timer', () => {
    const { clock, list, expired } = setup();
    list.add(entry(1), 100);
    list.stop();
    expect(clock.pending).toBe(0);
    clock.advance(1000);
    expect(expired).toEqual([]);
  });

  test('random adds and removes: whatever is left expires in due order, at its deadline', () => {
    const rnd = seededRandom(11);
    const { clock, list, expired } = setup();
    const live = new Map<number, number>(); // id -> due
    const es: E[] = [];
    for (let i = 0; i < 500; i++) {
      const lengths = [1000, 1000, 1000, 400, 2500];
      const e = entry(i);
      const ms = lengths[Math.floor(rnd.next() * lengths.length)]!;
      list.add(e, ms);
      es.push(e);
      live.set(i, clock.now() + ms);
      if (rnd.next() < 0.5) {
        const victim = es[Math.floor(rnd.next() * es.length)]!;
        if (list.has(victim)) {
          list.remove(victim);
          live.delete(victim.id);
        }
      }
      clock.advance(Math.floor(rnd.next() * 7));
      for (const x of expired.splice(0)) {
        expect(live.get(x.id)).toBe(x.at);
        live.delete(x.id);
      }
    }
    clock.advance(10_000);
    const rest = expired.splice(0);
    expect(rest.map((x) => x.at)).toEqual([...rest.map((x) => x.at)].sort((a, b) => a - b));
    for (const x of rest) expect(live.get(x.id)).toBe(x.at);
    expect(rest.length).toBe(live.size);
    expect(list.size).toBe(0);
  });
});
