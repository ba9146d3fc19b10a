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
import type { GroupConfig, ListenerConfig, ServerConfig } from '../config/model.ts';
import { connectTcp, type AcceptHandler, type ListenHandle } from '../dataplane/bun-tcp.ts';
import type { Address } from '../core/address.ts';
import type { Session, SessionOwner, Side } from '../dataplane/session.ts';

/** What groups and listeners need from the balancer that owns them. */
export interface BalancerHooks {
  readonly idleTimeoutMs: number;
  readonly tcpNoDelay: boolean;
  readonly fastClose: 'off' | 'up' | 'down' | 'both';
  coarseNow(): number;
  accept(listener: ListenerRuntime, socket: Socket<Side>): void;
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
    connectTcp(address, side);
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

export class ListenerRuntime implements AcceptHandler {
  config: ListenerConfig;
  group: GroupRuntime;
  handle: ListenHandle | null = null;
  accepted = 0;
  readonly #hooks: BalancerHooks;

  constructor(config: ListenerConfig, group: GroupRuntime, hooks: BalancerHooks) {
    this.config = config;
    this.group = group;
    this.#hooks = hooks;
  }

  accept(socket: Socket<Side>): void {
    this.accepted++;
    this.#hooks.accept(this, socket);
  }
}
