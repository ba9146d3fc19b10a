/**
 * pen's client tracking table, shared by the worker processes of one Fulcrum (docs/workers.md),
 * so that a client returns to its server whichever worker accepts it.
 *
 * A fixed-size open-addressing table in shared memory (layout in ../workers/layout.ts): each
 * slot holds the client's address in its 16-byte form (IPv4 as ::ffff:a.b.c.d), the server it
 * was last sent to, when it was last seen (seconds) and its connects and bytes. A client is
 * looked for in a window of PROBE slots from its hash; every slot of the window is read, so
 * slots never need tombstones.
 *
 * Concurrency: a slot is written only under its lock word, taken with Atomics.compareExchange
 * (0 → the writer's pid) and released with Atomics.store, so a reader holding the lock never
 * sees half an entry, and two workers never tear one. A lock held by a process that has died
 * (kill -9 between taking and releasing it) is taken over once the waiter sees that the pid is
 * gone. A lock that stays busy for too long makes the operation give up: the client is served
 * untracked for that connection rather than the worker hanging.
 *
 * Differences from the single-process table (client-table.ts), documented in docs/workers.md:
 * - eviction is approximate LRU: when the window of a new client is full, the least recently seen
 *   (or an expired) client of that window is replaced, not the least recently seen of the table;
 * - the table has at least 2 × clients_max slots (a power of two), so it may remember somewhat
 *   more clients than clients_max, and its size is fixed when it is created (a later clients_max
 *   takes effect on restart);
 * - last-seen times have one-second precision (pen's -T is in seconds).
 *
 * Cost per operation: O(PROBE) word reads and one lock; no allocation except the entry object a
 * connection carries.
 */
import { CLIENT_F64, CLIENT_I32, type GroupLayout } from '../workers/layout.ts';
import type { ClientEntry, ClientTracker } from './client-table.ts';
import { encodeClientKey, decodeClientKey, hashClientWords } from './client-key-words.ts';


/** Slots looked at for one client. */
export const PROBE = 16;
/** Spins on a busy lock before asking whether its holder still lives, and before giving up. */
const SPINS_BEFORE_CHECK = 1 << 12;
const SPINS_BEFORE_GIVING_UP = 1 << 20;
/** Attempts of an operation that lost a race for a slot. */
const RETRIES = 8;

export interface SlotOwner {
  /** Written into a slot's lock while this process updates it (its pid; never 0). */
  readonly id: number;
  /** Whether the process holding a lock is still running. */
  isAlive(id: number): boolean;
}

export interface SharedClientTableOptions {
  i32: Int32Array;
  f64: Float64Array;
  layout: GroupLayout;
  /** pen's -c, as configured (reported as the capacity). */
  clientsMax: number;
  expiryMs: number;
  /** Time 0 of the last-seen seconds (the same in every process). */
  epochMs: number;
  owner: SlotOwner;
  /** Only the primary renumbers servers on a reload (workers would do it again). */
  remaps: boolean;
}

/** An entry handed to a connection; remembers where it lives in the table. */
class SharedEntry implements ClientEntry {
  constructor(
    readonly key: string,
    public server: number,
    public lastSeenMs: number,
    public connects: number,
    public bytesFromClient: number,
    public bytesToClient: number,
    readonly k0: number,
    readonly k1: number,
    readonly k2: number,
    readonly k3: number,
    /** The slot, or -1 when the client could not be stored (a lock stayed busy). */
    readonly slot: number,
  ) {}
}

export class SharedClientTable implements ClientTracker {
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #layout: GroupLayout;
  readonly #mask: number;
  readonly #probe: number;
  readonly #epochMs: number;
  readonly #owner: SlotOwner;
  readonly #remaps: boolean;
  readonly #capacity: number;
  #expiryMs: number;
  readonly #k = [0, 0, 0, 0];
  /** Locks that stayed busy (the operation went on untracked); for tests and reports. */
  lockTimeouts = 0;
  /** Locks taken over from a process that had died holding them. */
  locksRecovered = 0;

