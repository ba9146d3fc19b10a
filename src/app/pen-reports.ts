/**
 * pen's reports, in pen 0.34.1's exact formats (checked byte for byte against the real pen's
 * control port), so that scripts written for penctl's output parse Fulcrum's unchanged:
 * `servers`, `recent`, `connection N` and the HTML status page (`status`, -w).
 *
 * pen numbers its connections and clients by slots in fixed tables; Fulcrum has no slots, so a
 * connection's number is its session id (the same number the access log and `close N` use) and
 * a client's number is its position in the client table, oldest first. File descriptors are not
 * exposed by the runtime and are reported as -1.
 *
 * Each report walks the tables it shows once (O(servers + clients + connections)); none of this
 * runs on the connection path.
 */
import type { Server } from '../core/servers/server.ts';
import type { Session } from '../dataplane/session.ts';
import type { Balancer } from './balancer.ts';
import type { GroupRuntime } from './runtime.ts';

/** pen's connection states (conn.h). */
export const CS_IN_PROGRESS = 1;
export const CS_CONNECTED = 2;
export const CS_CLOSED_UP = 4;
export const CS_CLOSED_DOWN = 8;

function hostOf(s: Server): string {
  return s.address.kind === 'tcp' ? s.address.host : s.address.path;
}

function portOf(s: Server): number {
  return s.address.kind === 'tcp' ? s.address.port : 0;
}

/** `servers`: `N addr A port P conn C max M hard H weight W prio P sx S rx R`, one line per server. */
export function formatServers(group: GroupRuntime): string {
  let out = '';
  for (const s of group.servers) {
    out +=
      `${s.index} addr ${hostOf(s)} port ${portOf(s)} conn ${s.connections} max ${s.maxConnections} hard ${s.hardLimit} ` +
      `weight ${s.weight} prio ${s.priority} sx ${s.bytesToServer} rx ${s.bytesFromServer}\n`;
  }
  return out;
}

/** Live sessions of a group (connected or connecting), oldest first. */
function* groupSessions(b: Balancer, group: GroupRuntime): Generator<Session> {
  for (const s of b.sessions.values()) if (s.owner === group) yield s;
}

/**
 * `recent [N]`: clients seen in the last N seconds (default 300), as
 * `ADDRESS connects C sx BYTES-TO-CLIENT rx BYTES-FROM-CLIENT`. pen counts bytes as they flow;
 * the client table is updated when a connection ends, so the bytes of open connections are added.
 */
export function formatRecent(b: Balancer, group: GroupRuntime, seconds: number): string {
  const since = b.clock.now() - seconds * 1000;
  const live = liveClientBytes(b, group);
  let out = '';
  for (const c of group.clients.values()) {
    if (c.lastSeenMs < since) continue;
    const l = live.get(c.key);
    out += `${c.key} connects ${c.connects} sx ${c.bytesToClient + (l?.sx ?? 0)} rx ${c.bytesFromClient + (l?.rx ?? 0)}\n`;
  }
  return out;
}

/**
 * Bytes of open connections per client: the client table counts a connection's bytes when it
 * ends, pen counts them as they flow, so reports add these.
 */
function liveClientBytes(b: Balancer, group: GroupRuntime): Map<string, { sx: number; rx: number }> {
  const live = new Map<string, { sx: number; rx: number }>();
  for (const s of groupSessions(b, group)) {
    const t = live.get(s.clientKey) ?? { sx: 0, rx: 0 };
    t.sx += s.serverSide.bytesRead;
    t.rx += s.client.bytesRead;
    live.set(s.clientKey, t);
  }
  return live;
}

/** pen's numeric connection state. */
export function penState(s: Session): number {
  if (s.finished) return 0;
  if (s.connecting || s.serverSide.socket === null) return CS_IN_PROGRESS;
  return CS_CONNECTED | (s.serverSide.eof ? CS_CLOSED_UP : 0) | (s.client.eof ? CS_CLOSED_DOWN : 0);
}

function clientIndexes(group: GroupRuntime): Map<string, number> {
  const m = new Map<string, number>();
  let i = 0;
  for (const c of group.clients.values()) m.set(c.key, i++);
  return m;
}

