/**
 * A server in shared memory (src/core/servers/shared-server.ts) seen from two workers and the
 * primary over one buffer, and the layout it relies on (src/core/workers/layout.ts).
 */
import { describe, expect, test } from 'bun:test';
import { reclaimServerShare, SharedServer } from '../../../src/core/servers/shared-server.ts';
import {
  clientSlots,
  groupLayout,
  listenerLayout,
  mainLayout,
  packState,
  serverLayout,
  SERVER_WORKER_COUNTERS,
  stateAdmin,
  stateAgent,
  stateDown,
  WORKER_TOTALS,
} from '../../../src/core/workers/layout.ts';
import type { ServerSettings } from '../../../src/core/servers/server.ts';

const settings = (maxConnections = 0, hardLimit = 0): ServerSettings => ({
  address: { kind: 'tcp', host: '127.0.0.1', port: 9000 },
  maxConnections,
  hardLimit,
  weight: 1,
  priority: 0,
  acl: 0,
});

/** The primary and two workers, each with its own SharedServer object for slot `slot`. */
function views(workers = 2, slot = 3, s = settings()) {
  const layout = serverLayout(workers);
  const buffer = new ArrayBuffer(layout.blockBytes);
  const i32 = new Int32Array(buffer);
  const f64 = new Float64Array(buffer);
  const { byteOffset } = layout.locate(slot);
  const make = (worker: number): SharedServer => new SharedServer(0, { ...s }, 'regular', slot, { i32, f64, layout, byteOffset, worker });
  const primary = make(-1);
  return { layout, i32, f64, byteOffset, primary, w: Array.from({ length: workers }, (_, k) => make(k)) };
}

describe('limits across workers', () => {
  test('maxc holds whichever worker reserves; a returning client may go up to hard', () => {
    const { primary, w } = views(2, 0, settings(3, 5));
    const taken = [w[0]!.reserve(false), w[1]!.reserve(false), w[0]!.reserve(false), w[1]!.reserve(false), w[0]!.reserve(false)];
    expect(taken).toEqual([true, true, true, false, false]);
    expect([primary.pending, primary.connections]).toEqual([3, 0]);
    expect(w[1]!.isFull(false)).toBe(true);
    expect(w[1]!.reserve(true)).toBe(true); // returning: hard limit 5
    expect(w[0]!.reserve(true)).toBe(true);
    expect(w[0]!.reserve(true)).toBe(false);
    for (const s of w) s.connectedNow();
    expect([primary.pending, primary.connections, primary.totalConnections]).toEqual([3, 2, 2]);
    w[0]!.release();
    w[0]!.unreserve();
    expect([primary.pending, primary.connections]).toEqual([2, 1]);
  });

  test('a worker cannot give back more than it took', () => {
    const { primary, w } = views();
    w[0]!.reserve(false);
    w[1]!.unreserve();
    w[1]!.release();
    expect([primary.pending, primary.connections]).toEqual([1, 0]);
  });

  test("a dead worker's share leaves the totals; its counters stay", () => {
    const { layout, i32, byteOffset, primary, w } = views();
    for (let i = 0; i < 3; i++) w[1]!.reserve(false);
    w[1]!.connectedNow();
    w[1]!.connectedNow();
    w[0]!.reserve(false);
    w[0]!.connectedNow();
    w[1]!.bytesToServer += 100;
    expect([primary.connections, primary.pending]).toEqual([3, 1]);
    expect(reclaimServerShare(i32, layout, byteOffset, 1)).toBe(3);
    expect([primary.connections, primary.pending, primary.totalConnections, primary.bytesToServer]).toEqual([1, 0, 3, 100]);
    // The replacement in slot 1 starts from nothing and gives back nothing it did not take.
    w[1]!.release();
    expect(primary.connections).toBe(1);
  });
});

