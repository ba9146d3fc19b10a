/**
 * Runtime objects built from the config: a group (servers + selector + client table) and a
 * listener (an address bound to a group). Each group is the SessionOwner of its sessions, and
 * owns what concerns its servers' connections as a whole:
 *
 * - the queue for "every eligible server is full": a bounded FIFO of clients held unread, each
 *   served when a slot frees, or closed ('queue-timeout') when it has waited `queue_timeout`.
 *   Entries leave in arrival order, so one timer (for the oldest) covers them all;
 * - connection age limits: each connection gets a jittered deadline in a heap; expired ones
 *   are closed gracefully, at most `drain_budget` per second (a token bucket), so that clients of
 *   long-lived connections move to recovered or added servers without a reconnect storm;
 * - the connections of each server (a Set per server, O(1) per connect and end), so that a server
 *   marked down can have its connections closed without a scan of all connections.
 */
import type { Socket } from 'bun';
import { AclTable } from '../core/acl/acl.ts';
import { formatAddress } from '../core/address.ts';
import { balancers } from '../core/balancing/registry.ts';
import { ClientTable, type ClientTracker } from '../core/clients/client-table.ts';
import type { Clock, Random } from '../core/clock.ts';
import { TimerHeap } from '../core/health/timer-heap.ts';
import { TokenBucket } from '../core/health/token-bucket.ts';
import { Selector, type SelectorSettings } from '../core/selector.ts';
import { Server } from '../core/servers/server.ts';
import { Router } from '../core/tls.ts';
import { TLS_DEFAULTS, type GroupConfig, type ListenerConfig, type ServerConfig } from '../config/model.ts';
import { connectTcp, type AcceptHandler, type ListenHandle } from '../dataplane/bun-tcp.ts';
import { connectTls, type GatedAcceptor, type TlsServerSettings } from '../dataplane/bun-tls.ts';
import type { ConnectionFacts, GateFailure } from '../dataplane/gate.ts';
import type { Address } from '../core/address.ts';
import type { Session, SessionListener, SessionOwner, Side } from '../dataplane/session.ts';
import type { StreamSocket } from '../dataplane/socket.ts';
import { GroupTls, ListenerTls, newHandshakeStats, type HandshakeStats } from './tls.ts';

/** What groups and listeners need from the balancer that owns them. */
export interface BalancerHooks {
  readonly idleTimeoutMs: number;
  readonly tcpNoDelay: boolean;
  readonly fastClose: 'off' | 'up' | 'down' | 'both';
  /** Bounds the connections in a TLS handshake or ClientHello read at once, per listener (-x). */
  readonly maxConnections: number;
  /** Shutting down: waiting clients are not served any more. */
  readonly stopping: boolean;
  coarseNow(): number;
  /** `group`: chosen by an SNI route; `facts`: what a TLS or passthrough gate learnt. */
  accept(listener: ListenerRuntime, socket: Socket<Side>, facts?: ConnectionFacts | null, group?: GroupRuntime): void;
  /** A group by name (routes name groups). */
  groupNamed(name: string): GroupRuntime | undefined;
  sessionConnected(session: Session): void;
  sessionEnded(session: Session): void;
  /** An admitted session starts or stops waiting in a group queue (it holds no connect slot meanwhile). */
  sessionQueued(session: Session): void;
  sessionDequeued(session: Session): void;
  /** One line for the operator's log (state changes). */
  logEvent(message: string): void;
  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void;
  /** Makes the Server objects of a group (with workers: bound to shared memory); default makeServer's. */
  createServer?(index: number, c: ServerConfig, role: Server['role']): Server;
  /** A group's client table and counters in shared memory (with workers); null = the group's own. */
  groupShared?(config: GroupConfig): GroupSharedParts | null;
  /** A server went up or down (checks, agent, operator), after the group has acted on it. */
  serverStateChanged?(group: GroupRuntime, server: Server, up: boolean): void;
}

