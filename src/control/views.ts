/**
 * The JSON shapes of the admin API and the dashboard's live feed (docs/admin-api.md). Building
 * a view walks what it shows once; nothing here runs on the connection path.
 */
import { formatAddress } from '../core/address.ts';
import type { ObservedUdp } from './observed.ts';
import type { ClientEntry } from '../core/clients/client-table.ts';
import type { Server, ServerStatus } from '../core/servers/server.ts';
import type { ObservedBalancer, ObservedGroup, ObservedListener, RecentSessions, SessionRecord, SourceLimits } from './observed.ts';

/** Finished connections the live feed carries (newest first); the API gives the whole ring. */
const RECENT_IN_SNAPSHOT = 15;

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
  /** Why the server is in its state, in words (empty when up); `since` is when that began. */
  why: string;
  since: string | null;
  /** The last active check, or null before the first. */
  last_check: { passed: boolean; detail: string; at: string } | null;
  /** Connect latency since the server was added (fixed log buckets; null before the first connect). */
  connect_ms: { count: number; p50: number | null; p90: number | null; p99: number | null };
  /** The last state changes, oldest first. */
  history: { at: string; state: string; reason: string }[];
}

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);
const round1 = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);

/** Why a server is in its state, and since when (ms, 0 if unknown): the operator's words first. */
export function explain(s: Server, state: ServerStateWord, nowMs: number): { why: string; sinceMs: number } {
  const agentSaid = (word: string): { why: string; sinceMs: number } | null => {
    const last = [...s.history.toArray()].reverse().find((h) => h.state === `agent ${word}`);
    return last === undefined ? null : { why: last.reason, sinceMs: last.atMs };
  };
  switch (state) {
    case 'maintenance':
    case 'drain':
      if (s.admin === state) return { why: `${state} set by ${s.adminReason || 'configuration'}`, sinceMs: s.adminSinceMs };
      return agentSaid(state === 'maintenance' ? 'maint' : 'drain') ?? { why: `agent reports ${s.agent}`, sinceMs: s.lastChangeMs };
    case 'down':
      return { why: s.downReason || (s.agent === 'down' ? 'agent reports down' : 'health check failed'), sinceMs: s.lastChangeMs };
    case 'ejected':
      return { why: `${s.ejectReason || 'connect failed'}; ejected ${s.ejections} time(s) in a row, back in ${Math.ceil((s.blacklistedUntilMs - nowMs) / 1000)} s`, sinceMs: s.ejectedAtMs };
    case 'starting':
      return { why: `slow start: weight × ${Math.round(s.weightScale(nowMs) * 100) / 100}`, sinceMs: s.rampStartMs };
    default:
      return { why: '', sinceMs: s.lastChangeMs };
  }
}

export function serverView(group: { readonly name: string }, s: Server, nowMs: number): ServerView {
  const blacklisted = s.isBlacklisted(nowMs);
  const h = s.connectLatency;
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
    last_change: iso(s.lastChangeMs),
    ...explained(s, nowMs),
    last_check: s.lastCheckMs > 0 ? { passed: s.lastCheckPassed, detail: s.lastCheckDetail, at: new Date(s.lastCheckMs).toISOString() } : null,
    connect_ms: { count: h.count, p50: round1(h.quantile(0.5)), p90: round1(h.quantile(0.9)), p99: round1(h.quantile(0.99)) },
    history: s.history.toArray().map((c) => ({ at: new Date(c.atMs).toISOString(), state: c.state, reason: c.reason })),
  };
}

function explained(s: Server, nowMs: number): { why: string; since: string | null } {
  const e = explain(s, s.status(nowMs), nowMs);
  return { why: e.why, since: iso(e.sinceMs) };
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
    tls_handshakes: l.handshakes.ok,
    tls_failures: Object.fromEntries(Object.entries(l.handshakes.failures).filter(([, n]) => n > 0)),
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

/** What every view of a connection says first: which one, from where, to which server, and why. */
function connectionIdentity(s: SessionRecord): Record<string, unknown> {
  const server = s.server;
  return {
    id: s.id,
    listener: s.listener?.name ?? null,
    group: (s.owner as { name?: string }).name ?? null,
    client: s.clientAddress === '' ? 'unix' : `${s.clientAddress}:${s.clientPort}`,
    server: server === null ? null : formatAddress(server.address),
    why: server === null ? null : s.reason,
  };
}

export function connectionView(s: SessionRecord, nowMs: number): Record<string, unknown> {
  return {
    ...connectionIdentity(s),
    state: s.connecting ? 'connecting' : s.connectedMs > 0 ? 'established' : 'selecting',
    started: new Date(s.startMs).toISOString(),
    age_ms: nowMs - s.startMs,
    bytes_from_client: s.client.bytesRead,
    bytes_to_client: s.serverSide.bytesRead,
  };
}

/** A finished connection: where it went, why there, how it ended. */
export function finishedView(s: SessionRecord): Record<string, unknown> {
  return {
    ...connectionIdentity(s),
    algorithm: (s.owner as { config?: { algorithm?: string } }).config?.algorithm ?? null,
    failed_servers: (s.failedServers ?? []).map((f) => formatAddress(f.address)),
    ended: s.endMs > 0 ? new Date(s.endMs).toISOString() : null,
    duration_ms: s.endMs > 0 ? s.endMs - s.startMs : null,
    connect_ms: s.connectedMs > 0 ? s.connectedMs - s.connectStartMs : null,
    termination: s.termination ?? 'client-closed',
    bytes_from_client: s.client.bytesRead,
    bytes_to_client: s.serverSide.bytesRead,
  };
}

/** The admission FIFO (-x, -q) and each group's all-full queue. */
export function queueView(b: ObservedBalancer): Record<string, unknown> {
  return {
    waiting: b.waitingCount,
    queued_total: b.totals.queued,
    refused_queue_full: b.totals.ends['queue-full'] ?? 0,
    groups: [...b.groups.values()].map((g) => ({
      group: g.name,
      length: g.queueLength,
      max: g.config.queueMax,
      timeout_ms: g.config.queueTimeoutMs,
      queued: g.stats.queued,
      served: g.stats.queueServed,
      timeouts: g.stats.queueTimeouts,
      full: g.stats.queueFull,
    })),
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
export function snapshot(b: ObservedBalancer, version: string, recent: RecentSessions | null = null): Record<string, unknown> {
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
    queue: queueView(b),
    recent: recent === null ? [] : recent.toArray().slice(-RECENT_IN_SNAPSHOT).reverse().map(finishedView),
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
