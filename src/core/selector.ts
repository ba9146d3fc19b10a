/**
 * Server selection with pen's semantics (server.c: initial_server, try_server, failover_server),
 * kept free of I/O so that every rule is unit-tested.
 *
 * 1. A client the client ACL denies goes to the abuse server, or is closed.
 * 2. A known client (tracking on, i.e. not `-r`) returns to its remembered server.
 * 3. Otherwise the balancing algorithm makes the first choice.
 * 4. A choice is admitted only if the server is available (not blacklisted, down, draining or in
 *    maintenance), below its limit (soft limit for new clients, hard limit for returning ones)
 *    and its ACL permits the client.
 * 5. When a choice is not admitted, or its connect fails, walk onwards from the next server
 *    index until back at the first choice (unless stubborn).
 * 6. When no primary admits the client: if some primary is up but at its limit and the group
 *    queues, refuse with 'all-full' (the caller queues the client); if no primary is up, try the
 *    backup servers (first available, or in turn); then the emergency server; then give up,
 *    saying 'all-full' or 'no-server'.
 *
 * A failed connect counts against the server (outlier.ts: pen's blacklist is the case of one
 * failure and a fixed time) and is retried on the next server, at most `retries` times.
 *
 * Each connection carries its progress in a `SelectionState`: a TCP session is one itself (its
 * fields, no object of their own), other connections get a plain one from newSelectionState. Every outcome is O(servers) at worst, and O(1) for a tracked client.
 */
import type { AclTable } from './acl/acl.ts';
import type { Algorithm } from './balancing/algorithm.ts';
import type { ClientEntry, ClientTracker } from './clients/client-table.ts';
import type { Clock } from './clock.ts';
import { ipv4HashValue, penHashValue, parseClientIp, type ClientIp } from './ip.ts';
import { recordFailure, recordSuccess, type OutlierSettings } from './health/outlier.ts';
import type { Server } from './servers/server.ts';

/** Why a server was chosen: goes to the access log, so that routing is never a mystery. */
export type ChoiceReason = 'tracked' | 'algorithm' | 'failover' | 'backup' | 'emergency' | 'abuse';

/**
 * Why no server could be had: 'all-full' when some server is up but every eligible one is at its
 * limit (the client may wait in the group's queue), 'no-server' when none is up.
 */
export type RefusalReason = 'acl-denied' | 'no-server' | 'all-full' | 'stubborn';

export interface SelectionState {
  /** Client table key (normalised IP text, or "unix"). */
  readonly clientKey: string;
  /** The client's source port: read only when the hash takes it (`Selector.hashesClientPort`). */
  readonly clientPort: number;
  /** Parsed client address, filled in lazily when ACLs or hashing need it. */
  clientIp: ClientIp | null;
  /** The client's entry in the tracking table, from the first begin() on. */
  clientEntry: ClientEntry | null;
  /** Index of the first regular server considered, or -1. */
  initial: number;
  /** The chosen server (holding a slot on it), or null. */
  server: Server | null;
  /** Why `server` was chosen. */
  reason: ChoiceReason;
  /**
   * Servers whose connect failed for this client, in order ("failover after which failures"):
   * the objects, so that a reload renumbering servers cannot change what is reported.
   */
  failedServers: Server[] | null;
  refusal: RefusalReason | null;
}

/**
 * A selection state on its own, for connections that have no session object to carry it (an
 * HTTP request, a UDP session); a TCP Session is a SelectionState itself (dataplane/session.ts).
 */
export function newSelectionState(clientKey: string, clientPort = 0): SelectionState {
  return { clientKey, clientPort, clientIp: null, clientEntry: null, initial: -1, server: null, reason: 'algorithm', failedServers: null, refusal: null };
}

