/**
 * Where each shared number lives in the memory that the workers of one Fulcrum share (see
 * docs/workers.md). Pure arithmetic: this module names offsets and sizes; the mapping itself is
 * made in src/dataplane/shared-memory.ts and the numbers are read and written by
 * servers/shared-server.ts, clients/shared-client-table.ts and app/workers/.
 *
 * Every block is viewed twice, as an Int32Array (gauges updated with Atomics, locks, flags) and
 * as a Float64Array (counters that only one process writes, times). Offsets below are indexes
 * into those views: `i32` fields count 4-byte words, `f64` fields 8-byte words, both from the
 * start of the block. Records are multiples of 8 bytes so that both views line up.
 *
 * Three kinds of block, one file each (files are never resized, so growth adds files):
 *
 * - the main block: a header, the global gauges for -x and pending_max, and one record per
 *   worker with its totals and its share of the gauges;
 * - server blocks of SERVERS_PER_BLOCK server records: the state the primary publishes
 *   (operator state, health, agent, slow start, ejection) and the connection gauges, plus one
 *   sub-record per worker with that worker's counters;
 * - one group block per group: per-worker queue counters, then the client tracking table.
 *
 * A gauge (connections, pending connects, active sessions) is kept twice: a total that every
 * worker adds to atomically and reads for its limits in O(1), and each worker's own share, so
 * that when a worker dies the primary subtracts its share from the total (docs/workers.md:
 * "a worker that dies").
 */
import { FulcrumError } from '../errors.ts';

export const LAYOUT_MAGIC = 0x4675_6c63; // "Fulc"
export const LAYOUT_VERSION = 1;

/** Servers per server block (one file). */
export const SERVERS_PER_BLOCK = 128;

// ---------------------------------------------------------------------------------------------
// Main block

/** Header words (i32). */
export const MAIN = {
  MAGIC: 0,
  VERSION: 1,
  WORKERS: 2,
  REASONS: 3,
  /** Sessions admitted, all workers (for -x). */
  ACTIVE: 4,
  /** Connects in progress, all workers (for pending_max). */
  PENDING: 5,
  /** Restarts of workers since start. */
  RESTARTS: 6,
} as const;
const MAIN_HEADER_BYTES = 64;

/** A worker's share of the gauges and its identity (i32, from the worker record's start). */
export const WORKER_I32 = {
  PID: 0,
  ACTIVE: 1,
  PENDING: 2,
  /** Clients waiting under -x in this worker (for reports). */
  WAITING: 3,
  /** Times this worker slot was started (1 = never replaced). */
  STARTS: 4,
} as const;
const WORKER_I32_BYTES = 32;

/** A worker's totals (f64, after its i32 words), then one counter per termination reason. */
export const WORKER_TOTALS = ['accepted', 'connected', 'finished', 'queued', 'bytesFromClients', 'bytesToClients'] as const;
export type WorkerTotalName = (typeof WORKER_TOTALS)[number];

export interface MainLayout {
  readonly workers: number;
  readonly reasons: number;
  readonly bytes: number;
  /** i32 index of a worker's word. */
  workerI32(worker: number, field: number): number;
  /** f64 index of a worker's total (index into WORKER_TOTALS). */
  workerTotal(worker: number, total: number): number;
  /** f64 index of a worker's count of connections that ended for reason number `reason`. */
  workerEnd(worker: number, reason: number): number;
}

export function mainLayout(workers: number, reasons: number): MainLayout {
  checkCount('workers', workers);
  const recordBytes = align8(WORKER_I32_BYTES + 8 * (WORKER_TOTALS.length + reasons));
  const base = (w: number): number => MAIN_HEADER_BYTES + w * recordBytes;
  return {
    workers,
    reasons,
    bytes: MAIN_HEADER_BYTES + workers * recordBytes,
    workerI32: (w, field) => (base(w) >> 2) + field,
    workerTotal: (w, total) => ((base(w) + WORKER_I32_BYTES) >> 3) + total,
    workerEnd: (w, reason) => ((base(w) + WORKER_I32_BYTES) >> 3) + WORKER_TOTALS.length + reason,
  };
}

