/**
 * The HTTP admin listener: the JSON admin API, Prometheus /metrics, and the live dashboard at
 * `/` with its server-sent event feed (live-feed.ts), on the HTTP listener app injects. Off
 * unless `--admin ADDR` or an `admin:` section is given; docs/admin-api.md describes every endpoint.
 *
 * Security:
 * - It binds only to a loopback address or a Unix socket (mode 0600) unless allowed explicitly.
 * - Reading (GET) needs no token; anything that changes state (POST, PATCH, DELETE) needs
 *   `Authorization: Bearer TOKEN` with the token from --admin-token-file, compared in constant
 *   time (SHA-256 of both sides, then timingSafeEqual). Without a token file the API is read-only.
 * - On a loopback TCP address the Host header must name a loopback host, so that a web page
 *   cannot read the API through DNS rebinding; no CORS headers are sent, so other origins can
 *   neither read answers nor send the Authorization header.
 * - Changes are checked with the config file's own schema pieces and answered with precise
 *   errors; they are applied in one synchronous step, and established connections are untouched.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatAddress } from '../core/address.ts';
import type { Clock } from '../core/clock.ts';
import type { Server } from '../core/servers/server.ts';
import { isLoopbackHost } from '../config/admin-address.ts';
import type { AdminConfig, ServerConfig } from '../config/model.ts';
import { checkServerPatch, checkServerValue, checkSourceLimits } from '../config/yaml/admin-api.ts';
import { AdminError, allow, bodyTooLarge, decodePart, digest, errorResponse, HttpError, invalid, json, JSON_HEADERS, MAX_BODY_BYTES, paging, readJson, readTokenFile, type HttpListen, type HttpListener } from './admin-http.ts';
import { LiveFeed } from './live-feed.ts';
import type { Metrics } from './metrics.ts';
import type { Diagnostics, ManagedBalancer, ObservedGroup, RecentSessions, ReloadOutcome } from './observed.ts';
import { clientView, connectionView, finishedView, groupServers, groupView, listenerView, queueView, serverView, snapshot, sourceLimitsView } from './views.ts';

export { AdminError, MIN_TOKEN_LENGTH, readTokenFile } from './admin-http.ts';

export interface AdminOptions {
  config: AdminConfig;
  balancer: ManagedBalancer;
  metrics: Metrics;
  /** The HTTP listener (app passes dataplane/http-listener.ts's listenHttp). */
  listen: HttpListen;
  /** Time and the live feed's timer. */
  clock: Clock;
  /** Re-reads the config file as one transaction (the same path as SIGHUP). */
  reload: () => Promise<ReloadOutcome>;
  /** What a reload re-reads, or null. */
  reloadSource: () => string | null;
  /** Resolves a server's host name (DNS) before it is added. */
  resolveServer: (s: ServerConfig) => Promise<ServerConfig>;
  version: string;
  /** The runtime's version, for the status endpoint. */
  runtimeVersion: string;
  diag: Diagnostics;
  /** How often the live feed sends a snapshot (ms). */
  eventIntervalMs?: number;
  /** The last finished connections (app fills the ring as sessions end), for the dashboard. */
  recent?: RecentSessions;
  /** After a request that may have changed something (with workers: the primary tells them). */
  changed?: () => void;
}

const DASHBOARD_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

const DASHBOARD_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

const SERVER_ACTIONS: Readonly<Record<string, Server['admin']>> = { drain: 'drain', disable: 'maintenance', enable: 'enabled' };

export class AdminServer {
  readonly #o: AdminOptions;
  readonly #listener: HttpListener;
  #tokenDigest: Buffer | null = null;
  readonly #pages = new Map<string, string>();
  readonly #feed: LiveFeed;
  /** The bound address as text: `127.0.0.1:9900` or the socket path. */
  readonly address: string;
  /** A base URL for clients of a TCP listener (null on a Unix socket). */
  readonly url: string | null;

