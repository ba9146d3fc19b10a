/**
 * Runtime objects built from the config: a group (servers + selector + client table) and a
 * listener (an address bound to a group). Each group is the SessionOwner of its sessions, and
 * owns what concerns its servers' connections as a whole: the queue for "every eligible server
 * is full" (group-queue.ts), connection age limits (connection-ages.ts), and the connections of
 * each server (server-connections.ts, O(1) per connect and end), so that a server marked down
 * can have its connections closed without a scan of all connections.
 */
import type { Socket } from 'bun';
import { AclTable } from '../core/acl/acl.ts';
import { algorithms } from '../core/balancing/registry.ts';
import { ClientTable, type ClientTracker } from '../core/clients/client-table.ts';
import type { Clock, Random } from '../core/clock.ts';
import { DeadlineList } from '../core/deadline-list.ts';
import { Selector } from '../core/selector.ts';
import type { Server } from '../core/servers/server.ts';
import { Router } from '../core/tls-rules.ts';
import { TLS_DEFAULTS } from '../config/tls-settings.ts';
import { PROXY_TIMEOUT_DEFAULT_MS, type GlobalConfig, type GroupConfig, type ListenerConfig, type ServerConfig } from '../config/model.ts';
import { connectTcp, type AcceptHandler, type ListenHandle } from '../dataplane/bun-tcp.ts';
import type { GatedAcceptor, TlsServerSettings } from '../dataplane/bun-tls.ts';
import type { ConnectionFacts, GateFailure } from '../dataplane/gate.ts';
import type { ProxyAcceptor, ProxyFailure } from '../dataplane/proxy-in.ts';
import type { ProxiedAddresses } from '../protocol/proxy-protocol.ts';
import type { Address } from '../core/address.ts';
import type { Session, SessionListener, SessionOwner, Side } from '../dataplane/session.ts';
import type { Gate } from '../dataplane/gate.ts';
import type { StreamSocket } from '../dataplane/socket.ts';
import { ConnectionAges } from './connection-ages.ts';
import { makeServer, selectorSettings, serverLabel } from './group-servers.ts';
import { ServerConnections } from './server-connections.ts';
import type { GroupSharedParts, GroupStats } from './group-counters.ts';
import { GroupQueue } from './group-queue.ts';
import { HandshakeStage, newHandshakeStats, type HandshakeStats } from './handshake-stage.ts';
import { listenerMode, type ListenerMode } from './listener-mode.ts';
import { ProxyInStage, type ProxyStats } from './proxy-in-stage.ts';
import type { GroupTls, ListenerTls } from './tls-material.ts';
import { tlsCode } from './on-demand.ts';
import type { HttpRequestRecord, SessionRecord } from '../control/observed.ts';
import type { UdpRelay } from './udp/udp-relay.ts';
import type { HttpProxy } from './http/http-proxy.ts';

/** What groups and listeners need from the process that owns them (composed in balancer.ts). */
export interface RuntimeHooks {
  /** The live global settings: pen commands change them in place, a reload replaces them. */
  readonly global: GlobalConfig;
  /** The exact clock (timestamps, deadlines). */
  readonly clock: Clock;
  /** For activity stamps per chunk: a clock refreshed by a timer, cheap to read. */
  readonly coarseClock: Clock;
  /** Shutting down: waiting clients are not served any more. */
  readonly stopping: boolean;
  /** `group`: chosen by an SNI route; `facts`: what a TLS or passthrough gate learnt. */
  accept(listener: ListenerRuntime, socket: Socket<Side>, facts?: ConnectionFacts | null, group?: GroupRuntime, origin?: ProxiedAddresses | null, initial?: Uint8Array | null): void;
  /** A group by name (routes name groups). */
  groupNamed(name: string): GroupRuntime | undefined;
  sessionConnected(session: Session): void;
  sessionEnded(session: Session): void;
  /** A connect failed for want of our own file descriptors (not the server's fault). */
  resourceFailure?(session: Session): void;
  /** A gate takes (1) or gives back (-1) a descriptor; false: none left in the budget. */
  gateDescriptor?(delta: 1 | -1): boolean;
  /** A gate opens (1) or fails (-1) for a client address; false: over the per-source limit. */
  gateSource?(remoteAddress: string, delta: 1 | -1): boolean;
  /** A new connection from a client address, before its gate; false: over the per-source rate. */
  gateRate?(remoteAddress: string): boolean;
  /** An admitted session starts or stops waiting in a group queue (it holds no connect slot meanwhile). */
  sessionQueued(session: Session): void;
  sessionDequeued(session: Session): void;
  /** One line for the operator's log (state changes). */
  logEvent(message: string): void;
  /** A UDP session ended (app/udp/): its record for the access log. */
  udpSessionEnded?(record: SessionRecord): void;
  /** An HTTP mode client connection of `listener` ended (its source's slot and descriptors go back). */
  httpClientEnded?(listener: ListenerRuntime, key: string, bytesRead: number, bytesWritten: number): void;
  /** Who hears each finished HTTP mode request (the access log); empty when nobody does. */
  readonly onHttpRequestEnd?: readonly ((r: HttpRequestRecord) => void)[];
  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void;
  /** Makes the Server objects of a group (with workers: bound to shared memory); default makeServer's. */
  createServer?(index: number, c: ServerConfig, role: Server['role']): Server;
  /** A group's client table and counters in shared memory (with workers); null = the group's own. */
  groupShared?(config: GroupConfig): GroupSharedParts | null;
  /** A server went up or down (checks, agent, operator), after the group has acted on it. */
  serverStateChanged?(group: GroupRuntime, server: Server, up: boolean): void;
}

