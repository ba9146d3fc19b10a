/**
 * The Balancer: composes the parts that turn a FulcrumConfig into a running process: groups and
 * listeners (runtime.ts), admission under -x (admission.ts), the listening sockets and TLS files
 * (listeners.ts), reconfiguration (reconfigure.ts), operator actions on servers
 * (server-admin.ts), health checks, totals, and the observers of finished sessions (pen's -l
 * log, the access log). How this process takes part (single, primary, worker) is decided here,
 * once, by the strategies it gives the parts.
 */
import type { Socket } from 'bun';
import { AclTable } from '../core/acl/acl.ts';
import type { Address } from '../core/address.ts';
import { formatAddress } from '../core/address.ts';
import { CoarseClock, type Clock, type Random } from '../core/clock.ts';
import { clientKey } from '../core/ip.ts';
import type { AdminState, Server } from '../core/servers/server.ts';
import type { FulcrumConfig, GlobalConfig, GroupConfig, ListenerConfig, ServerConfig } from '../config/model.ts';
import type { HealthChecker } from '../control/health-checker.ts';
import type { ProxiedAddresses } from '../protocol/proxy-protocol.ts';
import type { HttpRequestRecord, SessionRecord, SourceLimits } from '../control/observed.ts';
import type { ConnectionFacts } from '../dataplane/gate.ts';
import { Session, type Side } from '../dataplane/session.ts';
import { systemClock, systemRandom } from '../dataplane/system-clock.ts';
import { AcceptGuard } from './accept-guard.ts';
import { Admission, localSlots, sharedSlots } from './admission.ts';
import type { Diagnostics } from './diagnostics.ts';
import { Listeners } from './listeners.ts';
import type { LogFile } from './log-file.ts';
import { formatDump, PenLog } from './pen-log.ts';
import { cloneGroupConfig, Reconfiguration, type ServerPatch } from './reconfigure.ts';
import { makeServer, serverLabel } from './group-servers.ts';
import type { GroupSharedParts } from './group-counters.ts';
import { GroupRuntime, ListenerRuntime, type RuntimeHooks } from './runtime.ts';
import { ResourceGuard } from './resource-guard.ts';
import { ServerAdmin } from './server-admin.ts';
import { SourceGuard, type SourceLimitsPatch } from './source-guard.ts';
import { healthCode, tlsCode } from './on-demand.ts';
import { newTotals, type Totals } from './totals.ts';
import type { SharedState } from './workers/shared-state.ts';
import { FulcrumError } from '../core/errors.ts';

// What other modules have always imported from here.
export { systemClock, systemRandom } from '../dataplane/system-clock.ts';
export type { Diagnostics } from './diagnostics.ts';
export { workerListenProblem } from './listeners.ts';
export { formatLogLine } from './pen-log.ts';
export { serverConfigOf } from './reconfigure.ts';
export { resolveConfig, resolveServer } from './resolve.ts';
export type { Totals } from './totals.ts';

/**
 * How this process takes part (docs/workers.md): 'single' serves on its own (one worker, the
 * default); with several workers, the 'primary' checks health, answers the control port and
 * writes reports but binds nothing, and each 'worker' serves and never checks.
 */
export type BalancerMode = 'single' | 'primary' | 'worker';

export interface BalancerOptions {
  mode?: BalancerMode;
  /** Shared memory (primary and workers). */
  shared?: SharedState | null;
}

/** An HTTP client connection refused at accept: its socket's events go nowhere while it closes. */
const REFUSED = { onData() {}, onDrain() {}, onEnd() {}, onTimeout() {}, onClose() {} } as unknown as Side;

