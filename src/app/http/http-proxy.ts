/**
 * An HTTP mode listener's request handling (docs/http.md): route by Host and path prefix to a
 * group, choose the server (the sticky cookie's while it is up, else the group's Selector: round
 * robin, leastconn, hash, tracking as for connections), rewrite the headers, and run the
 * exchange over a pooled keep-alive connection. Owns the listener's backend pool: at most
 * `max_per_server` connections to each server, idle ones closed after `idle_timeout` and when
 * their server goes down. Counts each finished request for /metrics (by group and status class,
 * Fulcrum's own answers by status, the time to the server's response head) and hands it to the
 * access log when one is configured (docs/http.md, "Access log and metrics"). Sets the client
 * connection's timer in each phase of a request (core/http/client-timer.ts): long enough for the
 * response timeout while a request waits, the client idle timeout while an answer streams,
 * `header_timeout` once it is complete.
 */
import { formatAddress } from '../../core/address.ts';
import type { Clock } from '../../core/clock.ts';
import { clientKey } from '../../core/ip.ts';
import { newSelectionState, type SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import { LatencyHistogram } from '../../core/servers/latency-histogram.ts';
import { TrustedSources } from '../../core/trusted-sources.ts';
import { forwardedRequestHeaders } from '../../core/http/forwarding.ts';
import { ConnectionPool, type PoolOwner } from '../../core/http/pool.ts';
import { matchRoute, type HttpRoute } from '../../core/http/routes.ts';
import { StickyTable, takeCookie } from '../../core/http/sticky.ts';
import type { HttpListenerConfig } from '../../config/model.ts';
import type { HttpRequestRecord } from '../../control/observed.ts';
import { BackendConnection, type BackendOwner, type BackendUser } from '../../dataplane/http-backend.ts';
import type { HttpFront, HttpFrontHandler } from '../../dataplane/http-front.ts';
import { timerSeconds, waitSeconds } from '../../core/http/client-timer.ts';
import { bodyFraming, framingHeader, requestTarget, type BodyFraming } from '../../protocol/http1-request.ts';
import { readBodyStart, wholeBody } from './body-start.ts';
import { Exchange, type ExchangeHost, type HttpGroup } from './exchange.ts';
import { RequestRecord } from './request-record.ts';
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
  /** Who hears each finished request (the access log); empty when nobody does, and then no record is built. */
  readonly requestObservers: readonly ((r: HttpRequestRecord) => void)[];
}

/**
 * A per-process secret for the sticky cookie values (workers each have their own; docs/http.md),
 * made with the first HTTP listener: node:crypto is not loaded by a balancer without one.
 */
let stickySecret: Uint8Array | null = null;

const PAGE_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8' };
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
/** Fulcrum's own answers, counted from zero in /metrics so that rate() sees the first one. */
const OWN_STATUSES = [400, 413, 501, 502, 503, 504];

export class HttpProxy implements HttpFrontHandler, PoolOwner<BackendConnection>, BackendOwner, ExchangeHost {
  readonly pool: ConnectionPool<Server, BackendConnection>;
  readonly #host: HttpHost;
  readonly #trusted: TrustedSources | null;
  readonly #routes: HttpRoute<string>[];
  readonly #sticky = new Map<HttpGroup, { servers: readonly Server[]; n: number; table: StickyTable<Server> }>();
  readonly #watched = new Set<HttpGroup>();
  /** Requests answered, by group name: counts by status class (index 1 to 5 for 1xx to 5xx; 0 for anything else). */
  readonly requests = new Map<string, number[]>();
  /** Fulcrum's own error answers, by status. */
  readonly errorAnswers = new Map<number, number>(OWN_STATUSES.map((s) => [s, 0]));
  /** Time from a request's arrival to its server's response head (O(1) per request). */
  readonly responseHead = new LatencyHistogram();
  /** Requests and tunnels under way (an exchange or tunnel started, not finished). */
  inFlight = 0;
  /** The error pages' bodies by status, and the config they were read for (a reload replaces it). */
  #pages = new Map<number, { body: Uint8Array; type: string }>();
  #pagesFrom: Readonly<Record<string, string>> | undefined;

