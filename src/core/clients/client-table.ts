/**
 * pen's client tracking table: which server each client address was last sent to.
 *
 * A fixed number of slots (pen's `-c`, default 2048); when full, the least recently seen client
 * is evicted. Entries older than the tracking time (`-T` seconds, 0 = never) are ignored and
 * recycled. pen scans its whole array on every new connection; here a Map finds an entry and a
 * list linked through the entries keeps them in recency order, so lookup, touch and eviction are
 * O(1) and a returning client changes no map (a delete and set per touch reallocated the map's
 * storage every few connections).
 */
export interface ClientEntry {
  readonly key: string;
  /** Server index the client was last sent to, or -1 before its first successful connect. */
  server: number;
  lastSeenMs: number;
  connects: number;
  bytesFromClient: number;
  bytesToClient: number;
  /** With a cluster: when this client's server was last published (app/cluster.ts). */
  sharedMs?: number;
}

/**
 * Hears of the changes other instances of a cluster should learn (app/cluster.ts): a client's
 * server remembered, a client forgotten. Called synchronously; it must only queue (O(1)).
 */
export interface ClientObserver {
  remembered(entry: ClientEntry, server: number, previous: number): void;
  forgotten(key: string): void;
}

/**
 * What the selector and the reports need of a client table: the single-process ClientTable
 * below, or the table that the workers of one Fulcrum share (shared-client-table.ts). The
 * selector gets an entry with touch(), reads `server`, and calls remember() once the connect
 * succeeded; the balancer calls addBytes() when the connection ends.
 */
export interface ClientTracker {
  /** The most clients kept (pen's -c), as configured. */
  readonly capacity: number;
  readonly size: number;
  readonly expiryMs: number;
  touch(key: string, nowMs: number): ClientEntry;
  peek(key: string, nowMs: number): ClientEntry | undefined;
  /** The client's connect to `server` succeeded: it returns there next time. */
  remember(entry: ClientEntry, server: number): void;
  /** A connection of the client ended after moving these bytes. */
  addBytes(entry: ClientEntry, fromClient: number, toClient: number): void;
  /** Servers were renumbered (reload): `map(old)` is the new index, or -1 (server removed). */
  remapServers(map: (server: number) => number): void;
  setCapacity(capacity: number): void;
  setExpiry(expiryMs: number): void;
  restore(key: string, server: number, lastSeenMs: number): void;
  forget(key: string): boolean;
  clear(): void;
  /** Oldest first. For listings and persistence, never on the connection path. */
  values(): IterableIterator<ClientEntry>;
}

/** A ClientTable entry: the client, and its neighbours in recency order. */
interface Entry extends ClientEntry {
  older: Entry | null;
  newer: Entry | null;
}

function newEntry(key: string, server: number, lastSeenMs: number): Entry {
  // Every field from the start, sharedMs too (a cluster sets it later): one hidden class.
  return { key, server, lastSeenMs, connects: 0, bytesFromClient: 0, bytesToClient: 0, sharedMs: 0, older: null, newer: null };
}

export class ClientTable implements ClientTracker {
  readonly #entries = new Map<string, Entry>();
  /** Least and most recently seen. */
  #oldest: Entry | null = null;
  #newest: Entry | null = null;
  /** Set by a cluster; null alone (one null check per remembered connect). */
  observer: ClientObserver | null = null;
  #capacity: number;
  #expiryMs: number;

  constructor(capacity: number, expiryMs: number) {
    this.#capacity = Math.max(1, capacity);
    this.#expiryMs = expiryMs;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get expiryMs(): number {
    return this.#expiryMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  setExpiry(expiryMs: number): void {
    this.#expiryMs = expiryMs;
  }

  /** Shrinking evicts the least recently seen clients (O(removed)). */
  setCapacity(capacity: number): void {
    this.#capacity = Math.max(1, capacity);
    while (this.#entries.size > this.#capacity) this.#evictOldest();
  }

  #isExpired(e: ClientEntry, nowMs: number): boolean {
    return this.#expiryMs > 0 && e.lastSeenMs + this.#expiryMs < nowMs;
  }

  /** A known, unexpired client, without touching it. */
  peek(key: string, nowMs: number): ClientEntry | undefined {
    const e = this.#entries.get(key);
    return e === undefined || this.#isExpired(e, nowMs) ? undefined : e;
  }

  /**
   * Records a new connection from `key` and returns its entry, making it the most recent.
   * An expired entry is reset as pen does (the client is treated as new).
   */
  touch(key: string, nowMs: number): ClientEntry {
    let e = this.#entries.get(key);
    if (e !== undefined) {
      if (this.#isExpired(e, nowMs)) {
        e.server = -1;
        e.connects = 0;
        e.bytesFromClient = 0;
        e.bytesToClient = 0;
      }
      if (e !== this.#newest) {
        this.#unlink(e);
        this.#append(e);
      }
    } else {
      if (this.#entries.size >= this.#capacity) this.#evictOldest();
      e = newEntry(key, -1, nowMs);
      this.#entries.set(key, e);
      this.#append(e);
    }
    e.lastSeenMs = nowMs;
    e.connects++;
    return e;
  }

  remember(entry: ClientEntry, server: number): void {
    const previous = entry.server;
    entry.server = server;
    this.observer?.remembered(entry, server, previous);
  }

  addBytes(entry: ClientEntry, fromClient: number, toClient: number): void {
    entry.bytesFromClient += fromClient;
    entry.bytesToClient += toClient;
  }

  remapServers(map: (server: number) => number): void {
    for (const e of this.#entries.values()) e.server = e.server >= 0 ? map(e.server) : -1;
  }

  /** Inserts an entry as loaded from a saved table, keeping recency order of the calls. */
  restore(key: string, server: number, lastSeenMs: number): void {
    this.#remove(key);
    if (this.#entries.size >= this.#capacity) this.#evictOldest();
    const e = newEntry(key, server, lastSeenMs);
    this.#entries.set(key, e);
    this.#append(e);
  }

  forget(key: string): boolean {
    const gone = this.#remove(key);
    if (gone) this.observer?.forgotten(key);
    return gone;
  }

  /** Drops every reference to a server (it was removed); O(clients), only on reconfiguration. */
  forgetServer(server: number): void {
    for (const e of this.#entries.values()) if (e.server === server) e.server = -1;
  }

  clear(): void {
    this.#entries.clear();
    this.#oldest = null;
    this.#newest = null;
  }

  /** Oldest first. For listings and persistence, never on the connection path. */
  *values(): IterableIterator<ClientEntry> {
    for (let e = this.#oldest; e !== null; e = e.newer) yield e;
  }

  #evictOldest(): void {
    const oldest = this.#oldest;
    if (oldest !== null) this.#remove(oldest.key);
  }

  #remove(key: string): boolean {
    const e = this.#entries.get(key);
    if (e === undefined) return false;
    this.#entries.delete(key);
    this.#unlink(e);
    return true;
  }

  /** Makes `e` the most recently seen (it is not linked). */
  #append(e: Entry): void {
    const newest = this.#newest;
    e.older = newest;
    e.newer = null;
    if (newest === null) this.#oldest = e;
    else newest.newer = e;
    this.#newest = e;
  }

  #unlink(e: Entry): void {
    const { older, newer } = e;
    if (older === null) this.#oldest = newer;
    else older.newer = newer;
    if (newer === null) this.#newest = older;
    else newer.older = older;
    e.older = null;
    e.newer = null;
  }
}