export class Balancer implements RuntimeHooks {
  global: GlobalConfig;
  readonly acls = new AclTable();
  readonly groups = new Map<string, GroupRuntime>();
  readonly totals: Totals;
  readonly mode: BalancerMode;
  /** Shared memory with the other processes (primary and workers), else null. */
  readonly shared: SharedState | null;
  /** Observers of servers going up or down (the primary tells the workers). */
  readonly onServerChanged: ((group: GroupRuntime, server: Server, up: boolean) => void)[] = [];
  /** Observers of operator changes to servers (state, weight, servers added), for a cluster. */
  readonly onOperatorChange: (() => void)[] = [];
  readonly startedMs: number;
  readonly diag: Diagnostics;
  readonly clock: Clock;
  /** Activity stamps per chunk: the injected clock, then a coarse clock of it once started. */
  coarseClock: Clock;
  readonly random: Random;
  /** Observers of finished sessions (pen's -l log first, then access log, metrics); once per connection. */
  readonly onSessionEnd: ((s: Session) => void)[] = [];
  /** Observers of finished UDP sessions (the access log), once per session (app/udp/). */
  readonly onUdpSessionEnd: ((s: SessionRecord) => void)[] = [];
  /** Observers of finished HTTP mode requests and WebSocket tunnels (the access log), once each (app/http/). */
  readonly onHttpRequestEnd: ((r: HttpRequestRecord) => void)[] = [];
  stopping = false;
  /**
   * Active and agent checks of every group's servers (runs from start(), not in a worker); made
   * with the first configuration that has a check (its code loads with it: on-demand.ts), null
   * before. Without a check it would only have recorded the servers.
   */
  health: HealthChecker | null = null;
  readonly #checks: boolean;
  readonly #admission: Admission;
  readonly #listeners: Listeners;
  readonly #admin: ServerAdmin;
  readonly #reconfigure: Reconfiguration;
  readonly #penLog: PenLog;
  /** Our own resource exhaustion (out of file descriptors): counted, logged once per interval. */
  readonly resources: ResourceGuard;
  /** The per-source limits: connections held and new connections per second per client address. */
  readonly sources: SourceGuard;
  /** The descriptor budget and per-source limits a new session must get past (accept-guard.ts). */
  readonly #guard: AcceptGuard;
  #started = false;