  constructor(o: SharedClientTableOptions) {
    this.#i32 = o.i32;
    this.#f64 = o.f64;
    this.#layout = o.layout;
    this.#mask = o.layout.slots - 1;
    this.#probe = Math.min(PROBE, o.layout.slots);
    this.#epochMs = o.epochMs;
    this.#owner = o.owner;
    this.#remaps = o.remaps;
    this.#capacity = Math.max(1, o.clientsMax);
    this.#expiryMs = o.expiryMs;
  }

  get capacity(): number {
    return this.#capacity;
  }
  get expiryMs(): number {
    return this.#expiryMs;
  }
  /** Slots in the shared table. */
  get slots(): number {
    return this.#layout.slots;
  }

  /** Used slots; walks the table (reports and tests only). */
  get size(): number {
    let n = 0;
    for (let s = 0; s <= this.#mask; s++) if (Atomics.load(this.#i32, this.#layout.slotI32(s) + CLIENT_I32.LAST_SEEN) !== 0) n++;
    return n;
  }

  setExpiry(expiryMs: number): void {
    this.#expiryMs = expiryMs;
  }

  /** The size is fixed when the shared table is made; a new clients_max applies on restart. */
  setCapacity(_capacity: number): void {}

  #seconds(nowMs: number): number {
    return Math.max(1, Math.floor((nowMs - this.#epochMs) / 1000) + 1);
  }

  #ms(seen: number): number {
    return this.#epochMs + (seen - 1) * 1000;
  }

  #expired(seen: number, nowMs: number): boolean {
    return this.#expiryMs > 0 && this.#ms(seen) + this.#expiryMs < nowMs;
  }

  /** Takes a slot's lock; false when it stayed busy (the caller goes on without the table). */
  #lock(base: number): boolean {
    const i32 = this.#i32;
    const me = this.#owner.id;
    const word = base + CLIENT_I32.LOCK;
    for (let spins = 1; ; spins++) {
      const held = Atomics.compareExchange(i32, word, 0, me);
      // Our own pid: a previous operation of this (single-threaded) process was cut short.
      if (held === 0 || held === me) return true;
      if ((spins & (SPINS_BEFORE_CHECK - 1)) === 0) {
        if (!this.#owner.isAlive(held)) {
          if (Atomics.compareExchange(i32, word, held, me) === held) {
            this.locksRecovered++;
            return true;
          }
        } else if (spins >= SPINS_BEFORE_GIVING_UP) {
          this.lockTimeouts++;
          return false;
        }
      }
    }
  }

  #unlock(base: number): void {
    Atomics.store(this.#i32, base + CLIENT_I32.LOCK, 0);
  }

