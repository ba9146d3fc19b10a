/**
 * The composition root: turns a FulcrumConfig into running listeners and groups, admits
 * connections under the global limits, keeps the counters, and applies reloads as one
 * transaction (established connections keep the objects they started with and finish
 * undisturbed; the client tables and server counters carry over).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Socket } from 'bun';
import { AclTable } from '../core/acl/acl.ts';
import { formatAddress, type Address } from '../core/address.ts';
import type { Clock, Random } from '../core/clock.ts';
import { clientKey } from '../core/ip.ts';
import type { AdminState, Server } from '../core/servers/server.ts';
import type { FulcrumConfig, GlobalConfig, GroupConfig, ListenerConfig, ServerConfig } from '../config/model.ts';
import { HealthChecker } from '../control/health-checker.ts';
import { listenTcp, type ListenHandle } from '../dataplane/bun-tcp.ts';
import { listenPreread, listenTls } from '../dataplane/bun-tls.ts';
import type { ConnectionFacts } from '../dataplane/gate.ts';
import { runProbe } from '../dataplane/health-probes.ts';
import { Session, type Side } from '../dataplane/session.ts';
import { LogFile } from './log-file.ts';
import { GroupRuntime, ListenerRuntime, listenerMode, makeServer, serverKey, serverLabel, type BalancerHooks, type GroupSharedParts } from './runtime.ts';
import { GroupTls, type PreparedTls } from './tls.ts';
import type { SharedState } from './workers/shared-state.ts';
import type { Totals } from './totals.ts';

export type { Totals } from './totals.ts';

export interface Diagnostics {
  info(msg: string): void;
  debug(level: number, msg: string): void;
  error(msg: string): void;
}

export { systemClock, systemRandom } from '../dataplane/system-clock.ts';
import { systemClock, systemRandom } from '../dataplane/system-clock.ts';

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

/** With workers, a listener must be a TCP port that several processes can share. */
export function workerListenProblem(a: Address): string | null {
  if (a.kind === 'unix') {
    return `cannot share the Unix socket listener ${a.path} between workers (SO_REUSEPORT is for TCP ports): run one process (workers: 1) or listen on a TCP port`;
  }
  if (a.port === 0) return `cannot share listener ${formatAddress(a)} between workers: port 0 would give each worker another port`;
  return null;
}

/** How often a worker with waiting clients looks whether another worker freed a slot. */
const WAITER_POLL_MS = 20;

/** Resolves a server's host name to an address (at start, on reload and on an API add). */
export async function resolveServer(s: ServerConfig): Promise<ServerConfig> {
  if (s.address.kind !== 'tcp' || isIP(s.address.host) !== 0) return s;
  const name = s.hostname ?? s.address.host;
  let found: { address: string };
  try {
    found = await lookup(name);
  } catch (e) {
    throw new Error(`cannot resolve server host name "${name}": ${(e as Error).message}`);
  }
  return { ...s, hostname: name, address: { kind: 'tcp', host: found.address, port: s.address.port } };
}

/** Resolves host names to addresses (at start and on reload, never per connection). */
export async function resolveConfig(config: FulcrumConfig): Promise<FulcrumConfig> {
  const groups: GroupConfig[] = [];
  for (const g of config.groups) {
    groups.push({
      ...g,
      servers: await Promise.all(g.servers.map(resolveServer)),
      emergency: g.emergency === null ? null : await resolveServer(g.emergency),
      abuse: g.abuse === null ? null : await resolveServer(g.abuse),
    });
  }
  return { ...config, groups };
}

export class Balancer implements BalancerHooks {
  global: GlobalConfig;
  readonly acls = new AclTable();
  readonly groups = new Map<string, GroupRuntime>();
  listeners: ListenerRuntime[] = [];
  /** Sessions that have been admitted (began selection), by id. */
  readonly sessions = new Map<number, Session>();
  /** Accepted clients waiting for a slot under -x / pending_max (FIFO, head index). */
  #waiting: Session[] = [];
  #waitingHead = 0;
  #pendingConnects = 0;
  readonly totals: Totals;
  readonly mode: BalancerMode;
  /** Shared memory with the other processes (primary and workers), else null. */
  readonly shared: SharedState | null;
  /** Worker: a timer that serves waiting clients when another worker frees a slot. */
  #pollTimer: ReturnType<typeof setTimeout> | null = null;
  /** Observers of servers going up or down (the primary tells the workers). */
  readonly onServerChanged: ((group: GroupRuntime, server: Server, up: boolean) => void)[] = [];
  readonly startedMs = Date.now();
  #now = Date.now();
  #clockTimer: ReturnType<typeof setInterval> | null = null;
  #started = false;
  log: LogFile | null = null;
  readonly diag: Diagnostics;
  readonly clock: Clock;
  readonly random: Random;
  /** Observers of finished sessions (access log, metrics); called once per connection. */
  readonly onSessionEnd: ((s: Session) => void)[] = [];
  stopping = false;
  /** Active and agent checks of every group's servers (runs from start()). */
  readonly health: HealthChecker;