  constructor(config: FulcrumConfig, diag: Diagnostics, clock: Clock = systemClock, random: Random = systemRandom, options: BalancerOptions = {}) {
    this.mode = options.mode ?? 'single';
    this.shared = options.shared ?? null;
    const shared = this.shared;
    if (this.mode !== 'single' && shared === null) throw new FulcrumError('E_INTERNAL', `a ${this.mode} balancer needs shared memory`);
    this.totals = shared?.totals() ?? newTotals();
    this.global = config.global;
    this.diag = diag;
    this.clock = clock;
    this.coarseClock = clock;
    this.startedMs = clock.now();
    this.random = random;
    this.#checks = this.mode !== 'worker';
    this.#admission = new Admission({
      slots: this.mode === 'single' ? localSlots() : sharedSlots(shared!, this.mode === 'worker' ? 'worker' : 'primary'),
      limits: () => this.global,
      clock,
      totals: this.totals,
      stopping: () => this.stopping,
      serveGroupQueues: () => {
        let queued = false;
        for (const g of this.groups.values()) {
          if (g.queueLength === 0) continue;
          g.serveQueue();
          queued ||= g.queueLength > 0;
        }
        return queued;
      },
    });
    this.#listeners = new Listeners(this.mode === 'single' ? 'alone' : this.mode === 'worker' ? 'shared' : 'probe', diag, clock);
    this.#admin = new ServerAdmin(this.groups, clock, (m) => this.logEvent(m), this.mode !== 'worker');
    this.#admin.onApplied = () => this.#operatorChanged();
    this.#reconfigure = new Reconfiguration(
      {
        groups: this.groups,
        acls: this.acls,
        clock,
        random,
        diag,
        global: () => this.global,
        newGroup: (gc) => this.#newGroup(gc),
        newListener: (lc, g) => this.#newListener(lc, g),
        createServer: (i, c, role) => this.createServer(i, c, role),
        serversChanged: () => this.serversChanged(),
        reloaded: (before, after) => this.#reloaded(before, after),
      },
      this.#listeners,
      this.#admin,
    );
    for (const { list, entry } of config.acls) this.acls.add(list, entry);
    for (const g of config.groups) this.groups.set(g.name, this.#newGroup(g));
    this.#listeners.list = config.listeners.map((l) => this.#newListener(l, this.#group(l.group)));
    this.sources = new SourceGuard(() => this.global, clock);
    this.resources = new ResourceGuard(clock, (m) => this.diag.error(m));
    this.#guard = new AcceptGuard(this.resources, this.sources);
    this.#penLog = new PenLog(this.global.logFile, this.global.logFormat, () => clock.now());
    this.onSessionEnd.push(this.#penLog.onSessionEnd);
  }

  /** The running listeners (a reload replaces the list). */
  get listeners(): ListenerRuntime[] {
    return this.#listeners.list;
  }
  /** Sessions that have been admitted (began selection), by id. */
  get sessions(): Map<number, Session> {
    return this.#admission.sessions;
  }
  /** pen's -l log file, or null; pen's `log` command replaces it. */
  get log(): LogFile | null {
    return this.#penLog.file;
  }
  set log(file: LogFile | null) {
    this.#penLog.file = file;
  }
  /** Admitted connections (in the primary: of all workers). */
  get activeCount(): number {
    return this.#admission.activeCount;
  }
  /** Clients waiting under -x (in the primary: in all workers). */
  get waitingCount(): number {
    return this.#admission.waitingCount;
  }

  /** One line per server state change (health checks, ejections, operator actions). */
  logEvent(message: string): void {
    this.diag.info(message);
  }

  #newGroup(gc: GroupConfig): GroupRuntime {
    const g = new GroupRuntime(cloneGroupConfig(gc), this.acls, this, this.clock, this.random);
    g.tls = gc.tls === undefined || gc.tls === null ? null : new (tlsCode().material.GroupTls)(gc.tls);
    if (g.tls?.config.insecure === true) this.diag.info(`group ${gc.name}: TLS to the servers is NOT verified (insecure: true, for lab use only)`);
    return g;
  }

  #group(name: string): GroupRuntime {
    const g = this.groups.get(name);
    if (g === undefined) throw new FulcrumError('E_CONFIG_INVALID', `listener refers to unknown group "${name}"`);
    return g;
  }

  /** The first (pen command line: only) group, which pen commands act on. */
  get defaultGroup(): GroupRuntime {
    const first = this.groups.values().next();
    if (first.done) throw new FulcrumError('E_CONFIG_INVALID', 'no server group configured');
    return first.value;
  }

  groupNamed(name: string): GroupRuntime | undefined {
    return this.groups.get(name);
  }

  /** A listener; with workers, its counters are shared (the primary reports their sums). */
  #newListener(c: ListenerConfig, group: GroupRuntime): ListenerRuntime {
    const l = new ListenerRuntime(c, group, this);
    this.shared?.bindListener(c.name, l);
    return l;
  }

  /** Makes a server of a group: with workers, bound to its slot in shared memory. */
  createServer(index: number, c: ServerConfig, role: Server['role'] = 'regular'): Server {
    const shared = this.shared;
    if (shared === null) return makeServer(index, c, role);
    // A worker's servers take their operator state from shared memory, where the primary keeps it.
    const config = this.mode === 'worker' ? { ...c, state: undefined } : c;
    return makeServer(index, config, role, (i, sc, r) => shared.createServer(i, sc, r));
  }

  groupShared(config: GroupConfig): GroupSharedParts | null {
    return this.shared?.groupShared(config) ?? null;
  }

  serverStateChanged(group: GroupRuntime, server: Server, up: boolean): void {
    for (const f of this.onServerChanged) f(group, server, up);
  }

  /** Binds every listener; throws (before anything else starts) if one cannot bind. */
  start(): void {
    this.coarseClock = new CoarseClock(this.clock, 200);
    for (const l of this.listeners) this.#listeners.loadTls(l);
    for (const l of this.listeners) this.#listeners.bind(l);
    // Workers inherit what the primary held at start; what a reload adds they bind themselves.
    this.#listeners.holding = false;
    this.resources.measure();
    this.#listeners.scheduleTlsChecks();
    this.#started = true;
    this.#syncHealth();
  }

  /** Servers were added or changed outside a reload (pen's `server N ...`): checks follow. */
  serversChanged(): void {
    if (this.#started && !this.stopping) this.#syncHealth();
    this.#operatorChanged();
  }

  /** The checks follow the groups' configs (start, reload, servers added or removed). */
  #syncHealth(): void {
    if (!this.#checks) return;
    if (this.health === null) {
      if (![...this.groups.values()].some((g) => (g.config.check ?? null) !== null || (g.config.agentCheck ?? null) !== null)) return;
      const { HealthChecker, probeRunner } = healthCode();
      const clock = this.clock;
      this.health = new HealthChecker({ clock, random: this.random, probe: probeRunner(clock), log: (m) => this.logEvent(m), debug: (m) => this.diag.debug(1, m), label: serverLabel });
    }
    this.health.sync(this.groups.values());
  }

  #operatorChanged(): void {
    for (const f of this.onOperatorChange) f();
  }

  /**
   * Re-reads every certificate, key and CA file (SIGHUP with pen's command line); broken files
   * keep the old ones in service. Returns what it did, for the reload report.
   */
  reloadTls(why = 'SIGHUP'): string[] {
    return this.#listeners.reloadTls(this.groups.values(), why);
  }

  /** Moves a listener to another address (pen's `listen`); see Listeners.rebind. */
  rebind(l: ListenerRuntime, address: Address, spec?: string): void {
    this.#listeners.rebind(l, address, spec);
  }

  accept(listener: ListenerRuntime, socket: Socket<Side>, facts: ConnectionFacts | null = null, group: GroupRuntime = listener.group, origin: ProxiedAddresses | null = null, initial: Uint8Array | null = null): void {
    this.totals.accepted++;
    const http = listener.http;
    if (http !== null) {
      // HTTP mode: a client connection of the listener's proxy, under the same per-source limits.
      const address = origin?.sourceAddress ?? socket.remoteAddress ?? '';
      const key = clientKey(address);
      const refusal = this.#guard.take(key, facts !== null, this.stopping);
      if (refusal !== null) {
        this.#guard.release(key);
        this.totals.finished++;
        this.totals.ends[refusal] = (this.totals.ends[refusal] ?? 0) + 1;
        socket.data = REFUSED;
        socket.end();
        return;
      }
      listener.active++;
      http.accept(socket, address, origin?.sourcePort ?? socket.remotePort, key, initial);
      // The PROXY stage paused a plain socket for a server connect; HTTP reads its requests now.
      if (origin !== null && facts === null) socket.resume();
      return;
    }
    // After a PROXY header (accept_proxy) the real client is the one it names, for every decision.
    const address = origin?.sourceAddress ?? socket.remoteAddress ?? ''; // a getpeername, once: Bun keeps the address
    const session = new Session(group, socket, clientKey(address), address, origin);
    // The port is one more getpeername: read now only for what reports it after the client has
    // gone (the -l log, the access log, -dd); otherwise only when asked (hashing, PROXY, views).
    if (this.#penLog.file !== null || this.onSessionEnd.length > 1 || this.global.debug >= 2) void session.clientPort;
    session.listener = listener;
    listener.active++;
    session.dump = this.global.debug >= 2 || this.#penLog.wantsChunks; // pen's -l format logs each chunk from the client
    if (listener.config.forwardedFor === true) session.forwardFor(listener.config.tls == null ? 'http' : 'https');
    if (facts !== null) {
      session.facts = facts;
      if (facts.initial !== null) session.preload(facts.initial);
    }
    if (initial !== null) session.preload(initial);
    // Given back in sessionEnded, whatever ends the session.
    const refusal = this.#guard.take(session.clientKey, facts !== null, this.stopping);
    if (refusal !== null) session.close(refusal, false);
    else this.#admission.offer(session);
  }

  sessionConnected(session: Session): void {
    this.totals.connected++;
    this.#admission.connected();
    if (this.global.debug >= 2) {
      this.diag.debug(2, `connection ${session.id} from ${session.clientAddress} to ${formatAddress(session.server!.address)} (${session.reason})`);
    }
  }

  resourceFailure(): void {
    this.resources.failed();
  }

  gateSource(remoteAddress: string, delta: 1 | -1): boolean {
    return this.sources.gate(remoteAddress, delta);
  }

  gateRate(remoteAddress: string): boolean {
    return this.sources.gateRate(remoteAddress);
  }

  /** The per-source limits (admin API, /metrics), with what they refused since start. */
  sourceLimits(): SourceLimits {
    return this.sources.limits(this.#admission.idleEvicted);
  }

  /** Changes the per-source limits now (admin API; a reload sets them from the file again). */
  setSourceLimits(patch: SourceLimitsPatch): string[] {
    return this.sources.set(patch);
  }

  /** A TLS or passthrough gate opens (1 descriptor) or ends; false: over the descriptor budget. */
  gateDescriptor(delta: 1 | -1): boolean {
    return this.#guard.gateDescriptor(delta);
  }

  /** Bytes held in Fulcrum's buffers by all admitted sessions (walks them: for reports only). */
  bufferedBytes(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.buffered;
    return n;
  }

  /** Connects that failed for want of our own file descriptors (this process), for reports. */
  get resourceErrors(): number {
    return this.resources.failures;
  }

  udpSessionEnded(record: SessionRecord): void {
    for (const f of this.onUdpSessionEnd) f(record);
  }

  httpClientEnded(listener: ListenerRuntime, key: string, bytesRead: number, bytesWritten: number): void {
    this.#guard.release(key);
    const t = this.totals;
    t.finished++;
    t.bytesFromClients += bytesRead;
    t.bytesToClients += bytesWritten;
    listener.active--;
    listener.bytesFromClients += bytesRead;
    listener.bytesToClients += bytesWritten;
  }

  sessionQueued(): void {
    this.#admission.queued();
  }

  sessionDequeued(): void {
    this.#admission.dequeued();
  }

  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void {
    if (fromClient) this.#penLog.onClientChunk(session, chunk);
    if (this.global.debug >= 2) this.diag.debug(2, formatDump(session, fromClient, chunk, this.global.asciiDumps));
  }

  /** The finished-session record: totals and counters, then the observers, then a freed slot. */
  sessionEnded(session: Session): void {
    const admitted = this.#admission.ended(session);
    this.#guard.release(session.clientKey);
    const t = this.totals;
    t.finished++;
    t.bytesFromClients += session.client.bytesRead;
    t.bytesToClients += session.serverSide.bytesRead;
    const l = session.listener;
    if (l !== null) {
      l.active--;
      l.bytesFromClients += session.client.bytesRead;
      l.bytesToClients += session.serverSide.bytesRead;
    }
    const end = session.termination ?? 'client-closed';
    t.ends[end] = (t.ends[end] ?? 0) + 1;
    const entry = session.clientEntry;
    if (entry !== null) (session.owner as GroupRuntime).clients.addBytes(entry, session.client.bytesRead, session.serverSide.bytesRead);
    for (const f of this.onSessionEnd) f(session);
    if (admitted) this.#admission.admitWaiting();
  }

  /** Stops accepting and closes every connection (SIGTERM). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.#listeners.stop();
    this.#admission.closeAll();
    if (this.coarseClock instanceof CoarseClock) this.coarseClock.stop();
    this.health?.stop();
    for (const g of this.groups.values()) g.stop();
    await this.#penLog.close();
  }

  /** Every server of every group with its group, for listings. */
  *allServers(): Generator<{ group: GroupRuntime; server: Server }> {
    for (const group of this.groups.values()) {
      for (const server of group.selector.allServers()) yield { group, server };
    }
  }

  // Operator actions and reconfiguration: see server-admin.ts and reconfigure.ts.

  setServerState(groupName: string, index: number, state: AdminState, reason = 'operator', backup = false): void {
    this.#admin.setServerState(groupName, index, state, reason, backup);
  }

  findServer(group: GroupRuntime, id: string): Server | undefined {
    return this.#admin.findServer(group, id);
  }

  /** Drain, maintenance, or back in rotation, through the same path as pen's `server N state`. */
  setServerAdmin(group: GroupRuntime, server: Server, state: AdminState, reason = 'admin API'): void {
    this.#admin.apply(group, server, state, reason);
  }

  /** Applies a new, validated and resolved configuration as one transaction; returns what changed. */
  reload(next: FulcrumConfig): string[] {
    return this.#reconfigure.reload(next);
  }

  updateServerSettings(group: GroupRuntime, server: Server, patch: ServerPatch): string[] {
    const changes = this.#reconfigure.updateServerSettings(group, server, patch);
    if (changes.length > 0) this.#operatorChanged();
    return changes;
  }

  addServer(group: GroupRuntime, sc: ServerConfig): Server {
    return this.#reconfigure.addServer(group, sc);
  }

  removeServer(group: GroupRuntime, server: Server): string[] {
    return this.#reconfigure.removeServer(group, server);
  }

  /** After a reload: the -l log follows log_file, checks follow the servers, waiting clients are served. */
  #reloaded(before: GlobalConfig, after: GlobalConfig): void {
    this.global = after;
    this.#penLog.follow(before.logFile, after.logFile, after.logFormat, (m) => this.diag.error(m));
    this.#syncHealth();
    for (const g of this.groups.values()) g.serveQueue();
    this.#admission.admitWaiting();
  }
}
