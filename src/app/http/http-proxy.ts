/**
 * An HTTP mode listener's request handling (docs/http.md): route by Host and path prefix to a
 * group, choose the server (the sticky cookie's while it is up, else the group's Selector: round
 * robin, leastconn, hash, tracking as for connections), rewrite the headers, and run the
 * exchange over a pooled keep-alive connection. Owns the listener's backend pool: at most
 * `max_per_server` connections to each server, idle ones closed after `idle_timeout` and when
 * their server goes down.
 */
import { randomBytes } from 'node:crypto';
import { formatAddress } from '../../core/address.ts';
import type { Clock } from '../../core/clock.ts';
import { clientKey } from '../../core/ip.ts';
import { newSelectionState, type SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import { TrustedSources } from '../../core/trusted-sources.ts';
import { forwardedRequestHeaders } from '../../core/http/forwarding.ts';
import { ConnectionPool, type PoolOwner } from '../../core/http/pool.ts';
import { matchRoute, type HttpRoute } from '../../core/http/routes.ts';
import { StickyTable, takeCookie } from '../../core/http/sticky.ts';
import type { HttpListenerConfig } from '../../config/model.ts';
import { BackendConnection, type BackendOwner, type BackendUser } from '../../dataplane/http-backend.ts';
import type { HttpFrontHandler, Upgrader } from '../../dataplane/http-front.ts';
import { bodyFraming, framingHeader, requestTarget } from '../../protocol/http1-request.ts';
import { Exchange, type ExchangeHost, type HttpGroup } from './exchange.ts';
import { WsTunnel } from './ws-tunnel.ts';

export type { HttpGroup };

/** What the proxy needs of its listener (app's ListenerRuntime fits). */
export interface HttpHost {
  readonly name: string;
  readonly config: { readonly http?: HttpListenerConfig | null };
  readonly group: HttpGroup;
  readonly clock: Clock;
  groupNamed(name: string): HttpGroup | null;
  logEvent(message: string): void;
}

/** A per-process secret for the sticky cookie values (workers each have their own; docs/http.md). */
const STICKY_SECRET = randomBytes(32);

export class HttpProxy implements HttpFrontHandler, PoolOwner<BackendConnection>, BackendOwner, ExchangeHost {
  readonly pool: ConnectionPool<Server, BackendConnection>;
  readonly #host: HttpHost;
  readonly #trusted: TrustedSources | null;
  readonly #routes: HttpRoute<string>[];
  readonly #sticky = new Map<HttpGroup, { servers: readonly Server[]; n: number; table: StickyTable<Server> }>();
  readonly #watched = new Set<HttpGroup>();
  /** Requests answered, by status, for reports and tests. */
  readonly statuses = new Map<number, number>();
  inFlight = 0;

  constructor(host: HttpHost) {
    this.#host = host;
    const c = host.config.http!;
    const t = TrustedSources.parse(c.trustedProxies);
    this.#trusted = typeof t === 'string' ? null : t;
    this.#routes = c.routes.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, target: r.group }));
    this.pool = new ConnectionPool(c.pool, host.clock, this);
  }

  get clock(): Clock {
    return this.#host.clock;
  }

  event(message: string): void {
    this.#host.logEvent(`listener ${this.#host.name}: ${message}`);
  }

  // HttpFrontHandler
  request(req: Request, clientAddress: string, clientPort: number, upgrade: Upgrader): Response | Promise<Response | undefined> {
    const target = requestTarget(req.url);
    const host = req.headers.get('host');
    const route = matchRoute(this.#routes, host, pathOf(target));
    const group = (route === null ? null : this.#host.groupNamed(route.target)) ?? this.#host.group;
    this.#watch(group);
    const st = newSelectionState(clientKey(clientAddress), clientPort);
    const cookieName = group.config.stickyCookie ?? null;
    const cookies = cookieName === null ? null : takeCookie(req.headers.get('cookie'), cookieName);
    const headers = forwardedRequestHeaders(req.headers, { clientAddress, proto: 'http', host }, this.#trusted);
    if (cookies !== null) {
      const i = headers.findIndex(([n]) => n === 'cookie');
      if (i >= 0) headers.splice(i, 1);
      if (cookies.rest != null) headers.push(['cookie', cookies.rest]);
    }
    const wanted = req.headers.get('upgrade');
    if (wanted !== null) {
      if (wanted.toLowerCase() !== 'websocket') {
        this.#count(501);
        return this.errorResponse(501, `Upgrade: ${wanted.slice(0, 40)} is not supported: the runtime's HTTP server cannot hand the connection over (WebSocket only)`);
      }
      return this.#tunnel(req, group, st, target, headers, cookies?.value ?? null, upgrade);
    }
    const framing = bodyFraming(req.method, req.body !== null, req.headers.get('content-length'));
    // HTTP/1.1 needs a Host; an HTTP/1.0 client may send none, which is an empty one (RFC 9112 §3.2).
    const out: string[] = [`${req.method} ${target} HTTP/1.1`, ...(host === null ? ['host: '] : [])];
    for (const [n, v] of headers) {
      if (n === 'content-length' || n === 'expect') continue;
      out.push(`${n}: ${v}`);
    }
    const line = framingHeader(framing);
    if (line !== null) out.push(line);
    const head = Buffer.from(out.join('\r\n') + '\r\n\r\n', 'latin1');
    const body = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0) ? null : req.body;
    const x = new Exchange(this, group, st, req.method, head, body, framing.kind === 'chunked');
    x.cookieIn = cookies?.value ?? null;
    const server = this.#stuck(group, x) ?? group.selector.begin(st);
    if (server === null) {
      this.#count(503);
      return this.errorResponse(503, `no server available in group ${group.name} (${st.refusal ?? 'no-server'})`);
    }
    this.inFlight++;
    x.start(server, this.#host.config.http!.responseTimeoutMs);
    return x.response;
  }

  /** A WebSocket request: the tunnel is set up before the client is upgraded (ws-tunnel.ts). */
  #tunnel(req: Request, group: HttpGroup, st: SelectionState, target: string, headers: [string, string][], cookieIn: string | null, upgrade: Upgrader): Response | Promise<Response | undefined> {
    const server = this.#stuckTo(group, st, cookieIn) ?? group.selector.begin(st);
    if (server === null) {
      this.#count(503);
      return this.errorResponse(503, `no server available in group ${group.name} (${st.refusal ?? 'no-server'})`);
    }
    const t = new WsTunnel(this, group, st, target, headers, req.headers.get('sec-websocket-protocol'));
    this.inFlight++;
    return t.start(server, this.#host.config.http!.responseTimeoutMs, req, upgrade);
  }

  failed(e: Error): Response {
    this.event(`request failed: ${e.message}`);
    return this.errorResponse(502, 'the request could not be forwarded');
  }

  /** The cookie's server when it is valid and available (reserved like a tracked client's), else null. */
  #stuck(group: HttpGroup, x: Exchange): Server | null {
    return this.#stuckTo(group, x.st, x.cookieIn);
  }

  #stuckTo(group: HttpGroup, st: SelectionState, cookieIn: string | null): Server | null {
    if (cookieIn === null) return null;
    const s = this.#table(group)?.serverOf(cookieIn) ?? null;
    if (s === null || s.isUnavailable(this.clock.now()) || !s.reserve(true)) return null;
    st.server = s;
    st.reason = 'tracked';
    return s;
  }

  /** The group's cookie table, rebuilt when its server list changed (never per request otherwise). */
  #table(group: HttpGroup): StickyTable<Server> | null {
    if ((group.config.stickyCookie ?? null) === null) return null;
    const servers = group.selector.servers;
    let e = this.#sticky.get(group);
    if (e === undefined || e.servers !== servers || e.n !== servers.length) {
      const table = e?.table ?? new StickyTable<Server>(STICKY_SECRET, group.name);
      table.set(servers.map((s): [Server, string] => [s, formatAddress(s.address)]));
      e = { servers, n: servers.length, table };
      this.#sticky.set(group, e);
    }
    return e.table;
  }

  stickyValue(group: HttpGroup, server: Server): string | null {
    return this.#table(group)?.valueOf(server) ?? null;
  }

  #watch(group: HttpGroup): void {
    if (this.#watched.has(group)) return;
    this.#watched.add(group);
    group.stateWatchers.add(this.#serverChanged);
  }

  readonly #serverChanged = (server: Server, up: boolean): void => {
    if (!up) this.pool.closeIdle(server);
  };

  /** Opens a pooled connection to `server` (the pool counted it already). */
  open(server: Server, user: BackendUser): BackendConnection {
    return BackendConnection.open(server.address, server, user, this);
  }

  /** The exchange is done with `c`: back to the pool, or closed. */
  release(server: Server, c: BackendConnection, reusable: boolean): void {
    if (reusable && !c.closed && !server.isOut) {
      c.resume();
      this.pool.release(server, c);
    } else c.close();
  }

  // PoolOwner
  closeIdle(c: BackendConnection): void {
    c.close();
  }

  // BackendOwner: every connection ends here once; its slot is free for a waiter.
  connectionGone(c: BackendConnection): void {
    this.pool.closed(c.server as Server, c);
  }

  finished(x: { readonly status: number }): void {
    if (x.status !== 0) this.#count(x.status);
    this.inFlight--;
  }

  #count(status: number): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  errorResponse(status: number, text: string): Response {
    return new Response(`${status} ${text}\n`, { status, headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } });
  }

  /** Stops: idle connections closed (busy ones end with their requests). */
  stop(): void {
    for (const s of this.pool.servers()) this.pool.closeIdle(s);
    for (const g of this.#watched) g.stateWatchers.delete(this.#serverChanged);
    this.#watched.clear();
  }
}

/** The path of an origin-form target (without its query). */
function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}