  constructor(config: FulcrumConfig, diag: Diagnostics, clock: Clock = systemClock, random: Random = systemRandom, options: BalancerOptions = {}) {
    this.mode = options.mode ?? 'single';
    this.shared = options.shared ?? null;
    if (this.mode !== 'single' && this.shared === null) throw new Error(`a ${this.mode} balancer needs shared memory`);
    this.totals = this.shared?.totals() ?? { accepted: 0, connected: 0, finished: 0, queued: 0, bytesFromClients: 0, bytesToClients: 0, ends: {} };
    this.global = config.global;
    this.diag = diag;
    this.clock = clock;
    this.random = random;
    for (const { list, entry } of config.acls) this.acls.add(list, entry);
    for (const g of config.groups) this.groups.set(g.name, this.#newGroup(g));
    this.listeners = config.listeners.map((l) => this.#newListener(l, this.#group(l.group)));
    if (this.global.logFile !== null) this.log = new LogFile(this.global.logFile);
    this.health = new HealthChecker({
      clock,
      random,
      probe: runProbe,
      log: (m) => this.logEvent(m),
      debug: (m) => this.diag.debug(1, m),
      label: serverLabel,
    });
  }

  /** One line per server state change (health checks, ejections, operator actions). */
  logEvent(message: string): void {
    this.diag.info(message);
  }

  #newGroup(gc: GroupConfig): GroupRuntime {
    const g = new GroupRuntime(structuredCloneConfig(gc), this.acls, this, this.clock, this.random);
    g.tls = gc.tls === undefined || gc.tls === null ? null : new GroupTls(gc.tls);
    if (g.tls?.config.insecure === true) this.diag.info(`group ${gc.name}: TLS to the servers is NOT verified (insecure: true, for lab use only)`);
    return g;
  }

  #group(name: string): GroupRuntime {
    const g = this.groups.get(name);
    if (g === undefined) throw new Error(`listener refers to unknown group "${name}"`);
    return g;
  }

  /** The first (pen command line: only) group, which pen commands act on. */
  get defaultGroup(): GroupRuntime {
    const first = this.groups.values().next();
    if (first.done) throw new Error('no server group configured');
    return first.value;
  }

  groupNamed(name: string): GroupRuntime | undefined {
    return this.groups.get(name);
  }

  get maxConnections(): number {
    return this.global.maxConnections;
  }