/** `connection N`: pen's five lines; an id that is not open reads like pen's unused slot. */
export function formatConnection(b: Balancer, id: number): string {
  const s = b.sessions.get(id);
  if (s === undefined || s.finished) return `Connection ${id}:\nstate = 0\ndownfd = -1, upfd = -1\nclient = 0, server = 0\npend = 0\n`;
  const group = s.owner as GroupRuntime;
  const client = clientIndexes(group).get(s.clientKey) ?? -1;
  const server = s.server?.index ?? -1;
  return `Connection ${id}:\nstate = ${penState(s)}\ndownfd = -1, upfd = -1\nclient = ${client}, server = ${server}\npend = 0\n`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** strftime("%Y-%m-%d %H:%M:%S") in local time, as pen prints it. */
export function localTimestamp(d: Date): string {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function row(cells: readonly (string | number)[]): string {
  return '<tr>\n' + cells.map((c) => `<td>${c}</td>\n`).join('') + '</tr>\n';
}

function header(names: readonly string[]): string {
  return '<tr>\n' + names.map((n) => `<td bgcolor="#80f080">${n}</td>\n`).join('') + '</tr>\n';
}

/**
 * pen's HTML status page (penctl `status`, the -w file), tag for tag. pen's server `status`
 * column is the time the server was blacklisted (seconds since the epoch, 0 if never); "current"
 * is the server of the newest connection and "last" the newest connection's number.
 */
export function penStatusHtml(b: Balancer, group: GroupRuntime, now: Date = new Date(b.clock.now())): string {
  const nowMs = b.clock.now();
  const blacklistS = group.config.blacklistMs / 1000;
  const sessions = [...groupSessions(b, group)];
  const newest = sessions.at(-1);
  let out =
    '<html>\n<head>\n<title>Pen status page</title>\n</head>\n<body bgcolor="#ffffff"><h1>Pen status page</h1>\n' +
    `Time ${localTimestamp(now)}, ${group.servers.length} servers, ${newest?.server?.index ?? 0} current<p>\n` +
    '<table bgcolor="#c0c0c0">\n' +
    header(['server', 'address', 'status', 'port', 'connections', 'max soft', 'max hard', 'sent', 'received', 'weight', 'prio']);
  for (const s of group.servers) {
    const status = s.blacklistedUntilMs > 0 ? Math.floor(s.blacklistedUntilMs / 1000 - blacklistS) : 0;
    out += row([s.index, escapeHtml(hostOf(s)), status, portOf(s), s.connections, s.maxConnections, s.hardLimit, s.bytesToServer, s.bytesFromServer, s.weight, s.priority]);
  }
  out += '</table>\n';
  out += `<h2>Active clients</h2>Max number of clients: ${group.clients.capacity}<p><table bgcolor="#c0c0c0">\n`;
  out += header(['client', 'address', 'age(secs)', 'last server', 'connects', 'sent', 'received']);
  const indexes = new Map<string, number>();
  const live = liveClientBytes(b, group);
  let i = 0;
  for (const c of group.clients.values()) {
    indexes.set(c.key, i);
    const age = Math.max(0, Math.floor((nowMs - c.lastSeenMs) / 1000));
    const l = live.get(c.key);
    out += row([i++, escapeHtml(c.key), age, c.server, c.connects, c.bytesToClient + (l?.sx ?? 0), c.bytesFromClient + (l?.rx ?? 0)]);
  }
  out += '</table>\n';
  out += `<h2>Active connections</h2>Number of connections: ${b.global.maxConnections} max, ${b.mode === 'primary' ? b.activeCount : sessions.length} used, ${newest?.id ?? 0} last<p><table bgcolor="#c0c0c0">\n`;
  out += header(['connection', 'downfd', 'upfd', 'pending data down', 'pending data up', 'client', 'server']);
  for (const s of sessions) {
    out += row([s.id, -1, -1, s.client.pending?.length ?? 0, s.serverSide.pending?.length ?? 0, indexes.get(s.clientKey) ?? -1, s.server?.index ?? -1]);
  }
  out += '</table>\n</body>\n</html>\n';
  return out;
}
