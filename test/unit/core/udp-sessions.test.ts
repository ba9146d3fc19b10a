// The UDP session table (src/core/udp/sessions.ts) under the manual clock: lookup by client
// address:port, idle expiry in idle order with one timer, eviction of the least recently active
// session, the per-source limit and the amplification cap.
import { expect, test } from 'bun:test';
import { UdpSessionTable, type UdpEndReason, type UdpSession, type UdpSessionLimits } from '../../../src/core/udp/sessions.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

function table(limits: Partial<UdpSessionLimits> = {}) {
  const clock = new ManualClock();
  const ended: string[] = [];
  const t = new UdpSessionTable<string>(clock, {
    sessionEnded(s: UdpSession<string>, reason: UdpEndReason) {
      ended.push(`${s.data}:${reason}`);
    },
  }, limits);
  return { clock, t, ended };
}

const keys = (t: UdpSessionTable<string>) => [...t.values()].map((s) => s.data);

test('a session per client address:port, found without allocation, counted per source', () => {
  const { t } = table();
  const a = t.open('10.0.0.1', 1000, 0, 'a');
  const b = t.open('10.0.0.1', 1001, 1, 'b');
  t.open('10.0.0.2', 1000, 1, 'c');
  expect(t.get('10.0.0.1', 1000)).toBe(a);
  expect(t.get('10.0.0.1', 1001)).toBe(b);
  expect(t.get('10.0.0.3', 1000)).toBeUndefined();
  expect(t.size).toBe(3);
  expect(t.sessionsOf('10.0.0.1')).toBe(2);
  expect(() => t.open('10.0.0.1', 1000, 0, 'dup')).toThrow(/already open/);
});

test('idle expiry follows activity in either direction, with one timer armed', () => {
  const { clock, t, ended } = table({ idleTimeoutMs: 1000 });
  const a = t.open('10.0.0.1', 1, 0, 'a');
  clock.advance(400);
  const b = t.open('10.0.0.1', 2, 0, 'b');
  clock.advance(400);
  t.fromClient(a, 10); // a is now the most recently active
  expect(keys(t)).toEqual(['b', 'a']);
  expect(clock.pending).toBe(1);
  clock.advance(599); // t=1399: b's deadline is 1400
  expect(ended).toEqual([]);
  clock.advance(1); // b idle for 1000 ms
  expect(ended).toEqual(['b:idle']);
  expect(t.get('10.0.0.1', 2)).toBeUndefined();
  expect(b.open).toBe(false);
  clock.advance(300);
  expect(t.fromServer(a, 10)).toBe(true); // a server reply refreshes too
  clock.advance(999);
  expect(ended).toEqual(['b:idle']);
  clock.advance(1);
  expect(ended).toEqual(['b:idle', 'a:idle']);
  expect(t.size).toBe(0);
  expect(t.stats.expired).toBe(2);
  expect(clock.pending).toBe(0); // no timer left once the table is empty
});

test('idle timeout 0 never expires and arms no timer', () => {
  const { clock, t, ended } = table({ idleTimeoutMs: 0 });
  t.open('10.0.0.1', 1, 0, 'a');
  expect(clock.pending).toBe(0);
  clock.advance(10 ** 9);
  expect(ended).toEqual([]);
});

test('expiring many sessions pops them from the head in one timer run', () => {
  const { clock, t, ended } = table({ idleTimeoutMs: 100, maxSessions: 10_000 });
  for (let i = 0; i < 1000; i++) t.open('10.0.0.1', i, 0, `s${i}`);
  clock.advance(100);
  expect(ended.length).toBe(1000);
  expect(ended[0]).toBe('s0:idle');
  expect(t.size).toBe(0);
  expect(t.sessionsOf('10.0.0.1')).toBe(0);
});

test('a full table evicts the least recently active session, counted', () => {
  const { clock, t, ended } = table({ maxSessions: 3 });
  const a = t.open('10.0.0.1', 1, 0, 'a');
  clock.advance(1);
  t.open('10.0.0.2', 1, 0, 'b');
  clock.advance(1);
  t.open('10.0.0.3', 1, 0, 'c');
  t.fromClient(a, 1);
  t.open('10.0.0.4', 1, 0, 'd');
  expect(ended).toEqual(['b:evicted']);
  expect(keys(t)).toEqual(['c', 'a', 'd']);
  expect(t.stats.evicted).toBe(1);
  expect(t.size).toBe(3);
});

test('the per-source limit refuses further sessions of one address, counted; others pass', () => {
  const { t } = table({ maxPerSource: 2 });
  expect(t.admits('10.0.0.1')).toBe(true);
  t.open('10.0.0.1', 1, 0, 'a');
  t.open('10.0.0.1', 2, 0, 'b');
  expect(t.admits('10.0.0.1')).toBe(false);
  expect(t.admits('10.0.0.1')).toBe(false);
  expect(t.admits('10.0.0.2')).toBe(true);
  expect(t.stats.sourceRefused).toBe(2);
  t.close(t.get('10.0.0.1', 1)!);
  expect(t.admits('10.0.0.1')).toBe(true);
  expect(table({ maxPerSource: 0 }).t.admits('x')).toBe(true);
});