  get idleTimeoutMs(): number {
    return this.global.idleTimeoutMs;
  }
  get tcpNoDelay(): boolean {
    return this.global.tcpNoDelay;
  }
  get fastClose(): GlobalConfig['tcpFastClose'] {
    return this.global.tcpFastClose;
  }
  coarseNow(): number {
    return this.#now;
  }
  /** Admitted connections (in the primary: of all workers). */
  get activeCount(): number {
    return this.mode === 'primary' ? this.shared!.activeTotal() : this.sessions.size;
  }
  /** Clients waiting under -x (in the primary: in all workers). */
  get waitingCount(): number {
    return this.mode === 'primary' ? this.shared!.waitingTotal() : this.#waiting.length - this.#waitingHead;
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
    this.#clockTimer = setInterval(() => {
      this.#now = Date.now();
    }, 200);
    this.#clockTimer.unref?.();
    for (const l of this.listeners) this.#loadTls(l);
    for (const l of this.listeners) this.#bind(l);
    this.#scheduleTlsChecks();
    this.#started = true;
    if (this.mode !== 'worker') this.health.sync(this.groups.values());
  }

  /** Servers were added or changed outside a reload (pen's `server N ...`): checks follow. */
  serversChanged(): void {
    if (this.#started && !this.stopping && this.mode !== 'worker') this.health.sync(this.groups.values());
  }

  /** Reads a TLS listener's certificates (before binding, so a bad one stops the start). */
  #loadTls(l: ListenerRuntime): void {
    if (l.tls === null) return;
    let messages: string[];
    try {
      messages = l.tls.load();
    } catch (e) {
      throw new Error(`listener ${l.config.name} (${formatAddress(l.config.address)}): ${(e as Error).message}`, { cause: e });
    }
    for (const m of messages) this.diag.info(`listener ${l.config.name}: ${m}`);
    for (const c of l.tls.certificates) {
      this.diag.debug(1, `listener ${l.config.name}: certificate ${c.subject} (${c.keyType}) for ${c.names.join(', ') || '(no names)'}${c.isDefault ? ', default' : ''}, valid until ${c.notAfter.toISOString()}`);
    }
  }

  /**
   * Binds a listener's socket on `address` for its mode (plain, TLS, passthrough). A worker shares
   * the port with the other workers (SO_REUSEPORT); the primary only checks that the address can
   * be bound that way and lets it go at once (holding it would make the kernel hand it
   * connections that nobody accepts).
   */
  #listen(l: ListenerRuntime, address: Address): ListenHandle {
    if (this.mode !== 'single') {
      const problem = workerListenProblem(address);
      if (problem !== null) throw new Error(problem);
    }
    const options = { reusePort: this.mode !== 'single' };
    const mode = l.mode;
    const handle = mode === 'terminate' ? listenTls(address, l, options) : mode === 'passthrough' ? listenPreread(address, l, options) : listenTcp(address, l, options);
    if (this.mode !== 'primary') return handle;
    handle.stop();
    return { address, port: handle.port, stop: () => undefined };
  }

  #bind(l: ListenerRuntime): void {
    const mode = l.mode;
    try {
      l.handle = this.#listen(l, l.config.address);
    } catch (e) {
      throw new Error(`cannot listen on ${formatAddress(l.config.address)}: ${(e as Error).message}`, { cause: e });
    }
    const what = `${formatAddress(l.config.address)} for group ${l.group.name}${mode === 'plain' ? '' : ` (${mode === 'terminate' ? 'TLS' : 'TLS passthrough by SNI'})`}`;
    this.diag.debug(1, this.mode === 'primary' ? `${what} can be bound (the workers listen)` : `listening on ${what}`);
  }

  #tlsTimer: ReturnType<typeof setInterval> | null = null;

  /** Checks certificate files for changes at the shortest interval a TLS listener asks for. */
  #scheduleTlsChecks(): void {
    if (this.#tlsTimer !== null) clearInterval(this.#tlsTimer);
    this.#tlsTimer = null;
    const intervals = this.listeners.map((l) => l.tls?.config.reloadCheckMs ?? 0).filter((ms) => ms > 0);
    if (intervals.length === 0) return;
    this.#tlsTimer = setInterval(() => {
      for (const l of this.listeners) {
        if (l.tls !== null && l.tls.config.reloadCheckMs > 0 && l.tls.filesChanged()) this.#reloadListenerTls(l, 'certificate files changed');
      }
    }, Math.min(...intervals));
    this.#tlsTimer.unref?.();
  }

  #reloadListenerTls(l: ListenerRuntime, why: string): string[] {
    if (l.tls === null) return [];
    const messages = l.tls.reload();
    const errors = messages.filter((m) => m.startsWith('error:'));
    for (const m of errors) this.diag.error(`listener ${l.config.name}: ${why}: ${m.slice(7)}`);
    const rest = messages.filter((m) => !m.startsWith('error:'));
    const line = `listener ${l.config.name}: TLS reloaded${rest.length > 0 ? ': ' + rest.join('; ') : ''}`;
    this.diag.info(`listener ${l.config.name}: ${why}: TLS reloaded${rest.length > 0 ? ': ' + rest.join('; ') : ''}`);
    return [line, ...errors.map((m) => `listener ${l.config.name}: ${m}`)];
  }

  /**
   * Re-reads every certificate, key and CA file (SIGHUP with pen's command line); broken files
   * keep the old ones in service. Returns what it did, for the reload report.
   */
  reloadTls(why = 'SIGHUP'): string[] {
    const report: string[] = [];
    for (const l of this.listeners) report.push(...this.#reloadListenerTls(l, why));
    for (const g of this.groups.values()) {
      if (g.tls === null) continue;
      try {
        g.tls = new GroupTls(g.tls.config);
        report.push(`group ${g.name}: server TLS files re-read`);
      } catch (e) {
        const m = `${(e as Error).message}; the previous server TLS settings stay in service`;
        this.diag.error(`group ${g.name}: ${why}: ${m}`);
        report.push(`group ${g.name}: error: ${m}`);
      }
    }
    return report;
  }

  /**
   * Moves a listener to another address (pen's `listen`). The new socket is bound before the
   * old one closes, so a bad address leaves the listener as it was; if the new address overlaps
   * the old one (same port), the old socket is closed first and restored if the bind fails.
   * Established connections do not belong to the listening socket and are not touched.
   */
  rebind(l: ListenerRuntime, address: Address, spec?: string): void {
    const old = l.handle;
    const oldConfig = l.config;
    const bindAt = (a: Address, s: string | undefined): void => {
      l.config = { ...oldConfig, address: a, spec: s };
      l.handle = this.#listen(l, a);
    };
    try {
      bindAt(address, spec);
    } catch {
      old?.stop();
      l.handle = null;
      try {
        bindAt(address, spec);
      } catch (e) {
        let restored = '';
        try {
          bindAt(oldConfig.address, oldConfig.spec);
        } catch (e2) {
          l.config = oldConfig;
          restored = `; the old address ${formatAddress(oldConfig.address)} could not be bound again either (${(e2 as Error).message}), so nothing is listening`;
        }
        throw new Error(`cannot listen on ${formatAddress(address)}: ${(e as Error).message}${restored}`, { cause: e });
      }
      this.diag.debug(1, `listener moved from ${formatAddress(oldConfig.address)} to ${formatAddress(address)}`);
      return;
    }
    old?.stop();
    this.diag.debug(1, `listener moved from ${formatAddress(oldConfig.address)} to ${formatAddress(address)}`);
  }

  accept(listener: ListenerRuntime, socket: Socket<Side>, facts: ConnectionFacts | null = null, group: GroupRuntime = listener.group): void {
    this.totals.accepted++;
    const session = new Session(group, socket, clientKey(socket.remoteAddress));
    session.listener = listener;
    listener.active++;
    session.dump = this.global.debug >= 2;
    if (facts !== null) {
      session.facts = facts;
      if (facts.initial !== null) session.preload(facts.initial);
    }
    if (this.stopping) {
      session.close('shutdown', false);
      return;
    }
    if (this.#reserve()) {
      this.#admit(session);
    } else if (this.#waiting.length - this.#waitingHead < this.global.backlog) {
      // pen stops accepting at -x and lets the kernel backlog hold clients; the runtime accepts
      // for us, so we hold them here instead, unread, and serve them in order as slots free.
      this.totals.queued++;
      this.#waiting.push(session);
      this.#waitingChanged();
    } else {
      session.close('queue-full', false);
    }
  }

  /**
   * Room under -x and pending_max for one more session. With workers the limits are global:
   * the shared counters are checked and taken in one atomic step (so #admit must follow).
   */
  #reserve(): boolean {
    if (this.shared !== null) return this.shared.reserveAdmission(this.global.maxConnections, this.global.pendingMax);
    return this.sessions.size < this.global.maxConnections && this.#pendingConnects < this.global.pendingMax;
  }

  #admit(session: Session): void {
    this.sessions.set(session.id, session);
    this.#pendingConnects++;
    session.begin();
  }

  #admitWaiting(): void {
    const before = this.#waitingHead;
    while (this.#waitingHead < this.#waiting.length) {
      const s = this.#waiting[this.#waitingHead]!;
      if (!s.finished && !this.#reserve()) break;
      this.#waiting[this.#waitingHead++] = undefined as unknown as Session;
      if (!s.finished) this.#admit(s);
    }
    if (this.#waitingHead > 1024 && this.#waitingHead * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
    if (this.#waitingHead !== before) this.#waitingChanged();
  }

  /**
   * Worker: publishes the number of waiting clients, and while some wait (here, or in a group
   * queue) looks every WAITER_POLL_MS whether another worker freed a slot: slots free in other
   * processes without an event here. Costs nothing while nobody waits.
   */
  #waitingChanged(): void {
    if (this.shared === null) return;
    this.shared.setWaiting(this.#waiting.length - this.#waitingHead);
    this.#armPoll();
  }

  #armPoll(): void {
    if (this.#pollTimer !== null || this.stopping || this.mode !== 'worker') return;
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = null;
      if (this.stopping) return;
      this.#admitWaiting();
      let queued = false;
      for (const g of this.groups.values()) {
        if (g.queueLength === 0) continue;
        g.serveQueue();
        queued ||= g.queueLength > 0;
      }
      if (queued || this.#waitingHead < this.#waiting.length) this.#armPoll();
    }, WAITER_POLL_MS);
  }

  sessionConnected(session: Session): void {
    this.totals.connected++;
    this.#pendingConnects--;
    this.shared?.pendingDelta(-1);
    if (this.global.debug >= 2) {
      this.diag.debug(2, `connection ${session.id} from ${session.clientAddress} to ${formatAddress(session.selection.server!.address)} (${session.selection.reason})`);
    }
    this.#admitWaiting();
  }

  sessionQueued(): void {
    // A client waiting in a group queue holds no connect slot; it takes one again when served.
    this.#pendingConnects--;
    this.shared?.pendingDelta(-1);
    this.#armPoll();
    this.#admitWaiting();
  }

  sessionDequeued(): void {
    this.#pendingConnects++;
    this.shared?.pendingDelta(1);
  }

  /** pen's communication dump: hex by default, ASCII with -a. */
  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void {
    const dir = fromClient ? 'client -> server' : 'server -> client';
    const shown = chunk.subarray(0, 512);
    const body = this.global.asciiDumps
      ? Buffer.from(shown).toString('latin1').replace(/[^\x20-\x7e\n]/g, '.')
      : Buffer.from(shown).toString('hex').replace(/(.{2})/g, '$1 ').trim();
    this.diag.debug(2, `connection ${session.id} ${dir} ${chunk.length} bytes${chunk.length > 512 ? ' (first 512)' : ''}:\n${body}`);
  }

  sessionEnded(session: Session): void {
    const admitted = this.sessions.delete(session.id);
    if (admitted && session.connectedMs === 0) {
      this.#pendingConnects--;
      this.shared?.pendingDelta(-1);
    }
    if (admitted) this.shared?.released();
    this.totals.finished++;
    this.totals.bytesFromClients += session.client.bytesRead;
    this.totals.bytesToClients += session.server.bytesRead;
    const l = session.listener;
    if (l !== null) {
      l.active--;
      l.bytesFromClients += session.client.bytesRead;
      l.bytesToClients += session.server.bytesRead;
    }
    const reason = session.reason ?? 'client-closed';
    this.totals.ends[reason] = (this.totals.ends[reason] ?? 0) + 1;
    const client = session.selection.client;
    if (client !== null) (session.owner as GroupRuntime).clients.addBytes(client, session.client.bytesRead, session.server.bytesRead);
    if (this.log !== null) this.log.write(formatLogLine(session));
    for (const f of this.onSessionEnd) f(session);
    if (admitted) this.#admitWaiting();
  }

  /** Stops accepting and closes every connection (SIGTERM). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const l of this.listeners) l.handle?.stop();
    for (const s of [...this.sessions.values()]) s.close('shutdown', false);
    for (let i = this.#waitingHead; i < this.#waiting.length; i++) this.#waiting[i]?.close('shutdown', false);
    if (this.#clockTimer !== null) clearInterval(this.#clockTimer);
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    if (this.#tlsTimer !== null) clearInterval(this.#tlsTimer);
    this.health.stop();
    for (const g of this.groups.values()) g.stop();
    await this.log?.close();
  }

  /** Every server of every group with its group, for listings. */
  *allServers(): Generator<{ group: GroupRuntime; server: Server }> {
    for (const group of this.groups.values()) {
      for (const server of group.selector.allServers()) yield { group, server };
    }
  }

  /**
   * Sets a server's operator state (drain, maintenance, enabled), logged with its reason.
   * `index` numbers the group's primaries; backups are addressed with `backup: true`.
   * Draining keeps established connections; returning to 'enabled' starts slow start.
   */
  setServerState(groupName: string, index: number, state: AdminState, reason = 'operator', backup = false): void {
    const g = this.groups.get(groupName);
    if (g === undefined) throw new Error(`no group "${groupName}"`);
    const s = (backup ? g.selector.backups : g.selector.servers)[index];
    if (s === undefined) throw new Error(`group ${groupName} has no ${backup ? 'backup' : 'server'} ${index}`);
    this.#applyState(g, s, state, reason);
  }

  #applyState(g: GroupRuntime, s: Server, state: AdminState, reason: string): void {
    // With workers, operator state is the primary's to set (it is shared); workers hear of it.
    if (s.admin === state || this.mode === 'worker') return;
    const before = s.admin;
    const wasOut = s.isOut;
    s.admin = state;
    const now = this.clock.now();
    s.lastChangeMs = now;
    this.logEvent(`${serverLabel(g.name, s)}: ${before} -> ${state} (${reason})`);
    if (wasOut && !s.isOut) {
      s.startRamp(now, g.config.slowStartMs);
      g.serverChanged(s, true);
    }
  }

  /**
   * Applies a new configuration as one step. The caller has validated and resolved it, so
   * nothing here can fail halfway except binding a new listener, which is done first.
   */
  reload(next: FulcrumConfig): string[] {
    const changes: string[] = [];
    // 1. New listeners bind before anything changes, so a bind failure leaves the old config.
    const keepListeners = new Map(this.listeners.map((l) => [formatAddress(l.config.address), l]));
    const newListeners: ListenerRuntime[] = [];
    const bound: ListenerRuntime[] = [];
    for (const lc of next.listeners) {
      if (!next.groups.some((g) => g.name === lc.group)) throw new Error(`listener ${lc.name} refers to unknown group "${lc.group}"`);
      const problem = this.mode === 'single' ? null : workerListenProblem(lc.address);
      if (problem !== null) throw new Error(problem);
      for (const r of lc.sniRoutes ?? []) {
        if (!next.groups.some((g) => g.name === r.group)) throw new Error(`listener ${lc.name}: an SNI route refers to unknown group "${r.group}"`);
      }
    }
    // 2. Groups: keep runtime (client table, counters) by name; servers by address. Server TLS
    // settings are read now, so that a bad file fails the reload before anything changes.
    const groupsBefore = new Map(this.groups);
    const staged = new Map<string, GroupRuntime>();
    const stagedTls = new Map<string, GroupTls | null>();
    for (const gc of next.groups) {
      const old = groupsBefore.get(gc.name);
      if (old === undefined) {
        staged.set(gc.name, this.#newGroup(gc));
        changes.push(`group ${gc.name} added`);
      } else {
        staged.set(gc.name, old);
        // Re-read even when the settings are the same: the files (a rotated CA) may have changed.
        const tls = gc.tls ?? null;
        if (tls !== null || old.tls !== null) stagedTls.set(gc.name, tls === null ? null : new GroupTls(tls));
        if (JSON.stringify(tls) !== JSON.stringify(old.tls?.config ?? null)) changes.push(`group ${gc.name} server TLS ${tls === null ? 'off' : 'changed'}`);
      }
    }
    // 3. TLS listeners: certificates are read and checked now (all or nothing for the config).
    const now = new Date();
    const preparedTls = new Map<ListenerRuntime, PreparedTls>();
    const rebinds: { old: ListenerRuntime; fresh: ListenerRuntime }[] = [];
    const fresh: ListenerRuntime[] = [];
    for (const lc of next.listeners) {
      const key = formatAddress(lc.address);
      const existing = keepListeners.get(key);
      if (existing !== undefined && listenerMode(lc) === existing.mode) {
        if (existing.tls !== null && lc.tls !== undefined && lc.tls !== null) preparedTls.set(existing, existing.tls.prepare(lc.tls, now, true));
        continue;
      }
      const l = this.#newListener(lc, staged.get(lc.group)!);
      this.#loadTls(l);
      if (existing !== undefined) rebinds.push({ old: existing, fresh: l });
      else fresh.push(l);
    }
    // 4. Bind: new addresses first; a listener whose mode changed (plain, TLS, passthrough) is
    // rebound on its address, and put back if that fails.
    const undo = (): void => {
      for (const b of bound) b.handle?.stop();
      for (const { old } of rebinds) {
        if (old.handle === null) {
          try {
            this.#bind(old);
          } catch (e) {
            this.diag.error(`cannot restore listener ${formatAddress(old.config.address)}: ${(e as Error).message}`);
          }
        }
      }
    };
    try {
      for (const l of fresh) {
        this.#bind(l);
        bound.push(l);
        changes.push(`listener ${formatAddress(l.config.address)} added`);
      }
      for (const { old, fresh: l } of rebinds) {
        old.handle?.stop();
        old.handle = null;
        this.#bind(l);
        bound.push(l);
        changes.push(`listener ${formatAddress(l.config.address)} now ${l.mode} (established connections continue)`);
      }
    } catch (e) {
      undo();
      throw e;
    }
    for (const lc of next.listeners) {
      const key = formatAddress(lc.address);
      const rebound = rebinds.find((r) => formatAddress(r.fresh.config.address) === key)?.fresh;
      const l = rebound ?? fresh.find((x) => formatAddress(x.config.address) === key) ?? keepListeners.get(key)!;
      newListeners.push(l);
      keepListeners.delete(key);
    }
    // From here on nothing can fail.
    for (const gc of next.groups) {
      const g = staged.get(gc.name)!;
      if (groupsBefore.has(gc.name)) changes.push(...this.#updateGroup(g, gc));
      if (stagedTls.has(gc.name)) g.tls = stagedTls.get(gc.name)!;
    }
    for (const name of groupsBefore.keys()) if (!staged.has(name)) changes.push(`group ${name} removed`);
    this.groups.clear();
    for (const [k, v] of staged) this.groups.set(k, v);
    for (const [key, l] of keepListeners) {
      if (rebinds.some((r) => r.old === l)) continue;
      l.handle?.stop();
      changes.push(`listener ${key} removed (established connections continue)`);
    }
    for (const lc of next.listeners) {
      const l = newListeners.find((x) => formatAddress(x.config.address) === formatAddress(lc.address))!;
      l.configure(lc);
      l.group = staged.get(lc.group)!;
      const prepared = preparedTls.get(l);
      if (prepared !== undefined && lc.tls !== undefined && lc.tls !== null) {
        l.tls?.commit(lc.tls, prepared);
        for (const m of prepared.messages) changes.push(`listener ${lc.name}: ${m}`);
      }
    }
    this.listeners = newListeners;
    this.#scheduleTlsChecks();
    this.acls.clearAll();
    for (const { list, entry } of next.acls) this.acls.add(list, entry);
    const oldLog = this.global.logFile;
    // What only the command line sets (-F, --config, -C, -X), and what is read at start (admin
    // listener, access log, state file, the number of workers), survives a reload of the file.
    const g = this.global;
    if (next.global.workers !== g.workers) changes.push(`workers ${g.workers} -> ${next.global.workers}: takes effect on restart`);
    this.global = {
      ...next.global,
      configFile: g.configFile,
      commandFile: g.commandFile,
      control: g.control,
      controlExit: g.controlExit,
      admin: g.admin,
      accessLog: g.accessLog,
      stateFile: g.stateFile,
      workers: g.workers,
    };
    if (this.global.logFile !== oldLog) {
      void this.log?.close();
      this.log = this.global.logFile === null ? null : new LogFile(this.global.logFile);
    }
    if (this.mode !== 'worker') this.health.sync(this.groups.values());
    for (const g of this.groups.values()) g.serveQueue();
    this.#admitWaiting();
    return changes;
  }

  // -------------------------------------------------------------------------------------------
  // Operator changes (admin API). Callers validate first; each change is one synchronous step,
  // and established connections keep the Server objects they started with.

  /** A primary server by index, or a primary or backup server by address (as formatted by formatAddress). */
  findServer(group: GroupRuntime, id: string): Server | undefined {
    if (/^\d+$/.test(id)) return group.servers[Number(id)];
    return group.servers.find((s) => serverKey(s) === id) ?? group.selector.backups.find((s) => serverKey(s) === id);
  }

  /**
   * Drain (no new clients, established ones finish), maintenance, or back in rotation, through
   * the same path as pen's `server N state` (logged; a return to rotation starts slow start).
   */
  setServerAdmin(group: GroupRuntime, server: Server, state: AdminState, reason = 'admin API'): void {
    this.#applyState(group, server, state, reason);
  }

  /** Changes limits, weight, priority or ACL of a server; returns what changed. O(servers). */
  updateServerSettings(group: GroupRuntime, server: Server, patch: Partial<Pick<ServerConfig, 'maxConnections' | 'hardLimit' | 'weight' | 'priority' | 'acl'>>): string[] {
    const changes: string[] = [];
    const key = serverKey(server);
    const set = <K extends 'maxConnections' | 'hardLimit' | 'weight' | 'priority' | 'acl'>(k: K, label: string): void => {
      const v = patch[k];
      if (v === undefined || v === server[k]) return;
      changes.push(`server ${key} ${label} ${server[k]} -> ${v}`);
      server[k] = v;
    };
    set('maxConnections', 'max_connections');
    set('hardLimit', 'hard_limit');
    set('weight', 'weight');
    set('priority', 'priority');
    set('acl', 'acl');
    const backup = server.role === 'backup';
    const gc = group.config.servers.find((c) => serverKey(c) === key && (c.backup === true) === backup);
    if (gc !== undefined) Object.assign(gc, serverConfigOf(server, gc));
    if (changes.length > 0) {
      group.selector.serversChanged();
      group.serveQueue(); // a raised limit may let waiting clients in
    }
    return changes;
  }

  /** The group's servers (primaries, then backups) as configs, keeping each one's file-only fields. */
  #currentServerConfigs(group: GroupRuntime): ServerConfig[] {
    const byKey = new Map(group.config.servers.map((c) => [`${c.backup === true} ${serverKey(c)}`, c]));
    return [...group.servers, ...group.selector.backups].map((s) => serverConfigOf(s, byKey.get(`${s.role === 'backup'} ${serverKey(s)}`)));
  }

  /**
   * Adds a server to a group through the same path as a reload (it gets the next index of its
   * list; nobody is renumbered, so the client table is not walked), then health checks pick it up.
   * O(servers).
   */
  addServer(group: GroupRuntime, sc: ServerConfig): Server {
    const key = serverKey(sc);
    const backup = sc.backup === true;
    const list = backup ? group.selector.backups : group.servers;
    if (list.some((s) => serverKey(s) === key)) throw new Error(`${backup ? 'backup' : 'server'} ${key} is already in group ${group.name}`);
    this.#updateGroup(group, { ...group.config, servers: [...this.#currentServerConfigs(group), { ...sc }] });
    this.serversChanged();
    group.serveQueue();
    return (backup ? group.selector.backups : group.servers).find((s) => serverKey(s) === key)!;
  }

  /**
   * Removes a server from its group through the same path as a reload: later servers move up
   * one index and the client table follows them (O(servers + clients), like a reload). Its
   * established connections continue to their end.
   */
  removeServer(group: GroupRuntime, server: Server): string[] {
    const all = [...group.servers, ...group.selector.backups];
    if (!all.includes(server)) throw new Error(`server ${serverKey(server)} is not in group ${group.name}`);
    if (server.role === 'regular' && group.servers.length === 1) throw new Error('a group needs at least one server');
    const configs = this.#currentServerConfigs(group).filter((_, i) => all[i] !== server);
    const changes = this.#updateGroup(group, { ...group.config, servers: configs });
    this.serversChanged();
    return changes;
  }

  #updateGroup(g: GroupRuntime, gc: GroupConfig): string[] {
    const changes: string[] = [];
    // Servers are kept by role and address, with their counters and observed health.
    const roleKey = (backup: boolean, key: string): string => `${backup ? 'backup' : 'server'} ${key}`;
    const byKey = new Map<string, Server>();
    for (const s of g.servers) byKey.set(roleKey(false, serverKey(s)), s);
    for (const s of g.selector.backups) byKey.set(roleKey(true, serverKey(s)), s);
    const oldConfigs = new Map(g.config.servers.map((c) => [roleKey(c.backup === true, serverKey(c)), c]));
    const servers: Server[] = [];
    const backups: Server[] = [];
    const remap = new Map<number, number>();
    for (const sc of gc.servers) {
      const backup = sc.backup === true;
      const list = backup ? backups : servers;
      const i = list.length;
      const key = roleKey(backup, serverKey(sc));
      const old = byKey.get(key);
      if (old !== undefined) {
        byKey.delete(key);
        if (!backup) remap.set(old.index, i);
        list.push(updateServer(old, i, sc, changes));
        // The file's state applies when it changed in the file (an operator's runtime drain survives a reload otherwise).
        const was = oldConfigs.get(key)?.state ?? 'enabled';
        const now = sc.state ?? 'enabled';
        if (now !== was) this.#applyState(g, old, now, 'config reload');
      } else {
        list.push(this.createServer(i, sc, backup ? 'backup' : 'regular'));
        changes.push(`${key} added to ${gc.name}`);
      }
    }
    for (const key of byKey.keys()) changes.push(`${key} removed from ${gc.name} (its connections continue)`);
    // The client table follows renumbered primaries (O(clients)); skipped when nobody moved.
    let renumbered = [...byKey.keys()].some((k) => k.startsWith('server '));
    for (const [from, to] of remap) if (from !== to) renumbered = true;
    if (renumbered) g.clients.remapServers((s) => remap.get(s) ?? -1);
    const sel = g.selector;
    sel.servers = servers;
    sel.backups = backups;
    const sameOrNew = (old: Server | null, c: ServerConfig, role: Server['role']): Server => {
      if (old !== null && serverKey(old) === serverKey(c)) return updateServer(old, old.index, c, []);
      return this.createServer(role === 'emergency' ? -1 : -2, c, role);
    };
    sel.emergency = gc.emergency === null ? null : sameOrNew(sel.emergency, gc.emergency, 'emergency');
    sel.abuse = gc.abuse === null ? null : sameOrNew(sel.abuse, gc.abuse, 'abuse');
    const algorithmChanged = g.config.algorithm !== gc.algorithm;
    g.config = structuredCloneConfig(gc);
    g.syncSettings();
    if (algorithmChanged) {
      g.setAlgorithm(gc.algorithm, this.random);
      changes.push(`group ${gc.name} algorithm ${gc.algorithm}`);
    } else {
      sel.serversChanged();
    }
    return changes;
  }
}

