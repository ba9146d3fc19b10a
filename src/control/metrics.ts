/**
 * Prometheus exposition for GET /metrics. Nothing is counted here: every value is read at
 * scrape time from the O(1) counters the data path already keeps (servers, listeners, the
 * balancer's totals; read through observed.ts), so the connection path pays nothing for metrics.
 *
 * Fulcrum's own families are written straight to text: a scrape builds each server's label set
 * once and then emits one line per server and family, which keeps a scrape of a thousand
 * servers in the low milliseconds (prom-client's generic formatter re-escapes every label of
 * every sample and costs about ten times more). prom-client's default metrics, in their own
 * registry, add the event-loop lag (perf_hooks.monitorEventLoopDelay) and the process figures
 * (CPU, memory, file descriptors).
 *
 * Every name starts with `fulcrum_`; docs/admin-api.md lists them.
 */
import client from 'prom-client';
import { formatAddress } from '../core/address.ts';
import type { Server } from '../core/servers/server.ts';
import { LATENCY_BOUNDS_MS } from '../core/servers/latency-histogram.ts';
import { addHttpFamilies } from './http-metrics.ts';
import { escapeLabel, labelText, num } from './prom-text.ts';
import { addUdpFamilies } from './udp-metrics.ts';
import { TERMINATION_REASONS } from '../core/termination.ts';
import type { ObservedBalancer, ObservedGroup, ObservedListener } from './observed.ts';

/** Reload outcomes, provided by whoever reloads (the Reloader). */
export interface ReloadStats {
  readonly counts: { readonly ok: number; readonly failed: number };
  readonly lastSuccessMs: number;
}

/** The cluster's link to Redis (app/cluster.ts), when the config has a `cluster` section. */
export interface ClusterStatsView {
  readonly up: boolean;
  readonly outages: number;
  readonly published: number;
  readonly received: number;
  readonly pending: number;
}

/** Log files that could not be reopened on SIGHUP (or written), provided by whoever owns them. */
export interface LogStats {
  readonly logReopenFailures: number;
}

/** What one scrape computes once and every family reads. */
interface Scrape {
  nowMs: number;
  /** Every server with its label set, already formatted: `{group="app",server="...",role="regular"}`. */
  servers: { server: Server; labels: string; inner: string }[];
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  emit(out: string[], scrape: Scrape): void;
}

const ADMIN_STATES: readonly Server['admin'][] = ['enabled', 'drain', 'maintenance'];

export class Metrics {
  /** prom-client's default metrics (event loop, process). */
  readonly registry = new client.Registry();
  readonly #families: Family[] = [];
  readonly #b: ObservedBalancer;

