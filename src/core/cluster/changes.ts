/**
 * What instances of a cluster tell each other through Redis (docs/cluster.md), as pure decisions:
 * the change records and their wire form, the names of keys and channel, the conflict rule (the
 * last writer by timestamp wins, ties broken by instance name so that every instance picks the
 * same one), which client changes are worth publishing, the changes kept while Redis is away,
 * and the reconnect backoff. No sockets and no clock: times are passed in.
 *
 * Servers are named by address (`host:port` as formatAddress writes it), never by index, so that
 * instances listing the same servers in another order agree.
 */
import type { AdminState } from '../servers/server.ts';

interface Stamp {
  /** When the change was made, ms since the epoch, on the instance that made it. */
  ts: number;
  /** The instance that made it. */
  from: string;
}

/** A client now goes to `server` (an address), or was forgotten (`server` is ''). */
export interface ClientChange extends Stamp {
  kind: 'client';
  group: string;
  client: string;
  server: string;
}

/** An operator's state and weight for a server. */
export interface AdminChange extends Stamp {
  kind: 'admin';
  group: string;
  server: string;
  state: AdminState;
  weight: number;
}

/** A health verdict: a server found up or down, and why. */
export interface HealthChange extends Stamp {
  kind: 'health';
  group: string;
  server: string;
  up: boolean;
  reason: string;
}

export type ClusterChange = ClientChange | AdminChange | HealthChange;

/** The identity of what a change is about: a later change with the same key replaces it. */
export function itemKey(c: ClusterChange): string {
  return c.kind === 'client' ? `c\u0000${c.group}\u0000${c.client}` : `${c.kind === 'admin' ? 'a' : 'h'}\u0000${c.group}\u0000${c.server}`;
}

/** The conflict rule: is `a` newer than `b`? Later timestamp wins; equal ones go to the greater instance name. */
export function isNewer(a: Stamp, b: Stamp | undefined): boolean {
  if (b === undefined) return true;
  return a.ts > b.ts || (a.ts === b.ts && a.from > b.from);
}

/** Key and channel names under a prefix. Group names are [A-Za-z0-9_-], safe in a SCAN pattern. */
export function clusterKeys(prefix: string) {
  return {
    channel: `${prefix}changes`,
    admin: (group: string) => `${prefix}admin:${group}`,
    health: (group: string) => `${prefix}health:${group}`,
    /** Set by each instance with an expiry, refreshed while it lives (liveness.ts). */
    alive: (instance: string) => `${prefix}alive:${instance}`,
    client: (group: string, client: string) => `${prefix}client:${group}:${client}`,
    clientPattern: (group: string) => `${prefix}client:${group}:*`,
  };
}

const ADMIN_STATES: readonly string[] = ['enabled', 'drain', 'maintenance'];

/** One change as stored in Redis and published. */
export function encodeChange(c: ClusterChange): string {
  return JSON.stringify(c);
}

/** A batch of changes as published on the channel (one message per flush). */
export function encodeBatch(changes: readonly ClusterChange[]): string {
  return JSON.stringify(changes);
}

const isStr = (v: unknown): v is string => typeof v === 'string';

/** A change read back, or null if it is not one (another program's key, another version). */
export function decodeChange(v: unknown): ClusterChange | null {
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.ts !== 'number' || !Number.isFinite(o.ts) || !isStr(o.from) || !isStr(o.group) || !isStr(o.server)) return null;
  const base = { ts: o.ts, from: o.from, group: o.group, server: o.server };
  switch (o.kind) {
    case 'client':
      return isStr(o.client) ? { kind: 'client', ...base, client: o.client } : null;
    case 'admin':
      return isStr(o.state) && ADMIN_STATES.includes(o.state) && typeof o.weight === 'number' ? { kind: 'admin', ...base, state: o.state as AdminState, weight: o.weight } : null;
    case 'health':
      return typeof o.up === 'boolean' && isStr(o.reason) ? { kind: 'health', ...base, up: o.up, reason: o.reason } : null;
    default:
      return null;
  }
}

/** A published batch read back; what cannot be read is left out. */
export function decodeBatch(text: string): ClusterChange[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  const out: ClusterChange[] = [];
  for (const item of v) {
    const c = decodeChange(item);
    if (c !== null) out.push(c);
  }
  return out;
}

/**
 * Is a client's successful connect worth publishing? When it moved to another server (or is new),
 * yes; when it stayed, only to keep its shared entry from expiring: once a quarter of the expiry
 * has passed since it was last published. With no expiry, only moves are published.
 */
export function clientWorthPublishing(moved: boolean, lastPublishedMs: number, nowMs: number, expiryMs: number): boolean {
  if (moved) return true;
  return expiryMs > 0 && nowMs - lastPublishedMs >= expiryMs / 4;
}

/** Does a shared client entry stamped `ts` replace the local one last seen at `localLastSeenMs`? */
export function clientChangeApplies(ts: number, localLastSeenMs: number | undefined): boolean {
  return localLastSeenMs === undefined || ts >= localLastSeenMs;
}

/** Is a shared client entry stamped `ts` still alive under `expiryMs` (0 = never expires)? */
export function clientAlive(ts: number, nowMs: number, expiryMs: number): boolean {
  return expiryMs <= 0 || ts + expiryMs >= nowMs;
}

/**
 * The latest version applied of each operator state and health verdict, for the conflict rule.
 * Small: one entry per server of each kind. Client entries carry their own time (last seen).
 */
export class Versions {
  readonly #seen = new Map<string, Stamp>();

  /** Records `c` if it is newer than what is known of its item; returns whether it is. */
  accept(c: ClusterChange): boolean {
    const key = itemKey(c);
    if (!isNewer(c, this.#seen.get(key))) return false;
    this.#seen.set(key, { ts: c.ts, from: c.from });
    return true;
  }

  /** Is `c` still the latest known version of its item? */
  isCurrent(c: ClusterChange): boolean {
    const v = this.#seen.get(itemKey(c));
    return v !== undefined && v.ts === c.ts && v.from === c.from;
  }
}

/**
 * Changes made while Redis is away, the latest per item, oldest first, at most `limit` (the
 * oldest go first when full): what an instance publishes when Redis is back.
 */
export class PendingChanges {
  readonly #items = new Map<string, ClusterChange>();
  readonly #limit: number;
  /** Changes dropped because the list was full. */
  dropped = 0;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  get size(): number {
    return this.#items.size;
  }

  add(c: ClusterChange): void {
    const key = itemKey(c);
    this.#items.delete(key);
    if (this.#items.size >= this.#limit) {
      const oldest = this.#items.keys().next();
      if (!oldest.done) {
        this.#items.delete(oldest.value);
        this.dropped++;
      }
    }
    this.#items.set(key, c);
  }

  /** Everything kept, oldest first; the list is empty afterwards. */
  take(): ClusterChange[] {
    const out = [...this.#items.values()];
    this.#items.clear();
    return out;
  }
}

/** Reconnect delay after `failures` failed attempts in a row: 250 ms doubling to 10 s. */
export function reconnectDelayMs(failures: number): number {
  return Math.min(10_000, 250 * 2 ** Math.min(failures, 6));
}