// ---------------------------------------------------------------------------------------------
// Server blocks

/** Shared state of a server (f64 words from the record's start). */
export const SERVER_F64 = {
  BLACKLISTED_UNTIL: 0,
  LAST_EJECTION: 1,
  RAMP_START: 2,
  RAMP_END: 3,
  AGENT_SCALE: 4,
} as const;
const SERVER_F64_COUNT = 5;

/** Shared state and gauges of a server (i32 words, after the f64 words). */
export const SERVER_I32 = {
  /** Operator state, health and agent state packed (see packState). */
  STATE: 0,
  CONNECTIONS: 1,
  PENDING: 2,
  CONSECUTIVE_FAILURES: 3,
  EJECTIONS: 4,
  /** Non-zero once the primary has initialised the record (agent scale 1). */
  READY: 5,
} as const;
const SERVER_I32_BYTES = 24;

/** A worker's counters for one server (f64, from the sub-record's start). */
export const SERVER_WORKER_COUNTERS = ['totalConnections', 'bytesToServer', 'bytesFromServer', 'connectFailures', 'connectTimeouts', 'earlyResets'] as const;
export type ServerCounterName = (typeof SERVER_WORKER_COUNTERS)[number];
/** A worker's share of a server's gauges (i32, after its counters). */
export const SERVER_WORKER_I32 = { CONNECTIONS: 0, PENDING: 1 } as const;
const SERVER_WORKER_BYTES = 8 * SERVER_WORKER_COUNTERS.length + 8;

export interface ServerLayout {
  readonly workers: number;
  readonly recordBytes: number;
  readonly blockBytes: number;
  /** Block number and byte offset in it of a server slot. */
  locate(slot: number): { block: number; byteOffset: number };
  /** Relative to a record's byte offset: */
  f64(byteOffset: number, field: number): number;
  i32(byteOffset: number, field: number): number;
  workerCounter(byteOffset: number, worker: number, counter: number): number;
  workerI32(byteOffset: number, worker: number, field: number): number;
}

export function serverLayout(workers: number): ServerLayout {
  checkCount('workers', workers);
  const head = align8(8 * SERVER_F64_COUNT + SERVER_I32_BYTES);
  const recordBytes = head + workers * SERVER_WORKER_BYTES;
  return {
    workers,
    recordBytes,
    blockBytes: recordBytes * SERVERS_PER_BLOCK,
    locate: (slot) => {
      if (!Number.isInteger(slot) || slot < 0) throw new FulcrumError('E_SHARED_LAYOUT', `server slot ${slot}`);
      return { block: Math.floor(slot / SERVERS_PER_BLOCK), byteOffset: (slot % SERVERS_PER_BLOCK) * recordBytes };
    },
    f64: (off, field) => (off >> 3) + field,
    i32: (off, field) => ((off + 8 * SERVER_F64_COUNT) >> 2) + field,
    workerCounter: (off, w, c) => ((off + head + w * SERVER_WORKER_BYTES) >> 3) + c,
    workerI32: (off, w, field) => ((off + head + w * SERVER_WORKER_BYTES + 8 * SERVER_WORKER_COUNTERS.length) >> 2) + field,
  };
}

/** Operator state, health and agent state in one word; 0 = in rotation. */
export const ADMIN_STATES = ['enabled', 'drain', 'maintenance'] as const;
export const AGENT_STATES = ['up', 'drain', 'maint', 'down'] as const;

export function packState(admin: number, down: boolean, agent: number): number {
  return (admin & 3) | (down ? 4 : 0) | ((agent & 7) << 3);
}
export function stateAdmin(word: number): number {
  return word & 3;
}
export function stateDown(word: number): boolean {
  return (word & 4) !== 0;
}
export function stateAgent(word: number): number {
  return (word >> 3) & 7;
}

// ---------------------------------------------------------------------------------------------
// Group blocks

