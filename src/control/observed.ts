/**
 * What the control plane reads of the running balancer, declared here so that control/ depends
 * on no other plane's objects: app's Balancer, GroupRuntime, ListenerRuntime and Session satisfy
 * these interfaces structurally, and app passes them in. Everything is read at request or scrape
 * time; nothing here is called per connection event.
 */
import type { Address } from '../core/address.ts';
import type { ClientEntry } from '../core/clients/client-table.ts';
import type { Clock } from '../core/clock.ts';
import type { AdminState, Server } from '../core/servers/server.ts';
import type { TerminationReason } from '../core/termination.ts';
import type { GroupConfig, ServerConfig } from '../config/model.ts';

/** Where a line goes: the process's diagnostics (stderr), with pen's -d debug levels. */
export interface Diagnostics {
  info(msg: string): void;
  debug(level: number, msg: string): void;
  error(msg: string): void;
}

/** Per-group counters of the all-full queue and of closed connections. */
export interface ObservedGroupStats {
  readonly queued: number;
  /** Clients that waited and were then given a server. */
  readonly queueServed: number;
  readonly queueTimeouts: number;
  readonly queueFull: number;
  readonly maxAgeClosed: number;
  readonly closedOnDown: number;
}

/** A group of servers with its selector and client table. */
export interface ObservedGroup {
  readonly name: string;
  readonly config: GroupConfig;
  readonly servers: readonly Server[];
  readonly selector: { allServers(): Iterable<Server> };
  readonly clients: { readonly size: number; readonly capacity: number; readonly expiryMs: number; values(): Iterable<ClientEntry> };
  readonly queueLength: number;
  readonly stats: ObservedGroupStats;
}

/** A listener and its counters (TLS ones are zero on plain listeners). */
export interface ObservedListener {
  readonly name: string;
  readonly config: { readonly address: Address; readonly acceptProxy?: unknown };
  readonly group: { readonly name: string };
  /** 'plain', or a TLS mode (termination, passthrough). */
  readonly mode: string;
  /** Bound (non-null) or not. */
  readonly handle: unknown;
  readonly active: number;
  readonly accepted: number;
  readonly bytesFromClients: number;
  readonly bytesToClients: number;
  readonly handshakeFailures: number;
  readonly handshakes: { readonly ok: number; readonly resumed: number; readonly inProgress: number; readonly failures: Readonly<Record<string, number>> };
  /** accept_proxy listeners: PROXY headers read by version, failures by reason. */
  readonly proxy?: { readonly v1: number; readonly v2: number; readonly failures: Readonly<Record<string, number | undefined>> };
  /** A UDP listener's sessions and datagram counters while bound (docs/udp.md); absent or null on TCP. */
  readonly udp?: ObservedUdp | null;
  /** An HTTP listener's request counters and pool while bound (docs/http.md); absent or null otherwise. */
  readonly http?: ObservedHttp | null;
}

/** An HTTP listener's proxy as metrics read it (app/http/http-proxy.ts fits); O(1) counters kept per request. */
export interface ObservedHttp {
  /** Requests and WebSocket tunnels under way. */
  readonly inFlight: number;
  /** Requests answered, by group name: counts by status class, index 1 to 5 for 1xx to 5xx. */
  readonly requests: ReadonlyMap<string, ArrayLike<number>>;
  /** Fulcrum's own error answers (no server answered), by status. */
  readonly errorAnswers: ReadonlyMap<number, number>;
  /** Time from each request's arrival to its server's response head, in the fixed log buckets of core/servers/latency-histogram.ts. */
  readonly responseHead: { readonly counts: ArrayLike<number>; readonly count: number; readonly sumMs: number };
  readonly pool: { stats(): { readonly open: number; readonly idle: number; readonly waiting: number; readonly opened: number; readonly reused: number } };
}

