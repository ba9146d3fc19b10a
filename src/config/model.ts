/**
 * The resolved configuration that the balancer runs from. Both front ends produce it: pen's
 * command line (pen-args.ts, plus -F/-o pen commands) and the YAML config file (yaml/parse.ts).
 * Times are milliseconds; 0 means "off" wherever pen uses 0 that way.
 */
import type { Address } from '../core/address.ts';
import type { AclEntry } from '../core/acl/acl.ts';
import type { AlgorithmName } from '../core/balancing/registry.ts';
import type { CheckSpec } from '../core/health/check-spec.ts';
import type { AdminState } from '../core/servers/server.ts';
import type { GroupTlsConfig, ListenerTlsConfig, SniRouteConfig } from './tls-settings.ts';

export interface ServerConfig {
  address: Address;
  /** Host name as written (re-resolved on reload), when the address was given by name. */
  hostname?: string;
  maxConnections: number;
  hardLimit: number;
  weight: number;
  priority: number;
  acl: number;
  /** Used only when no primary server of the group is up. */
  backup?: boolean;
  /** Check this port / host instead of the server's own (a health endpoint). */
  checkPort?: number;
  checkAddress?: string;
  /** Operator state from the config file (applied at start, and on reload when it changed). */
  state?: AdminState;
  /**
   * With workers: the server's slot in shared memory, which the primary assigns and writes into
   * the configuration it sends to the workers (docs/workers.md). Never in a config file.
   */
  sharedSlot?: number;
}

/** Passive health: how failures on real traffic eject a server (see core/health/outlier.ts). */
export interface OutlierConfig {
  /** Failures in a row before ejection (pen: 1). The first ejection lasts `blacklistMs`. */
  consecutiveFailures: number;
  /** Bound of the doubling ejection time; 0 = fixed at blacklistMs (pen). */
  maxEjectionMs: number;
  /** Resets and closes before the server's first byte count as failures. */
  earlyResets: boolean;
}

export interface GroupConfig {
  name: string;
  algorithm: AlgorithmName;
  /** Remember each client's server (pen default; off with -r). */
  tracking: boolean;
  /** Save choices in the client table (off with -N). */
  saveTracking: boolean;
  stubborn: boolean;
  /** pen's `-h -r`: mix the client's source port into the hash (pen PR #18). */
  hashSourcePort: boolean;
  /** Start each server connection with a PROXY protocol header (v1 text or v2 binary). */
  sendProxy: 'off' | 'v1' | 'v2';
  /** Client table slots (-c). */
  clientsMax: number;
  /** Client table expiry (-T), 0 = never. */
  trackingMs: number;
  blacklistMs: number;
  connectTimeoutMs: number;
  clientAcl: number;
  servers: ServerConfig[];
  emergency: ServerConfig | null;
  abuse: ServerConfig | null;
  /** TLS toward the servers (re-encryption); absent or null = plain TCP. */
  tls?: GroupTlsConfig | null;
  /** Active health check of every server (and backup) of the group; null = none. */
  check: CheckSpec | null;
  /** Agent check of every server; null = none. */
  agentCheck: CheckSpec | null;
  outlier: OutlierConfig;
  /** A server returning to rotation ramps its weight up over this time; 0 = at once. */
  slowStartMs: number;
  /** Further connect attempts on other servers after a failure; -1 = each server once (pen). */
  retries: number;
  /** Clients waiting when every eligible server is full; 0 = no queue (refused at once). */
  queueMax: number;
  /** How long a client may wait in that queue. */
  queueTimeoutMs: number;
  /** Close connections older than this (gracefully), so that long-lived clients rebalance; 0 = never. */
  maxConnectionAgeMs: number;
  /** The age limit varies by up to this fraction per connection (0..1), so they do not expire together. */
  maxConnectionAgeJitter: number;
  /** At most this many connections closed per second for their age; 0 = no limit. */
  drainBudget: number;
  /** What happens to the connections of a server that goes down. */
  onServerDown: 'keep' | 'close';
  /** Backups: the first available in order, or in turn. */
  backupBalance: 'first' | 'roundrobin';
  /** HTTP mode: the cookie that sticks a client to its server (HAProxy's `cookie NAME insert indirect nocache`); absent or null = none. */
  stickyCookie?: string | null;
}

