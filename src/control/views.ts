/**
 * The JSON shapes of the admin API and the dashboard's live feed (docs/admin-api.md). Building
 * a view walks what it shows once; nothing here runs on the connection path.
 */
import { formatAddress } from '../core/address.ts';
import type { ObservedUdp } from './observed.ts';
import type { ClientEntry } from '../core/clients/client-table.ts';
import type { Server, ServerStatus } from '../core/servers/server.ts';
import type { ObservedBalancer, ObservedGroup, ObservedListener, SessionRecord, SourceLimits } from './observed.ts';

/**
 * One word for the dashboard and listings (Server.status): `up`, `starting` (slow start),
 * `drain`, `maintenance` (operator or agent), `down` (health checks or agent), `ejected`
 * (blacklisted after failed connects, or ejected by outlier detection).
 */
export type ServerStateWord = ServerStatus;

export interface ServerView {
  group: string;
  /** Position in its list (pen's server number; backups are numbered apart); -1 emergency, -2 abuse. Changes when servers are removed. */
  index: number;
  role: Server['role'];
  /** The stable identity of a server in its group. */
  address: string;
  hostname: string | null;
  state: ServerStateWord;
  admin: Server['admin'];
  healthy: boolean;
  /** What the server's agent reported last (`up` when it has said nothing against it). */
  agent: string;
  down_reason: string;
  /** Blacklisted after failed connects, or ejected by outlier detection, for `blacklisted_for_ms` more. */
  blacklisted: boolean;
  blacklisted_for_ms: number;
  weight: number;
  /** Weight multiplier now: slow start times the agent's percentage (1 = full weight). */
  weight_scale: number;
  priority: number;
  max_connections: number;
  hard_limit: number;
  acl: number;
  connections: number;
  pending: number;
  total_connections: number;
  bytes_to_server: number;
  bytes_from_server: number;
  connect_failures: number;
  connect_timeouts: number;
  early_resets: number;
  ejections: number;
  checks_passed: number;
  checks_failed: number;
  down_transitions: number;
  up_transitions: number;
  /** Time of the last state change, or null. */
  last_change: string | null;
}

export function serverView(group: { readonly name: string }, s: Server, nowMs: number): ServerView {
  const blacklisted = s.isBlacklisted(nowMs);
  return {
    group: group.name,
    index: s.role === 'emergency' ? -1 : s.role === 'abuse' ? -2 : s.index,
    role: s.role,
    address: formatAddress(s.address),
    hostname: s.hostname ?? null,
    state: s.status(nowMs),
    admin: s.admin,
    healthy: s.healthy,
    agent: s.agent,
    down_reason: s.downReason,
    blacklisted,
    blacklisted_for_ms: blacklisted ? s.blacklistedUntilMs - nowMs : 0,
    weight: s.weight,
    weight_scale: Math.round(s.weightScale(nowMs) * 1000) / 1000,
    priority: s.priority,
    max_connections: s.maxConnections,
    hard_limit: s.hardLimit,
    acl: s.acl,
    connections: s.connections,
    pending: s.pending,
    total_connections: s.totalConnections,
    bytes_to_server: s.bytesToServer,
    bytes_from_server: s.bytesFromServer,
    connect_failures: s.connectFailures,
    connect_timeouts: s.connectTimeouts,
    early_resets: s.earlyResets,
    ejections: s.ejections,
    checks_passed: s.checksPassed,
    checks_failed: s.checksFailed,
    down_transitions: s.downTransitions,
    up_transitions: s.upTransitions,
    last_change: s.lastChangeMs > 0 ? new Date(s.lastChangeMs).toISOString() : null,
  };
}

export function groupServers(b: Pick<ObservedBalancer, 'clock'>, group: ObservedGroup): ServerView[] {
  const now = b.clock.now();
  return [...group.selector.allServers()].map((s) => serverView(group, s, now));
}

export function allServers(b: ObservedBalancer): ServerView[] {
  const now = b.clock.now();
  const out: ServerView[] = [];
  for (const { group, server } of b.allServers()) out.push(serverView(group, server, now));
  return out;
}