/** A UDP listener's relay as metrics and views read it (app/udp/udp-relay.ts fits). */
export interface ObservedUdp {
  readonly stats: {
    readonly datagramsFromClients: number;
    readonly bytesFromClients: number;
    readonly datagramsToServers: number;
    readonly datagramsFromServers: number;
    readonly bytesFromServers: number;
    readonly datagramsToClients: number;
    readonly refused: Readonly<Record<string, number>>;
    readonly unreachable: number;
    readonly unansweredFailures: number;
    readonly sendDrops: number;
  };
  readonly table: {
    readonly size: number;
    readonly limits: { readonly maxSessions: number; readonly maxPerSource: number; readonly idleTimeoutMs: number; readonly returnFactor: number; readonly returnFloorBytes: number };
    readonly stats: {
      readonly opened: number;
      readonly expired: number;
      readonly evicted: number;
      readonly errored: number;
      readonly sourceRefused: number;
      readonly capDroppedDatagrams: number;
      readonly capDroppedBytes: number;
    };
  };
}

/** What a TLS or passthrough gate learnt of a connection. */
export interface SessionTlsFacts {
  readonly serverName: string | null;
  readonly alpn: readonly string[];
  readonly clientIdentity: string | null;
  readonly clientFingerprint: string | null;
  readonly tlsVersion: string | null;
  readonly cipher: string | null;
  readonly resumed: boolean;
  readonly terminated: boolean;
}

/** The last finished connections (a ring buffer filled as they end), oldest first. */
export interface RecentSessions {
  toArray(): readonly SessionRecord[];
}

/** A connection as the access log (finished) and the connection list (open) see it. */
export interface SessionRecord {
  readonly id: number;
  /** The group that owns it (read for its name and algorithm). */
  readonly owner: unknown;
  readonly listener: { readonly name: string } | null;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** The server chosen (the one that served, once connected), or null. */
  readonly server: Server | null;
  /** Why that server was chosen (tracked, algorithm, failover ...). */
  readonly reason: string;
  readonly connecting: boolean;
  readonly startMs: number;
  readonly connectStartMs: number;
  readonly connectedMs: number;
  readonly endMs: number;
  readonly client: { readonly bytesRead: number };
  readonly serverSide: { readonly bytesRead: number };
  /** How it ended (docs/termination-codes.md), or null while it lasts. */
  readonly termination: TerminationReason | null;
  readonly failedServers: readonly Server[] | null;
  readonly connectErrors: readonly string[] | null;
  readonly facts: SessionTlsFacts | null;
}

/**
 * One HTTP mode request or WebSocket tunnel as the access log sees it when it ends (app/http's
 * Exchange and WsTunnel are such records themselves; docs/http.md lists the line's fields).
 */
export interface HttpRequestRecord {
  readonly listener: { readonly name: string };
  /** The group it went to (read for its name and algorithm). */
  readonly group: unknown;
  readonly websocket: boolean;
  /** The client's address (IPv4-mapped addresses as IPv4) and port. */
  readonly st: { readonly clientKey: string; readonly clientPort: number; readonly reason: string };
  readonly method: string;
  /** The request target as the client sent it (origin form: path and query). */
  readonly target: string;
  readonly host: string | null;
  /** The answer's status (the server's, 101 for a tunnel, or one of Fulcrum's own); 0 when none was given. */
  readonly status: number;
  /** The status is Fulcrum's own answer, not a server's. */
  readonly own: boolean;
  readonly startMs: number;
  /** When the response head (or Fulcrum's answer, or the upgrade) was given; 0 if never. */
  readonly headMs: number;
  readonly endMs: number;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  /** The server that answered, or the last one tried; null when none was chosen. */
  readonly server: Server | null;
  /** The sticky cookie chose the server. */
  readonly sticky: boolean;
  /** Why the request was sent again: 'connect-failed' (on another server) or 'stale-connection' (on a fresh connection); null if not. */
  readonly retry: string | null;
  /** Attempts that failed before `server`, in order. */
  readonly failures: readonly { readonly server: Server; readonly error: string }[] | null;
  /** Requests the backend connection had carried with this one (1: new, more: reused from the pool); 0 when none was used. */
  readonly connectionUses: number;
  /** How the request ended (docs/http.md). */
  readonly end: string;
  /** What went wrong, in words, when it did (Fulcrum's own answers, aborts); else null. */
  readonly detail: string | null;
}

