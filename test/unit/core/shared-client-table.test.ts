/**
 * The client table that worker processes share (src/core/clients/shared-client-table.ts), driven
 * here as two "workers" over one buffer. Concurrent writers are simulated by interleaving: a
 * slot's lock is held by the other worker, and while the first one waits (its liveness probe
 * runs during the wait) the other finishes its write and lets go.
 */
import { describe, expect, test } from 'bun:test';
import { decodeClientKey, encodeClientKey, hashClientWords } from '../../../src/core/clients/client-key-words.ts';
import { SharedClientTable, type SlotOwner } from '../../../src/core/clients/shared-client-table.ts';
import { CLIENT_I32, clientSlots, groupLayout, type GroupLayout } from '../../../src/core/workers/layout.ts';

interface Memory {
  i32: Int32Array;
  f64: Float64Array;
  layout: GroupLayout;
}

function memory(clientsMax: number, workers = 2): Memory {
  const layout = groupLayout(workers, clientSlots(clientsMax));
  const buffer = new ArrayBuffer(layout.bytes);
  return { i32: new Int32Array(buffer), f64: new Float64Array(buffer), layout };
}

function table(m: Memory, owner: SlotOwner, o: { clientsMax?: number; expiryMs?: number; remaps?: boolean } = {}): SharedClientTable {
  return new SharedClientTable({ ...m, clientsMax: o.clientsMax ?? 8, expiryMs: o.expiryMs ?? 0, epochMs: 0, owner, remaps: o.remaps ?? false });
}

const alive: (id: number) => boolean = () => true;

/** The first slot of a key's window (where it goes in an empty table). */
function homeSlot(m: Memory, key: string): number {
  const k = [0, 0, 0, 0];
  encodeClientKey(key, k);
  return hashClientWords(k[0]!, k[1]!, k[2]!, k[3]!) & (m.layout.slots - 1);
}

function lockWord(m: Memory, slot: number): number {
  return m.layout.slotI32(slot) + CLIENT_I32.LOCK;
}

describe('keys', () => {
  test('IPv4, IPv6 and Unix clients round-trip through the 16-byte form', () => {
    for (const key of ['127.0.0.1', '10.1.2.3', '255.255.255.255', '0.0.0.0', '::1', '2001:db8::5', 'fe80::1:2:3:4', 'unix']) {
      const k = [0, 0, 0, 0];
      encodeClientKey(key, k);
      expect(decodeClientKey(k[0]!, k[1]!, k[2]!, k[3]!)).toBe(key);
    }
  });

  test('IPv4 is stored as ::ffff:a.b.c.d, distinct from the same bits in IPv6', () => {
    const a = [0, 0, 0, 0];
    const b = [0, 0, 0, 0];
    encodeClientKey('1.2.3.4', a);
    encodeClientKey('::102:304', b);
    expect(a).toEqual([0, 0, 0xffff, 0x01020304]);
    expect(a).not.toEqual(b);
  });
});

describe('two workers, one table', () => {
  test('a client remembered by one worker returns to that server in the other', () => {
    const m = memory(64);
    const w0 = table(m, { id: 100, isAlive: alive });
    const w1 = table(m, { id: 101, isAlive: alive });
    const e = w0.touch('10.0.0.7', 1000);
    expect(e.server).toBe(-1);
    w0.remember(e, 2);
    const again = w1.touch('10.0.0.7', 2000);
    expect(again.server).toBe(2);
    expect(again.connects).toBe(2);
    w1.addBytes(again, 10, 20);
    w0.addBytes(e, 1, 2);
    expect([...w0.values()].map((c) => [c.key, c.server, c.connects, c.bytesFromClient, c.bytesToClient])).toEqual([['10.0.0.7', 2, 2, 11, 22]]);
  });

  test('an insert that waits for the other worker inserting the same client uses its entry (no duplicate)', () => {
    const m = memory(64);
    const key = '192.0.2.9';
    const slot = homeSlot(m, key);
    const w1 = table(m, { id: 101, isAlive: alive });
    let interleaved = false;
    const w0 = table(m, {
      id: 100,
      isAlive: (id) => {
        // Worker 1 holds the lock (it is writing this client); it finishes while worker 0 waits.
        if (!interleaved) {
          interleaved = true;
          expect(id).toBe(101);
          w1.remember(w1.touch(key, 5000), 3); // worker 1 already holds the lock: it proceeds
          Atomics.store(m.i32, lockWord(m, slot), 0);
        }
        return true;
      },
    });
    Atomics.store(m.i32, lockWord(m, slot), 101);
    const e = w0.touch(key, 6000);
    expect(interleaved).toBe(true);
    expect(e.server).toBe(3);
    expect(e.connects).toBe(2);
    expect([...w0.values()].filter((c) => c.key === key).length).toBe(1);
  });

  test('an entry evicted between finding it and locking it is looked for again, and inserted once', () => {
    const m = memory(64);
    const key = '192.0.2.10';
    const w0 = table(m, { id: 100, isAlive: alive });
    w0.remember(w0.touch(key, 1000), 1);
    const slot = homeSlot(m, key);
    let evicted = false;
    const w1 = table(m, {
      id: 101,
      isAlive: () => {
        if (!evicted) {
          // Worker 0 (holding the lock) replaces the slot with another client before worker 1 gets it.
          evicted = true;
          const base = m.layout.slotI32(slot);
          m.i32[base + CLIENT_I32.K3] = 0x0a0a0a0a;
          m.i32[base + CLIENT_I32.SERVER] = 0;
          Atomics.store(m.i32, base + CLIENT_I32.LOCK, 0);
        }
        return true;
      },
    });
    Atomics.store(m.i32, lockWord(m, slot), 100);
    const e = w1.touch(key, 2000);
    expect(evicted).toBe(true);
    expect(e.server).toBe(-1); // its old entry is gone: a new client
    expect([...w1.values()].filter((c) => c.key === key).length).toBe(1);
    expect([...w1.values()].some((c) => c.key === '10.10.10.10')).toBe(true);
  });

  test('a lock left by a dead process is taken over; one held by a live process too long is given up on', () => {
    const m = memory(64);
    const key = '198.51.100.1';
    const slot = homeSlot(m, key);
    Atomics.store(m.i32, lockWord(m, slot), 4242);
    const live = table(m, { id: 100, isAlive: () => true });
    const untracked = live.touch(key, 1000);
    expect(live.lockTimeouts).toBe(1);
    live.remember(untracked, 1); // harmless: the entry is not in the table
    expect(live.peek(key, 1000)).toBeUndefined();
    const other = table(m, { id: 101, isAlive: (id) => id !== 4242 });
    other.remember(other.touch(key, 1000), 1);
    expect(other.locksRecovered).toBe(1);
    expect(other.peek(key, 1000)?.server).toBe(1);
    expect(Atomics.load(m.i32, lockWord(m, slot))).toBe(0);
  });
});