function updateServer(s: Server, index: number, c: ServerConfig, changes: string[]): Server {
  if (s.weight !== c.weight) changes.push(`server ${serverKey(c)} weight ${s.weight} -> ${c.weight}`);
  s.index = index;
  s.applySettings(c);
  s.checkPort = c.checkPort ?? null;
  s.checkAddress = c.checkAddress ?? null;
  return s;
}

/**
 * The settings of a running server as a ServerConfig (pen commands change Server objects
 * directly), keeping what only the config knows (its file `state`) from `old`.
 */
export function serverConfigOf(s: Server, old?: ServerConfig): ServerConfig {
  const c: ServerConfig = { ...old, address: s.address, maxConnections: s.maxConnections, hardLimit: s.hardLimit, weight: s.weight, priority: s.priority, acl: s.acl };
  if (s.hostname !== undefined) c.hostname = s.hostname;
  if (s.role === 'backup') c.backup = true;
  if (s.checkPort !== null) c.checkPort = s.checkPort;
  if (s.checkAddress !== null) c.checkAddress = s.checkAddress;
  return c;
}

function structuredCloneConfig(g: GroupConfig): GroupConfig {
  return { ...g, servers: g.servers.map((s) => ({ ...s })) };
}

/**
 * One line per finished connection for the -l log: when, who, where to, why that server, how
 * much, how long, and how it ended.
 */
