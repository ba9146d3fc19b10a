import { expect, test } from 'bun:test';
import { clusterKeys } from '../../../src/core/cluster/changes.ts';
import { decodeHeartbeat, encodeHeartbeat, HEARTBEAT_MS, LEASE_MS, Liveness, verdictStands } from '../../../src/core/cluster/liveness.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

test('a verdict stands while its maker is heard of, and is dropped once its lease runs out', () => {
  const clock = new ManualClock();
  const live = new Liveness();
  expect(verdictStands('lb-1', 'lb-2', live, clock.now())).toBe(false); // never heard of: not alive
  live.heard('lb-1', clock.now());
  // Heartbeats every HEARTBEAT_MS keep it standing for as long as they come.
  for (let i = 0; i < 20; i++) {
    clock.advance(HEARTBEAT_MS);
    live.heard('lb-1', clock.now());
    expect(verdictStands('lb-1', 'lb-2', live, clock.now())).toBe(true);
    expect(live.expired(clock.now())).toEqual([]);
  }
  // lb-1 dies: silence for less than the lease changes nothing, the lease itself drops it, once.
  clock.advance(LEASE_MS - 1);
  expect(verdictStands('lb-1', 'lb-2', live, clock.now())).toBe(true);
  expect(live.expired(clock.now())).toEqual([]);
  clock.advance(1);
  expect(verdictStands('lb-1', 'lb-2', live, clock.now())).toBe(false);
  expect(live.expired(clock.now())).toEqual(['lb-1']);
  expect(live.expired(clock.now())).toEqual([]);
  // An instance's own verdicts always stand: its own check decides.
  expect(verdictStands('lb-2', 'lb-2', live, clock.now())).toBe(true);
});

test('an older heartbeat arriving late does not shorten a lease; renewAll grants everyone a fresh one', () => {
  const clock = new ManualClock();
  const live = new Liveness(3_000);
  live.heard('a', clock.now());
  live.heard('b', clock.now());
  clock.advance(2_000);
  live.heard('a', clock.now());
  live.heard('a', clock.now() - 1_500); // out of order: ignored
  clock.advance(1_500);
  expect(live.isAlive('a', clock.now())).toBe(true);
  expect(live.isAlive('b', clock.now())).toBe(false);
  // This instance's own link was down: nobody could be heard, which says nothing of them.
  live.renewAll(clock.now());
  expect(live.isAlive('b', clock.now())).toBe(true);
  clock.advance(3_000);
  expect(live.expired(clock.now()).sort()).toEqual(['a', 'b']);
});

test('heartbeats: their wire form, told apart from a batch of changes, and the alive key', () => {
  expect(decodeHeartbeat(encodeHeartbeat('lb-1'))).toBe('lb-1');
  expect(decodeHeartbeat('[{"kind":"admin"}]')).toBeNull();
  expect(decodeHeartbeat('{"alive":""}')).toBeNull();
  expect(decodeHeartbeat('{"alive":3}')).toBeNull();
  expect(decodeHeartbeat('{not json')).toBeNull();
  expect(clusterKeys('f:').alive('lb-1')).toBe('f:alive:lb-1');
  expect(HEARTBEAT_MS * 3).toBeLessThan(LEASE_MS); // a lost heartbeat or two never drops a live instance
});
