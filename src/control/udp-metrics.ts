/**
 * The `fulcrum_udp_*` families of /metrics (docs/udp.md): per UDP listener, datagrams and bytes
 * each way, sessions open, opened, ended by why, per-source refusals, amplification drops,
 * ICMP unreachable. Read at scrape time from the relay's counters; nothing per datagram.
 */
import { formatAddress } from '../core/address.ts';
import type { ObservedBalancer, ObservedListener, ObservedUdp } from './observed.ts';

type Sample = { labels: Record<string, string>; value: number };
type Add = (name: string, help: string, type: 'counter' | 'gauge', samples: () => Sample[]) => void;

export function addUdpFamilies(add: Add, b: ObservedBalancer): void {
  const udp = (): { l: ObservedListener; u: ObservedUdp }[] => {
    const out: { l: ObservedListener; u: ObservedUdp }[] = [];
    for (const l of b.listeners) if (l.udp != null) out.push({ l, u: l.udp });
    return out;
  };
  const labels = (l: ObservedListener): Record<string, string> => ({ listener: l.name, address: formatAddress(l.config.address) });
  const per = (value: (u: ObservedUdp) => number) => () => udp().map(({ l, u }) => ({ labels: labels(l), value: value(u) }));
  const dir = (toServers: (u: ObservedUdp) => number, toClients: (u: ObservedUdp) => number, fromClients: (u: ObservedUdp) => number, fromServers: (u: ObservedUdp) => number) => () =>
    udp().flatMap(({ l, u }) => [
      { labels: { ...labels(l), direction: 'from_clients' }, value: fromClients(u) },
      { labels: { ...labels(l), direction: 'to_servers' }, value: toServers(u) },
      { labels: { ...labels(l), direction: 'from_servers' }, value: fromServers(u) },
      { labels: { ...labels(l), direction: 'to_clients' }, value: toClients(u) },
    ]);
  add('udp_datagrams_total', 'UDP datagrams by direction: received from clients, sent to servers, received from servers, sent to clients.', 'counter',
    dir((u) => u.stats.datagramsToServers, (u) => u.stats.datagramsToClients, (u) => u.stats.datagramsFromClients, (u) => u.stats.datagramsFromServers));
  add('udp_bytes_total', 'UDP payload bytes received from clients and from servers.', 'counter', () =>
    udp().flatMap(({ l, u }) => [
      { labels: { ...labels(l), direction: 'from_clients' }, value: u.stats.bytesFromClients },
      { labels: { ...labels(l), direction: 'from_servers' }, value: u.stats.bytesFromServers },
    ]));
  add('udp_sessions_active', 'UDP sessions open now.', 'gauge', per((u) => u.table.size));
  add('udp_sessions_max', 'The most UDP sessions the listener keeps (pen\'s -x or max_sessions).', 'gauge', per((u) => u.table.limits.maxSessions));
  add('udp_sessions_created_total', 'UDP sessions opened.', 'counter', per((u) => u.table.stats.opened));
  add('udp_sessions_expired_total', 'UDP sessions ended by the idle timeout.', 'counter', per((u) => u.table.stats.expired));
  add('udp_sessions_evicted_total', 'UDP sessions ended to make room for a new one (least recently active).', 'counter', per((u) => u.table.stats.evicted));
  add('udp_sessions_errored_total', 'UDP sessions ended by an error of their server socket (ICMP unreachable and others).', 'counter', per((u) => u.table.stats.errored));
  add('udp_server_unreachable_total', 'UDP sessions ended by ICMP port unreachable from their server (a passive health failure).', 'counter', per((u) => u.stats.unreachable));
  add('udp_unanswered_failures_total', 'Times a server was counted failing for leaving UDP sessions unanswered in a row.', 'counter', per((u) => u.stats.unansweredFailures));
  add('udp_source_refused_total', 'New UDP sessions refused because their source address had the per-source maximum.', 'counter', per((u) => u.table.stats.sourceRefused));
  add('udp_refused_total', 'New UDP sessions no server would take, by reason (no-server, all-full, acl-denied, stubborn).', 'counter', () =>
    udp().flatMap(({ l, u }) => Object.entries(u.stats.refused).map(([reason, value]) => ({ labels: { ...labels(l), reason }, value }))));
  add('udp_amplification_dropped_datagrams_total', 'Server datagrams dropped by the amplification cap.', 'counter', per((u) => u.table.stats.capDroppedDatagrams));
  add('udp_amplification_dropped_bytes_total', 'Bytes of server datagrams dropped by the amplification cap.', 'counter', per((u) => u.table.stats.capDroppedBytes));
  add('udp_send_drops_total', 'Datagrams not sent: the kernel would not take them, or the session had no socket.', 'counter', per((u) => u.stats.sendDrops));
}
