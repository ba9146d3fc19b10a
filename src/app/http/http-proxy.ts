/**
 * An HTTP mode listener's request handling (docs/http.md): route by Host and path prefix to a
 * group, choose the server (the sticky cookie's while it is up, else the group's Selector: round
 * robin, leastconn, hash, tracking as for connections), rewrite the headers, and run the
 * exchange over a pooled keep-alive connection. Owns the listener's backend pool: at most
 * `max_per_server` connections to each server, idle ones closed after `idle_timeout` and when
 * their server goes down.
 */
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
import { bodyFraming, framingHeader, requestTarget, type BodyFraming } from '../../protocol/http1-request.ts';
import { readBodyStart, wholeBody } from './body-start.ts';
import { Exchange, type ExchangeHost, type HttpGroup } from './exchange.ts';
import { WsTunnel } from './ws-tunnel.ts';

export type { HttpGroup };

/** What the proxy needs of its listener (app's ListenerRuntime fits). */
export interface HttpHost {
  readonly name: string;
  readonly config: { readonly http?: HttpListenerConfig | null; readonly tls?: unknown };
  readonly group: HttpGroup;
  readonly clock: Clock;
  groupNamed(name: string): HttpGroup | null;
  logEvent(message: string): void;
}

/**
 * A per-process secret for the sticky cookie values (workers each have their own; docs/http.md),
 * made with the first HTTP listener: node:crypto is not loaded by a balancer without one.
 */
let stickySecret: Uint8Array | null = null;

const PAGE_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8' };
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

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
  /** The error pages' bodies by status, and the config they were read for (a reload replaces it). */
  #pages = new Map<number, { body: Uint8Array; type: string }>();
  #pagesFrom: Readonly<Record<string, string>> | undefined;

  constructor(host: HttpHost) {
    this.#host = host;
    stickySecret ??= process.getBuiltinModule('node:crypto').randomBytes(32);
    const c = host.config.http!;
    const t = TrustedSources.parse(c.trustedProxies);
    this.#trusted = typeof t === 'string' ? null : t;
    this.#routes = c.routes.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, target: r.group }));
    this.pool = new ConnectionPool(c.pool, host.clock, this);
    this.#readPages();
  }

  /** Reads the configured error pages (at start, and after a reload changed them); an unreadable one is logged and the default used. */
  #readPages(): void {
    const from = this.#host.config.http?.errorPages;
    this.#pagesFrom = from;
    this.#pages = new Map();
    for (const [status, path] of Object.entries(from ?? {})) {
      try {
        this.#pages.set(Number(status), { body: process.getBuiltinModule('node:fs').readFileSync(path), type: PAGE_TYPES[process.getBuiltinModule('node:path').extname(path).toLowerCase()] ?? 'text/plain; charset=utf-8' });
      } catch (e) {
        this.event(`error page for ${status} not read, the default is used: ${(e as Error).message}`);
      }
    }
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
    // The runtime joins a repeated Host with ', ' (a host never has a comma): two Hosts are ambiguous.
    if (host !== null && host.includes(',')) {
      this.#count(400);
      return this.errorResponse(400, 'more than one Host header');
    }
    const route = matchRoute(this.#routes, host, pathOf(target));
    const group = (route === null ? null : this.#host.groupNamed(route.target)) ?? this.#host.group;
    this.#watch(group);
    const st = newSelectionState(clientKey(clientAddress), clientPort);
    const cookieName = group.config.stickyCookie ?? null;
    const cookies = cookieName === null ? null : takeCookie(req.headers.get('cookie'), cookieName);
    const headers = forwardedRequestHeaders(req.headers, { clientAddress, proto: this.#host.config.tls != null ? 'https' : 'http', host }, this.#trusted);
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
    const body = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0) ? null : req.body;
    if (body === null) return this.#forward(req.method, target, host, headers, framing, null, group, st, cookies?.value ?? null);
    // A short body is read whole first: a malformed one never reaches a server (body-start.ts).
    return readBodyStart(body, this.clock).then((start) => {
      if (start.kind === 'failed') {
        this.#count(400);
        return this.errorResponse(400, `the request body could not be read: ${(start.error as Error).message ?? String(start.error)}`);
      }
      if (start.kind === 'whole') return this.#forward(req.method, target, host, headers, { kind: 'length', length: start.bytes.length }, wholeBody(start.bytes), group, st, cookies?.value ?? null);
      return this.#forward(req.method, target, host, headers, framing, start.body, group, st, cookies?.value ?? null);
    });
  }

  /** Sends the request on: its head (with `framing`), then `body` streamed, to a server of `group`. */
  #forward(method: string, target: string, host: string | null, headers: [string, string][], framing: BodyFraming, body: ReadableStream<Uint8Array> | null, group: HttpGroup, st: SelectionState, cookieIn: string | null): Response | Promise<Response> {
    // HTTP/1.1 needs a Host; an HTTP/1.0 client may send none, which is an empty one (RFC 9112 §3.2).
    const out: string[] = [`${method} ${target} HTTP/1.1`, ...(host === null ? ['host: '] : [])];
    for (const [n, v] of headers) {
      if (n === 'content-length' || n === 'expect') continue;
      out.push(`${n}: ${v}`);
    }
    const line = framingHeader(framing);
    if (line !== null) out.push(line);
    const head = Buffer.from(out.join('\r\n') + '\r\n\r\n', 'latin1');
    const x = new Exchange(this, group, st, method, head, body, framing.kind === 'chunked');
    x.cookieIn = cookieIn;
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
      const table = e?.table ?? new StickyTable<Server>(stickySecret!, group.name);
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

  /** An answer of Fulcrum's own: the listener's error page for `status`, or `<status> <reason>: <text>`. */
  errorResponse(status: number, text: string): Response {
    if (this.#host.config.http?.errorPages !== this.#pagesFrom) this.#readPages();
    const page = this.#pages.get(status);
    if (page !== undefined) return new Response(page.body, { status, headers: { 'content-type': page.type, 'cache-control': 'no-store' } });
    return new Response(`${status} ${STATUS_TEXT[status] ?? 'Error'}: ${text}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } });
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