  constructor(balancer: ObservedBalancer, opts: { version: string; reloads?: ReloadStats; logs?: LogStats; defaultMetrics?: boolean; cluster?: ClusterStatsView }) {
    this.#b = balancer;
    const b = balancer;
    const family = (name: string, help: string, type: Family['type'], emit: Family['emit']): void => {
      this.#families.push({ name: `fulcrum_${name}`, help, type, emit });
    };
    /** A family of labelled samples computed at scrape time. */
    const add = (name: string, help: string, type: Family['type'], samples: () => { labels: Record<string, string>; value: number }[]): void => {
      const full = `fulcrum_${name}`;
      family(name, help, type, (out) => {
        for (const s of samples()) out.push(`${full}${labelText(s.labels)} ${num(s.value)}`);
      });
    };
    const one = (value: number) => [{ labels: {}, value }];

    add('build_info', 'Fulcrum version and runtime; always 1.', 'gauge', () => [{ labels: { version: opts.version, bun: Bun.version }, value: 1 }]);
    const cluster = opts.cluster;
    if (cluster !== undefined) {
      add('cluster_redis_up', 'Whether the cluster\'s Redis is reachable (1) or this instance serves from its local state (0).', 'gauge', () => one(cluster.up ? 1 : 0));
      add('cluster_redis_outages_total', 'Times the cluster\'s Redis became unreachable.', 'counter', () => one(cluster.outages));
      add('cluster_changes_published_total', 'Changes (clients, operator states, health verdicts) this instance published.', 'counter', () => one(cluster.published));
      add('cluster_changes_received_total', 'Changes received from other instances.', 'counter', () => one(cluster.received));
      add('cluster_changes_pending', 'Local changes waiting to be published (Redis unreachable, or the next batch).', 'gauge', () => one(cluster.pending));
    }
    add('connections_current', 'Connections admitted and not yet finished (connecting or established).', 'gauge', () => one(b.activeCount));
    add('queue_length', 'Accepted clients waiting for a free slot under max_connections / pending_max.', 'gauge', () => one(b.waitingCount));
    add('connections_accepted_total', 'Client connections accepted by all listeners.', 'counter', () => one(b.totals.accepted));
    add('connections_queued_total', 'Client connections that had to wait for a free slot.', 'counter', () => one(b.totals.queued));
    add('connections_ended_total', 'Finished connections by termination code (docs/termination-codes.md).', 'counter', () =>
      TERMINATION_REASONS.map((reason) => ({ labels: { reason }, value: b.totals.ends[reason] ?? 0 })),
    );
    // The per-source limits (docs/hardening.md): gated (TLS, passthrough) refusals are counted here too.
    add('source_limit', 'Per-source limits: connections one client address may hold, new connections per second (0 = none).', 'gauge', () => {
      const l = b.sourceLimits();
      return [
        { labels: { limit: 'connections' }, value: l.maxConnectionsPerSource },
        { labels: { limit: 'new_per_second' }, value: l.maxNewConnectionsPerSourcePerSecond },
      ];
    });
    add('source_refusals_total', 'New connections refused for a per-source limit (source-limit, rate-limit), on every kind of listener.', 'counter', () => {
      const l = b.sourceLimits();
      return [
        { labels: { reason: 'source-limit' }, value: l.refusedForConnections },
        { labels: { reason: 'rate-limit' }, value: l.refusedForRate },
      ];
    });
    add('sources_tracked', 'Client addresses holding a connection (connections), or tracked by the rate limit (rate).', 'gauge', () => {
      const l = b.sourceLimits();
      return [
        { labels: { table: 'connections' }, value: l.sourcesHolding },
        { labels: { table: 'rate' }, value: l.sourcesRated },
      ];
    });

    // Listeners
    const perListener = (value: (l: ObservedListener) => number) => () =>
      b.listeners.map((l) => ({ labels: { listener: l.name, address: formatAddress(l.config.address) }, value: value(l) }));
    add('listener_connections_current', 'Connections accepted by the listener and not yet finished (waiting, connecting or established).', 'gauge', perListener((l) => l.active));
    add('listener_connections_total', 'Connections accepted by the listener.', 'counter', perListener((l) => l.accepted));
    add('listener_bytes_from_clients_total', 'Bytes received from clients, counted when each connection ends.', 'counter', perListener((l) => l.bytesFromClients));
    add('listener_bytes_to_clients_total', 'Bytes sent to clients, counted when each connection ends.', 'counter', perListener((l) => l.bytesToClients));
    add('listener_handshake_failures_total', 'TLS handshakes that failed on the listener (0 for plain TCP).', 'counter', perListener((l) => l.handshakeFailures));
    // TLS and passthrough listeners only (docs/tls.md): handshakes, resumptions, failures by reason.
    const tlsListeners = () => b.listeners.filter((l) => l.mode === 'terminate' || l.mode === 'passthrough');
    add('listener_tls_handshakes_total', 'TLS handshakes completed (or ClientHellos routed, passthrough).', 'counter', () =>
      tlsListeners().map((l) => ({ labels: { listener: l.name, address: formatAddress(l.config.address) }, value: l.handshakes.ok })),
    );
    add('listener_tls_resumed_total', 'TLS handshakes that resumed a session.', 'counter', () =>
      tlsListeners().map((l) => ({ labels: { listener: l.name, address: formatAddress(l.config.address) }, value: l.handshakes.resumed })),
    );
    add('listener_tls_handshakes_in_progress', 'Connections in their TLS handshake (or ClientHello read) now.', 'gauge', () =>
      tlsListeners().map((l) => ({ labels: { listener: l.name, address: formatAddress(l.config.address) }, value: l.handshakes.inProgress })),
    );
    add('listener_tls_failures_total', 'Failed TLS handshakes (or ClientHello reads) by reason.', 'counter', () =>
      tlsListeners().flatMap((l) =>
        Object.entries(l.handshakes.failures).map(([reason, value]) => ({ labels: { listener: l.name, address: formatAddress(l.config.address), reason }, value })),
      ),
    );

    // Listeners with accept_proxy only (docs/config.md): PROXY headers read, failures by reason.
    const proxied = () => b.listeners.filter((l) => l.proxy !== undefined && l.config.acceptProxy != null);
    add('listener_proxy_headers_total', 'PROXY protocol headers read, by version.', 'counter', () =>
      proxied().flatMap((l) => [1, 2].map((v) => ({ labels: { listener: l.name, address: formatAddress(l.config.address), version: `v${v}` }, value: v === 1 ? l.proxy!.v1 : l.proxy!.v2 }))),
    );
    add('listener_proxy_failures_total', 'Connections closed before or in their PROXY header, by reason (untrusted source, bad header, timeout ...).', 'counter', () =>
      proxied().flatMap((l) => Object.entries(l.proxy!.failures).map(([reason, value]) => ({ labels: { listener: l.name, address: formatAddress(l.config.address), reason }, value: value ?? 0 }))),
    );

    addUdpFamilies(add, b);
    addHttpFamilies(add, (name, help, type, emit) => family(name, help, type, (out) => emit(out)), b);

    // Groups
    const perGroup = (value: (g: ObservedGroup) => number) => () => [...b.groups.values()].map((g) => ({ labels: { group: g.name }, value: value(g) }));
    add('group_tracked_clients', 'Entries in the group\'s client tracking table.', 'gauge', perGroup((g) => g.clients.size));
    add('group_servers', 'Primary servers configured in the group (backups not counted).', 'gauge', perGroup((g) => g.servers.length));
    add('group_queue_length', 'Clients waiting in the group\'s queue because every eligible server is full.', 'gauge', perGroup((g) => g.queueLength));
    add('group_queued_total', 'Clients that waited in the group\'s queue.', 'counter', perGroup((g) => g.stats.queued));
    add('group_queue_timeouts_total', 'Clients closed after waiting queue_timeout in the group\'s queue.', 'counter', perGroup((g) => g.stats.queueTimeouts));
    add('group_queue_full_total', 'Clients refused because the group\'s queue was full.', 'counter', perGroup((g) => g.stats.queueFull));
    add('group_max_age_closed_total', 'Connections closed for their age (max_connection_age).', 'counter', perGroup((g) => g.stats.maxAgeClosed));
    add('group_closed_on_down_total', 'Connections closed because their server went down (on_server_down: close).', 'counter', perGroup((g) => g.stats.closedOnDown));

    // Servers: one line per server, label sets formatted once per scrape.
    const perServer = (name: string, help: string, type: Family['type'], value: (s: Server, now: number) => number): void => {
      const full = `fulcrum_${name}`;
      family(name, help, type, (out, sc) => {
        for (const e of sc.servers) out.push(`${full}${e.labels} ${num(value(e.server, sc.nowMs))}`);
      });
    };
    perServer('server_up', '1 when the server takes new connections (enabled, healthy, not blacklisted), else 0.', 'gauge', (s, now) => (s.isUnavailable(now) ? 0 : 1));
    perServer('server_healthy', 'Health as observed by checks: 1 healthy, 0 down.', 'gauge', (s) => (s.healthy ? 1 : 0));
    perServer('server_blacklisted', '1 while the server is blacklisted after a failed connect or ejected by outlier detection.', 'gauge', (s, now) => (s.isBlacklisted(now) ? 1 : 0));
    family('server_admin_state', 'Operator state: 1 for the current one of enabled, drain, maintenance.', 'gauge', (out, sc) => {
      for (const e of sc.servers) {
        for (const state of ADMIN_STATES) out.push(`fulcrum_server_admin_state{${e.inner},state="${state}"} ${e.server.admin === state ? 1 : 0}`);
      }
    });
    perServer('server_weight', 'Configured weight.', 'gauge', (s) => s.weight);
    perServer('server_max_connections', 'Soft connection limit (0 = unlimited).', 'gauge', (s) => s.maxConnections);
    perServer('server_connections_current', 'Established connections to the server.', 'gauge', (s) => s.connections);
    perServer('server_connections_pending', 'Connects in progress to the server (its queue).', 'gauge', (s) => s.pending);
    perServer('server_connections_total', 'Connections established to the server.', 'counter', (s) => s.totalConnections);
    perServer('server_bytes_to_server_total', 'Bytes sent to the server (client to server direction).', 'counter', (s) => s.bytesToServer);
    perServer('server_bytes_from_server_total', 'Bytes received from the server (server to client direction).', 'counter', (s) => s.bytesFromServer);
    perServer('server_connect_failures_total', 'Connects to the server that failed (refused, unreachable, reset).', 'counter', (s) => s.connectFailures);
    perServer('server_connect_timeouts_total', 'Connects to the server that timed out.', 'counter', (s) => s.connectTimeouts);
    perServer('server_early_resets_total', 'Connections the server reset or closed before its first byte (when outlier detection watches them).', 'counter', (s) => s.earlyResets);
    perServer('server_ejections_total', 'Times outlier detection ejected the server.', 'counter', (s) => s.ejections);
    perServer('server_checks_passed_total', 'Active health checks that passed.', 'counter', (s) => s.checksPassed);
    perServer('server_checks_failed_total', 'Active health checks that failed.', 'counter', (s) => s.checksFailed);
    perServer('server_down_transitions_total', 'Times the server went down (checks or agent).', 'counter', (s) => s.downTransitions);
    // The servers' fixed log buckets as they are: cumulative counts, read at scrape time.
    const les = LATENCY_BOUNDS_MS.map((ms) => (ms === Infinity ? '+Inf' : String(ms / 1000)));
    family('server_connect_seconds', 'Time to connect to the server (fixed log buckets, 1 ms to 65 s).', 'histogram', (out, sc) => {
      for (const e of sc.servers) {
        const h = e.server.connectLatency;
        let cumulative = 0;
        for (let i = 0; i < les.length; i++) {
          cumulative += h.counts[i]!;
          out.push(`fulcrum_server_connect_seconds_bucket{${e.inner},le="${les[i]}"} ${cumulative}`);
        }
        out.push(`fulcrum_server_connect_seconds_sum${e.labels} ${num(h.sumMs / 1000)}`, `fulcrum_server_connect_seconds_count${e.labels} ${h.count}`);
      }
    });
    perServer('server_weight_scale', 'Weight multiplier now: slow start times the agent\'s percentage (1 = full weight).', 'gauge', (s, now) => s.weightScale(now));

    if (opts.reloads !== undefined) {
      const r = opts.reloads;
      add('config_reloads_total', 'Configuration reloads (SIGHUP or admin API) by result.', 'counter', () => [
        { labels: { result: 'success' }, value: r.counts.ok },
        { labels: { result: 'failure' }, value: r.counts.failed },
      ]);
      add('config_last_reload_success_timestamp_seconds', 'Time of the last successful reload (0 if none).', 'gauge', () => one(r.lastSuccessMs / 1000));
    }

    if (opts.logs !== undefined) {
      const l = opts.logs;
      add('log_reopen_failures_total', 'Log files (-l, access log) that could not be reopened or written; the old file was kept.', 'counter', () => one(l.logReopenFailures));
    }

    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry, prefix: 'fulcrum_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text: Fulcrum's families, then prom-client's default metrics. prom-client
   * writes a NaN (the event-loop figures of an interval with no samples, e.g. two scrapes in a
   * row) as `Nan`; the format's spelling is `NaN`.
   */
  async scrape(): Promise<string> {
    const sc: Scrape = { nowMs: this.#b.clock.now(), servers: [] };
    for (const { group, server } of this.#b.allServers()) {
      const inner = `group="${escapeLabel(group.name)}",server="${escapeLabel(formatAddress(server.address))}",role="${server.role}"`;
      sc.servers.push({ server, inner, labels: `{${inner}}` });
    }
    const out: string[] = [];
    for (const f of this.#families) {
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
      f.emit(out, sc);
    }
    const defaults = (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN');
    return out.join('\n') + '\n' + defaults;
  }
}