export function formatLogLine(s: Session): string {
  const server = s.selection.server;
  const failed = s.selection.failedServers;
  const why = failed === null ? s.selection.reason : `${s.selection.reason} after failures on server ${failed.join(',')}`;
  const connectMs = s.connectedMs > 0 ? s.connectedMs - s.connectStartMs : -1;
  return (
    `${new Date(s.startMs).toISOString()} client=${s.clientAddress === '' ? 'unix' : `${s.clientAddress}:${s.clientPort}`} ` +
    `server=${server === null ? '-' : formatAddress(server.address as Address)} ` +
    `why="${why}" bytes_in=${s.client.bytesRead} bytes_out=${s.server.bytesRead} ` +
    `connect_ms=${connectMs} duration_ms=${s.endMs - s.startMs} end=${s.reason ?? 'client-closed'}` +
    (s.facts === null ? '' : formatFacts(s.facts))
  );
}

/** TLS fields of a log line: protocol (or passthrough), server name, ALPN, client certificate. */
function formatFacts(f: ConnectionFacts): string {
  const quote = (v: string): string => `"${v.replace(/["\\]/g, '\\$&')}"`;
  let out = ` tls=${f.terminated ? (f.tlsVersion ?? '-') : 'passthrough'} sni=${f.serverName ?? '-'} alpn=${f.alpn.length > 0 ? f.alpn.join(',') : '-'}`;
  if (f.terminated) out += ` cipher=${f.cipher ?? '-'} resumed=${f.resumed ? 1 : 0}`;
  if (f.clientIdentity !== null) out += ` client_cert=${quote(f.clientIdentity)}`;
  return out;
}
