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
 *    index until back at the first choice (unless stubborn), then try the emergency server,
 *    then give up. A failed connect blacklists the server for the blacklist time.
 *
 * Each connection carries its progress in a `SelectionState` (fields on the session object, no
 * extra allocation). Every outcome is O(servers) at worst, and O(1) for a tracked client.
 */
import type { AclTable } from './acl/acl.ts';
import type { Balancer } from './balancing/balancer.ts';
import type { ClientEntry, ClientTable } from './clients/client-table.ts';
import type { Clock } from './clock.ts';
import { penHashValue, parseClientIp, type ClientIp } from './ip.ts';
import type { Server } from './servers/server.ts';

/** Why a server was chosen: goes to the access log, so that routing is never a mystery. */
export type ChoiceReason = 'tracked' | 'algorithm' | 'failover' | 'emergency' | 'abuse';

/** Why no server could be had. */
export type RefusalReason = 'acl-denied' | 'no-server' | 'stubborn';

export interface SelectionState {
  /** Client table key (normalised IP text, or "unix"). */
  clientKey: string;
  clientPort: number;
  /** Parsed client address, filled in lazily when ACLs or hashing need it. */
  clientIp: ClientIp | null;
  client: ClientEntry | null;
  /** Index of the first regular server considered, or -1. */
  initial: number;
  server: Server | null;
  reason: ChoiceReason;
  /** Servers whose connect failed for this client, in order ("failover after which failures"). */
  failedServers: number[] | null;
  refusal: RefusalReason | null;
}

export function newSelectionState(clientKey: string, clientPort = 0): SelectionState {
  return { clientKey, clientPort, clientIp: null, client: null, initial: -1, server: null, reason: 'algorithm', failedServers: null, refusal: null };
}

export interface SelectorSettings {
  /** pen default: remember each client's server (off with -r). */
  tracking: boolean;
  /** Save the chosen server in the client table (off with -N). */
  saveTracking: boolean;
  /** -s: never fail over from the first choice. */
  stubborn: boolean;
  /** -b: how long a server that failed to connect stays out, in ms; 0 disables. */
  blacklistMs: number;
  /** ACL list that clients must pass (pen's client_acl, default 0). */
  clientAcl: number;
  /** pen's `-h -r`: XOR the client's source port (as pen reads it, network order) into the hash. */
  hashSourcePort: boolean;
}

export class Selector {
  servers: Server[];
  emergency: Server | null = null;
  abuse: Server | null = null;
  balancer: Balancer;
  readonly settings: SelectorSettings;
  readonly acls: AclTable;
  readonly clients: ClientTable;
  readonly #clock: Clock;
  /** True when choices depend on the parsed client address (hash algorithms). */
  needsClientHash: boolean;

  constructor(opts: {
    servers: Server[];
    balancer: Balancer;
    needsClientHash: boolean;
    settings: SelectorSettings;
    acls: AclTable;
    clients: ClientTable;
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

  #permits(list: number, st: SelectionState): boolean {
    return this.acls.isEmpty(list) || this.acls.permits(list, this.#ip(st));
  }

  /** try_server's checks, without the connect. */
  #admits(server: Server, st: SelectionState, nowMs: number): boolean {
    if (server.isUnavailable(nowMs)) return false;
    if (server.isFull(st.client !== null && st.client.server === server.index && server.role === 'regular')) return false;
    // The abuse server exists for clients the ACLs deny; its own ACL would only turn them away.
    return server.role === 'abuse' || this.#permits(server.acl, st);
  }

  #take(server: Server, st: SelectionState, reason: ChoiceReason): Server {
    st.server = server;
    st.reason = reason;
    server.pending++;
    return server;
  }

  /**
   * The first server to connect to for a new connection, or null (st.refusal says why).
   * The returned server has `pending` incremented; call connected() or connectFailed().
   */
  begin(st: SelectionState): Server | null {
    const nowMs = this.#clock.now();
    st.client = this.clients.touch(st.clientKey, nowMs);
    if (!this.#permits(this.settings.clientAcl, st)) {
      if (this.abuse !== null && this.#admits(this.abuse, st, nowMs)) return this.#take(this.abuse, st, 'abuse');
      st.refusal = 'acl-denied';
      return null;
    }
    let initial = -1;
    let reason: ChoiceReason = 'algorithm';
    const remembered = st.client.server;
    if (this.settings.tracking && remembered >= 0 && remembered < this.servers.length) {
      initial = remembered;
      reason = 'tracked';
    } else {
      let clientHash = this.needsClientHash ? penHashValue(this.#ip(st)) : 0;
      if (this.settings.hashSourcePort) clientHash = (clientHash ^ (((st.clientPort & 0xff) << 8) | (st.clientPort >>> 8))) >>> 0;
      initial = this.balancer.pick(this.servers, { clientHash, nowMs });
    }
    st.initial = initial;
    if (initial >= 0) {
      const s = this.servers[initial]!;
      if (this.#admits(s, st, nowMs)) return this.#take(s, st, reason);
      if (this.settings.stubborn) {
        st.refusal = 'stubborn';
        return null;
      }
    }
    return this.#walk(st, initial, nowMs);
  }

  /** failover_server: the servers after `from`, up to the first choice, then the emergency server. */
  #walk(st: SelectionState, from: number, nowMs: number): Server | null {
    const n = this.servers.length;
    const stop = st.initial;
    let i = from;
    for (let step = 0; step < n; step++) {
      i = (i + 1 + n) % n;
      if (i === stop) break;
      const s = this.servers[i]!;
      if (this.#admits(s, st, nowMs)) return this.#take(s, st, 'failover');
    }
    if (this.emergency !== null && this.#admits(this.emergency, st, nowMs)) return this.#take(this.emergency, st, 'emergency');
    st.refusal = 'no-server';
    return null;
  }

  /**
   * The connect to st.server failed (refused, reset or timed out): blacklist it and return the
   * next server to try, or null.
   */
  connectFailed(st: SelectionState, timedOut: boolean): Server | null {
    const failed = st.server;
    if (failed === null) return null;
    const nowMs = this.#clock.now();
    failed.pending--;
    if (timedOut) failed.connectTimeouts++;
    else failed.connectFailures++;
    if (this.settings.blacklistMs > 0) failed.blacklistedUntilMs = nowMs + this.settings.blacklistMs;
    (st.failedServers ??= []).push(failed.index);
    st.server = null;
    if (this.settings.stubborn) {
      st.refusal = 'stubborn';
      return null;
    }
    if (failed.role !== 'regular') {
      st.refusal = 'no-server';
      return null;
    }
    return this.#walk(st, failed.index, nowMs);
  }

  /** The connect succeeded: count it and remember the client's server (pen clears the blacklist). */
  connected(st: SelectionState): void {
    const s = st.server!;
    s.pending--;
    s.connections++;
    s.totalConnections++;
    s.blacklistedUntilMs = 0;
    if (st.client !== null && s.role === 'regular' && this.settings.saveTracking) st.client.server = s.index;
  }

  /** A connected session ended. */
  released(st: SelectionState): void {
    const s = st.server;
    if (s !== null && s.connections > 0) s.connections--;
  }

  /** A connect in progress was abandoned (the client went away first). */
  abandoned(st: SelectionState): void {
    const s = st.server;
    if (s !== null && s.pending > 0) s.pending--;
    st.server = null;
  }

  /** The server set changed (reload, control command): algorithms with state rebuild. */
  serversChanged(): void {
    this.balancer.serversChanged?.(this.servers);
  }
}