export interface ListenerConfig {
  name: string;
  address: Address;
  /** The address as the user wrote it (pen's `listen` command answers with this text). */
  spec?: string;
  /** The group served when no route matches (the only group without routes). */
  group: string;
  /** TLS termination; absent or null = the bytes are forwarded as they are. */
  tls?: ListenerTlsConfig | null;
  /**
   * Routes by server name (and ALPN, client identity). With `tls` they apply after the handshake;
   * without it the listener reads the ClientHello, routes, and passes the encrypted stream through.
   */
  sniRoutes?: SniRouteConfig[];
  /** Passthrough: how long a client may take to send its ClientHello. */
  prereadTimeoutMs?: number;
  /**
   * PROXY protocol in (v1 or v2): every connection starts with a header naming the real client,
   * accepted only from `trusted` addresses/CIDRs and within `timeoutMs`; absent = no header read.
   */
  acceptProxy?: AcceptProxyConfig | null;
  /** UDP load balancing (pen -U, docs/udp.md); absent or null = a TCP listener. */
  udp?: UdpListenerConfig | null;
  /** pen's -H: X-Forwarded-For (and X-Forwarded-Proto) lines added to the clients' HTTP requests (docs/http.md). */
  forwardedFor?: boolean;
  /** HTTP mode (`mode: http`, docs/http.md): per-request balancing; absent or null = bytes are forwarded as they are. */
  http?: HttpListenerConfig | null;
}

/** A routing rule of an HTTP listener: first match wins (docs/http.md). */
export interface HttpRouteConfig {
  /** The Host to match (case-insensitive, port ignored), or null for any. */
  host: string | null;
  /** The path prefix to match, or null for any. */
  pathPrefix: string | null;
  group: string;
}

/** An HTTP listener's settings (docs/http.md). */
export interface HttpListenerConfig {
  routes: HttpRouteConfig[];
  /** Peers whose X-Forwarded-For / Forwarded are kept and appended to; anyone else's are replaced. */
  trustedProxies: string[];
  /** Backend connections: the most per server (idle and busy) and how long an idle one is kept. */
  pool: { maxPerServer: number; idleTimeoutMs: number };
  /** How long a server may take to begin its response (504 after it). */
  responseTimeoutMs: number;
  /** From the connection's start or the end of an answer, how long the client has to complete its next request's head (closed after it, with 408 if part of one came). */
  headerTimeoutMs: number;
  /** The largest request body (413 above it). */
  maxBodyBytes: number;
  /** The longest request head: request line and fields (431 above it). */
  maxHeadBytes: number;
  /** Files served as the body of Fulcrum's own error answers, by status (read at start and on reload). */
  errorPages?: Readonly<Record<string, string>>;
}

export const HTTP_DEFAULTS = { maxPerServer: 64, idleTimeoutMs: 30_000, responseTimeoutMs: 30_000, headerTimeoutMs: 10_000, maxBodyBytes: 10 * 1024 * 1024, maxHeadBytes: 32 * 1024 } as const;

/** A UDP listener's session settings (docs/udp.md). */
export interface UdpListenerConfig {
  /** A session with no datagram either way for this long ends; 0 = never; null = the global idle timeout (pen's idle_timeout). */
  idleTimeoutMs: number | null;
  /** The most sessions at once (the least recently active one is evicted); null = the global -x (pen). */
  maxSessions: number | null;
  /** The most sessions of one source address; 0 = no limit. */
  maxPerSource: number;
  /** Bytes a session may return before its client sends again: max(floor, factor × received); factor 0 = no cap. */
  returnFactor: number;
  returnFloorBytes: number;
  /** This many sessions in a row that got no reply count as a failure of their server; 0 = off. */
  unansweredSessions: number;
  /** A session without a reply this long after its first datagram counts as unanswered. */
  replyTimeoutMs: number;
}

/**
 * UDP settings under pen's -U: pen's idle_timeout and -x, and no silence detection (pen has
 * none); the amplification limits are Fulcrum's and on (docs/udp.md, differences from pen).
 */
export function penUdpConfig(): UdpListenerConfig {
  return { idleTimeoutMs: null, maxSessions: null, maxPerSource: 64, returnFactor: 3, returnFloorBytes: 1232, unansweredSessions: 0, replyTimeoutMs: 5_000 };
}

