import { expect, test } from 'bun:test';
import { ServerConnections } from '../../../src/app/server-connections.ts';
import type { Server } from '../../../src/core/servers/server.ts';
import type { Session } from '../../../src/dataplane/session.ts';

interface FakeSession {
  id: number;
  byServerPrev: FakeSession | null;
  byServerNext: FakeSession | null;
}
const session = (id: number): FakeSession => ({ id, byServerPrev: null, byServerNext: null });
const asSession = (s: FakeSession): Session => s as unknown as Session;
const a = { index: 0 } as Server;
const b = { index: 1 } as Server;

test('connections per server: add and remove anywhere in the list, count, and a copy for closing', () => {
  const c = new ServerConnections();
  const s = [1, 2, 3, 4].map(session);
  for (const x of s.slice(0, 3)) c.add(a, asSession(x));
  c.add(b, asSession(s[3]!));
  expect([c.count(a), c.count(b)]).toEqual([3, 1]);
  expect(c.of(a).map((x) => x.id)).toEqual([3, 2, 1]); // newest first
  expect(c.remove(a, asSession(s[1]!))).toBe(2); // the middle
  expect(c.remove(a, asSession(s[1]!))).toBe(-1); // not listed any more
  expect(c.of(a).map((x) => x.id)).toEqual([3, 1]);
  expect(c.remove(a, asSession(s[2]!))).toBe(1); // the first
  expect(c.remove(a, asSession(s[0]!))).toBe(0); // the last
  expect([c.count(a), c.of(a)]).toEqual([0, []]);
  expect(s.every((x) => x.byServerPrev === null && x.byServerNext === null || x.id === 4)).toBe(true);
  c.forget(b);
  expect([c.count(b), c.remove(b, asSession(s[3]!))]).toEqual([0, -1]);
});