describe('expiry and eviction', () => {
  test('-T: an entry older than the tracking time is invisible and starts over on touch', () => {
    const m = memory(64);
    const t = table(m, { id: 1, isAlive: alive }, { expiryMs: 2000 });
    t.remember(t.touch('10.0.0.1', 10_000), 1);
    expect(t.peek('10.0.0.1', 11_000)?.server).toBe(1);
    expect(t.peek('10.0.0.1', 13_500)).toBeUndefined();
    const e = t.touch('10.0.0.1', 13_500);
    expect([e.server, e.connects]).toEqual([-1, 1]);
  });

  test('tracking 0 never expires', () => {
    const m = memory(64);
    const t = table(m, { id: 1, isAlive: alive });
    t.remember(t.touch('10.0.0.1', 1000), 4);
    expect(t.peek('10.0.0.1', 1e12)?.server).toBe(4);
  });

  test('a full window evicts its least recently seen client (here the window is the whole table)', () => {
    const m = memory(8); // 16 slots, one 16-slot window
    expect(m.layout.slots).toBe(16);
    const t = table(m, { id: 1, isAlive: alive });
    for (let i = 0; i < 16; i++) t.remember(t.touch(`10.0.0.${i}`, (i + 1) * 1000), i % 3);
    t.touch('10.0.0.0', 20_000); // 10.0.0.1 is now the least recently seen
    t.touch('10.0.1.1', 21_000);
    const keys = [...t.values()].map((c) => c.key);
    expect(keys.length).toBe(16);
    expect(keys).not.toContain('10.0.0.1');
    expect(keys).toContain('10.0.0.0');
    expect(keys.at(-1)).toBe('10.0.1.1');
  });

  test('an expired client is replaced before a live one', () => {
    const m = memory(8);
    const t = table(m, { id: 1, isAlive: alive }, { expiryMs: 5000 });
    for (let i = 0; i < 16; i++) t.touch(`10.0.0.${i}`, i === 7 ? 1000 : 10_000);
    t.touch('10.0.2.2', 10_000); // 10.0.0.7 expired (seen at 1 s, tracking 5 s)
    const keys = [...t.values()].map((c) => c.key);
    expect(keys).not.toContain('10.0.0.7');
    expect(keys.length).toBe(16);
  });

  test('many clients through a small table: bounded, and the newest are kept (approximate LRU)', () => {
    const m = memory(256);
    const t = table(m, { id: 1, isAlive: alive }, { clientsMax: 256 });
    for (let i = 0; i < 20_000; i++) t.touch(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1000 + i * 1000);
    expect(t.size).toBeLessThanOrEqual(t.slots);
    // The last clients in are all there: each evicted the oldest of its window.
    const keys = new Set([...t.values()].map((c) => c.key));
    for (let i = 20_000 - 64; i < 20_000; i++) expect(keys.has(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)).toBe(true);
  });
});

describe('reports and reloads', () => {
  test('only the primary renumbers servers; forget and clear', () => {
    const m = memory(64);
    const primary = table(m, { id: 1, isAlive: alive }, { remaps: true });
    const worker = table(m, { id: 2, isAlive: alive });
    worker.remember(worker.touch('10.0.0.1', 1000), 2);
    worker.remember(worker.touch('10.0.0.2', 1000), 0);
    worker.remapServers((s) => s + 10);
    expect(worker.peek('10.0.0.1', 1000)?.server).toBe(2);
    primary.remapServers((s) => (s === 2 ? 1 : -1));
    expect(worker.peek('10.0.0.1', 1000)?.server).toBe(1);
    expect(worker.peek('10.0.0.2', 1000)?.server).toBe(-1);
    expect(primary.forget('10.0.0.1')).toBe(true);
    expect(worker.peek('10.0.0.1', 1000)).toBeUndefined();
    primary.clear();
    expect(worker.size).toBe(0);
  });

  test('values are oldest first; restore inserts with the saved server and time', () => {
    const m = memory(64);
    const t = table(m, { id: 1, isAlive: alive });
    t.touch('10.0.0.3', 30_000);
    t.restore('10.0.0.1', 2, 10_000);
    t.touch('2001:db8::1', 20_000);
    expect([...t.values()].map((c) => [c.key, c.server, c.lastSeenMs])).toEqual([
      ['10.0.0.1', 2, 10_000],
      ['2001:db8::1', -1, 20_000],
      ['10.0.0.3', -1, 30_000],
    ]);
    expect(t.capacity).toBe(8);
  });
});