  /** `clientIdleS`: the client timer while an answer is written (the runtime server's idle timeout). */
  constructor(
    host: HttpHost,
    readonly clientIdleS: number,
  ) {
    this.#host = host;
    stickySecret ??= process.getBuiltinModule('node:crypto').randomBytes(32);
    const c = host.config.http!;
    const t = TrustedSources.parse(c.trustedProxies);
    this.#trusted = typeof t === 'string' || t.entries.length === 0 ? null : t;
    this.#routes = c.routes.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, target: r.group }));
    this.pool = new ConnectionPool(c.pool, host.clock, this);
    this.#classes(host.group.name);
    this.#readPages();
  }

  /** The listener (its name, for the access log). */
  get listener(): { readonly name: string } {
    return this.#host;
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
  request(req: Request, clientAddress: string, clientPort: number, front: HttpFront): Response | Promise<Response | undefined> {
    const startMs = this.clock.now();
    const target = requestTarget(req.url);
    const host = req.headers.get('host');
    const st = newSelectionState(clientKey(clientAddress), clientPort);
    // The runtime joins a repeated Host with ', ' (a host never has a comma): two Hosts are ambiguous.
    if (host !== null && host.includes(',')) return this.#refuse(this.#bare(front, req, this.#host.group, st, target, host, startMs), 400, 'bad-request', 'more than one Host header');
    const route = this.#routes.length === 0 ? null : matchRoute(this.#routes, host, pathOf(target));
    const group = (route === null ? null : this.#host.groupNamed(route.target)) ?? this.#host.group;
    this.#watch(group);
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
        const text = `Upgrade: ${wanted.slice(0, 40)} is not supported: the runtime's HTTP server cannot hand the connection over (WebSocket only)`;
        return this.#refuse(this.#bare(front, req, group, st, target, host, startMs), 501, 'upgrade-unsupported', text);
      }
      const t = new WsTunnel(this, group, st, req.method, target, host, startMs, headers, req.headers.get('sec-websocket-protocol'));
      t.front = front;
      t.req = req;
      this.#waiting(front, req);
      return this.#tunnel(t, cookies?.value ?? null);
    }
    const framing = bodyFraming(req.method, req.body !== null, req.headers.get('content-length'));
    const body = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0) ? null : req.body;
    if (body === null) {
      this.#waiting(front, req);
      return this.#forward(front, req, target, host, startMs, headers, framing, null, group, st, cookies?.value ?? null);
    }
    // A short body is read whole first: a malformed one never reaches a server (body-start.ts).
    // While a body comes the runtime's own rule bounds it (16 KiB/s over the idle timeout); its end turns the timer off.
    return readBodyStart(body, this.clock).then((start) => {
      if (start.kind === 'failed') {
        const text = `the request body could not be read: ${(start.error as Error).message ?? String(start.error)}`;
        return this.#refuse(this.#bare(front, req, group, st, target, host, startMs), 400, 'bad-request', text);
      }
      if (start.kind === 'whole') return this.#forward(front, req, target, host, startMs, headers, { kind: 'length', length: start.bytes.length }, wholeBody(start.bytes), group, st, cookies?.value ?? null);
      return this.#forward(front, req, target, host, startMs, headers, framing, start.body, group, st, cookies?.value ?? null);
    });
  }

  /** A record for a request Fulcrum answers itself before any exchange (an error path). */
  #bare(front: HttpFront, req: Request, group: HttpGroup, st: SelectionState, target: string, host: string | null, startMs: number): RequestRecord {
    const r = new RequestRecord(this.#host, group, st, req.method, target, host, startMs, false);
    r.front = front;
    r.req = req;
    return r;
  }

  /** A request without a body waits for its server: the runtime must not close it before the response timeout answers. */
  #waiting(front: HttpFront, req: Request): void {
    front.clientTimeout(req, waitSeconds(this.#host.config.http!.responseTimeoutMs));
  }

  answerBegins(r: RequestRecord): void {
    r.front?.clientTimeout(r.req!, this.clientIdleS);
  }

  answerDone(r: RequestRecord): void {
    r.front?.clientTimeout(r.req!, timerSeconds(this.#host.config.http!.headerTimeoutMs));
  }

  /** Sends the request on: its head (with `framing`), then `body` streamed, to a server of `group`. */
  #forward(front: HttpFront, req: Request, target: string, host: string | null, startMs: number, headers: [string, string][], framing: BodyFraming, body: ReadableStream<Uint8Array> | null, group: HttpGroup, st: SelectionState, cookieIn: string | null): Response | Promise<Response> {
    const method = req.method;
    // HTTP/1.1 needs a Host; an HTTP/1.0 client may send none, which is an empty one (RFC 9112 §3.2).
    let text = host === null ? `${method} ${target} HTTP/1.1\r\nhost: \r\n` : `${method} ${target} HTTP/1.1\r\n`;
    for (const [n, v] of headers) {
      if (n === 'content-length' || n === 'expect') continue;
      text += `${n}: ${v}\r\n`;
    }
    const line = framingHeader(framing);
    text += line === null ? '\r\n' : `${line}\r\n\r\n`;
    const head = Buffer.from(text, 'latin1');
    const x = new Exchange(this, group, st, method, target, host, startMs, head, body, framing.kind === 'chunked');
    x.cookieIn = cookieIn;
    x.front = front;
    x.req = req;
    const server = this.#chosen(x, cookieIn);
    if (server === null) return this.#noServer(x);
    this.inFlight++;
    x.start(server, this.#host.config.http!.responseTimeoutMs);
    return x.response;
  }

  /** A WebSocket request: the tunnel is set up before the client is upgraded (ws-tunnel.ts). */
  #tunnel(t: WsTunnel, cookieIn: string | null): Response | Promise<Response | undefined> {
    const server = this.#chosen(t, cookieIn);
    if (server === null) return this.#noServer(t);
    this.inFlight++;
    return t.start(server, this.#host.config.http!.responseTimeoutMs);
  }

  /** The sticky cookie's server (noted on the record), else the group's Selector's choice; null: none (st.refusal says why). */
  #chosen(r: RequestRecord, cookieIn: string | null): Server | null {
    const stuck = this.#stuckTo(r.group, r.st, cookieIn);
    if (stuck !== null) {
      r.sticky = true;
      return stuck;
    }
    return r.group.selector.begin(r.st);
  }

  /** 503: no server of the group could take the request. */
  #noServer(r: RequestRecord): Response {
    const refusal = r.st.refusal ?? 'no-server';
    return this.#refuse(r, 503, refusal, `no server available in group ${r.group.name} (${refusal})`);
  }

  /** An answer of Fulcrum's own before any exchange began: counted and logged like a finished request. */
  #refuse(r: RequestRecord, status: number, end: string, text: string): Response {
    r.answered(status, end, text, r.startMs);
    this.answerDone(r);
    this.#record(r);
    return this.errorResponse(status, text);
  }

  failed(e: Error): Response {
    this.event(`request failed: ${e.message}`);
    return this.errorResponse(502, 'the request could not be forwarded');
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

  finished(x: RequestRecord): void {
    this.inFlight--;
    this.#record(x);
  }

  /** Counts a finished request (O(1)) and, when the access log listens, hands it the record. */
  #record(r: RequestRecord): void {
    const status = r.status;
    if (status !== 0) {
      const c = (status / 100) | 0;
      this.#classes(r.group.name)[c >= 1 && c <= 5 ? c : 0]!++;
      if (r.own) this.errorAnswers.set(status, (this.errorAnswers.get(status) ?? 0) + 1);
      else if (!r.websocket && r.headMs !== 0) this.responseHead.record(r.headMs - r.startMs);
    }
    const observers = this.#host.requestObservers;
    if (observers.length === 0) return;
    r.endMs = this.clock.now();
    for (const f of observers) f(r);
  }

  /** A group's counts by status class (made on its first request). */
  #classes(group: string): number[] {
    let c = this.requests.get(group);
    if (c === undefined) {
      c = [0, 0, 0, 0, 0, 0];
      this.requests.set(group, c);
    }
    return c;
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
