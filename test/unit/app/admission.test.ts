/**
 * Admission under -x, pending_max and -q, without sockets: fake sessions record when they begin
 * and how they close. The local strategy decides from this process's counts; the shared
 * strategy (workers) is driven through a fake of the shared counters and the manual clock.
 */
import { expect, test } from 'bun:test';
import { Admission, localSlots, QUIET_EVICT_AFTER_MS, sharedSlots, WAITER_POLL_MS, type AdmissionLimits, type AdmissionSlots, type SharedAdmission } from '../../../src/app/admission.ts';
import { newTotals } from '../../../src/app/totals.ts';
import type { Session } from '../../../src/dataplane/session.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

class FakeSession {
  finished = false;
  startMs = 0;
  queuedMs = 0;
  readonly client = { bytesRead: 0 };
  connectedMs = 0;
  closedWith: string | null = null;
  /** Paused while it waits in the FIFO (Session.hold). */
  held = false;
  /** The admission's quiet-list links (Session.quietPrev/quietNext). */
  quietPrev: FakeSession | null = null;
  quietNext: FakeSession | null = null;
  constructor(
    readonly id: number,
    readonly begun: number[],
  ) {}
  hold(): void {
    this.held = true;
  }
  begin(): void {
    this.begun.push(this.id);
  }
  /** The balancer's sessionEnded: the admission's slot is given back, waiting clients are admitted. */
  ended: ((s: FakeSession) => void) | null = null;
  close(reason: string): void {
    this.finished = true;
    this.closedWith = reason;
    this.ended?.(this);
  }
}

function setup(limits: AdmissionLimits, slots: AdmissionSlots = localSlots(), clock = new ManualClock()) {
  const begun: number[] = [];
  const totals = newTotals();
  let groupQueues = 0;
  const a = new Admission({
    slots,
    limits: () => limits,
    clock,
    totals,
    stopping: () => false,
    serveGroupQueues: () => {
      groupQueues++;
      return false;
    },
  });
  let next = 1;
  const session = (): FakeSession => {
    const s = new FakeSession(next++, begun);
    s.ended = (x) => {
      if (a.ended(x as unknown as Session)) a.admitWaiting();
    };
    s.startMs = clock.now();
    return s;
  };
  const offer = (s: FakeSession): FakeSession => (a.offer(s as unknown as Session), s);
  /** A session's server connected, then the session ended. */
  const finish = (s: FakeSession): void => {
    s.connectedMs = 1;
    s.finished = true;
    if (a.ended(s as unknown as Session)) a.admitWaiting();
  };
  return { a, begun, totals, session, offer, finish, clock, groupQueues: () => groupQueues };
}

test('local: -x admits up to the limit, then clients wait in arrival order, bounded by -q', () => {
  const t = setup({ maxConnections: 2, pendingMax: 100, backlog: 2 });
  const s = [1, 2, 3, 4, 5].map(() => t.offer(t.session()));
  expect(t.begun).toEqual([1, 2]);
  expect(t.a.activeCount).toBe(2);
  expect(t.a.waitingCount).toBe(2);
  expect(t.totals.queued).toBe(2);
  // The fifth finds the FIFO at its -q bound.
  expect(s[4]!.closedWith).toBe('queue-full');
  expect(s[2]!.closedWith).toBeNull();
});

test('local: when -x is full, the oldest client that sent nothing for a second gives its slot to the new one', () => {
  const t = setup({ maxConnections: 4, pendingMax: 100, backlog: 10 });
  const s = [1, 2, 3, 4].map(() => t.offer(t.session()));
  s[0]!.client.bytesRead = 5; // the oldest has spoken: it is not given up
  s[1]!.queuedMs = 1; // waited in a group queue, held unread there: its silence proves nothing
  // Too young to be given up: the new client waits in the FIFO, as pen's -x has it.
  const young = t.offer(t.session());
  expect(t.begun).toEqual([1, 2, 3, 4]);
  expect(t.a.waitingCount).toBe(1);
  t.clock.advance(QUIET_EVICT_AFTER_MS);
  const late = t.offer(t.session());
  expect(s[2]!.closedWith).toBe('idle-evicted');
  expect(s[0]!.closedWith).toBeNull();
  expect(s[1]!.closedWith).toBeNull();
  // The new client took the freed slot; the one waiting still waits (it was not read either).
  expect(t.begun).toEqual([1, 2, 3, 4, late.id]);
  expect(young.closedWith).toBeNull();
  expect(t.a.waitingCount).toBe(1);
  expect(t.a.idleEvicted).toBe(1);
  // The next one gives up the fourth; the first two are never given up.
  t.offer(t.session());
  expect(s[3]!.closedWith).toBe('idle-evicted');
  expect(t.a.activeCount).toBe(4);
});