/** Group queue counters per worker (f64). */
export const GROUP_COUNTERS = ['queued', 'queueServed', 'queueTimeouts', 'queueFull', 'allFull', 'maxAgeClosed', 'closedOnDown', 'queueLength'] as const;
export type GroupCounterName = (typeof GROUP_COUNTERS)[number];

/** Client table slot words (i32): the lock, the 16-byte address, then the entry. */
export const CLIENT_I32 = {
  /** 0 = free; otherwise the pid of the process writing the slot. */
  LOCK: 0,
  K0: 1,
  K1: 2,
  K2: 3,
  K3: 4,
  SERVER: 5,
  /** Seconds since the table's epoch, plus one; 0 = empty slot. */
  LAST_SEEN: 6,
  CONNECTS: 7,
} as const;
/** Client table slot words (f64, after the i32 words). */
export const CLIENT_F64 = { BYTES_FROM_CLIENT: 0, BYTES_TO_CLIENT: 1 } as const;
const CLIENT_SLOT_BYTES = 8 * 4 + 2 * 8;
const GROUP_HEADER_BYTES = 16;

export interface GroupLayout {
  readonly workers: number;
  /** Slots of the client table (a power of two). */
  readonly slots: number;
  readonly bytes: number;
  /** i32 word of the header holding the slot count (checked by workers that map the block). */
  readonly slotsWord: number;
  counter(worker: number, counter: number): number;
  /** i32 index of a slot's first word, f64 index of its first f64 word. */
  slotI32(slot: number): number;
  slotF64(slot: number): number;
}

/**
 * `clientsMax` clients (pen's -c) get at least twice as many slots, rounded up to a power of two,
 * so that the bounded probe of an insert rarely finds its window full before the table is.
 */
export function clientSlots(clientsMax: number): number {
  const want = Math.max(16, 2 * Math.max(1, clientsMax));
  let n = 16;
  while (n < want) n *= 2;
  return n;
}

export function groupLayout(workers: number, slots: number): GroupLayout {
  checkCount('workers', workers);
  if (slots < 1 || (slots & (slots - 1)) !== 0) throw new FulcrumError('E_SHARED_LAYOUT', `client table slots must be a power of two, not ${slots}`);
  const countersBytes = 8 * GROUP_COUNTERS.length;
  const tableStart = GROUP_HEADER_BYTES + workers * countersBytes;
  return {
    workers,
    slots,
    bytes: tableStart + slots * CLIENT_SLOT_BYTES,
    slotsWord: 0,
    counter: (w, c) => ((GROUP_HEADER_BYTES + w * countersBytes) >> 3) + c,
    slotI32: (slot) => (tableStart + slot * CLIENT_SLOT_BYTES) >> 2,
    slotF64: (slot) => (tableStart + slot * CLIENT_SLOT_BYTES + 32) >> 3,
  };
}

// ---------------------------------------------------------------------------------------------
// Listener blocks

/**
 * A listener's counters per worker (f64), then its TLS handshake failures by reason; `active` and
 * `handshakesInProgress` are gauges (zeroed when their worker dies).
 */
export const LISTENER_COUNTERS = ['accepted', 'active', 'bytesFromClients', 'bytesToClients', 'handshakeFailures', 'handshakesOk', 'handshakesResumed', 'handshakesInProgress'] as const;
export type ListenerCounterName = (typeof LISTENER_COUNTERS)[number];

export interface ListenerLayout {
  readonly workers: number;
  readonly bytes: number;
  counter(worker: number, counter: number): number;
  /** f64 index of a worker's count of handshake failures for reason number `reason`. */
  failure(worker: number, reason: number): number;
}

export function listenerLayout(workers: number, failureReasons: number): ListenerLayout {
  checkCount('workers', workers);
  const perWorker = LISTENER_COUNTERS.length + failureReasons;
  return {
    workers,
    bytes: 8 * perWorker * workers,
    counter: (w, c) => w * perWorker + c,
    failure: (w, r) => w * perWorker + LISTENER_COUNTERS.length + r,
  };
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

function checkCount(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new FulcrumError('E_SHARED_LAYOUT', `${what} must be 1-1024, not ${n}`);
}
