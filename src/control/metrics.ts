/**
 * Prometheus exposition for GET /metrics, through prom-client. Nothing is counted here: every
 * value is read at scrape time from the O(1) counters the data path already keeps (Server,
 * ListenerRuntime, Balancer.totals), so the connection path pays nothing for metrics. A scrape
 * walks the servers once per metric family; with a thousand servers that is a few tens of
 * thousands of property reads. prom-client's default metrics add the event-loop lag (from
 * perf_hooks.monitorEventLoopDelay) and the process figures (CPU, memory, file descriptors).
 *
 * Every name starts with `fulcrum_`; docs/admin-api.md lists them.
 */
import client from 'prom-client';
import { formatAddress } from '../core/address.ts';
import type { Server } from '../core/servers/server.ts';
import { TERMINATION_REASONS } from '../dataplane/session.ts';
import type { Balancer } from '../app/balancer.ts';
import type { GroupRuntime } from '../app/runtime.ts';

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
}

/** Reload outcomes, provided by whoever reloads (the Reloader). */
export interface ReloadStats {
  readonly counts: { readonly ok: number; readonly failed: number };
  readonly lastSuccessMs: number;
}

/**
 * A metric family whose samples are computed when scraped. It has the shape prom-client's
 * Registry expects of a metric (name, help, type, get(), reset()), without prom-client's
 * per-label-set hash maps, which would cost more than the values themselves.
 */
class Family {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly samples: () => Sample[],
  ) {}

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() });
  }

  reset(): void {}
}

const ADMIN_STATES: readonly Server['admin'][] = ['enabled', 'drain', 'maintenance'];

export class Metrics {
  readonly registry = new client.Registry();

  constructor(balancer: Balancer, opts: { version: string; reloads?: ReloadStats; defaultMetrics?: boolean }) {
    const b = balancer;
    const add = (name: string, help: string, type: 'counter' | 'gauge', samples: () => Sample[]): void => {
      this.registry.registerMetric(new Family(`fulcrum_${name}`, help, type, samples) as unknown as client.Metric);
    };
    const one = (value: number): Sample[] => [{ labels: {}, value }];

    add('build_info', 'Fulcrum version and runtime; always 1.', 'gauge', () => [{ labels: { version: opts.version, bun: Bun.version }, value: 1 }]);
    add('connections_current', 'Connections admitted and not yet finished (connecting or established).', 'gauge', () => one(b.activeCount));
    add('queue_length', 'Accepted clients waiting for a free slot under max_connections / pending_max.', 'gauge', () => one(b.waitingCount));
    add('connections_accepted_total', 'Client connections accepted by all listeners.', 'counter', () => one(b.totals.accepted));
    add('connections_queued_total', 'Client connections that had to wait for a free slot.', 'counter', () => one(b.totals.queued));
    add('connections_ended_total', 'Finished connections by termination code (docs/termination-codes.md).', 'counter', () =>
      TERMINATION_REASONS.map((reason) => ({ labels: { reason }, value: b.totals.ends[reason] ?? 0 })),
    );

    // Listeners
    const perListener = (value: (l: Balancer['listeners'][number]) => number) => (): Sample[] =>
      b.listeners.map((l) => ({ labels: { listener: l.name, address: formatAddress(l.config.address) }, value: value(l) }));
    add('listener_connections_current', 'Connections accepted by the listener and not yet finished (waiting, connecting or established).', 'gauge', perListener((l) => l.active));
    add('listener_connections_total', 'Connections accepted by the listener.', 'counter', perListener((l) => l.accepted));
    add('listener_bytes_from_clients_total', 'Bytes received from clients, counted when each connection ends.', 'counter', perListener((l) => l.bytesFromClients));
    add('listener_bytes_to_clients_total', 'Bytes sent to clients, counted when each connection ends.', 'counter', perListener((l) => l.bytesToClients));
    add('listener_handshake_failures_total', 'TLS handshakes that failed on the listener (0 for plain TCP).', 'counter', perListener((l) => l.handshakeFailures));

    // Groups
    const perGroup = (value: (g: GroupRuntime) => number) => (): Sample[] => [...b.groups.values()].map((g) => ({ labels: { group: g.name }, value: value(g) }));
    add('group_tracked_clients', 'Entries in the group\'s client tracking table.', 'gauge', perGroup((g) => g.clients.size));
    add('group_servers', 'Regular servers configured in the group.', 'gauge', perGroup((g) => g.servers.length));

    // Servers
    const perServer = (value: (s: Server, now: number) => number) => (): Sample[] => {
      const now = b.clock.now();
      const out: Sample[] = [];
      for (const { group, server } of b.allServers()) out.push({ labels: serverLabels(group, server), value: value(server, now) });
      return out;
    };
    add('server_up', '1 when the server takes new connections (enabled, healthy, not blacklisted), else 0.', 'gauge', perServer((s, now) => (s.isUnavailable(now) ? 0 : 1)));
    add('server_healthy', 'Health as observed by checks: 1 healthy, 0 down.', 'gauge', perServer((s) => (s.healthy ? 1 : 0)));
    add('server_blacklisted', '1 while the server is blacklisted after a failed connect.', 'gauge', perServer((s, now) => (s.isBlacklisted(now) ? 1 : 0)));
    add('server_admin_state', 'Operator state: 1 for the current one of enabled, drain, maintenance.', 'gauge', () => {
      const out: Sample[] = [];
      for (const { group, server } of b.allServers()) {
        const labels = serverLabels(group, server);
        for (const state of ADMIN_STATES) out.push({ labels: { ...labels, state }, value: server.admin === state ? 1 : 0 });
      }
      return out;
    });
    add('server_weight', 'Configured weight.', 'gauge', perServer((s) => s.weight));
    add('server_max_connections', 'Soft connection limit (0 = unlimited).', 'gauge', perServer((s) => s.maxConnections));
    add('server_connections_current', 'Established connections to the server.', 'gauge', perServer((s) => s.connections));
    add('server_connections_pending', 'Connects in progress to the server (its queue).', 'gauge', perServer((s) => s.pending));
    add('server_connections_total', 'Connections established to the server.', 'counter', perServer((s) => s.totalConnections));
    add('server_bytes_to_server_total', 'Bytes sent to the server (client to server direction).', 'counter', perServer((s) => s.bytesToServer));
    add('server_bytes_from_server_total', 'Bytes received from the server (server to client direction).', 'counter', perServer((s) => s.bytesFromServer));
    add('server_connect_failures_total', 'Connects to the server that failed (refused, unreachable, reset).', 'counter', perServer((s) => s.connectFailures));
    add('server_connect_timeouts_total', 'Connects to the server that timed out.', 'counter', perServer((s) => s.connectTimeouts));

    if (opts.reloads !== undefined) {
      const r = opts.reloads;
      add('config_reloads_total', 'Configuration reloads (SIGHUP or admin API) by result.', 'counter', () => [
        { labels: { result: 'success' }, value: r.counts.ok },
        { labels: { result: 'failure' }, value: r.counts.failed },
      ]);
      add('config_last_reload_success_timestamp_seconds', 'Time of the last successful reload (0 if none).', 'gauge', () => one(r.lastSuccessMs / 1000));
    }

    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry, prefix: 'fulcrum_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text. prom-client writes a NaN (the event-loop figures of an interval with no
   * samples, e.g. two scrapes in a row) as `Nan`; the format's spelling is `NaN`.
   */
  async scrape(): Promise<string> {
    return (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN');
  }
}

function serverLabels(group: GroupRuntime, s: Server): Labels {
  return { group: group.name, server: formatAddress(s.address), role: s.role };
}