test('amplification: the floor for a first answer, then factor × what the client sent', () => {
  const { t } = table({ returnFactor: 3, returnFloorBytes: 100 });
  const s = t.open('10.0.0.1', 1, 0, 'a');
  t.fromClient(s, 20); // allowance max(100, 60) = 100
  expect(t.fromServer(s, 60)).toBe(true);
  expect(t.fromServer(s, 40)).toBe(true);
  expect(t.fromServer(s, 1)).toBe(false); // 101 > 100
  t.fromClient(s, 50); // new window: max(100, 150) = 150
  expect(t.fromServer(s, 150)).toBe(true);
  expect(t.fromServer(s, 1)).toBe(false);
  expect(s.droppedDatagrams).toBe(2);
  expect(s.droppedBytes).toBe(2);
  expect(t.stats.capDroppedDatagrams).toBe(2);
  expect(t.stats.capDroppedBytes).toBe(2);
  expect([s.datagramsIn, s.bytesIn, s.datagramsOut, s.bytesOut]).toEqual([2, 70, 3, 250]);
});

test('amplification: client datagrams before any answer add up; an oversized answer is dropped whole', () => {
  const { t } = table({ returnFactor: 2, returnFloorBytes: 0 });
  const s = t.open('10.0.0.1', 1, 0, 'a');
  t.fromClient(s, 100);
  t.fromClient(s, 100); // no answer in between: the window holds 200, allowance 400
  expect(t.fromServer(s, 401)).toBe(false);
  expect(t.fromServer(s, 400)).toBe(true);
  expect(s.returnedSinceClient).toBe(400);
});

test('a dropped datagram does not keep a session alive; factor 0 disables the cap', () => {
  const { clock, t, ended } = table({ idleTimeoutMs: 1000, returnFactor: 1, returnFloorBytes: 0 });
  const s = t.open('10.0.0.1', 1, 0, 'a');
  t.fromClient(s, 10);
  clock.advance(900);
  expect(t.fromServer(s, 11)).toBe(false);
  clock.advance(100);
  expect(ended).toEqual(['a:idle']);
  expect(t.fromServer(s, 1)).toBe(false); // ended: nothing passes
  const { t: open } = table({ returnFactor: 0 });
  const u = open.open('10.0.0.1', 1, 0, 'u');
  expect(open.fromServer(u, 1_000_000)).toBe(true);
});

test('close ends a session once with its reason; closeAll ends the rest', () => {
  const { clock, t, ended } = table({ idleTimeoutMs: 1000 });
  const a = t.open('10.0.0.1', 1, 0, 'a');
  t.open('10.0.0.2', 1, 0, 'b');
  t.close(a, 'error');
  t.close(a, 'closed');
  expect(ended).toEqual(['a:error']);
  expect(t.stats.errored).toBe(1);
  t.closeAll();
  expect(ended).toEqual(['a:error', 'b:closed']);
  expect(t.size).toBe(0);
  expect(clock.pending).toBe(0);
});

test('setLimits: a lower maximum evicts down to it; a shorter idle timeout applies at once', () => {
  const { clock, t, ended } = table({ idleTimeoutMs: 10_000, maxSessions: 5 });
  for (const k of ['a', 'b', 'c']) {
    t.open(`10.0.0.${k.charCodeAt(0)}`, 1, 0, k);
    clock.advance(100);
  }
  t.setLimits({ maxSessions: 2 });
  expect(ended).toEqual(['a:evicted']);
  t.setLimits({ idleTimeoutMs: 150 }); // b last active 200 ms ago, c 100 ms ago
  clock.advance(0);
  expect(ended).toEqual(['a:evicted', 'b:idle']);
  clock.advance(50);
  expect(ended).toEqual(['a:evicted', 'b:idle', 'c:idle']);
  expect(() => t.setLimits({ maxSessions: 0 })).toThrow(RangeError);
  expect(() => t.setLimits({ returnFactor: -1 })).toThrow(RangeError);
});

test('a session ended from the handler of another ending is left consistent', () => {
  const clock = new ManualClock();
  const ref: { other?: UdpSession<string> } = {};
  const t: UdpSessionTable<string> = new UdpSessionTable<string>(clock, {
    sessionEnded(s) {
      if (s.data === 'a' && ref.other !== undefined) t.close(ref.other);
    },
  }, { idleTimeoutMs: 100 });
  t.open('10.0.0.1', 1, 0, 'a');
  ref.other = t.open('10.0.0.1', 2, 0, 'b');
  clock.advance(50);
  t.open('10.0.0.1', 3, 0, 'c');
  clock.advance(50);
  expect(keys(t)).toEqual(['c']);
  expect(t.size).toBe(1);
  expect(t.stats).toMatchObject({ expired: 1, closed: 1 });
});