test('local: sessions that end leave the quiet list wherever they are in it (head, middle, tail)', () => {
  const t = setup({ maxConnections: 5, pendingMax: 100, backlog: 10 });
  const s = [1, 2, 3, 4, 5].map(() => t.offer(t.session()));
  t.clock.advance(QUIET_EVICT_AFTER_MS);
  // Ended at the head, in the middle and at the tail of the list: their slots free, and the
  // list keeps the two others, oldest first.
  for (const i of [0, 2, 4]) t.finish(s[i]!);
  expect(t.a.activeCount).toBe(2);
  for (let i = 0; i < 3; i++) t.offer(t.session()); // fill -x again (no eviction needed)
  expect(t.a.idleEvicted).toBe(0);
  t.offer(t.session());
  expect([s[1]!.closedWith, s[3]!.closedWith]).toEqual(['idle-evicted', null]);
  t.offer(t.session());
  expect(s[3]!.closedWith).toBe('idle-evicted');
  // Those left are too young: the next client waits.
  t.offer(t.session());
  expect([t.a.idleEvicted, t.a.waitingCount]).toEqual([2, 1]);
});

test('local: a freed slot serves the head of the FIFO, and only one per slot', () => {
  const t = setup({ maxConnections: 2, pendingMax: 100, backlog: 10 });
  const s = [1, 2, 3, 4, 5].map(() => t.offer(t.session()));
  t.a.connected();
  t.a.connected();
  t.finish(s[1]!);
  expect(t.begun).toEqual([1, 2, 3]);
  expect(t.a.waitingCount).toBe(2);
  t.finish(s[0]!);
  expect(t.begun).toEqual([1, 2, 3, 4]);
  expect(t.a.sessions.has(4)).toBe(true);
  expect(t.a.waitingCount).toBe(1);
});

test('local: a waiting client that left is skipped, not admitted', () => {
  const t = setup({ maxConnections: 1, pendingMax: 100, backlog: 10 });
  const s = [1, 2, 3].map(() => t.offer(t.session()));
  s[1]!.finished = true; // the client closed while waiting
  t.a.connected();
  t.finish(s[0]!);
  expect(t.begun).toEqual([1, 3]);
  expect(t.a.waitingCount).toBe(0);
});

test('local: pending_max holds clients until a connect completes', () => {
  const t = setup({ maxConnections: 10, pendingMax: 1, backlog: 10 });
  t.offer(t.session());
  t.offer(t.session());
  expect(t.begun).toEqual([1]);
  t.a.connected(); // the first connect completed: its connect slot frees
  expect(t.begun).toEqual([1, 2]);
});

test('local: a session waiting in a group queue gives its connect slot back', () => {
  const t = setup({ maxConnections: 10, pendingMax: 1, backlog: 10 });
  t.offer(t.session());
  t.offer(t.session());
  t.a.queued();
  expect(t.begun).toEqual([1, 2]);
  expect(t.clock.pending).toBe(0); // local slots never poll
});

test('shared: a worker polls for a slot freed in another worker, and only while clients wait', () => {
  let active = 0;
  const shared: SharedAdmission = {
    reserveAdmission: (max) => (active < max ? (active++, true) : false),
    pendingDelta: () => undefined,
    released: () => active--,
    setWaiting: () => undefined,
    activeTotal: () => active,
    waitingTotal: () => 0,
  };
  const t = setup({ maxConnections: 1, pendingMax: 100, backlog: 10 }, sharedSlots(shared, 'worker'));
  active = 1; // another worker holds the only slot
  t.offer(t.session());
  expect(t.begun).toEqual([]);
  expect(t.clock.pending).toBe(1);
  t.clock.advance(WAITER_POLL_MS);
  expect(t.begun).toEqual([]);
  active = 0; // it finished there: no event reaches this worker
  t.clock.advance(WAITER_POLL_MS);
  expect(t.begun).toEqual([1]);
  expect(t.groupQueues()).toBe(2);
  // One more look after a change (as any change of the waiting count arms it), then quiet.
  t.clock.advance(WAITER_POLL_MS);
  expect(t.clock.pending).toBe(0);
});

test('shared: the primary reports every worker and never polls', () => {
  const shared: SharedAdmission = {
    reserveAdmission: () => false,
    pendingDelta: () => undefined,
    released: () => undefined,
    setWaiting: () => undefined,
    activeTotal: () => 7,
    waitingTotal: () => 3,
  };
  const t = setup({ maxConnections: 1, pendingMax: 1, backlog: 1 }, sharedSlots(shared, 'primary'));
  expect(t.a.activeCount).toBe(7);
  expect(t.a.waitingCount).toBe(3);
  t.a.queued();
  expect(t.clock.pending).toBe(0);
});