/** The config file's defaults for a `protocol: udp` listener. */
export function defaultUdpConfig(): UdpListenerConfig {
  return { ...penUdpConfig(), idleTimeoutMs: 30_000, maxSessions: 10_000, unansweredSessions: 10 };
}

export interface AcceptProxyConfig {
  /** Addresses and CIDR blocks allowed to send a header (the balancers in front). */
  trusted: string[];
  /** How long a trusted peer may take to send the whole header. */
  timeoutMs: number;
}

/** How long the PROXY header may take by default: it is one small write from a balancer. */
export const PROXY_TIMEOUT_DEFAULT_MS = 3_000;

/** The HTTP admin listener (admin API, /metrics, dashboard); off unless configured. */
export interface AdminConfig {
  /** Loopback `host:port` or a Unix socket path. */
  address: Address;
  /** File holding the bearer token that state-changing requests need; null = read-only API. */
  tokenFile: string | null;
  /** Allow a non-loopback TCP address (refused otherwise). */
  allowRemote: boolean;
}

/** The access log: one line per finished connection (docs/logging.md). */
export interface AccessLogConfig {
  /** File path, or "-" for standard output. */
  path: string;
  format: 'json' | 'text';
}

/**
 * What the command line sets or what is read once at start: a reload of the config file keeps
 * the running values (`reloadedGlobal`). Adding a field here is all it takes to protect it.
 */
export interface StartGlobals {
  /** pen's -C: the control port or socket path as written (`control` answers with it); null = none. */
  control: string | null;
  /** pen's -X: the control port accepts `exit`. */
  controlExit: boolean;
  /** pen's -F file, re-read on SIGHUP. */
  commandFile: string | null;
  /** The YAML config file, re-read on SIGHUP. */
  configFile: string | null;
  /**
   * Processes that serve traffic, sharing the listening ports (docs/workers.md); 'auto' = one per
   * CPU. 1 = no separate workers: the process serves itself. Read at start only.
   */
  workers: number | 'auto';
  /** Admin listener (a reload keeps the running one). */
  admin: AdminConfig | null;
  /** Access log (SIGHUP reopens the file). */
  accessLog: AccessLogConfig | null;
  /** Client tracking tables are saved here on stop and loaded on start. */
  stateFile: string | null;
  /**
   * Where diagnostics go: `stderr`, `syslog`, `syslog:PATH` or a file (docs/operations.md);
   * null = the default (stderr in the foreground, syslog when daemonised). Not pen's -l log.
   */
  diagnosticsLog: string | null;
  /** State shared with other instances through Redis (docs/cluster.md); null = this instance alone. */
  cluster: ClusterConfig | null;
}

/** The `cluster` section: where the instances of one cluster share their state (docs/cluster.md). */
export interface ClusterConfig {
  /** A redis://, rediss://, valkey:// or valkeys:// URL (credentials and database number included). */
  redis: string;
  /** Prefix of every key and of the channel, so that several clusters can share one Redis. */
  keyPrefix: string;
  /** This instance's name in the shared state and the logs; null = host name and pid. */
  instance: string | null;
}

/** What a reload of the config file (and pen's commands) may change. */
export interface ReloadableGlobals {
  /** -x: simultaneous connections; beyond it new clients wait (bounded by backlog). */
  maxConnections: number;
  /** Connects in progress at once (pen's pending_max). */
  pendingMax: number;
  /** -q: accepted clients that may wait for a free slot. */
  backlog: number;
  /**
   * Connections one client address may hold at once (waiting, in a handshake or established);
   * 0 = no limit (pen's command line). Beyond it a new connection from that address is closed at
   * once, so that one address cannot take every -x slot (docs/hardening.md).
   */
  maxPerSource: number;
  /**
   * New connections one client address may open per second (a token bucket per address, bursts
   * of one second's worth); 0 = no limit (pen's command line). Beyond it the new connection is
   * closed at once ('rate-limit'), before it costs a handshake or a server connect.
   */
  maxNewPerSource: number;
  /** -m: accepts per event in pen; informational with Bun (the runtime accepts in batches). */
  multiAccept: number;
  idleTimeoutMs: number;
  tcpNoDelay: boolean;
  /** pen's tcp_fastclose: 'off' passes half-closes on; otherwise close both sides at the first FIN. */
  tcpFastClose: 'off' | 'up' | 'down' | 'both';
  controlAcl: number;
  logFile: string | null;
  /** What -l writes: pen's line per request chunk (`pen`), or Fulcrum's line per finished connection. */
  logFormat: 'pen' | 'fulcrum';
  pidFile: string | null;
  statusFile: string | null;
  user: string | null;
  debug: number;
  asciiDumps: boolean;
  foreground: boolean;
}

