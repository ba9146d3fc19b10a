/**
 * Statistics for SIGUSR1 (text, as pen prints on stderr). pen's status page (-w file, penctl
 * `status`) is in pen-reports.ts, in pen's format. Both read counters that are kept up to date in O(1) per event; building a report
 * walks the servers once, which is fine for an on-demand report.
 */
import { formatAddress } from '../core/address.ts';
import type { Server } from '../core/servers/server.ts';
import type { Balancer } from './balancer.ts';

/** The state a user sees, with its reason: "down (http check web (GET /health): HTTP status 500)". */
function serverState(b: Balancer, s: Server): string {
  const now = b.clock.now();
  const st = s.status(now);
  switch (st) {
    case 'down':
      return `down (${s.downReason})`;
    case 'ejected':
      return `ejected for ${Math.ceil((s.blacklistedUntilMs - now) / 1000)} s`;
    case 'starting':
      return `starting (slow start ${Math.round(s.weightScale(now) * 100)}%)`;
    default:
      return s.agentScale !== 1 && st === 'up' ? `up (agent weight ${Math.round(s.agentScale * 100)}%)` : st;
  }
}

function serverName(s: Server): string {
  return s.role === 'regular' ? `server ${s.index}` : s.role === 'backup' ? `backup ${s.index}` : s.role;
}

export function statsText(b: Balancer): string {
  const t = b.totals;
  const lines = [
    `fulcrum ${process.pid}: up ${Math.round((b.clock.now() - b.startedMs) / 1000)} s, ${b.activeCount} connections (${b.waitingCount} waiting), ` +
      `${t.accepted} accepted, ${t.finished} finished, ${t.bytesFromClients} bytes from clients, ${t.bytesToClients} bytes to clients`,
  ];
  for (const { group, server: s } of b.allServers()) {
    lines.push(
      `  ${group.name} ${serverName(s)} ${formatAddress(s.address)}: ${serverState(b, s)}, ` +
        `${s.connections} connections (${s.totalConnections} total), max ${s.maxConnections}, hard ${s.hardLimit}, weight ${s.weight}, prio ${s.priority}, ` +
        `${s.bytesToServer} bytes sent, ${s.bytesFromServer} bytes received, ${s.connectFailures} connect failures, ${s.connectTimeouts} timeouts, ` +
        `${s.downTransitions} down / ${s.upTransitions} up transitions, ${s.ejections} ejections, checks ${s.checksPassed} passed ${s.checksFailed} failed`,
    );
  }
  for (const l of b.listeners) {
    if (l.mode === 'plain' || l.mode === 'http') continue;
    const h = l.handshakes;
    const failures = Object.entries(h.failures).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(
      `  listener ${l.config.name} ${formatAddress(l.config.address)} (${l.mode === 'terminate' ? 'TLS' : 'TLS passthrough'}): ` +
        `${h.ok} ${l.mode === 'terminate' ? `handshakes (${h.resumed} resumed)` : 'ClientHellos routed'}, ${h.inProgress} in progress, failures: ${failures === '' ? 'none' : failures}` +
        (h.last === null ? '' : ` (last: ${h.last})`),
    );
    for (const c of l.tls?.certificates ?? []) {
      lines.push(`    certificate ${c.subject} (${c.keyType}) for ${c.names.join(',') || '-'}${c.isDefault ? ' (default)' : ''}: valid until ${c.notAfter.toISOString()}`);
    }
  }
  for (const g of b.groups.values()) {
    const q = g.stats;
    if (g.config.queueMax > 0 || q.allFull > 0 || q.maxAgeClosed > 0 || q.closedOnDown > 0) {
      lines.push(
        `  ${g.name} queue: ${g.queueLength} waiting (max ${g.config.queueMax}), ${q.queued} queued, ${q.queueServed} served, ${q.queueTimeouts} timed out, ` +
          `${q.queueFull} refused (queue full), ${q.allFull} refused (all full); ${q.maxAgeClosed} closed for age, ${q.closedOnDown} closed as their server went down`,
      );
    }
  }
  const ends = Object.entries(t.ends).map(([k, v]) => `${k}=${v}`).join(' ');
  if (ends !== '') lines.push(`  endings: ${ends}`);
  return lines.join('\n') + '\n';
}