  private constructor(o: AdminOptions) {
    this.#o = o;
    if (o.config.tokenFile !== null) this.#tokenDigest = digest(readTokenFile(o.config.tokenFile, o.diag));
    for (const name of new Set(Object.values(DASHBOARD_FILES).map((f) => f.file))) {
      this.#pages.set(name, readFileSync(join(import.meta.dir, 'dashboard', name), 'utf8'));
    }
    this.#feed = new LiveFeed(o.clock, o.eventIntervalMs ?? 1000, () => snapshot(o.balancer, o.version, o.recent ?? null));
    const a = o.config.address;
    try {
      this.#listener = o.listen({
        address: a,
        fetch: (req, noTimeout) => this.#handle(req, noTimeout),
        error: (e: Error) => {
          o.diag.error(`admin API: ${e.message}`);
          return errorResponse(new HttpError(500, 'internal_error', 'internal error; see the log'));
        },
        maxRequestBodySize: MAX_BODY_BYTES,
        tooLarge: () => errorResponse(bodyTooLarge()),
        idleTimeoutS: 30,
      });
    } catch (e) {
      throw new AdminError(`cannot listen on ${formatAddress(a)} for the admin API: ${(e as Error).message}`);
    }
    if (a.kind === 'unix') {
      this.address = a.path;
      this.url = null;
    } else {
      if (!isLoopbackHost(a.host)) {
        o.diag.info(`warning: the admin API on ${formatAddress(a)} is reachable from the network; reading it needs no token, so firewall it`);
      }
      this.address = formatAddress({ kind: 'tcp', host: a.host, port: this.#listener.port });
      this.url = `http://${this.address}`;
    }
  }

  /** Reads the token, binds, and starts serving; throws AdminError with the reason. */
  static start(o: AdminOptions): AdminServer {
    return new AdminServer(o);
  }

  get readOnly(): boolean {
    return this.#tokenDigest === null;
  }

  /** Re-reads the token file (SIGHUP), keeping the old token if the file is now unusable. */
  reloadToken(): void {
    const file = this.#o.config.tokenFile;
    if (file === null) return;
    try {
      this.#tokenDigest = digest(readTokenFile(file, this.#o.diag));
    } catch (e) {
      this.#o.diag.error(`${(e as Error).message}; keeping the previous admin token`);
    }
  }

  async stop(): Promise<void> {
    this.#feed.close();
    await this.#listener.stop();
  }

  // -------------------------------------------------------------------------------------------

  async #handle(req: Request, noTimeout: (req: Request) => void): Promise<Response> {
    try {
      this.#checkHost(req);
      const url = new URL(req.url);
      const method = req.method;
      const changes = method !== 'GET' && method !== 'HEAD';
      if (changes) this.#authorize(req);
      const page = DASHBOARD_FILES[url.pathname];
      if (page !== undefined) {
        allow(method, ['GET', 'HEAD']);
        return new Response(this.#pages.get(page.file)!, { headers: { ...DASHBOARD_HEADERS, 'content-type': page.type } });
      }
      if (url.pathname === '/metrics') {
        allow(method, ['GET', 'HEAD']);
        return new Response(await this.#o.metrics.scrape(), { headers: { 'content-type': this.#o.metrics.contentType, 'cache-control': 'no-store' } });
      }
      if (url.pathname === '/healthz') {
        allow(method, ['GET', 'HEAD']);
        // keepalived's track_script (deploy/keepalived/fulcrum-check) asks this: serving means
        // every listener bound and not stopping; anything else hands the virtual address over.
        const b = this.#o.balancer;
        const unbound = b.listeners.filter((l) => l.handle === null || l.handle === undefined).map((l) => l.name);
        const why = b.stopping === true ? 'stopping' : unbound.length > 0 ? `not listening: ${unbound.join(', ')}` : null;
        return new Response(why === null ? 'ok\n' : `${why}\n`, { status: why === null ? 200 : 503, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } });
      }
      if (url.pathname === '/api/v1' || url.pathname.startsWith('/api/v1/')) {
        const parts = url.pathname.slice('/api/v1'.length).split('/').filter((p) => p !== '').map(decodePart);
        try {
          return await this.#api(req, noTimeout, method, parts, url.searchParams);
        } finally {
          if (changes) this.#o.changed?.();
        }
      }
      throw new HttpError(404, 'not_found', `no such page: ${url.pathname}`);
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      throw e;
    }
  }

  /** DNS rebinding guard: on a loopback TCP listener, the Host must be a loopback name. */
  #checkHost(req: Request): void {
    const c = this.#o.config;
    if (c.address.kind === 'unix' || c.allowRemote) return;
    const host = req.headers.get('host') ?? '';
    const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
    if (!isLoopbackHost(name.toLowerCase())) {
      throw new HttpError(403, 'host_not_allowed', `the Host header "${host}" is not a loopback name; use http://${this.address}/`);
    }
  }

  #authorize(req: Request): void {
    if (this.#tokenDigest === null) {
      throw new HttpError(403, 'read_only', 'this admin listener is read-only: start Fulcrum with --admin-token-file (or admin.token_file) to allow changes');
    }
    const header = req.headers.get('authorization');
    const challenge = { 'www-authenticate': 'Bearer realm="fulcrum"' };
    if (header === null) throw new HttpError(401, 'unauthorized', 'changes need a bearer token: Authorization: Bearer TOKEN', null, challenge);
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (m === null) throw new HttpError(401, 'unauthorized', 'the Authorization header must be "Bearer TOKEN"', null, { 'www-authenticate': 'Bearer realm="fulcrum", error="invalid_request"' });
    if (!timingSafeEqual(digest(m[1]!), this.#tokenDigest)) {
      throw new HttpError(401, 'invalid_token', 'the bearer token is not the admin token', null, { 'www-authenticate': 'Bearer realm="fulcrum", error="invalid_token"' });
    }
  }

  async #api(req: Request, noTimeout: (req: Request) => void, method: string, parts: string[], query: URLSearchParams): Promise<Response> {
    const b = this.#o.balancer;
    const [head, second, third, fourth, fifth, ...rest] = parts;
    if (head === undefined) {
      allow(method, ['GET', 'HEAD']);
      return json(this.#status());
    }
    switch (head) {
      case 'listeners':
        if (second !== undefined) break;
        allow(method, ['GET', 'HEAD']);
        return json({ listeners: b.listeners.map(listenerView) });
      case 'servers':
        if (second !== undefined) break;
        allow(method, ['GET', 'HEAD']);
        return json({ servers: [...b.groups.values()].flatMap((g) => groupServers(b, g)) });
      case 'connections':
        if (b.mode === 'primary') {
          throw new HttpError(409, 'held_by_workers', 'connections are held by the worker processes (--workers): this process has none to list or close; /api/v1 and /metrics show their totals');
        }
        if (second === undefined) {
          allow(method, ['GET', 'HEAD']);
          return json(this.#connections(query));
        }
        if (second === 'recent' && third === undefined) {
          allow(method, ['GET', 'HEAD']);
          return json({ connections: (this.#o.recent?.toArray() ?? []).map(finishedView).reverse() });
        }
        if (third === undefined) {
          allow(method, ['DELETE']);
          return json(this.#closeConnection(second));
        }
        break;
      case 'queue':
        if (second !== undefined) break;
        allow(method, ['GET', 'HEAD']);
        return json(queueView(b));
      case 'source-limits':
        if (second !== undefined) break;
        allow(method, ['GET', 'HEAD', 'PUT']);
        return method === 'PUT' ? await this.#putSourceLimits(req) : json(sourceLimitsView(b.sourceLimits()));
      case 'reload':
        if (second !== undefined) break;
        allow(method, ['POST']);
        return await this.#reload();
      case 'events':
        if (second !== undefined) break;
        allow(method, ['GET']);
        return this.#feed.subscribe(req, noTimeout);
      case 'groups': {
        if (second === undefined) {
          allow(method, ['GET', 'HEAD']);
          return json({ groups: [...b.groups.values()].map((g) => groupView(b, g)) });
        }
        const group = this.#group(second);
        if (third === undefined) {
          allow(method, ['GET', 'HEAD']);
          return json(groupView(b, group));
        }
        if (third === 'clients' && fourth === undefined) {
          allow(method, ['GET', 'HEAD']);
          return json(this.#clients(group, query));
        }
        if (third !== 'servers' || rest.length > 0) break;
        if (fourth === undefined) {
          allow(method, ['GET', 'HEAD', 'POST']);
          if (method === 'POST') return await this.#addServer(group, req);
          return json({ servers: groupServers(b, group) });
        }
        const s = this.#server_(group, fourth);
        if (fifth === undefined) {
          allow(method, ['GET', 'HEAD', 'PATCH', 'DELETE']);
          if (method === 'PATCH') return await this.#patchServer(group, s, req);
          if (method === 'DELETE') return this.#removeServer(group, s);
          return json(serverView(group, s, b.clock.now()));
        }
        const action = SERVER_ACTIONS[fifth];
        if (action === undefined) throw new HttpError(404, 'not_found', `unknown server action "${fifth}"; the actions are drain, disable and enable`);
        allow(method, ['POST']);
        b.setServerAdmin(group, s, action);
        this.#o.diag.info(`admin API: ${fifth} server ${formatAddress(s.address)} in group ${group.name}`);
        return json(serverView(group, s, b.clock.now()));
      }
    }
    throw new HttpError(404, 'not_found', `no such endpoint: /api/v1/${parts.map(encodeURIComponent).join('/')}`);
  }

  #group(name: string): ObservedGroup {
    const g = this.#o.balancer.groups.get(name);
    if (g === undefined) throw new HttpError(404, 'group_not_found', `no group "${name}" (groups: ${[...this.#o.balancer.groups.keys()].join(', ')})`);
    return g;
  }

  #server_(group: ObservedGroup, id: string): Server {
    const s = this.#o.balancer.findServer(group, id);
    if (s === undefined) throw new HttpError(404, 'server_not_found', `group ${group.name} has no server "${id}" (give its index or its address, e.g. 127.0.0.1:9001)`);
    return s;
  }

  #status(): Record<string, unknown> {
    const b = this.#o.balancer;
    const snap = snapshot(b, this.#o.version);
    return {
      version: this.#o.version,
      bun: this.#o.runtimeVersion,
      pid: process.pid,
      started: new Date(b.startedMs).toISOString(),
      uptime_s: snap.uptime_s,
      config_file: b.global.configFile,
      command_file: b.global.commandFile,
      reload_source: this.#o.reloadSource(),
      read_only: this.readOnly,
      totals: { ...(snap.totals as object), queued: b.totals.queued, ends: b.totals.ends },
      listeners: b.listeners.length,
      groups: b.groups.size,
    };
  }

  #connections(query: URLSearchParams): Record<string, unknown> {
    const b = this.#o.balancer;
    const { offset, limit } = paging(query);
    const now = this.#o.clock.now();
    const items: Record<string, unknown>[] = [];
    let i = 0;
    for (const s of b.sessions.values()) {
      if (i++ < offset) continue;
      if (items.length >= limit) break;
      items.push(connectionView(s, now));
    }
    return { total: b.sessions.size, waiting: b.waitingCount, offset, limit, connections: items };
  }

  #closeConnection(idText: string): Record<string, unknown> {
    if (!/^\d+$/.test(idText)) throw new HttpError(400, 'invalid_request', `connection id "${idText}" is not a number`);
    const s = this.#o.balancer.sessions.get(Number(idText));
    if (s === undefined) throw new HttpError(404, 'connection_not_found', `no open connection ${idText}`);
    const view = connectionView(s, this.#o.clock.now());
    s.close('closed-by-operator', false);
    this.#o.diag.info(`admin API: closed connection ${idText} from ${String(view.client)}`);
    return { closed: view };
  }

  #clients(group: ObservedGroup, query: URLSearchParams): Record<string, unknown> {
    const { offset, limit } = paging(query);
    const items: Record<string, unknown>[] = [];
    let i = 0;
    for (const c of group.clients.values()) {
      if (i++ < offset) continue;
      if (items.length >= limit) break;
      items.push(clientView(group, c));
    }
    return { group: group.name, total: group.clients.size, capacity: group.clients.capacity, offset, limit, clients: items };
  }

  async #addServer(group: ObservedGroup, req: Request): Promise<Response> {
    const body = await readJson(req);
    const checked = checkServerValue(body);
    if ('issues' in checked) throw invalid(checked.issues);
    let sc: ServerConfig;
    try {
      sc = await this.#o.resolveServer(checked.value);
    } catch (e) {
      throw new HttpError(422, 'validation_failed', 'the server cannot be added', [{ path: 'address', message: (e as Error).message }]);
    }
    const key = formatAddress(sc.address);
    if (this.#o.balancer.findServer(group, key) !== undefined) {
      throw new HttpError(409, 'conflict', `server ${key} is already in group ${group.name}`, [{ path: 'address', message: `${key} is already in group ${group.name}` }]);
    }
    const s = this.#o.balancer.addServer(group, sc);
    this.#o.diag.info(`admin API: added server ${key} to group ${group.name} as server ${s.index}`);
    return json(serverView(group, s, this.#o.balancer.clock.now()), 201);
  }

  async #patchServer(group: ObservedGroup, s: Server, req: Request): Promise<Response> {
    const body = await readJson(req);
    const checked = checkServerPatch(body);
    if ('issues' in checked) throw invalid(checked.issues);
    const p = checked.value;
    const changes = this.#o.balancer.updateServerSettings(group, s, {
      maxConnections: p.max_connections,
      hardLimit: p.hard_limit,
      weight: p.weight,
      priority: p.priority,
      acl: p.acl,
    });
    if (changes.length > 0) this.#o.diag.info(`admin API: ${changes.join('; ')} in group ${group.name}`);
    return json({ changes, server: serverView(group, s, this.#o.balancer.clock.now()) });
  }

  #removeServer(group: ObservedGroup, s: Server): Response {
    let changes: string[];
    try {
      changes = this.#o.balancer.removeServer(group, s);
    } catch (e) {
      throw new HttpError(409, 'conflict', (e as Error).message);
    }
    this.#o.diag.info(`admin API: ${changes.join('; ')}`);
    return json({ changes, servers: groupServers(this.#o.balancer, group) });
  }

  /** Changes the per-source limits now, checked with the config file's rules (a reload sets the file's again). */
  async #putSourceLimits(req: Request): Promise<Response> {
    const checked = checkSourceLimits(await readJson(req));
    if ('issues' in checked) throw invalid(checked.issues);
    const v = checked.value;
    const changes = this.#o.balancer.setSourceLimits({ maxConnectionsPerSource: v.max_connections_per_source, maxNewConnectionsPerSourcePerSecond: v.max_new_connections_per_source_per_second });
    if (changes.length > 0) this.#o.diag.info(`admin API: ${changes.join('; ')}`);
    return json({ changes, ...sourceLimitsView(this.#o.balancer.sourceLimits()) });
  }

  async #reload(): Promise<Response> {
    if (this.#o.reloadSource() === null) {
      throw new HttpError(409, 'nothing_to_reload', 'nothing to reload: Fulcrum was started without --config or -F');
    }
    const r = await this.#o.reload();
    if (r.ok) {
      this.#o.diag.info(`admin API: reloaded ${r.source}${r.changes.length > 0 ? ': ' + r.changes.join('; ') : ' (no changes)'}`);
      for (const w of r.warnings ?? []) this.#o.diag.error(`admin API: reload: ${w}`);
      return json({ reloaded: r.source, changes: r.changes, warnings: r.warnings ?? [] });
    }
    this.#o.diag.error(`admin API: reload refused: ${r.message}` + r.issues.map((i) => `\n  ${i.file === null ? '' : `${i.file}:${i.line}:${i.column}: `}${i.path === '' ? '' : `${i.path}: `}${i.message}`).join(''));
    const message = `${r.message}; the running configuration is kept`;
    return new Response(JSON.stringify({ error: { code: 'reload_failed', message, source: r.source, issues: r.issues, warnings: r.warnings ?? [] } }, null, 2) + '\n', {
      status: 422,
      headers: JSON_HEADERS,
    });
  }
}