export type GlobalConfig = StartGlobals & ReloadableGlobals;

/** The start-only keys; `satisfies` makes the compiler keep this list equal to StartGlobals. */
const START_KEYS = {
  control: true,
  controlExit: true,
  commandFile: true,
  configFile: true,
  workers: true,
  admin: true,
  accessLog: true,
  stateFile: true,
  diagnosticsLog: true,
  cluster: true,
} as const satisfies Record<keyof StartGlobals, true>;

/** The global settings after a reload: the reloadable part of `next`, the start-only part of `running`. */
export function reloadedGlobal(running: GlobalConfig, next: GlobalConfig): GlobalConfig {
  const out: GlobalConfig = { ...next };
  const keep = <K extends keyof StartGlobals>(k: K): void => {
    out[k] = running[k];
  };
  for (const k of Object.keys(START_KEYS) as (keyof StartGlobals)[]) keep(k);
  return out;
}

export interface FulcrumConfig {
  global: GlobalConfig;
  acls: { list: number; entry: AclEntry }[];
  groups: GroupConfig[];
  listeners: ListenerConfig[];
}

/** The most workers: each is a process with its own memory, and more would be a typing mistake. */
export const MAX_WORKERS = 256;

/** pen's defaults (pen -h, checked against pen 0.34.1). */
export const PEN_DEFAULTS = {
  clientsMax: 2048,
  maxConnections: 500,
  blacklistMs: 30_000,
  connectTimeoutMs: 3_000,
  trackingMs: 0,
  pendingMax: 100,
  backlog: 4096,
  multiAccept: 100,
} as const;

/**
 * The config file's per-source limit when not set: a quarter of max_connections, so that one
 * address cannot take every slot, but at least 16, so that a small max_connections (a lab, a
 * test) is not also a tight per-address limit (a browser opens several connections).
 */
export function defaultMaxPerSource(maxConnections: number): number {
  return Math.max(16, Math.floor(maxConnections / 4));
}

export function defaultGlobal(): GlobalConfig {
  return {
    maxConnections: PEN_DEFAULTS.maxConnections,
    pendingMax: PEN_DEFAULTS.pendingMax,
    backlog: PEN_DEFAULTS.backlog,
    maxPerSource: 0,
    maxNewPerSource: 0,
    multiAccept: PEN_DEFAULTS.multiAccept,
    idleTimeoutMs: 0,
    tcpNoDelay: false,
    tcpFastClose: 'off',
    controlAcl: 0,
    control: null,
    controlExit: false,
    logFile: null,
    logFormat: 'pen',
    pidFile: null,
    statusFile: null,
    user: null,
    debug: 0,
    asciiDumps: false,
    foreground: false,
    commandFile: null,
    configFile: null,
    workers: 1,
    admin: null,
    accessLog: null,
    stateFile: null,
    diagnosticsLog: null,
    cluster: null,
  };
}

export function defaultGroup(name: string): GroupConfig {
  return {
    name,
    algorithm: 'roundrobin',
    tracking: true,
    saveTracking: true,
    stubborn: false,
    hashSourcePort: false,
    sendProxy: 'off',
    clientsMax: PEN_DEFAULTS.clientsMax,
    trackingMs: PEN_DEFAULTS.trackingMs,
    blacklistMs: PEN_DEFAULTS.blacklistMs,
    connectTimeoutMs: PEN_DEFAULTS.connectTimeoutMs,
    clientAcl: 0,
    servers: [],
    emergency: null,
    abuse: null,
    check: null,
    agentCheck: null,
    outlier: { consecutiveFailures: 1, maxEjectionMs: 0, earlyResets: false },
    slowStartMs: 0,
    retries: -1,
    queueMax: 0,
    queueTimeoutMs: 0,
    maxConnectionAgeMs: 0,
    maxConnectionAgeJitter: 0,
    drainBudget: 0,
    onServerDown: 'keep',
    backupBalance: 'first',
  };
}

export function serverConfig(address: Address, fields: Partial<Omit<ServerConfig, 'address'>> = {}): ServerConfig {
  return { address, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0, ...fields };
}