/** What a group keeps in shared memory when workers share it (app/workers/shared-state.ts). */
export interface GroupSharedParts {
  clients: ClientTracker;
  stats: GroupStats;
  /** Publishes this worker's queue length; the sum over the workers (primary). */
  setQueueLength(n: number): void;
  queueLength(): number;
}

type ServerFactory = (index: number, settings: ServerConfig, role: Server['role']) => Server;
const plainServer: ServerFactory = (index, settings, role) => new Server(index, settings, role);

export function makeServer(index: number, c: ServerConfig, role: Server['role'] = 'regular', create: ServerFactory = plainServer): Server {
  const s = create(index, { ...c }, role);
  s.checkPort = c.checkPort ?? null;
  s.checkAddress = c.checkAddress ?? null;
  if (c.state !== undefined && c.state !== 'enabled') s.admin = c.state;
  return s;
}

export function serverKey(c: { address: Address }): string {
  return formatAddress(c.address);
}

/** "group app server 1 (127.0.0.1:9001)", for log lines. */
export function serverLabel(group: string, s: Server): string {
  const which = s.role === 'regular' ? `server ${s.index}` : s.role === 'backup' ? `backup ${s.index}` : s.role;
  return `group ${group} ${which} (${formatAddress(s.address)})`;
}

export function selectorSettings(c: GroupConfig): SelectorSettings {
  return {
    tracking: c.tracking,
    saveTracking: c.saveTracking,
    stubborn: c.stubborn,
    hashSourcePort: c.hashSourcePort,
    blacklistMs: c.blacklistMs,
    clientAcl: c.clientAcl,
    consecutiveFailures: c.outlier.consecutiveFailures,
    maxEjectionMs: c.outlier.maxEjectionMs,
    earlyResets: c.outlier.earlyResets,
    retries: c.retries,
    queueing: c.queueMax > 0,
    backupBalance: c.backupBalance,
  };
}

/** Counters of the group as a whole (queue and connection lifecycle); read in O(1). */
export interface GroupStats {
  /** Clients that had to wait in the queue. */
  queued: number;
  /** Of those, served when a slot freed. */
  queueServed: number;
  queueTimeouts: number;
  /** Refused because the queue was at its bound. */
  queueFull: number;
  /** Refused because every eligible server was full and there is no queue. */
  allFull: number;
  /** Closed for their age (max_connection_age). */
  maxAgeClosed: number;
  /** Closed because their server went down (on_server_down: close). */
  closedOnDown: number;
}

export class GroupRuntime implements SessionOwner {
  config: GroupConfig;
  readonly selector: Selector;
  readonly clients: ClientTracker;
  readonly stats: GroupStats;
  readonly #hooks: BalancerHooks;
  /** With workers: the shared parts (queue length published for the primary's reports). */
  readonly #shared: GroupSharedParts | null;
  /** TLS toward the servers (re-encryption), or null for plain TCP. */
  tls: GroupTls | null = null;
  readonly #clock: Clock;
  readonly #random: Random;
  /** Queue of clients waiting for a full server: FIFO with a head index; finished ones are skipped. */
  #queue: (Session | undefined)[] = [];
  #queueHead = 0;
  #queueLength = 0;
  #queueTimer: ReturnType<typeof setTimeout> | null = null;
  /** The session being served from the head of the queue (it stays at the head if still refused). */
  #retrying: Session | null = null;
  /** Connections by server. */
  readonly #byServer = new Map<Server, Set<Session>>();
  /** Age limits: deadlines, then expired connections waiting for the drain budget. */
  readonly #ages = new TimerHeap<Session>();
  #expired: (Session | undefined)[] = [];
  #expiredHead = 0;
  readonly #budget: TokenBucket;
  #ageTimer: ReturnType<typeof setTimeout> | null = null;
  #ageTimerDue = 0;