describe('state the primary publishes', () => {
  test('health, operator state, agent and ejection reach every worker in O(1)', () => {
    const { primary, w } = views();
    expect(w[0]!.isUnavailable(0)).toBe(false);
    expect(w[0]!.agentScale).toBe(1);
    primary.healthy = false;
    expect([w[0]!.isUnavailable(0), w[1]!.status(0), w[1]!.healthy]).toEqual([true, 'down', false]);
    primary.admin = 'drain';
    primary.healthy = true;
    expect([w[0]!.status(0), w[0]!.admin, w[0]!.isOut]).toEqual(['drain', 'drain', true]);
    primary.admin = 'enabled';
    primary.agent = 'maint';
    expect([w[1]!.status(0), w[1]!.agent]).toEqual(['maintenance', 'maint']);
    primary.agent = 'up';
    w[0]!.blacklistedUntilMs = 5000; // a worker ejects it: the other sees it
    expect([w[1]!.isUnavailable(4999), w[1]!.isUnavailable(5000), primary.status(100)]).toEqual([true, false, 'ejected']);
    primary.startRamp(10_000, 1000);
    primary.agentScale = 0.5;
    expect(w[1]!.weightScale(10_500)).toBeCloseTo(0.25, 5);
    expect(w[0]!.status(10_500)).toBe('starting');
  });

  test('the primary reads traffic counters as sums over the workers', () => {
    const { primary, w } = views(3);
    w[0]!.bytesFromServer += 5;
    w[2]!.bytesFromServer += 7;
    w[1]!.connectFailures++;
    w[2]!.connectTimeouts += 2;
    expect([primary.bytesFromServer, primary.connectFailures, primary.connectTimeouts]).toEqual([12, 1, 2]);
    expect([w[0]!.bytesFromServer, w[2]!.bytesFromServer]).toEqual([5, 7]);
    primary.bytesFromServer = 0; // the primary never writes them
    expect(primary.bytesFromServer).toBe(12);
  });
});

describe('layout', () => {
  test('state words pack and unpack', () => {
    for (let admin = 0; admin < 3; admin++) {
      for (const down of [false, true]) {
        for (let agent = 0; agent < 4; agent++) {
          const w = packState(admin, down, agent);
          expect([stateAdmin(w), stateDown(w), stateAgent(w)]).toEqual([admin, down, agent]);
          expect(w === 0).toBe(admin === 0 && !down && agent === 0);
        }
      }
    }
  });

  /** Every field's byte range, to check that none overlaps another and all fit in the block. */
  function ranges(entries: [number, number][], bytes: number): void {
    const sorted = entries.sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < sorted.length; i++) {
      const [start, size] = sorted[i]!;
      expect(start % size).toBe(0);
      expect(start + size).toBeLessThanOrEqual(bytes);
      if (i > 0) expect(start).toBeGreaterThanOrEqual(sorted[i - 1]![0] + sorted[i - 1]![1]);
    }
  }

  test('server records: fields, workers and slots never alias', () => {
    const workers = 3;
    const L = serverLayout(workers);
    const out: [number, number][] = [];
    for (let slot = 0; slot < 4; slot++) {
      const { block, byteOffset: off } = L.locate(slot);
      expect(block).toBe(0);
      for (let f = 0; f < 5; f++) out.push([8 * L.f64(off, f), 8]);
      for (let f = 0; f < 6; f++) out.push([4 * L.i32(off, f), 4]);
      for (let w = 0; w < workers; w++) {
        for (let c = 0; c < SERVER_WORKER_COUNTERS.length; c++) out.push([8 * L.workerCounter(off, w, c), 8]);
        for (let f = 0; f < 2; f++) out.push([4 * L.workerI32(off, w, f), 4]);
      }
    }
    ranges(out, L.blockBytes);
    expect(L.locate(128)).toEqual({ block: 1, byteOffset: 0 });
  });

  test('main, group and listener blocks: no aliasing, tables of a power of two', () => {
    const M = mainLayout(4, 17);
    const main: [number, number][] = [];
    for (let h = 0; h < 16; h++) main.push([4 * h, 4]);
    for (let w = 0; w < 4; w++) {
      for (let f = 0; f < 5; f++) main.push([4 * M.workerI32(w, f), 4]);
      for (let t = 0; t < WORKER_TOTALS.length; t++) main.push([8 * M.workerTotal(w, t), 8]);
      for (let r = 0; r < 17; r++) main.push([8 * M.workerEnd(w, r), 8]);
    }
    ranges(main, M.bytes);

    expect([clientSlots(1), clientSlots(2048), clientSlots(3000)]).toEqual([16, 4096, 8192]);
    const G = groupLayout(2, 16);
    const group: [number, number][] = [[4 * G.slotsWord, 4]];
    for (let w = 0; w < 2; w++) for (let c = 0; c < 8; c++) group.push([8 * G.counter(w, c), 8]);
    for (let s = 0; s < 16; s++) {
      for (let k = 0; k < 8; k++) group.push([4 * (G.slotI32(s) + k), 4]);
      for (let k = 0; k < 2; k++) group.push([8 * (G.slotF64(s) + k), 8]);
    }
    ranges(group, G.bytes);
    expect(() => groupLayout(2, 24)).toThrow(/power of two/);

    const Ls = listenerLayout(3, 16);
    const listener: [number, number][] = [];
    for (let w = 0; w < 3; w++) {
      for (let c = 0; c < 8; c++) listener.push([8 * Ls.counter(w, c), 8]);
      for (let r = 0; r < 16; r++) listener.push([8 * Ls.failure(w, r), 8]);
    }
    ranges(listener, Ls.bytes);
  });
});
