/**
 * Runtime objects built from the config: a group (servers + selector + client table) and a
 * listener (an address bound to a group). Each group is the SessionOwner of its sessions.
 */
import type { Socket } from 'bun';
import { AclTable } from '../core/acl/acl.ts';
import { formatAddress } from '../core/address.ts';
import { balancers } from '../core/balancing/registry.ts';
import { ClientTable } from '../core/clients/client-table.ts';
import type { Clock, Random } from '../core/clock.ts';
import { Selector } from '../core/selector.ts';
import { Server } from '../core/servers/server.ts';
import { Router } from '../core/tls.ts';
import { TLS_DEFAULTS, type GroupConfig, type ListenerConfig, type ServerConfig } from '../config/model.ts';
import { connectTcp, type AcceptHandler, type ListenHandle } from '../dataplane/bun-tcp.ts';
import { connectTls, type GatedAcceptor, type TlsServerSettings } from '../dataplane/bun-tls.ts';
import type { ConnectionFacts, GateFailure } from '../dataplane/gate.ts';
import type { Address } from '../core/address.ts';
import type { Session, SessionOwner, Side } from '../dataplane/session.ts';
import type { StreamSocket } from '../dataplane/socket.ts';
import { GroupTls, ListenerTls, newHandshakeStats, type HandshakeStats } from './tls.ts';

/** What groups and listeners need from the balancer that owns them. */
export interface BalancerHooks {
  readonly idleTimeoutMs: number;
  readonly tcpNoDelay: boolean;
  readonly fastClose: 'off' | 'up' | 'down' | 'both';
  /** Bounds the connections in a TLS handshake or ClientHello read at once, per listener (-x). */
  readonly maxConnections: number;
  coarseNow(): number;
  /** `group`: chosen by an SNI route; `facts`: what a TLS or passthrough gate learnt. */
  accept(listener: ListenerRuntime, socket: Socket<Side>, facts?: ConnectionFacts | null, group?: GroupRuntime): void;
  /** A group by name (routes name groups). */
  groupNamed(name: string): GroupRuntime | undefined;
  sessionConnected(session: Session): void;
  sessionEnded(session: Session): void;
}

export function makeServer(index: number, c: ServerConfig, role: Server['role'] = 'regular'): Server {
  return new Server(index, { ...c }, role);
}

export function serverKey(c: { address: Address }): string {
  return formatAddress(c.address);
}

export class GroupRuntime implements SessionOwner {
  config: GroupConfig;
  readonly selector: Selector;
  readonly clients: ClientTable;
  readonly #hooks: BalancerHooks;
  /** TLS toward the servers (re-encryption), or null for plain TCP. */
  tls: GroupTls | null = null;

  constructor(config: GroupConfig, acls: AclTable, hooks: BalancerHooks, clock: Clock, random: Random) {
    this.config = config;
    this.#hooks = hooks;
    this.clients = new ClientTable(config.clientsMax, config.trackingMs);
    const kind = balancers[config.algorithm];
    this.selector = new Selector({
      servers: config.servers.map((s, i) => makeServer(i, s)),
      balancer: kind.create(random),
      needsClientHash: kind.hashesClient,
      settings: {
        tracking: config.tracking,
        saveTracking: config.saveTracking,
        stubborn: config.stubborn,
        hashSourcePort: config.hashSourcePort,
        blacklistMs: config.blacklistMs,
        clientAcl: config.clientAcl,
      },
      acls,
      clients: this.clients,
      clock,
    });
    this.selector.emergency = config.emergency === null ? null : makeServer(-1, config.emergency, 'emergency');
    this.selector.abuse = config.abuse === null ? null : makeServer(-2, config.abuse, 'abuse');
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
  get fastClose(): 'off' | 'up' | 'down' | 'both' {
    return this.#hooks.fastClose;
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
    this.#hooks.sessionConnected(session);
  }
  sessionEnded(session: Session): void {
    this.#hooks.sessionEnded(session);
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
    const s = this.selector.settings;
    s.tracking = this.config.tracking;
    s.saveTracking = this.config.saveTracking;
    s.stubborn = this.config.stubborn;
    s.hashSourcePort = this.config.hashSourcePort;
    s.blacklistMs = this.config.blacklistMs;
    s.clientAcl = this.config.clientAcl;
    this.clients.setCapacity(this.config.clientsMax);
    this.clients.setExpiry(this.config.trackingMs);
  }
}

export type ListenerMode = 'plain' | 'terminate' | 'passthrough';

export function listenerMode(c: ListenerConfig): ListenerMode {
  if (c.tls !== undefined && c.tls !== null) return 'terminate';
  return c.sniRoutes !== undefined && c.sniRoutes.length > 0 ? 'passthrough' : 'plain';
}

export class ListenerRuntime implements AcceptHandler, GatedAcceptor {
  config: ListenerConfig;
  group: GroupRuntime;
  handle: ListenHandle | null = null;
  accepted = 0;
  /** TLS termination state (certificates, contexts), or null. */
  tls: ListenerTls | null = null;
  /** Routes by SNI / ALPN / client identity to group names, or null without routes. */
  router: Router<string> | null = null;
  /** Handshakes (TLS) or ClientHello reads (passthrough): successes and failures by reason. */
  readonly handshakes: HandshakeStats = newHandshakeStats();
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
      return false;
    }
    h.inProgress++;
    return true;
  }

  gateFailed(reason: GateFailure, detail: string): void {
    const h = this.handshakes;
    h.inProgress--;
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
