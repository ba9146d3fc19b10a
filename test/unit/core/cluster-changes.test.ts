import { expect, test } from 'bun:test';
import {
  clientAlive,
  clientChangeApplies,
  clientWorthPublishing,
  clusterKeys,
  decodeBatch,
  decodeChange,
  encodeBatch,
  encodeChange,
  isNewer,
  PendingChanges,
  reconnectDelayMs,
  Versions,
  type ClusterChange,
} from '../../../src/core/cluster/changes.ts';

const admin = (ts: number, from: string, state: 'enabled' | 'drain' = 'drain', server = '10.0.0.1:80'): ClusterChange => ({ kind: 'admin', group: 'app', server, state, weight: 1, ts, from });
const client = (client: string, server: string, ts: number): ClusterChange => ({ kind: 'client', group: 'app', client, server, ts, from: 'a' });

test('the last writer wins; equal times go to the greater instance name, the same on every instance', () => {
  expect(isNewer({ ts: 2, from: 'a' }, { ts: 1, from: 'z' })).toBe(true);
  expect(isNewer({ ts: 1, from: 'z' }, { ts: 2, from: 'a' })).toBe(false);
  expect(isNewer({ ts: 1, from: 'b' }, { ts: 1, from: 'a' })).toBe(true);
  expect(isNewer({ ts: 1, from: 'a' }, { ts: 1, from: 'b' })).toBe(false);
  expect(isNewer({ ts: 1, from: 'a' }, undefined)).toBe(true);
});

test('versions: an older change of the same server is refused, another server is independent', () => {
  const v = new Versions();
  expect(v.accept(admin(10, 'a'))).toBe(true);
  expect(v.accept(admin(5, 'b', 'enabled'))).toBe(false);
  expect(v.accept(admin(5, 'b', 'enabled', '10.0.0.2:80'))).toBe(true);
  expect(v.isCurrent(admin(10, 'a'))).toBe(true);
  expect(v.accept(admin(11, 'b', 'enabled'))).toBe(true);
  expect(v.isCurrent(admin(10, 'a'))).toBe(false);
  // Health verdicts of the same server are a separate item.
  expect(v.accept({ kind: 'health', group: 'app', server: '10.0.0.1:80', up: false, reason: 'x', ts: 1, from: 'c' })).toBe(true);
});

test('changes round-trip through their wire form; foreign or broken values are refused', () => {
  const changes: ClusterChange[] = [admin(1, 'a'), client('10.1.2.3', '10.0.0.1:80', 2), { kind: 'health', group: 'g', server: 's', up: false, reason: 'tcp check: refused', ts: 3, from: 'b' }];
  for (const c of changes) expect(decodeChange(encodeChange(c))).toEqual(c);
  expect(decodeBatch(encodeBatch(changes))).toEqual(changes);
  expect(decodeChange('not json')).toBeNull();
  expect(decodeChange('{"kind":"admin","group":"g","server":"s","state":"sleeping","weight":1,"ts":1,"from":"a"}')).toBeNull();
  expect(decodeChange('{"kind":"client","group":"g","server":"s","ts":"1","from":"a","client":"c"}')).toBeNull();
  expect(decodeBatch('[1, {"kind":"other"}, ' + encodeChange(admin(1, 'a')) + ']')).toEqual([admin(1, 'a')]);
  expect(decodeBatch('{}')).toEqual([]);
});

test('client changes: moves are published, stays only to keep the shared entry alive', () => {
  expect(clientWorthPublishing(true, 0, 1000, 0)).toBe(true);
  expect(clientWorthPublishing(false, 0, 1_000_000, 0)).toBe(false); // no expiry: the entry never needs refreshing
  expect(clientWorthPublishing(false, 1000, 1000 + 2499, 10_000)).toBe(false);
  expect(clientWorthPublishing(false, 1000, 1000 + 2500, 10_000)).toBe(true);
  expect(clientChangeApplies(5, undefined)).toBe(true);
  expect(clientChangeApplies(5, 5)).toBe(true);
  expect(clientChangeApplies(4, 5)).toBe(false);
  expect(clientAlive(1000, 5000, 0)).toBe(true);
  expect(clientAlive(1000, 5000, 4000)).toBe(true);
  expect(clientAlive(1000, 5001, 4000)).toBe(false);
});

test('pending changes keep the latest per item, oldest first, bounded', () => {
  const p = new PendingChanges(2);
  p.add(client('c1', 's1', 1));
  p.add(client('c2', 's1', 2));
  p.add(client('c1', 's2', 3)); // replaces c1's first change and becomes the newest
  expect(p.size).toBe(2);
  p.add(client('c3', 's1', 4)); // full: c2, now the oldest, goes
  expect(p.dropped).toBe(1);
  expect(p.take().map((c) => (c.kind === 'client' ? `${c.client}>${c.server}` : ''))).toEqual(['c1>s2', 'c3>s1']);
  expect(p.size).toBe(0);
});

test('keys live under the prefix; reconnects back off to 10 s', () => {
  const k = clusterKeys('lb:');
  expect([k.channel, k.admin('app'), k.health('app'), k.client('app', '10.0.0.9'), k.clientPattern('app')]).toEqual(['lb:changes', 'lb:admin:app', 'lb:health:app', 'lb:client:app:10.0.0.9', 'lb:client:app:*']);
  expect([0, 1, 2, 5, 6, 100].map(reconnectDelayMs)).toEqual([250, 500, 1000, 8000, 10_000, 10_000]);
});