export class GroupRuntime implements SessionOwner {
  config: GroupConfig;
  readonly selector: Selector;
  readonly clients: ClientTracker;
  readonly stats: GroupStats;
  readonly #hooks: RuntimeHooks;
  /** With workers: the shared parts (queue length published for the primary's reports). */
  readonly #shared: GroupSharedParts | null;
  /** TLS toward the servers (re-encryption), or null for plain TCP. */
  tls: GroupTls | null = null;
  readonly #queue: GroupQueue;
  /** Connections by server. */
  readonly #byServer = new ServerConnections();
  readonly #ages: ConnectionAges;
  /** The exact clock (session timestamps, connect timers); per-chunk stamps use the coarse one. */
  readonly clock: Clock;
  /** Connect timeouts of this group's sessions: one timer for all of them. */
  readonly connectDeadlines: DeadlineList<Session>;

  constructor(config: GroupConfig, acls: AclTable, hooks: RuntimeHooks, clock: Clock, random: Random) {
    this.config = config;
    this.clock = clock;
    this.connectDeadlines = new DeadlineList<Session>(clock, connectTimedOut);
    this.#hooks = hooks;
    this.#shared = hooks.groupShared?.(config) ?? null;
    this.clients = this.#shared?.clients ?? new ClientTable(config.clientsMax, config.trackingMs);
    this.stats = this.#shared?.stats ?? { queued: 0, queueServed: 0, queueTimeouts: 0, queueFull: 0, allFull: 0, maxAgeClosed: 0, closedOnDown: 0 };
    const kind = algorithms[config.algorithm];
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
    this.#queue = new GroupQueue(clock, {
      settings: () => this.config,
      stats: this.stats,
      lengthChanged: (n) => this.#shared?.setQueueLength(n),
      queued: (session) => hooks.sessionQueued(session),
      dequeued: (session) => hooks.sessionDequeued(session),
    });
    this.#ages = new ConnectionAges(clock, random, () => this.config, (session) => {
      this.stats.maxAgeClosed++;
      session.close('max-age', false);
    });
  }

  /** Builds the server lists from a config (at start; a reload reuses servers, see reconfigure.ts). */
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
    return this.#hooks.global.idleTimeoutMs;
  }
  get tcpNoDelay(): boolean {
    return this.#hooks.global.tcpNoDelay;
  }
  get sendProxy(): 'off' | 'v1' | 'v2' {
    return this.config.sendProxy;
  }
  get fastClose(): 'off' | 'up' | 'down' | 'both' {
    return this.#hooks.global.tcpFastClose;
  }
  /** Clients waiting in this group's queue (with workers, in the primary: in all workers). */
  get queueLength(): number {
    return this.#shared === null ? this.#queue.length : this.#shared.queueLength();
  }

  connect(address: Address, side: Side): void {
    const tls = this.tls;
    if (tls === null) {
      connectTcp(address, side);
      return;
    }
    tls.connect(address, side, side.session.server?.hostname);
  }
  coarseNow(): number {
    return this.#hooks.coarseClock.now();
  }

  sessionConnected(session: Session): void {
    this.#byServer.add(session.server!, session);
    this.#ages.connected(session);
    this.#hooks.sessionConnected(session);
  }

  sessionEnded(session: Session): void {
    const server = session.server;
    if (server !== null) {
      // A removed server's list goes with its last connection (a current server's stays).
      if (this.#byServer.remove(server, session) === 0 && !this.#isCurrent(server)) this.#byServer.forget(server);
    }
    this.#ages.ended(session);
    // Closed while waiting (client left, queue timeout, shutdown): it takes its connect slot
    // back first, so that the balancer's accounting of ended sessions stays uniform.
    if (session.inGroupQueue) this.#queue.left(session);
    // A slot may have freed: waiting clients go first, before the balancer admits new ones.
    if (this.#queue.length > 0 && !this.#queue.isRetrying(session) && !this.#hooks.stopping) this.serveQueue();
    this.#hooks.sessionEnded(session);
  }
  resourceFailure(session: Session): void {
    this.#hooks.resourceFailure?.(session);
  }
  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void {
    this.#hooks.dumpChunk(session, fromClient, chunk);
  }

  /** SessionOwner.enqueue: every eligible server is full. */
  enqueue(session: Session): boolean {
    return this.#queue.enqueue(session);
  }

  /** Serves waiting clients in order while servers have room (a slot freed, a server came up). */
  serveQueue(): void {
    this.#queue.serve();
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

  /** Told when a server goes up or down (HTTP listeners close a down server's pooled connections). */
  readonly stateWatchers = new Set<(server: Server, up: boolean) => void>();

  serverChanged(server: Server, up: boolean): void {
    this.#serverChanged(server, up);
    for (const w of this.stateWatchers) w(server, up);
    this.#hooks.serverStateChanged?.(this, server, up);
  }

  #serverChanged(server: Server, up: boolean): void {
    if (up) {
      this.serveQueue();
      return;
    }
    if (this.config.onServerDown === 'close') {
      const open = this.#byServer.of(server);
      if (open.length > 0) {
        const n = open.length;
        for (const s of open) {
          this.stats.closedOnDown++;
          s.close('server-down', false);
        }
        this.#hooks.logEvent(`${serverLabel(this.name, server)}: closed ${n} connection(s) of the server marked down`);
      }
    }
  }

  /** Open connections of a server (for reports and tests). */
  connectionsOf(server: Server): number {
    return this.#byServer.count(server);
  }

  stop(): void {
    this.#queue.stop();
    this.#ages.stop();
    this.connectDeadlines.stop();
  }

  /** Applies a changed algorithm or selection flags (pen commands, reload). */
  setAlgorithm(name: GroupConfig['algorithm'], random: Random): void {
    this.config.algorithm = name;
    const kind = algorithms[name];
    this.selector.balancer = kind.create(random);
    this.selector.needsClientHash = kind.hashesClient;
    this.selector.serversChanged();
  }

  syncSettings(): void {
    Object.assign(this.selector.settings, selectorSettings(this.config));
    this.clients.setCapacity(this.config.clientsMax);
    this.clients.setExpiry(this.config.trackingMs);
    this.#ages.settingsChanged();
    if (this.#queue.length > 0) this.serveQueue();
  }
}

const NO_OBSERVERS: readonly ((r: HttpRequestRecord) => void)[] = [];

export class ListenerRuntime implements AcceptHandler, GatedAcceptor, ProxyAcceptor, SessionListener {
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
  /** accept_proxy's counters (its stage's). */
  readonly proxy: ProxyStats;
  /** A UDP listener's relay (sessions, counters) while bound, else null (app/udp/). */
  udp: UdpRelay | null = null;
  /** An HTTP listener's proxy (pool, counters) while bound, else null (app/http/). */
  http: HttpProxy | null = null;
  readonly #hooks: RuntimeHooks;
  readonly #handshake: HandshakeStage;
  readonly #proxyIn: ProxyInStage;

  constructor(config: ListenerConfig, group: GroupRuntime, hooks: RuntimeHooks) {
    this.config = config;
    this.group = group;
    this.#hooks = hooks;
    this.#handshake = new HandshakeStage(this, hooks);
    this.#proxyIn = new ProxyInStage(this, hooks);
    this.proxy = this.#proxyIn.stats;
    this.configure(config);
  }

  get mode(): ListenerMode {
    return listenerMode(this.config);
  }

  /** The gate's deadline clock. */
  get clock(): Clock {
    return this.#hooks.clock;
  }

  /** The live global settings (a UDP listener follows pen's -x and idle_timeout). */
  get global(): GlobalConfig {
    return this.#hooks.global;
  }

  udpSessionEnded(record: SessionRecord): void {
    this.#hooks.udpSessionEnded?.(record);
  }

  httpClientEnded(key: string, bytesRead: number, bytesWritten: number): void {
    this.#hooks.httpClientEnded?.(this, key, bytesRead, bytesWritten);
  }

  /** A group by name (HTTP routes name groups). */
  groupNamed(name: string): GroupRuntime | null {
    return this.#hooks.groupNamed(name) ?? null;
  }

  logEvent(message: string): void {
    this.#hooks.logEvent(message);
  }

  /** HTTP mode: who hears each finished request (read per request; empty without an access log). */
  get requestObservers(): readonly ((r: HttpRequestRecord) => void)[] {
    return this.#hooks.onHttpRequestEnd ?? NO_OBSERVERS;
  }

  /** Applies a (new) config: TLS state is created on first use and kept across reloads. */
  configure(config: ListenerConfig): void {
    this.config = config;
    const routes = config.sniRoutes ?? [];
    this.router = routes.length === 0 ? null : new Router(routes.map((r) => ({ serverNames: r.serverNames, alpn: r.alpn, clientIdentities: r.clientIdentities, target: r.group })));
    this.#proxyIn.configure(config.acceptProxy ?? null);
    if (config.tls === undefined || config.tls === null) this.tls = null;
    else if (this.tls === null) this.tls = new (tlsCode().material.ListenerTls)(config.tls);
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

  gateOpened(source: string, counted = false): boolean {
    return this.#handshake.opened(source, counted);
  }

  gateStarted(gate: Gate): void {
    this.#handshake.started(gate);
  }

  gateFailed(reason: GateFailure, detail: string, source: string, gate?: Gate): void {
    this.#handshake.failed(reason, detail, source, gate);
  }

  gatePassed(socket: StreamSocket<unknown>, facts: ConnectionFacts, origin: ProxiedAddresses | null = null, gate?: Gate): void {
    this.#handshake.passed(facts, gate);
    let group = this.group;
    if (this.router !== null) {
      const name = this.router.choose(facts);
      if (name !== null) group = this.#hooks.groupNamed(name) ?? group;
    }
    this.#hooks.accept(this, socket as unknown as Socket<Side>, facts, group, origin);
  }

  // ProxyAcceptor: listeners with accept_proxy (dataplane/proxy-in.ts)

  get proxyNext(): Exclude<ListenerMode, 'udp' | 'http'> {
    const mode = this.mode;
    // An HTTP listener reads its requests as a plain or terminating one would read bytes. The
    // config refuses accept_proxy on UDP listeners; a PROXY header is a TCP stream's.
    if (mode === 'http') return this.config.tls != null ? 'terminate' : 'plain';
    return mode === 'udp' ? 'plain' : mode;
  }

  get proxyTimeoutMs(): number {
    return this.config.acceptProxy?.timeoutMs ?? PROXY_TIMEOUT_DEFAULT_MS;
  }

  proxyOpened(remoteAddress: string): boolean {
    return this.#proxyIn.opened(remoteAddress);
  }

  proxyFailed(reason: ProxyFailure, detail: string): void {
    this.#proxyIn.failed(reason, detail);
  }

  proxyPassed(_origin: ProxiedAddresses | null, version: 1 | 2): void {
    this.#proxyIn.passed(version);
  }

  acceptProxied(socket: StreamSocket<unknown>, origin: ProxiedAddresses | null, initial: Uint8Array | null): void {
    this.#hooks.accept(this, socket as unknown as Socket<Side>, null, this.group, origin, initial);
  }
}

function connectTimedOut(session: Session): void {
  session.connectTimedOut();
}
