/**
 * Statistics for SIGUSR1 (text, as pen prints on stderr) and Fulcrum's own HTML overview of
 * every group. pen's status page (-w file, penctl `status`) is in pen-reports.ts, in pen's
 * format. Both read counters that are kept up to date in O(1) per event; building a report
 * walks the servers once, which is fine for an on-demand report.
 */
import { formatAddress } from '../core/address.ts';
import type { Server } from '../core/servers/server.ts';
import type { Balancer } from './balancer.ts';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The state a user sees, with its reason: "down (http check web (GET /health): HTTP status 500)". */
export function serverState(b: Balancer, s: Server): string {
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
    `fulcrum ${process.pid}: up ${Math.round((Date.now() - b.startedMs) / 1000)} s, ${b.activeCount} connections (${b.waitingCount} waiting), ` +
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
    if (l.mode === 'plain') continue;
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

/** All groups, servers and clients in one page (not pen's layout; see pen-reports.ts for that). */
export function statusHtml(b: Balancer): string {
  const t = b.totals;
  const rows: string[] = [];
  for (const { group, server: s } of b.allServers()) {
    rows.push(
      `<tr><td>${escapeHtml(group.name)}</td><td>${s.role === 'regular' ? s.index : escapeHtml(serverName(s))}</td><td>${escapeHtml(formatAddress(s.address))}</td>` +
        `<td>${escapeHtml(serverState(b, s))}</td><td>${s.connections}</td><td>${s.totalConnections}</td><td>${s.maxConnections}</td><td>${s.hardLimit}</td>` +
        `<td>${s.weight}</td><td>${s.priority}</td><td>${s.bytesToServer}</td><td>${s.bytesFromServer}</td><td>${s.connectFailures}</td>` +
        `<td>${s.downTransitions}</td><td>${s.ejections}</td><td>${s.checksPassed}/${s.checksFailed}</td></tr>`,
    );
  }
  const clients: string[] = [];
  for (const group of b.groups.values()) {
    for (const c of group.clients.values()) {
      clients.push(`<tr><td>${escapeHtml(group.name)}</td><td>${escapeHtml(c.key)}</td><td>${new Date(c.lastSeenMs).toISOString()}</td><td>${c.server}</td><td>${c.connects}</td><td>${c.bytesFromClient}</td><td>${c.bytesToClient}</td></tr>`);
    }
  }
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Fulcrum status</title></head><body>
<h1>Fulcrum status</h1>
<p>${new Date().toISOString()} &mdash; pid ${process.pid}, up ${Math.round((Date.now() - b.startedMs) / 1000)} s</p>
<p>${b.activeCount} connections, ${b.waitingCount} waiting, ${t.accepted} accepted, ${t.bytesFromClients} bytes from clients, ${t.bytesToClients} bytes to clients</p>
<h2>Servers</h2>
<table border="1"><tr><th>group</th><th>#</th><th>address</th><th>state</th><th>conns</th><th>total</th><th>max</th><th>hard</th><th>weight</th><th>prio</th><th>sent</th><th>received</th><th>connect failures</th><th>down transitions</th><th>ejections</th><th>checks passed/failed</th></tr>
${rows.join('\n')}
</table>
<h2>Clients</h2>
<table border="1"><tr><th>group</th><th>address</th><th>last seen</th><th>server</th><th>connects</th><th>sent</th><th>received</th></tr>
${clients.join('\n')}
</table>
</body></html>
`;
}