export function groupView(b: ObservedBalancer, g: ObservedGroup): Record<string, unknown> {
  const c = g.config;
  return {
    name: g.name,
    algorithm: c.algorithm,
    tracking: c.tracking,
    save_tracking: c.saveTracking,
    stubborn: c.stubborn,
    clients_max: g.clients.capacity,
    tracked_clients: g.clients.size,
    tracking_expiry_ms: g.clients.expiryMs,
    blacklist_ms: c.blacklistMs,
    connect_timeout_ms: c.connectTimeoutMs,
    client_acl: c.clientAcl,
    listeners: b.listeners.filter((l) => l.group === g).map((l) => l.name),
    servers: groupServers(b, g),
  };
}

export function listenerView(l: ObservedListener): Record<string, unknown> {
  return {
    name: l.name,
    address: formatAddress(l.config.address),
    group: l.group.name,
    listening: l.handle !== null,
    connections: l.active,
    total_connections: l.accepted,
    bytes_from_clients: l.bytesFromClients,
    bytes_to_clients: l.bytesToClients,
    handshake_failures: l.handshakeFailures,
    protocol: l.mode === 'udp' ? 'udp' : 'tcp',
    ...(l.udp != null ? { udp: udpView(l.udp) } : {}),
  };
}

/** A UDP listener's sessions and datagrams now (connections above count its sessions). */
function udpView(u: ObservedUdp): Record<string, unknown> {
  const t = u.table;
  return {
    sessions: t.size,
    max_sessions: t.limits.maxSessions,
    max_sessions_per_source: t.limits.maxPerSource,
    idle_timeout_ms: t.limits.idleTimeoutMs,
    datagrams_from_clients: u.stats.datagramsFromClients,
    datagrams_to_clients: u.stats.datagramsToClients,
    sessions_evicted: t.stats.evicted,
    source_refused: t.stats.sourceRefused,
    amplification_dropped: t.stats.capDroppedDatagrams,
    server_unreachable: u.stats.unreachable,
  };
}

export function connectionView(s: SessionRecord, nowMs: number): Record<string, unknown> {
  const server = s.selection.server;
  const owner = s.owner as { name?: string };
  return {
    id: s.id,
    listener: s.listener?.name ?? null,
    group: owner.name ?? null,
    client: s.clientAddress === '' ? 'unix' : `${s.clientAddress}:${s.clientPort}`,
    server: server === null ? null : formatAddress(server.address),
    state: s.connecting ? 'connecting' : s.connectedMs > 0 ? 'established' : 'selecting',
    why: server === null ? null : s.selection.reason,
    started: new Date(s.startMs).toISOString(),
    age_ms: nowMs - s.startMs,
    bytes_from_client: s.client.bytesRead,
    bytes_to_client: s.server.bytesRead,
  };
}

export function clientView(g: Pick<ObservedGroup, 'servers'>, c: ClientEntry): Record<string, unknown> {
  const s = c.server >= 0 ? g.servers[c.server] : undefined;
  return {
    client: c.key,
    server_index: c.server,
    server: s === undefined ? null : formatAddress(s.address),
    last_seen: new Date(c.lastSeenMs).toISOString(),
    connects: c.connects,
    bytes_from_client: c.bytesFromClient,
    bytes_to_client: c.bytesToClient,
  };
}

/** What the dashboard receives every tick (server-sent events). */
export function snapshot(b: ObservedBalancer, version: string): Record<string, unknown> {
  const t = b.totals;
  const now = b.clock.now();
  return {
    time: now,
    version,
    pid: process.pid,
    uptime_s: Math.round((now - b.startedMs) / 1000),
    totals: {
      accepted: t.accepted,
      active: b.activeCount,
      waiting: b.waitingCount,
      finished: t.finished,
      bytes_from_clients: t.bytesFromClients,
      bytes_to_clients: t.bytesToClients,
    },
    listeners: b.listeners.map(listenerView),
    servers: allServers(b),
  };
}

/** The per-source limits and what they did (GET /api/v1/source-limits), in the config file's names. */
export function sourceLimitsView(l: SourceLimits): Record<string, unknown> {
  return {
    max_connections_per_source: l.maxConnectionsPerSource,
    max_new_connections_per_source_per_second: l.maxNewConnectionsPerSourcePerSecond,
    sources_holding: l.sourcesHolding,
    sources_rated: l.sourcesRated,
    refused: { 'source-limit': l.refusedForConnections, 'rate-limit': l.refusedForRate },
    idle_evicted: l.idleEvicted,
  };
}
