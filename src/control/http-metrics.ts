/**
 * The `fulcrum_http_*` families of /metrics (docs/http.md): per HTTP mode listener, requests by
 * group and status class, Fulcrum's own error answers by status, the time to the server's
 * response head (fixed log buckets), requests in flight, and the backend pool's connections.
 * Read at scrape time from the proxy's counters (O(1) per request); no label per path, host or
 * client, so the series are bounded by listeners × groups × 5 classes.
 */
import { formatAddress } from '../core/address.ts';
import { LATENCY_BOUNDS_MS } from '../core/servers/latency-histogram.ts';
import type { ObservedBalancer, ObservedHttp, ObservedListener } from './observed.ts';
import { escapeLabel, num } from './prom-text.ts';

type Sample = { labels: Record<string, string>; value: number };
type Add = (name: string, help: string, type: 'counter' | 'gauge', samples: () => Sample[]) => void;
/** A family written straight to the exposition (histograms). */
type Family = (name: string, help: string, type: 'histogram', emit: (out: string[]) => void) => void;

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

export function addHttpFamilies(add: Add, family: Family, b: ObservedBalancer): void {
  const http = (): { l: ObservedListener; h: ObservedHttp }[] => {
    const out: { l: ObservedListener; h: ObservedHttp }[] = [];
    for (const l of b.listeners) if (l.http != null) out.push({ l, h: l.http });
    return out;
  };
  const labels = (l: ObservedListener): Record<string, string> => ({ listener: l.name, address: formatAddress(l.config.address) });
  const per = (value: (h: ObservedHttp) => number) => () => http().map(({ l, h }) => ({ labels: labels(l), value: value(h) }));

  add('http_requests_total', 'HTTP mode requests answered (WebSocket upgrades as 1xx), by group and status class, whoever answered.', 'counter', () =>
    http().flatMap(({ l, h }) =>
      [...h.requests].flatMap(([group, counts]) => CLASSES.map((c, i) => ({ labels: { ...labels(l), group, class: c }, value: counts[i + 1] ?? 0 }))),
    ),
  );
  add('http_error_answers_total', 'Error answers Fulcrum gave itself (no server answered: 400, 413, 501, 502, 503, 504), by status.', 'counter', () =>
    http().flatMap(({ l, h }) => [...h.errorAnswers].map(([status, value]) => ({ labels: { ...labels(l), status: String(status) }, value }))),
  );
  add('http_requests_in_flight', 'HTTP mode requests and WebSocket tunnels under way.', 'gauge', per((h) => h.inFlight));
  add('http_pool_connections', 'Backend connections of the listener\'s pool: open (idle and busy, connects included) and idle.', 'gauge', () =>
    http().flatMap(({ l, h }) => {
      const s = h.pool.stats();
      return [
        { labels: { ...labels(l), state: 'open' }, value: s.open },
        { labels: { ...labels(l), state: 'idle' }, value: s.idle },
      ];
    }),
  );
  add('http_pool_waiting', 'Requests waiting for a backend connection (every one of the server\'s max_per_server busy).', 'gauge', per((h) => h.pool.stats().waiting));
  add('http_pool_connections_opened_total', 'Backend connections opened for a request (new).', 'counter', per((h) => h.pool.stats().opened));
  add('http_pool_connections_reused_total', 'Requests sent on an idle pooled connection (reused).', 'counter', per((h) => h.pool.stats().reused));

  const les = LATENCY_BOUNDS_MS.map((ms) => (ms === Infinity ? '+Inf' : String(ms / 1000)));
  family('http_response_head_seconds', 'Time from an HTTP mode request\'s arrival to its server\'s response head (fixed log buckets, 1 ms to 65 s); Fulcrum\'s own answers and WebSocket upgrades are not counted.', 'histogram', (out) => {
    for (const { l, h } of http()) {
      const inner = `listener="${escapeLabel(l.name)}",address="${escapeLabel(formatAddress(l.config.address))}"`;
      const r = h.responseHead;
      let cumulative = 0;
      for (let i = 0; i < les.length; i++) {
        cumulative += r.counts[i] ?? 0;
        out.push(`fulcrum_http_response_head_seconds_bucket{${inner},le="${les[i]}"} ${cumulative}`);
      }
      out.push(`fulcrum_http_response_head_seconds_sum{${inner}} ${num(r.sumMs / 1000)}`, `fulcrum_http_response_head_seconds_count{${inner}} ${r.count}`);
    }
  });
}
