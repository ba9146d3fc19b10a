/**
 * An HTTP mode listener's request handling (docs/http.md): takes the listener's client
 * connections (dataplane/http-client.ts), routes each request by Host and path prefix to a
 * group, chooses the server (the sticky cookie's while it is up, else the group's Selector:
 * round robin, leastconn, hash, tracking as for connections), rewrites the headers, and runs the
 * exchange over a pooled keep-alive connection. Owns the listener's backend pool (at most
 * `max_per_server` connections to each server, idle ones closed after `idle_timeout` and when
 * their server goes down) and its timer lists: the clients' head and idle deadlines, the wait for
 * a whole request body and the response timeout, one list per length, no timer per request.
 * Counts each finished request for /metrics (by group and status class, Fulcrum's own answers by
 * status, the time to the server's response head) and hands it to the access log when one is
 * configured (docs/http.md, "Access log and metrics").
 */
import { formatAddress } from '../../core/address.ts';
import type { Clock } from '../../core/clock.ts';
import { DeadlineList } from '../../core/deadline-list.ts';
import { newSelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import { LatencyHistogram } from '../../core/servers/latency-histogram.ts';
import { TrustedSources } from '../../core/trusted-sources.ts';
import { forwardedRequestLines, forwardingTail, requestFieldsPlain } from '../../core/http/forwarding.ts';
import { headBytes } from '../../protocol/http1-lex.ts';
import { ConnectionPool, type PoolOwner } from '../../core/http/pool.ts';
import { matchRoute, type HttpRoute } from '../../core/http/routes.ts';
import { StickyTable, takeCookie } from '../../core/http/sticky.ts';
import type { HttpListenerConfig } from '../../config/model.ts';
import type { HttpRequestRecord } from '../../control/observed.ts';
import { BackendConnection, type BackendOwner, type BackendUser } from '../../dataplane/http-backend.ts';
import { clientDeadline, HttpClient, type ClientRequestUser, type ClientTimers, type HttpClientHandler } from '../../dataplane/http-client.ts';
import type { StreamSocket } from '../../dataplane/socket.ts';
import type { RequestHead, RequestLimits } from '../../protocol/http1-request-parser.ts';
import { requestTarget } from '../../protocol/http1-request.ts';
import { Exchange, exchangeDeadline, hasBodyMethod, type ExchangeHost, type HttpGroup } from './exchange.ts';
import { RequestRecord } from './request-record.ts';

export type { HttpGroup };

/** What the proxy needs of its listener (app's ListenerRuntime fits). */
export interface HttpHost {
  readonly name: string;
  readonly config: { readonly http?: HttpListenerConfig | null; readonly tls?: unknown; readonly acceptProxy?: unknown };
  readonly group: HttpGroup;
  readonly clock: Clock;
  groupNamed(name: string): HttpGroup | null;
  logEvent(message: string): void;
  /** Who hears each finished request (the access log); empty when nobody does, and then no record is built. */
  readonly requestObservers: readonly ((r: HttpRequestRecord) => void)[];
  /** A client connection ended (the listener's counts and the per-source limits). */
  httpClientEnded(key: string, bytesRead: number, bytesWritten: number): void;
}

/**
 * A per-process secret for the sticky cookie values (workers each have their own; docs/http.md),
 * made with the first HTTP listener: node:crypto is not loaded by a balancer without one.
 */
let stickySecret: Uint8Array | null = null;

const PAGE_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8' };
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 431: 'Request Header Fields Too Large', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported' };
/** Fulcrum's own answers, counted from zero in /metrics so that rate() sees the first one. */
const OWN_STATUSES = [400, 408, 413, 431, 501, 502, 503, 504, 505];

/** A client connection of this proxy: its key for the per-source limits. */
class ProxyClient extends HttpClient {
  key = '';
  /** The forwarding fields of its last request, and the Host they were made for. */
  tail: string | null = null;
  tailBytes: Uint8Array | null = null;
  tailHost: string | null = null;
}

export class HttpProxy implements HttpClientHandler, PoolOwner<BackendConnection>, BackendOwner, ExchangeHost, ClientTimers {
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
  /** Requests and tunnels under way (an exchange started, not finished). */
  inFlight = 0;
  // Timer lists (ClientTimers and ExchangeHost): one per length.
  readonly header: DeadlineList<HttpClient>;
  readonly idle: DeadlineList<HttpClient>;
  readonly bodyWait: DeadlineList<Exchange>;
  readonly responseWait: DeadlineList<Exchange>;
  readonly limits: RequestLimits;
  readonly #proto: string;
  /** The error pages' bodies by status, and the config they were read for (a reload replaces it). */
  #pages = new Map<number, { body: Uint8Array; type: string }>();
  #pagesFrom: Readonly<Record<string, string>> | undefined;

  /** `idleMs`: a client's time to send more of a body, or to read an answer waiting for it. */
  constructor(
    host: HttpHost,
    readonly idleMs: number,
  ) {
    this.#host = host;
    stickySecret ??= process.getBuiltinModule('node:crypto').randomBytes(32);
    const c = host.config.http!;
    const t = TrustedSources.parse(c.trustedProxies);
    this.#trusted = typeof t === 'string' || t.entries.length === 0 ? null : t;
    this.#routes = c.routes.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, target: r.group }));
    this.pool = new ConnectionPool(c.pool, host.clock, this);
    this.header = new DeadlineList(host.clock, clientDeadline);
    this.idle = new DeadlineList(host.clock, clientDeadline);
    this.bodyWait = new DeadlineList(host.clock, exchangeDeadline);
    this.responseWait = new DeadlineList(host.clock, exchangeDeadline);
    // Read from the listener's config at each use, so a reload's new limits apply to the next request.
    this.limits = {
      get maxHeadBytes(): number {
        return host.config.http!.maxHeadBytes;
      },
      get maxBodyBytes(): number {
        return host.config.http!.maxBodyBytes;
      },
    };
    this.#proto = host.config.tls != null ? 'https' : 'http';
    this.#classes(host.group.name);
    this.#readPages();
  }

  /** The listener (its name, for the access log). */
  get listener(): { readonly name: string } {
    return this.#host;
  }

  get clock(): Clock {
    return this.#host.clock;
  }

  get headerMs(): number {
    return this.#host.config.http!.headerTimeoutMs;
  }

  get responseTimeoutMs(): number {
    return this.#host.config.http!.responseTimeoutMs;
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

  event(message: string): void {
    this.#host.logEvent(`listener ${this.#host.name}: ${message}`);
  }

  /** A new client connection (its socket's data becomes the connection); `initial`: bytes read before (a PROXY header's followers). */
  accept(socket: StreamSocket<unknown>, address: string, port: number, key: string, initial: Uint8Array | null): HttpClient {
    const c = new ProxyClient(socket, this, this, this.limits, address, port);
    c.key = key;
    socket.data = c;
    if (initial !== null && initial.length > 0) c.onData(initial);
    return c;
  }

  // HttpClientHandler
  request(c: HttpClient, head: RequestHead): ClientRequestUser {
    const startMs = this.clock.now();
    const target = head.target === '*' ? '*' : requestTarget(head.target);
    const host = head.host;
    const st = newSelectionState((c as ProxyClient).key, c.port);
    const route = this.#routes.length === 0 ? null : matchRoute(this.#routes, host, pathOf(target));
    const group = (route === null ? null : this.#host.groupNamed(route.target)) ?? this.#host.group;
    this.#watch(group);
    const cookieName = group.config.stickyCookie ?? null;
    const cookies = cookieName === null ? null : takeCookie(cookieOf(head.headers), cookieName);
    const pc = c as ProxyClient;
    if (pc.tail === null || pc.tailHost !== host) {
      pc.tail = forwardingTail({ clientAddress: c.address, proto: this.#proto, host });
      pc.tailBytes = headBytes(pc.tail);
      pc.tailHost = host;
    }
    // The usual request (HTTP/1.1, no body, nothing in its head to rewrite) goes on as its own
    // bytes with the forwarding fields before the empty line: no head rebuilt or encoded.
    if (host !== null && head.minor === 1 && head.framing === 'none' && head.upgrade === null && cookies === null && target === head.target && !hasBodyMethod(head.method) && requestFieldsPlain(head.headers)) {
      const raw = head.raw;
      const tail = pc.tailBytes!;
      const whole = Buffer.allocUnsafe(raw.length + tail.length);
      whole.set(raw);
      whole.set(tail, raw.length - 2); // over the head's empty line, which comes again after
      whole[whole.length - 2] = 13;
      whole[whole.length - 1] = 10;
      const x = new Exchange(this, c, group, st, head, target, startMs, '', whole);
      this.inFlight++;
      return x;
    }
    // HTTP/1.1 needs a Host; an HTTP/1.0 client may send none, which is an empty one (RFC 9112 §3.2).
    let lines = host === null ? 'host: \r\n' : '';
    lines += forwardedRequestLines(head.headers, { clientAddress: c.address, proto: this.#proto, host }, this.#trusted, cookies !== null, head.fields, pc.tail);
    if (cookies !== null && cookies.rest != null) lines += `cookie: ${cookies.rest}\r\n`;
    if (head.upgrade !== null) lines += `connection: upgrade\r\nupgrade: ${head.upgrade}\r\n`;
    const x = new Exchange(this, c, group, st, head, target, startMs, lines);
    x.cookieIn = cookies?.value ?? null;
    this.inFlight++;
    return x;
  }

  refuse(c: HttpClient, status: number, reason: string): void {
    const r = new RequestRecord(this.#host, this.#host.group, newSelectionState((c as ProxyClient).key, c.port), '', '', null, this.clock.now());
    r.answered(status, status === 408 ? 'client-timeout' : status === 413 ? 'body-too-large' : 'bad-request', reason, r.startMs);
    this.writeAnswer(c, status, reason, false);
    c.closeAfterFlush();
    this.#record(r);
  }

  closed(c: HttpClient): void {
    this.#host.httpClientEnded((c as ProxyClient).key, c.bytesRead, c.bytesWritten);
  }

  /** The sticky cookie's server (noted on the record), else the group's Selector's choice; null: none (st.refusal says why). */
  choose(x: Exchange, nowMs: number): Server | null {
    const stuck = this.#stuckTo(x, nowMs);
    if (stuck !== null) {
      x.sticky = true;
      return stuck;
    }
    return x.group.selector.begin(x.st, nowMs);
  }

  #stuckTo(x: Exchange, nowMs: number): Server | null {
    if (x.cookieIn === null) return null;
    const s = this.#table(x.group)?.serverOf(x.cookieIn) ?? null;
    if (s === null || s.isUnavailable(nowMs) || !s.reserve(true)) return null;
    x.st.server = s;
    x.st.reason = 'tracked';
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
  writeAnswer(client: HttpClient, status: number, text: string, keep: boolean): void {
    if (this.#host.config.http?.errorPages !== this.#pagesFrom) this.#readPages();
    const page = this.#pages.get(status);
    const body = page !== undefined ? page.body : Buffer.from(`${status} ${STATUS_TEXT[status] ?? 'Error'}: ${text}\n`, 'utf8');
    const type = page !== undefined ? page.type : 'text/plain; charset=utf-8';
    const head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: ${type}\r\ncache-control: no-store\r\ncontent-length: ${body.length}\r\n${keep ? '' : 'connection: close\r\n'}\r\n`;
    const bodiless = client.head?.method === 'HEAD';
    const out = Buffer.allocUnsafe(head.length + (bodiless ? 0 : body.length));
    out.write(head, 0, 'latin1');
    if (!bodiless) out.set(body, head.length);
    client.write(out);
  }

  /** Stops: idle backend connections closed (busy ones end with their requests, clients by their timers). */
  stop(): void {
    for (const s of this.pool.servers()) this.pool.closeIdle(s);
    for (const g of this.#watched) g.stateWatchers.delete(this.#serverChanged);
    this.#watched.clear();
    // The timer lists go on: the connections still open end by them.
  }
}

/** The path of an origin-form target (without its query). */
function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** The Cookie fields of a request, joined as one (RFC 6265 §5.4), or null. */
function cookieOf(headers: readonly [string, string][]): string | null {
  let out: string | null = null;
  for (const [n, v] of headers) {
    if (n.length !== 6 || n.toLowerCase() !== 'cookie') continue;
    out = out === null ? v : `${out}; ${v}`;
  }
  return out;
}