export interface SelectorSettings {
  /** pen default: remember each client's server (off with -r). */
  tracking: boolean;
  /** Save the chosen server in the client table (off with -N). */
  saveTracking: boolean;
  /** -s: never fail over from the first choice. */
  stubborn: boolean;
  /** -b: how long a server that failed to connect stays out, in ms; 0 disables (first ejection time). */
  blacklistMs: number;
  /** ACL list that clients must pass (pen's client_acl, default 0). */
  clientAcl: number;
  /** Failures in a row before ejection (pen: 1). */
  consecutiveFailures: number;
  /** Bound of the growing ejection time (pen: the blacklist time, i.e. fixed). */
  maxEjectionMs: number;
  /** Count resets and closes before the server's first byte as failures. */
  earlyResets: boolean;
  /** Connect attempts after the first one for a client; -1 = every server once (pen). */
  retries: number;
  /** Refuse with 'all-full' (so the client is queued) rather than falling back when servers are full. */
  queueing: boolean;
  /** Backups: the first available in order, or in turn. */
  backupBalance: 'first' | 'roundrobin';
  /** pen's `-h -r`: XOR the client's source port (as pen reads it, network order) into the hash. */
  hashSourcePort: boolean;
}

/** Called when outlier detection ejects a server (for the log). */
export type EjectionListener = (server: Server, ejectionMs: number, why: string) => void;

export function defaultSelectorSettings(): SelectorSettings {
  return {
    tracking: true,
    saveTracking: true,
    stubborn: false,
    blacklistMs: 30_000,
    clientAcl: 0,
    hashSourcePort: false,
    consecutiveFailures: 1,
    maxEjectionMs: 0,
    earlyResets: false,
    retries: -1,
    queueing: false,
    backupBalance: 'first',
  };
}

/** #check outcomes (numbers, so the walk allocates nothing). */
const ADMITTED = 0;
const UNAVAILABLE = 1;
const FULL = 2;
const DENIED = 3;

export class Selector {
  servers: Server[];
  /** Used only when no primary is up. */
  backups: Server[] = [];
  emergency: Server | null = null;
  abuse: Server | null = null;
  balancer: Algorithm;
  readonly settings: SelectorSettings;
  readonly acls: AclTable;
  readonly clients: ClientTracker;
  readonly #clock: Clock;
  /** True when choices depend on the parsed client address (hash algorithms). */
  needsClientHash: boolean;
  onEjected: EjectionListener | null = null;
  #backupRotor = 0;
  /** Reused for outlier decisions (no allocation per failure). */
  readonly #outlier: OutlierSettings = { consecutiveFailures: 1, baseEjectionMs: 0, maxEjectionMs: 0 };
  /** Reused for each algorithm pick (no allocation per connection; no algorithm keeps it). */
  readonly #pick: { clientHash: number; nowMs: number } = { clientHash: 0, nowMs: 0 };

  /** Whether begin() reads SelectionState.clientPort: a session reads its port from the socket (a system call) only then. */
  get hashesClientPort(): boolean {
    return this.settings.hashSourcePort && this.needsClientHash;
  }

  constructor(opts: {
    servers: Server[];
    balancer: Algorithm;
    needsClientHash: boolean;
    settings: SelectorSettings;
    acls: AclTable;
    clients: ClientTracker;
    clock: Clock;
  }) {
    this.servers = opts.servers;
    this.balancer = opts.balancer;
    this.needsClientHash = opts.needsClientHash;
    this.settings = opts.settings;
    this.acls = opts.acls;
    this.clients = opts.clients;
    this.#clock = opts.clock;
    this.balancer.serversChanged?.(this.servers);
  }