/** An open connection, which the operator may close. */
export interface OpenSession extends SessionRecord {
  close(reason: TerminationReason, abort: boolean): void;
}

/** Totals since start, by outcome. */
export interface ObservedTotals {
  readonly accepted: number;
  readonly queued: number;
  readonly finished: number;
  readonly bytesFromClients: number;
  readonly bytesToClients: number;
  readonly ends: Readonly<Partial<Record<TerminationReason, number>>>;
}

/** The balancer as views and metrics read it. */
export interface ObservedBalancer {
  readonly clock: Pick<Clock, 'now'>;
  readonly startedMs: number;
  readonly totals: ObservedTotals;
  readonly activeCount: number;
  readonly waitingCount: number;
  readonly listeners: readonly ObservedListener[];
  readonly groups: ReadonlyMap<string, ObservedGroup>;
  allServers(): Iterable<{ group: ObservedGroup; server: Server }>;
  /** Shutting down: /healthz answers 503 so that a VRRP peer takes over (docs/ha.md). */
  readonly stopping?: boolean;
  /** The per-source limits and what they refused (this process). */
  sourceLimits(): SourceLimits;
}

/**
 * The balancer as the admin API changes it. The groups passed back are always ones read from
 * `groups` (method parameters are checked both ways, so app's own group type fits).
 */
/** The per-source limits (global config) and what they did since start (admin API, /metrics). */
export interface SourceLimits {
  readonly maxConnectionsPerSource: number;
  readonly maxNewConnectionsPerSourcePerSecond: number;
  /** Addresses holding a connection now / tracked by the rate limit now. */
  readonly sourcesHolding: number;
  readonly sourcesRated: number;
  /** Connections refused for the per-source connection limit, and for the rate (this process). */
  readonly refusedForConnections: number;
  readonly refusedForRate: number;
  /** Clients that sent nothing, given up for a new client when -x was full ('idle-evicted'). */
  readonly idleEvicted: number;
}

export interface ManagedBalancer extends ObservedBalancer {
  /** 'single', or with --workers 'primary' (holds no connections) or 'worker'. */
  readonly mode: string;
  readonly global: { readonly configFile: string | null; readonly commandFile: string | null };
  readonly sessions: ReadonlyMap<number, OpenSession>;
  findServer(group: ObservedGroup, id: string): Server | undefined;
  setServerAdmin(group: ObservedGroup, server: Server, state: AdminState): void;
  updateServerSettings(group: ObservedGroup, server: Server, patch: Partial<Pick<ServerConfig, 'maxConnections' | 'hardLimit' | 'weight' | 'priority' | 'acl'>>): string[];
  addServer(group: ObservedGroup, sc: ServerConfig): Server;
  removeServer(group: ObservedGroup, server: Server): string[];
  setSourceLimits(patch: { maxConnectionsPerSource?: number | undefined; maxNewConnectionsPerSourcePerSecond?: number | undefined }): string[];
}

/** One reason a reload was refused; file positions when the config file itself is wrong. */
export interface ReloadIssue {
  file: string | null;
  line: number;
  column: number;
  path: string;
  message: string;
}

/** What a reload did (app's Reloader produces it). */
export type ReloadOutcome = (
  | { ok: true; source: string; changes: string[] }
  | { ok: false; source: string | null; message: string; issues: ReloadIssue[] }
) & {
  /** What went wrong beside the config (a log file that could not be reopened); the rest was done. */
  warnings?: string[];
};