  constructor(config: GroupConfig, acls: AclTable, hooks: BalancerHooks, clock: Clock, random: Random) {
    this.config = config;
    this.#hooks = hooks;
    this.#clock = clock;
    this.#random = random;
    this.#shared = hooks.groupShared?.(config) ?? null;
    this.clients = this.#shared?.clients ?? new ClientTable(config.clientsMax, config.trackingMs);
    this.stats = this.#shared?.stats ?? { queued: 0, queueServed: 0, queueTimeouts: 0, queueFull: 0, allFull: 0, maxAgeClosed: 0, closedOnDown: 0 };
    const kind = balancers[config.algorithm];
    this.selector = new Selector({
      servers: [],
      balancer: kind.create(random),
      needsClientHash: kind.hashesClient,
      settings: selectorSettings(config),
      acls,
      clients: this.clients,
      clock,
    });
    this.setServers(config);
    this.selector.onEjected = (s, ms, why) => {
      hooks.logEvent(`${serverLabel(this.name, s)} ejected for ${ms} ms: ${why} (${s.ejections} ejection(s) in a row)`);
    };
    this.#budget = new TokenBucket(config.drainBudget, Math.max(1, config.drainBudget), clock.now());
  }

  /** Builds the server lists from a config (at start; reload reuses servers, see Balancer). */
  setServers(config: GroupConfig): void {
    const primaries = config.servers.filter((s) => s.backup !== true);
    const backups = config.servers.filter((s) => s.backup === true);
    const make = (i: number, c: ServerConfig, role: Server['role']): Server => this.#hooks.createServer?.(i, c, role) ?? makeServer(i, c, role);
    this.selector.servers = primaries.map((s, i) => make(i, s, 'regular'));
    this.selector.backups = backups.map((s, i) => make(i, s, 'backup'));
    this.selector.emergency = config.emergency === null ? null : make(-1, config.emergency, 'emergency');
    this.selector.abuse = config.abuse === null ? null : make(-2, config.abuse, 'abuse');
    this.selector.serversChanged();
  }

  get name(): string {
    return this.config.name;
  }
  get servers(): Server[] {
    return this.selector.servers;
  }
  get connectTimeoutMs(): number {
    return this.config.connectTimeoutMs;
  }
  get idleTimeoutMs(): number {
    return this.#hooks.idleTimeoutMs;
  }
  get tcpNoDelay(): boolean {
    return this.#hooks.tcpNoDelay;
  }
  get sendProxy(): 'off' | 'v1' | 'v2' {
    return this.config.sendProxy;
  }
  get fastClose(): 'off' | 'up' | 'down' | 'both' {
    return this.#hooks.fastClose;
  }
  /** Clients waiting in this group's queue (with workers, in the primary: in all workers). */
  get queueLength(): number {
    return this.#shared === null ? this.#queueLength : this.#shared.queueLength();
  }

