/**
 * A group's all-full queue without sockets: bounded by queue_max, served in order, and timed
 * out by one timer on the injected (manual) clock.
 */
import { expect, test } from 'bun:test';
import { GroupQueue, type QueueStats } from '../../../src/app/group-queue.ts';
import type { Session } from '../../../src/dataplane/session.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

test('bounded, served in order, and timed out by one timer on the clock', () => {
  const clock = new ManualClock();
  const stats: QueueStats = { queued: 0, queueServed: 0, queueTimeouts: 0, queueFull: 0, allFull: 0 };
  const begun: number[] = [];
  let room = 0;
  const q: GroupQueue = new GroupQueue(clock, {
    settings: () => ({ queueMax: 2, queueTimeoutMs: 1000 }),
    stats,
    lengthChanged: () => undefined,
    queued: () => undefined,
    dequeued: () => undefined,
  });
  const fake = (id: number) => {
    const s = {
      id,
      finished: false,
      inGroupQueue: false,
      queuedMs: 0,
      closedWith: null as string | null,
      begin(): void {
        if (room > 0) {
          room--;
          begun.push(id);
        } else q.enqueue(s as unknown as Session); // still full: back to the head
      },
      close(reason: string): void {
        s.closedWith = reason;
        s.finished = true;
        if (s.inGroupQueue) q.left(s as unknown as Session); // as the group's sessionEnded does
      },
    };
    return s;
  };
  const [a, b, c] = [fake(1), fake(2), fake(3)];
  expect(q.enqueue(a as unknown as Session)).toBe(true);
  clock.advance(500);
  q.enqueue(b as unknown as Session);
  q.enqueue(c as unknown as Session);
  expect(c.closedWith).toBe('queue-full');
  expect(clock.pending).toBe(1);
  q.serve(); // no room: the head keeps its place
  expect(q.length).toBe(2);
  clock.advance(500); // the first has waited its queue_timeout
  expect(a.closedWith).toBe('queue-timeout');
  expect(q.length).toBe(1);
  room = 1;
  q.serve();
  expect(begun).toEqual([2]);
  expect(stats).toEqual({ queued: 2, queueServed: 1, queueTimeouts: 1, queueFull: 1, allFull: 0 });
  expect(clock.pending).toBe(0);
});