  #holds(base: number, k0: number, k1: number, k2: number, k3: number): boolean {
    const a = this.#i32;
    return (
      a[base + CLIENT_I32.LAST_SEEN] !== 0 &&
      a[base + CLIENT_I32.K3] === k3 &&
      a[base + CLIENT_I32.K2] === k2 &&
      a[base + CLIENT_I32.K1] === k1 &&
      a[base + CLIENT_I32.K0] === k0
    );
  }

  /** The slot holding the key in its window (read without the lock: verify under it), or -1. */
  #find(h: number, k0: number, k1: number, k2: number, k3: number): number {
    for (let i = 0; i < this.#probe; i++) {
      const slot = (h + i) & this.#mask;
      if (this.#holds(this.#layout.slotI32(slot), k0, k1, k2, k3)) return slot;
    }
    return -1;
  }

  /** Where a new client goes: the first empty slot of its window, else an expired one, else the least recently seen. */
  #victim(h: number, nowMs: number): number {
    const a = this.#i32;
    let oldest = -1;
    let oldestSeen = Infinity;
    for (let i = 0; i < this.#probe; i++) {
      const slot = (h + i) & this.#mask;
      const seen = a[this.#layout.slotI32(slot) + CLIENT_I32.LAST_SEEN]!;
      if (seen === 0) return slot;
      if (this.#expired(seen, nowMs)) return slot;
      if (seen < oldestSeen) {
        oldestSeen = seen;
        oldest = slot;
      }
    }
    return oldest;
  }

  #entry(key: string, slot: number, k0: number, k1: number, k2: number, k3: number): SharedEntry {
    const base = this.#layout.slotI32(slot);
    const fb = this.#layout.slotF64(slot);
    const a = this.#i32;
    return new SharedEntry(
      key,
      a[base + CLIENT_I32.SERVER]!,
      this.#ms(a[base + CLIENT_I32.LAST_SEEN]!),
      a[base + CLIENT_I32.CONNECTS]!,
      this.#f64[fb + CLIENT_F64.BYTES_FROM_CLIENT]!,
      this.#f64[fb + CLIENT_F64.BYTES_TO_CLIENT]!,
      k0,
      k1,
      k2,
      k3,
      slot,
    );
  }

  #write(slot: number, k0: number, k1: number, k2: number, k3: number, server: number, seen: number, connects: number): void {
    const base = this.#layout.slotI32(slot);
    const a = this.#i32;
    a[base + CLIENT_I32.K0] = k0;
    a[base + CLIENT_I32.K1] = k1;
    a[base + CLIENT_I32.K2] = k2;
    a[base + CLIENT_I32.K3] = k3;
    a[base + CLIENT_I32.SERVER] = server;
    a[base + CLIENT_I32.CONNECTS] = connects;
    const fb = this.#layout.slotF64(slot);
    this.#f64[fb + CLIENT_F64.BYTES_FROM_CLIENT] = 0;
    this.#f64[fb + CLIENT_F64.BYTES_TO_CLIENT] = 0;
    a[base + CLIENT_I32.LAST_SEEN] = seen;
  }

  /**
   * Finds or inserts the client under its slot's lock and applies `update` there; returns the
   * slot, or -1 when the table could not be used (a lock stayed busy, or races kept winning).
   * `update(slot, found)` runs with the lock held.
   */
  #upsert(key: string, nowMs: number, insert: boolean, update: (slot: number, found: boolean) => void): number {
    const k = this.#k;
    encodeClientKey(key, k);
    const k0 = k[0]!, k1 = k[1]!, k2 = k[2]!, k3 = k[3]!;
    const h = hashClientWords(k0, k1, k2, k3);
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const found = this.#find(h, k0, k1, k2, k3);
      const slot = found >= 0 ? found : insert ? this.#victim(h, nowMs) : -1;
      if (slot < 0) return -1;
      const base = this.#layout.slotI32(slot);
      if (!this.#lock(base)) return -1;
      const holds = this.#holds(base, k0, k1, k2, k3);
      if (found >= 0 && !holds) {
        // Evicted or moved between the read and the lock: look again.
        this.#unlock(base);
        continue;
      }
      if (found < 0 && !holds && this.#find(h, k0, k1, k2, k3) >= 0) {
        // A racing insert of the same client went to another slot of the window: use that one.
        // (A racer that chose the same slot is seen as `holds`.)
        this.#unlock(base);
        continue;
      }
      update(slot, holds);
      this.#unlock(base);
      return slot;
    }
    return -1;
  }

  touch(key: string, nowMs: number): ClientEntry {
    const seen = this.#seconds(nowMs);
    let entry: SharedEntry | null = null;
    const a = this.#i32;
    const slot = this.#upsert(key, nowMs, true, (s, found) => {
      const base = this.#layout.slotI32(s);
      const k = this.#k;
      if (!found) {
        this.#write(s, k[0]!, k[1]!, k[2]!, k[3]!, -1, seen, 1);
      } else {
        if (this.#expired(a[base + CLIENT_I32.LAST_SEEN]!, nowMs)) {
          // As pen: an expired client is treated as new.
          this.#write(s, k[0]!, k[1]!, k[2]!, k[3]!, -1, seen, 0);
        }
        a[base + CLIENT_I32.LAST_SEEN] = seen;
        a[base + CLIENT_I32.CONNECTS] = a[base + CLIENT_I32.CONNECTS]! + 1;
      }
      entry = this.#entry(key, s, k[0]!, k[1]!, k[2]!, k[3]!);
    });
    if (slot < 0 || entry === null) {
      const k = this.#k;
      return new SharedEntry(key, -1, nowMs, 1, 0, 0, k[0]!, k[1]!, k[2]!, k[3]!, -1);
    }
    return entry;
  }

  peek(key: string, nowMs: number): ClientEntry | undefined {
    let entry: SharedEntry | undefined;
    this.#upsert(key, nowMs, false, (s) => {
      const seen = this.#i32[this.#layout.slotI32(s) + CLIENT_I32.LAST_SEEN]!;
      const k = this.#k;
      if (!this.#expired(seen, nowMs)) entry = this.#entry(key, s, k[0]!, k[1]!, k[2]!, k[3]!);
    });
    return entry;
  }

  /** Runs `f` on the entry's slot under its lock if the slot still holds that client. */
  #onSlot(e: SharedEntry, f: (base: number, fb: number) => void): void {
    if (e.slot < 0) return;
    const base = this.#layout.slotI32(e.slot);
    if (!this.#lock(base)) return;
    if (this.#holds(base, e.k0, e.k1, e.k2, e.k3)) f(base, this.#layout.slotF64(e.slot));
    this.#unlock(base);
  }

  remember(entry: ClientEntry, server: number): void {
    entry.server = server;
    if (!(entry instanceof SharedEntry)) return;
    this.#onSlot(entry, (base) => {
      this.#i32[base + CLIENT_I32.SERVER] = server;
    });
  }

  addBytes(entry: ClientEntry, fromClient: number, toClient: number): void {
    entry.bytesFromClient += fromClient;
    entry.bytesToClient += toClient;
    if (!(entry instanceof SharedEntry)) return;
    this.#onSlot(entry, (_base, fb) => {
      this.#f64[fb + CLIENT_F64.BYTES_FROM_CLIENT]! += fromClient;
      this.#f64[fb + CLIENT_F64.BYTES_TO_CLIENT]! += toClient;
    });
  }

  restore(key: string, server: number, lastSeenMs: number): void {
    const seen = this.#seconds(lastSeenMs);
    this.#upsert(key, lastSeenMs, true, (s, found) => {
      const k = this.#k;
      if (!found) this.#write(s, k[0]!, k[1]!, k[2]!, k[3]!, server, seen, 0);
      else {
        const base = this.#layout.slotI32(s);
        this.#i32[base + CLIENT_I32.SERVER] = server;
        this.#i32[base + CLIENT_I32.LAST_SEEN] = seen;
      }
    });
  }

  forget(key: string): boolean {
    let gone = false;
    this.#upsert(key, 0, false, (s) => {
      this.#clearSlot(this.#layout.slotI32(s));
      gone = true;
    });
    return gone;
  }

  #clearSlot(base: number): void {
    const a = this.#i32;
    a[base + CLIENT_I32.LAST_SEEN] = 0;
    a[base + CLIENT_I32.K0] = a[base + CLIENT_I32.K1] = a[base + CLIENT_I32.K2] = a[base + CLIENT_I32.K3] = 0;
    a[base + CLIENT_I32.SERVER] = -1;
    a[base + CLIENT_I32.CONNECTS] = 0;
  }

  /** Walks every used slot under its lock (reports, reloads, clear). */
  #each(f: (slot: number, base: number) => void): void {
    const a = this.#i32;
    for (let s = 0; s <= this.#mask; s++) {
      const base = this.#layout.slotI32(s);
      if (a[base + CLIENT_I32.LAST_SEEN] === 0) continue;
      if (!this.#lock(base)) continue;
      if (a[base + CLIENT_I32.LAST_SEEN] !== 0) f(s, base);
      this.#unlock(base);
    }
  }

  clear(): void {
    this.#each((_s, base) => this.#clearSlot(base));
  }

  remapServers(map: (server: number) => number): void {
    if (!this.#remaps) return;
    const a = this.#i32;
    this.#each((_s, base) => {
      const s = a[base + CLIENT_I32.SERVER]!;
      a[base + CLIENT_I32.SERVER] = s >= 0 ? map(s) : -1;
    });
  }

  /** Oldest first (by last-seen second). Walks the whole table: reports only. */
  values(): IterableIterator<ClientEntry> {
    const out: SharedEntry[] = [];
    const a = this.#i32;
    this.#each((s, base) => {
      const k0 = a[base + CLIENT_I32.K0]!, k1 = a[base + CLIENT_I32.K1]!, k2 = a[base + CLIENT_I32.K2]!, k3 = a[base + CLIENT_I32.K3]!;
      out.push(this.#entry(decodeClientKey(k0, k1, k2, k3), s, k0, k1, k2, k3));
    });
    out.sort((x, y) => x.lastSeenMs - y.lastSeenMs);
    return out.values();
  }
}