  #queueChanged(delta: number): void {
    this.#queueLength += delta;
    this.#shared?.setQueueLength(this.#queueLength);
  }

  connect(address: Address, side: Side): void {
    const tls = this.tls;
    if (tls === null) {
      connectTcp(address, side);
      return;
    }
    const server = side.session.selection.server;
    connectTls(address, side, tls.settingsFor(formatAddress(address), server?.hostname));
  }
  coarseNow(): number {
    return this.#hooks.coarseNow();
  }

  sessionConnected(session: Session): void {
    const server = session.selection.server!;
    let set = this.#byServer.get(server);
    if (set === undefined) this.#byServer.set(server, (set = new Set()));
    set.add(session);
    const ageMs = this.config.maxConnectionAgeMs;
    if (ageMs > 0) {
      // Shortened by up to the jitter fraction, so connections made together expire apart.
      const due = this.#clock.now() + Math.round(ageMs * (1 - this.config.maxConnectionAgeJitter * this.#random.next()));
      this.#ages.schedule(session, due);
      this.#armAges();
    }
    this.#hooks.sessionConnected(session);
  }

  sessionEnded(session: Session): void {
    const server = session.selection.server;
    if (server !== null) {
      // Empty sets of current servers are kept: deleting them would allocate a new Set per
      // connection whenever a server goes idle. A removed server's set goes with its last one.
      const set = this.#byServer.get(server);
      if (set !== undefined && set.delete(session) && set.size === 0 && !this.#isCurrent(server)) this.#byServer.delete(server);
    }
    this.#ages.remove(session);
    if (session.inGroupQueue) {
      // Closed while waiting (client left, queue timeout, shutdown): it takes its connect slot
      // back first, so that the balancer's accounting of ended sessions stays uniform.
      session.inGroupQueue = false;
      this.#queueChanged(-1);
      this.#hooks.sessionDequeued(session);
    }
    // A slot may have freed: waiting clients go first, before the balancer admits new ones.
    if (this.#queueLength > 0 && session !== this.#retrying && !this.#hooks.stopping) this.serveQueue();
    this.#hooks.sessionEnded(session);
  }
  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void {
    this.#hooks.dumpChunk(session, fromClient, chunk);
  }

  /** SessionOwner.enqueue: every eligible server is full. */
  enqueue(session: Session): boolean {
    if (session === this.#retrying) {
      // Still no slot for the head of the queue: it keeps its place.
      session.inGroupQueue = true;
      this.#queueChanged(1);
      this.#hooks.sessionQueued(session);
      return true;
    }
    const max = this.config.queueMax;
    if (max <= 0) {
      this.stats.allFull++;
      return false;
    }
    if (this.#queueLength >= max) {
      this.stats.queueFull++;
      session.close('queue-full', false);
      return true;
    }
    this.stats.queued++;
    session.inGroupQueue = true;
    session.queuedMs = this.#clock.now();
    this.#queue.push(session);
    this.#queueChanged(1);
    this.#hooks.sessionQueued(session);
    this.#armQueue();
    return true;
  }

  /** Serves waiting clients in order while servers have room (a slot freed, a server came up). */
  serveQueue(): void {
    while (this.#queueLength > 0 && this.#queueHead < this.#queue.length) {
      const s = this.#queue[this.#queueHead];
      if (s === undefined || s.finished || !s.inGroupQueue) {
        this.#queue[this.#queueHead++] = undefined;
        continue;
      }
      s.inGroupQueue = false;
      this.#queueChanged(-1);
      this.#hooks.sessionDequeued(s);
      this.#retrying = s;
      s.begin();
      this.#retrying = null;
      if (s.inGroupQueue) break; // no slot for it after all: it stays first
      this.#queue[this.#queueHead++] = undefined;
      if (!s.finished) this.stats.queueServed++;
    }
    this.#compactQueue();
    this.#armQueue();
  }

  #compactQueue(): void {
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  /** One timer, for the oldest waiting client. */
  #armQueue(): void {
    if (this.#queueTimer !== null) {
      clearTimeout(this.#queueTimer);
      this.#queueTimer = null;
    }
    while (this.#queueHead < this.#queue.length) {
      const s = this.#queue[this.#queueHead];
      if (s !== undefined && !s.finished && s.inGroupQueue) break;
      this.#queue[this.#queueHead++] = undefined;
    }
    const head = this.#queue[this.#queueHead];
    if (head === undefined) return;
    const wait = Math.max(0, head.queuedMs + this.config.queueTimeoutMs - this.#clock.now());
    this.#queueTimer = setTimeout(() => this.#expireQueue(), wait);
  }

  #expireQueue(): void {
    this.#queueTimer = null;
    const now = this.#clock.now();
    while (this.#queueHead < this.#queue.length) {
      const s = this.#queue[this.#queueHead];
      if (s !== undefined && !s.finished && s.inGroupQueue) {
        if (s.queuedMs + this.config.queueTimeoutMs > now) break;
        this.stats.queueTimeouts++;
        s.close('queue-timeout', false); // leaves the queue through sessionEnded
      }
      this.#queue[this.#queueHead++] = undefined;
    }
    this.#compactQueue();
    this.#armQueue();
  }

  // -------------------------------------------------------------------------------------------
  // Connection age and the drain budget

  #armAges(): void {
    const now = this.#clock.now();
    let due = Infinity;
    if (this.#expiredHead < this.#expired.length) due = now + Math.max(1, this.#budget.waitMs(now));
    const next = this.#ages.peek();
    if (next !== undefined) due = Math.min(due, next.dueMs);
    if (due === Infinity) return;
    if (this.#ageTimer !== null) {
      if (this.#ageTimerDue <= due) return;
      clearTimeout(this.#ageTimer);
    }
    this.#ageTimerDue = due;
    this.#ageTimer = setTimeout(() => this.#ageTick(), Math.max(0, due - now));
  }

  #ageTick(): void {
    this.#ageTimer = null;
    const now = this.#clock.now();
    for (let s = this.#ages.popDue(now); s !== undefined; s = this.#ages.popDue(now)) this.#expired.push(s);
    this.#budget.ratePerSec = this.config.drainBudget;
    while (this.#expiredHead < this.#expired.length) {
      const s = this.#expired[this.#expiredHead]!;
      if (s.finished) {
        this.#expired[this.#expiredHead++] = undefined;
        continue;
      }
      if (!this.#budget.take(now)) break;
      this.#expired[this.#expiredHead++] = undefined;
      this.stats.maxAgeClosed++;
      s.close('max-age', false);
    }
    if (this.#expiredHead === this.#expired.length) {
      this.#expired = [];
      this.#expiredHead = 0;
    }
    this.#armAges();
  }

  // -------------------------------------------------------------------------------------------
  // Server state changes (health checker, operator)

  /** A server changed state: serve waiting clients if it came up; close its connections if asked. */
  #isCurrent(server: Server): boolean {
    const sel = this.selector;
    switch (server.role) {
      case 'regular':
        return sel.servers[server.index] === server;
      case 'backup':
        return sel.backups[server.index] === server;
      case 'emergency':
        return sel.emergency === server;
      case 'abuse':
        return sel.abuse === server;
    }
  }

  serverChanged(server: Server, up: boolean): void {
    this.#serverChanged(server, up);
    this.#hooks.serverStateChanged?.(this, server, up);
  }

  #serverChanged(server: Server, up: boolean): void {
    if (up) {
      this.serveQueue();
      return;
    }
    if (this.config.onServerDown === 'close') {
      const set = this.#byServer.get(server);
      if (set !== undefined && set.size > 0) {
        const n = set.size;
        for (const s of [...set]) {
          this.stats.closedOnDown++;
          s.close('server-down', false);
        }
        this.#hooks.logEvent(`${serverLabel(this.name, server)}: closed ${n} connection(s) of the server marked down`);
      }
    }
  }

  /** Open connections of a server (for reports and tests). */
  connectionsOf(server: Server): number {
    return this.#byServer.get(server)?.size ?? 0;
  }

  stop(): void {
    if (this.#queueTimer !== null) clearTimeout(this.#queueTimer);
    if (this.#ageTimer !== null) clearTimeout(this.#ageTimer);
    this.#queueTimer = null;
    this.#ageTimer = null;
  }

  /** Applies a changed algorithm or selection flags (pen commands, reload). */
  setAlgorithm(name: GroupConfig['algorithm'], random: Random): void {
    this.config.algorithm = name;
    const kind = balancers[name];
    this.selector.balancer = kind.create(random);
    this.selector.needsClientHash = kind.hashesClient;
    this.selector.serversChanged();
  }

  syncSettings(): void {
    Object.assign(this.selector.settings, selectorSettings(this.config));
    this.clients.setCapacity(this.config.clientsMax);
    this.clients.setExpiry(this.config.trackingMs);
    this.#budget.ratePerSec = this.config.drainBudget;
    this.#budget.burst = Math.max(1, this.config.drainBudget);
    if (this.#queueLength > 0) this.serveQueue();
  }
}

export type ListenerMode = 'plain' | 'terminate' | 'passthrough';

export function listenerMode(c: ListenerConfig): ListenerMode {
  if (c.tls !== undefined && c.tls !== null) return 'terminate';
  return c.sniRoutes !== undefined && c.sniRoutes.length > 0 ? 'passthrough' : 'plain';
}

export class ListenerRuntime implements AcceptHandler, GatedAcceptor, SessionListener {
  config: ListenerConfig;
  group: GroupRuntime;
  handle: ListenHandle | null = null;
  /** Counters, O(1) per connection, read by reports and metrics. */
  accepted = 0;
  /** TLS termination state (certificates, contexts), or null. */
  tls: ListenerTls | null = null;
  /** Routes by SNI / ALPN / client identity to group names, or null without routes. */
  router: Router<string> | null = null;
  /** Handshakes (TLS) or ClientHello reads (passthrough): successes and failures by reason. */
  readonly handshakes: HandshakeStats = newHandshakeStats();
  /** Accepted connections not yet finished (waiting, connecting or established). */
  active = 0;
  /** Bytes of finished connections, counted when each ends. */
  bytesFromClients = 0;
  bytesToClients = 0;
  /** TLS handshakes that failed (stays 0 on plain TCP listeners). */
  handshakeFailures = 0;
  readonly #hooks: BalancerHooks;

  constructor(config: ListenerConfig, group: GroupRuntime, hooks: BalancerHooks) {
    this.config = config;
    this.group = group;
    this.#hooks = hooks;
    this.configure(config);
  }

  get mode(): ListenerMode {
    return listenerMode(this.config);
  }

  /** Applies a (new) config: TLS state is created on first use and kept across reloads. */
  configure(config: ListenerConfig): void {
    this.config = config;
    const routes = config.sniRoutes ?? [];
    this.router = routes.length === 0 ? null : new Router(routes.map((r) => ({ serverNames: r.serverNames, alpn: r.alpn, clientIdentities: r.clientIdentities, target: r.group })));
    if (config.tls === undefined || config.tls === null) this.tls = null;
    else if (this.tls === null) this.tls = new ListenerTls(config.tls);
    else this.tls.config = config.tls;
  }

  get name(): string {
    return this.config.name;
  }

  accept(socket: Socket<Side>): void {
    this.accepted++;
    this.#hooks.accept(this, socket);
  }

  // GatedAcceptor: TLS and passthrough listeners

  get prereadTimeoutMs(): number {
    return this.config.prereadTimeoutMs ?? TLS_DEFAULTS.prereadTimeoutMs;
  }

  tlsSettings(): TlsServerSettings | null {
    return this.tls?.settings ?? null;
  }

  gateOpened(): boolean {
    this.accepted++;
    const h = this.handshakes;
    if (h.inProgress >= this.#hooks.maxConnections) {
      h.failures['handshake-limit'] = (h.failures['handshake-limit'] ?? 0) + 1;
      this.handshakeFailures++;
      return false;
    }
    h.inProgress++;
    return true;
  }

  gateFailed(reason: GateFailure, detail: string): void {
    const h = this.handshakes;
    h.inProgress--;
    this.handshakeFailures++;
    h.failures[reason] = (h.failures[reason] ?? 0) + 1;
    h.last = `${reason}: ${detail}`;
  }

  gatePassed(socket: StreamSocket<unknown>, facts: ConnectionFacts): void {
    const h = this.handshakes;
    h.inProgress--;
    h.ok++;
    if (facts.resumed) h.resumed++;
    let group = this.group;
    if (this.router !== null) {
      const name = this.router.choose(facts);
      if (name !== null) group = this.#hooks.groupNamed(name) ?? group;
    }
    this.#hooks.accept(this, socket as unknown as Socket<Side>, facts, group);
  }
}