  #ip(st: SelectionState): ClientIp {
    return (st.clientIp ??= parseClientIp(st.clientKey === 'unix' ? undefined : st.clientKey));
  }

  /** pen's -h hash of the client: read from the key in place when it is dotted-quad IPv4 (no parse). */
  #hash(st: SelectionState): number {
    if (st.clientIp === null) {
      const h = ipv4HashValue(st.clientKey);
      if (h >= 0) return h;
    }
    return penHashValue(this.#ip(st));
  }

  #permits(list: number, st: SelectionState): boolean {
    return this.acls.isEmpty(list) || this.acls.permits(list, this.#ip(st));
  }

  #returning(server: Server, st: SelectionState): boolean {
    return st.clientEntry !== null && st.clientEntry.server === server.index && server.role === 'regular';
  }

  /** try_server's checks, without the connect. */
  #check(server: Server, st: SelectionState, nowMs: number): number {
    if (server.isUnavailable(nowMs)) return UNAVAILABLE;
    // The abuse server exists for clients the ACLs deny; its own ACL would only turn them away.
    if (server.role !== 'abuse' && !this.#permits(server.acl, st)) return DENIED;
    if (server.isFull(this.#returning(server, st))) return FULL;
    return ADMITTED;
  }

  /**
   * try_server: if the server admits the client, takes a connect slot on it (Server.reserve,
   * which checks the limit and counts the slot in one step) and makes it the choice.
   */
  #take(server: Server, st: SelectionState, nowMs: number, reason: ChoiceReason): boolean {
    if (server.isUnavailable(nowMs)) return false;
    if (server.role !== 'abuse' && !this.#permits(server.acl, st)) return false;
    if (!server.reserve(this.#returning(server, st))) return false;
    st.server = server;
    st.reason = reason;
    return true;
  }

  /**
   * The first server to connect to for a new connection, or null (st.refusal says why).
   * The returned server has `pending` incremented; call connected() or connectFailed().
   */
  /** `nowMs`: the clock's time, when the caller has just read it (one read per request). */
  begin(st: SelectionState, nowMs: number = this.#clock.now()): Server | null {
    // A client served from the group's queue begins again; it was counted when it arrived.
    st.refusal = null;
    st.server = null;
    st.clientEntry ??= this.clients.touch(st.clientKey, nowMs);
    if (!this.#permits(this.settings.clientAcl, st)) {
      if (this.abuse !== null && this.#take(this.abuse, st, nowMs, 'abuse')) return this.abuse;
      st.refusal = 'acl-denied';
      return null;
    }
    let initial = -1;
    let reason: ChoiceReason = 'algorithm';
    const remembered = st.clientEntry.server;
    if (this.settings.tracking && remembered >= 0 && remembered < this.servers.length) {
      initial = remembered;
      reason = 'tracked';
    } else {
      let clientHash = this.needsClientHash ? this.#hash(st) : 0;
      if (this.hashesClientPort) clientHash = (clientHash ^ (((st.clientPort & 0xff) << 8) | (st.clientPort >>> 8))) >>> 0;
      const input = this.#pick;
      input.clientHash = clientHash;
      input.nowMs = nowMs;
      initial = this.balancer.pick(this.servers, input);
    }
    st.initial = initial;
    if (initial >= 0) {
      const s = this.servers[initial]!;
      if (this.#take(s, st, nowMs, reason)) return s;
      if (this.settings.stubborn) {
        st.refusal = 'stubborn';
        return null;
      }
    }
    return this.#walk(st, initial, nowMs);
  }

  /** failover_server: the servers after `from`, up to the first choice, then #fallback. */
  #walk(st: SelectionState, from: number, nowMs: number): Server | null {
    const n = this.servers.length;
    const stop = st.initial;
    let i = from;
    for (let step = 0; step < n; step++) {
      i = (i + 1 + n) % n;
      if (i === stop) break;
      const s = this.servers[i]!;
      if (this.#take(s, st, nowMs, 'failover')) return s;
    }
    return this.#fallback(st, nowMs, -1);
  }

  /** True when some primary would take this client but for its connection limit. */
  #anyPrimaryFull(st: SelectionState, nowMs: number): boolean {
    for (let i = 0; i < this.servers.length; i++) if (this.#check(this.servers[i]!, st, nowMs) === FULL) return true;
    return false;
  }

  /**
   * No primary admits the client: queue it (all full), or a backup (none up), or the emergency
   * server, or refuse. `afterBackup` continues the backup list after a failed backup.
   */
  #fallback(st: SelectionState, nowMs: number, afterBackup: number): Server | null {
    const full = this.#anyPrimaryFull(st, nowMs);
    if (full && this.settings.queueing) {
      st.refusal = 'all-full';
      return null;
    }
    if (!full) {
      const b = this.#backup(st, nowMs, afterBackup);
      if (b !== null) return b;
    }
    if (this.emergency !== null && this.#take(this.emergency, st, nowMs, 'emergency')) return this.emergency;
    st.refusal = full ? 'all-full' : 'no-server';
    return null;
  }

  #backup(st: SelectionState, nowMs: number, after: number): Server | null {
    const n = this.backups.length;
    if (n === 0) return null;
    if (after >= 0) {
      // After a failed backup: the ones after it, in order, once.
      for (let i = after + 1; i < n; i++) if (this.#take(this.backups[i]!, st, nowMs, 'backup')) return this.backups[i]!;
      return null;
    }
    const start = this.settings.backupBalance === 'roundrobin' ? this.#backupRotor++ % n : 0;
    for (let k = 0; k < n; k++) {
      const b = this.backups[(start + k) % n]!;
      if (this.#take(b, st, nowMs, 'backup')) return b;
    }
    return null;
  }

  /** Counts a failure against `s` (outlier detection); tells the listener when it ejects. */
  #failure(s: Server, nowMs: number, why: string): void {
    const o = this.#outlier;
    const set = this.settings;
    o.consecutiveFailures = set.consecutiveFailures;
    o.baseEjectionMs = set.blacklistMs;
    o.maxEjectionMs = set.maxEjectionMs;
    const ms = recordFailure(s, o, nowMs);
    if (ms === 0) return;
    s.ejectReason = why;
    s.ejectedAtMs = nowMs;
    s.noteChange(nowMs, 'ejected', `${why}: ejected for ${ms} ms (${s.ejections} in a row)`, false);
    this.onEjected?.(s, ms, why);
  }

  /**
   * The connect to st.server failed (refused, reset or timed out): blacklist it and return the
   * next server to try, or null.
   */
  connectFailed(st: SelectionState, timedOut: boolean): Server | null {
    const failed = st.server;
    if (failed === null) return null;
    const nowMs = this.#clock.now();
    failed.unreserve();
    if (timedOut) failed.connectTimeouts++;
    else failed.connectFailures++;
    this.#failure(failed, nowMs, timedOut ? 'connect timeout' : 'connect failed');
    const failures = (st.failedServers ??= []);
    failures.push(failed);
    st.server = null;
    if (this.settings.stubborn) {
      st.refusal = 'stubborn';
      return null;
    }
    if (this.settings.retries >= 0 && failures.length > this.settings.retries) {
      st.refusal = 'no-server';
      return null;
    }
    if (failed.role === 'backup') return this.#fallback(st, nowMs, failed.index);
    if (failed.role !== 'regular') {
      st.refusal = 'no-server';
      return null;
    }
    return this.#walk(st, failed.index, nowMs);
  }

  /** The connect succeeded: count it and remember the client's server (pen clears the blacklist). */
  connected(st: SelectionState, nowMs?: number): void {
    const s = st.server!;
    s.connectedNow();
    // Written only when set: with workers the field is shared memory every worker reads.
    if (s.blacklistedUntilMs !== 0) s.blacklistedUntilMs = 0;
    // With early resets watched, success is judged when the session ends instead.
    if (!this.settings.earlyResets) recordSuccess(s, nowMs ?? this.#clock.now());
    if (st.clientEntry !== null && s.role === 'regular' && this.settings.saveTracking) this.clients.remember(st.clientEntry, s.index);
  }

  /**
   * A failure seen on live traffic of a connected session (UDP: ICMP port unreachable, or
   * sessions left unanswered): counted against the server like a failed connect, which may
   * blacklist it for -b (outlier detection). The session's own accounting is unchanged.
   */
  passiveFailure(server: Server, why: string): void {
    server.connectFailures++;
    this.#failure(server, this.#clock.now(), why);
  }

  /** A connected session ended. */
  released(st: SelectionState): void {
    st.server?.release();
  }

  /**
   * The server side of a connected session ended (once per session, or when the session ends
   * first). `early`: the server reset or closed before sending anything, which counts as a
   * failure when the group watches early resets; anything else proves the server works.
   */
  serverEnded(st: SelectionState, early: boolean): void {
    const s = st.server;
    if (s === null || !this.settings.earlyResets) return;
    const nowMs = this.#clock.now();
    if (early) {
      s.earlyResets++;
      this.#failure(s, nowMs, 'reset before the first byte');
    } else {
      recordSuccess(s, nowMs);
    }
  }

  /** A connect in progress was abandoned (the client went away first). */
  abandoned(st: SelectionState): void {
    st.server?.unreserve();
    st.server = null;
  }

  /** Every server that the selector may choose, for walks done outside the hot path. */
  *allServers(): Generator<Server> {
    yield* this.servers;
    yield* this.backups;
    if (this.emergency !== null) yield this.emergency;
    if (this.abuse !== null) yield this.abuse;
  }

  /** The server set changed (reload, control command): algorithms with state rebuild. */
  serversChanged(): void {
    this.balancer.serversChanged?.(this.servers);
  }
}
