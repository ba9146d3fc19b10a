/**
 * One request of HTTP mode and its response (docs/http.md): a server from the group's Selector
 * (or the sticky cookie's), a connection from the pool, the request written, the response head
 * turned into the client's Response and its body streamed to it with backpressure (the backend
 * socket is paused while the client's stream is full). A request body is streamed the other way
 * (body-pump.ts); the response timeout runs while the request waits and from the body's end, not
 * during its upload. A server that answers before the body is all sent gets no more of it, and
 * its connection is not reused. Failures become HTTP answers: 503 when no
 * server is available, 502 when the server fails before its response, 504 when it does not begin
 * one within the response timeout. A request not yet sent (connect failed) is tried once more on
 * another server; one that met a stale keep-alive connection is sent once more on a fresh one
 * unless some of its body went already. The client connection's timer is told when the answer
 * begins and when it is complete (core/http/client-timer.ts).
 *
 * The exchange is the connection's user and the pool's waiter itself: no closure per chunk. It is
 * also its own access log record (request-record.ts): what the log and /metrics need is noted in
 * plain fields as it goes.
 */
import type { TimerHandle } from '../../core/clock.ts';
import type { SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import { forwardedResponseHeaders } from '../../core/http/forwarding.ts';
import { stickyCookie } from '../../core/http/sticky.ts';
import type { PoolWaiter } from '../../core/http/pool.ts';
import type { ResponseHead } from '../../protocol/http1-response.ts';
import { BodyPump, type PumpUser } from './body-pump.ts';
import type { BackendConnection, BackendUser } from '../../dataplane/http-backend.ts';
import type { ConnectionPool } from '../../core/http/pool.ts';
import type { Clock } from '../../core/clock.ts';
import { RequestRecord, type HttpGroup } from './request-record.ts';

export type { HttpGroup };

/** What an exchange needs of its listener's proxy (http-proxy.ts). */
export interface ExchangeHost {
  /** The listener (its name, for the access log). */
  readonly listener: { readonly name: string };
  readonly clock: Clock;
  readonly pool: ConnectionPool<Server, BackendConnection>;
  open(server: Server, user: BackendUser): BackendConnection;
  release(server: Server, c: BackendConnection, reusable: boolean): void;
  stickyValue(group: HttpGroup, server: Server): string | null;
  event(message: string): void;
  errorResponse(status: number, text: string): Response;
  /** A streamed answer to `r` begins (the client timer while it is written). */
  answerBegins(r: RequestRecord): void;
  /** The answer to `r` is complete, or its last bytes are on their way (the client timer for the next request's head). */
  answerDone(r: RequestRecord): void;
  /** An exchange or a WebSocket tunnel is over (its status: the answer, 101 for a tunnel): counted, logged. */
  finished(x: RequestRecord): void;
}

/** Connects tried after the first for one request (on another server). */
const CONNECT_RETRIES = 1;

/**
 * A response body with a Content-Length up to this size is gathered whole and handed to the
 * client as bytes, not as a stream: a stream costs the runtime more than the copy (docs/http.md,
 * "Response bodies"), and most responses are small. The response timeout then runs to the
 * body's end, since the client sees nothing before it.
 */
const WHOLE_RESPONSE_MAX = 64 * 1024;

export class Exchange extends RequestRecord implements BackendUser, PoolWaiter<BackendConnection>, PumpUser {
  conn: BackendConnection | null = null;
  /** The server this request holds a selector slot on (pending, then connected). */
  connected = false;
  done = false;
  #timer: TimerHandle | null = null;
  #resolve!: (r: Response) => void;
  readonly response: Promise<Response>;
  #stream: ReadableStreamDefaultController<Uint8Array> | null = null;
  #connectRetries = 0;
  #staleRetried = false;
  /** Set-Cookie to add to the response (a sticky request that was not sticky yet, or re-stuck). */
  setCookie: string | null = null;
  /** The sticky cookie's value the request came with, or null. */
  cookieIn: string | null = null;
  /** A small response being gathered (WHOLE_RESPONSE_MAX): its head and its body so far. */
  #wholeHead: ResponseInit | null = null;
  #whole: Uint8Array | null = null;
  #wholeAt = 0;
  readonly #pump: BodyPump | null;
  #timeoutMs = 0;

  /**
   * `target`, `host`, `startMs`: the client's request as logged; `head`: the request head to
   * send; `body`: the client's body, streamed after it (chunked or not).
   */
  constructor(
    readonly proxy: ExchangeHost,
    group: HttpGroup,
    st: SelectionState,
    method: string,
    target: string,
    host: string | null,
    startMs: number,
    readonly head: Uint8Array,
    body: ReadableStream<Uint8Array> | null = null,
    chunked = false,
  ) {
    super(proxy.listener, group, st, method, target, host, startMs, false);
    this.response = new Promise<Response>((r) => (this.#resolve = r));
    this.#pump = body === null ? null : new BodyPump(body, chunked, this);
  }

  /** Starts with `server` (already reserved by the selector or the sticky rule). */
  start(server: Server, timeoutMs: number): void {
    this.#timeoutMs = timeoutMs;
    this.#timer = this.proxy.clock.setTimeout(timedOut, timeoutMs, this);
    this.#use(server);
  }

  #use(server: Server): void {
    this.server = server;
    this.#noteCookie(server);
    const a = this.proxy.pool.acquire(server, this);
    if (a === 'open') this.conn = this.proxy.open(server, this);
    else if (a !== 'wait') this.#send(a);
  }

  /** The sticky cookie names the server that answers (set when it was not the one asked for). */
  #noteCookie(server: Server): void {
    const name = this.group.config.stickyCookie ?? null;
    if (name === null) return;
    const value = this.proxy.stickyValue(this.group, server);
    this.setCookie = value === null || value === this.cookieIn ? null : stickyCookie(name, value);
  }

  // PoolWaiter: a connection freed up for this waiting request (or leave to open one).
  granted(conn: BackendConnection | null): void {
    const server = this.st.server!;
    if (this.done) {
      // Gave up meanwhile (cannot happen: cancel() removes it), so hand it back.
      if (conn !== null) this.proxy.release(server, conn, true);
      else this.proxy.pool.closed(server, null);
      return;
    }
    if (conn !== null) this.#send(conn);
    else this.conn = this.proxy.open(server, this);
  }

  #send(conn: BackendConnection): void {
    this.conn = conn;
    conn.user = this;
    if (!this.connected) {
      this.connected = true;
      this.group.selector.connected(this.st);
    }
    conn.send(this.method, this.head);
    this.connectionUses = conn.uses;
    if (this.#pump === null) return;
    // The upload's time is the client's (its idle timeout bounds it), not the server's.
    this.proxy.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#pump.start(conn);
  }

  // PumpUser
  bodySent(): void {
    if (this.done || this.status !== 0 || this.#timer !== null) return;
    this.#timer = this.proxy.clock.setTimeout(timedOut, this.#timeoutMs, this);
  }

  /** The client's body could not be read (it went away, or a chunked body went over the limit). */
  bodyFailed(_p: BodyPump, e: unknown): void {
    if (this.done) return;
    const c = this.conn;
    this.conn = null;
    c?.close();
    const tooLarge = e instanceof Error && e.message.includes('maxRequestBodySize');
    if (this.status === 0) {
      this.#answer(tooLarge ? 413 : 400, tooLarge ? 'body-too-large' : 'bad-request', tooLarge ? 'the request body is over max_body_size' : 'the request body was cut short');
      return;
    }
    // The server answered already: its response is cut (if it was still streaming).
    this.#stream?.error(new Error('the request body was cut short'));
    this.#stream = null;
    this.#aborted('client-aborted', tooLarge ? 'the request body went over max_body_size' : 'the request body was cut short');
  }

  // BackendUser
  backendConnected(c: BackendConnection): void {
    this.#send(c);
  }

  backendDrained(): void {
    this.#pump?.drained();
  }

  backendConnectFailed(_c: BackendConnection, why: string): void {
    this.conn = null;
    if (this.done) return;
    const sel = this.group.selector;
    const failed = this.st.server;
    if (failed !== null) this.proxy.event(`server ${failed.index} of group ${this.group.name}: connect failed: ${why}`);
    // Blacklists the server (-b) and reserves the next one, which is tried once.
    const next = sel.connectFailed(this.st, false);
    if (next === null || this.#connectRetries >= CONNECT_RETRIES) {
      if (next !== null) sel.abandoned(this.st);
      this.#answer(502, 'connect-failed', 'the server could not be reached', `connect failed: ${why}`);
      return;
    }
    this.#connectRetries++;
    if (failed !== null) this.failedOnce(failed, `connect failed: ${why}`, 'connect-failed');
    this.sticky = false;
    this.#use(next);
  }

  backendHead(_c: BackendConnection, head: ResponseHead): void {
    if (this.done) return;
    let headers = forwardedResponseHeaders(head.headers);
    if (this.setCookie !== null) {
      // HAProxy's nocache: a response that sticks a client must not be cached for others.
      headers = headers.filter(([n]) => n.toLowerCase() !== 'cache-control');
      headers.push(['set-cookie', this.setCookie], ['cache-control', 'private']);
    }
    const init: ResponseInit = { status: head.status, statusText: head.reason, headers };
    const clock = this.proxy.clock;
    this.headMs = clock.now();
    if (head.framing === 'length' && head.length <= WHOLE_RESPONSE_MAX) {
      // Gathered whole (the response timer keeps running until it is): see WHOLE_RESPONSE_MAX.
      this.#wholeHead = init;
      this.#whole = new Uint8Array(head.length);
      this.#wholeAt = 0;
      return;
    }
    clock.clearTimer(this.#timer);
    this.#timer = null;
    let body: ReadableStream<Uint8Array> | null = null;
    if (head.framing !== 'none') {
      body = new ReadableStream<Uint8Array>({ start: (c) => void (this.#stream = c), pull: () => this.conn?.resume(), cancel: () => this.#clientGone() }, { highWaterMark: 4 });
      this.proxy.answerBegins(this);
    } else this.proxy.answerDone(this);
    this.status = head.status;
    this.#resolve(new Response(body, init));
  }

  backendBody(c: BackendConnection, chunk: Uint8Array): void {
    const whole = this.#whole;
    if (whole !== null) {
      // The parser never gives more than the Content-Length.
      whole.set(chunk, this.#wholeAt);
      this.#wholeAt += chunk.length;
      this.bytesToClient += chunk.length;
      return;
    }
    const s = this.#stream;
    if (s === null) return;
    // Counted as it goes to the client's stream (what the client reads of it is the runtime's).
    this.bytesToClient += chunk.length;
    // The runtime may reuse the read buffer once this returns: the stream keeps a copy.
    s.enqueue(chunk.slice());
    if ((s.desiredSize ?? 1) <= 0) c.pause();
  }

  backendEnd(c: BackendConnection, reusable: boolean): void {
    const init = this.#wholeHead;
    if (init !== null) {
      this.#wholeHead = null;
      this.proxy.answerDone(this);
      this.status = init.status!;
      this.#resolve(new Response(this.#whole, init));
      this.#whole = null;
    }
    // Before the close: once the runtime has written the last chunk, the request is over and its timer can no longer be set.
    if (this.#stream !== null) this.proxy.answerDone(this);
    this.#stream?.close();
    this.#stream = null;
    // Answered before the whole body was sent: the rest is dropped, and the connection with it.
    const early = this.#pump !== null && !this.#pump.over;
    if (early) this.detail = 'answered before the request body was all sent';
    this.#finish(c, reusable && !early);
  }

  backendFailed(c: BackendConnection, why: string, responseStarted: boolean): void {
    this.conn = null;
    if (this.done) return;
    if (responseStarted && this.#wholeHead !== null) {
      // Cut short while gathered: the client has seen nothing yet, so it gets a 502, not a torn
      // response. Not sent again: the server has the request.
      this.#wholeHead = null;
      this.#whole = null;
      const server = this.st.server;
      if (server !== null) this.group.selector.passiveFailure(server, why);
      this.#answer(502, 'server-aborted', 'the server failed during its response', why);
      return;
    }
    if (responseStarted) {
      this.#stream?.error(new Error(why));
      this.#stream = null;
      this.#aborted('server-aborted', why);
      return;
    }
    // A keep-alive connection the server had closed meanwhile: once more on a fresh one, unless
    // body bytes went to it already (the client cannot send them again).
    if (c.uses > 1 && !this.#staleRetried && this.#pump?.taken !== true) {
      this.#staleRetried = true;
      this.#pump?.detach();
      this.failedOnce(c.server as Server, `stale keep-alive connection: ${why}`, 'stale-connection');
      // Back to a reserved slot, so that a failed connect now fails over like any other.
      const server = this.st.server!;
      this.group.selector.released(this.st);
      this.connected = false;
      if (server.reserve(true)) {
        this.#use(server);
        return;
      }
      this.st.server = null;
    }
    const server = this.st.server;
    if (server !== null) this.group.selector.passiveFailure(server, why);
    this.#answer(502, 'server-failed', 'the server failed before answering', why);
  }

  /** The response timeout: 504 if the head (or a gathered body) has not come (the connection cannot be reused). */
  onTimeout(): void {
    this.#timer = null;
    if (this.done) return;
    this.#wholeHead = null;
    this.#whole = null;
    const c = this.conn;
    if (c !== null) {
      this.conn = null;
      c.close();
    } else if (this.st.server !== null && !this.connected) {
      this.proxy.pool.cancel(this.st.server, this);
    }
    this.#answer(504, 'response-timeout', 'the server did not answer in time');
  }

  #clientGone(): void {
    const c = this.conn;
    this.conn = null;
    c?.close();
    this.#aborted('client-aborted', 'the client went away during the response');
  }

  /** The response was given and then cut (`end` says by whom). */
  #aborted(end: string, detail: string): void {
    this.end = end;
    this.detail = detail;
    this.#finish(null, false);
  }

  /**
   * An error answer of ours (`text` its body, `end` and `why` for the access log); the selector
   * slot is given back.
   */
  #answer(status: number, end: string, text: string, why: string | null = null): void {
    this.answered(status, end, why === null ? text : `${text}: ${why}`, this.proxy.clock.now());
    this.proxy.answerDone(this);
    this.#resolve(this.proxy.errorResponse(status, text));
    this.#finish(null, false);
  }

  /** Ends the exchange once: the timer, the connection (to the pool or closed), the selector slot. */
  #finish(c: BackendConnection | null, reusable: boolean): void {
    if (this.done) return;
    this.done = true;
    const pump = this.#pump;
    if (pump !== null) {
      pump.cancel();
      this.bytesFromClient = pump.bytes;
    }
    this.proxy.clock.clearTimer(this.#timer);
    this.#timer = null;
    const server = this.st.server;
    if (c !== null && server !== null) this.proxy.release(server, c, reusable);
    this.conn = null;
    if (this.connected) this.group.selector.released(this.st);
    else if (server !== null) this.group.selector.abandoned(this.st);
    this.proxy.finished(this);
  }
}

function timedOut(x: Exchange): void {
  x.onTimeout();
}
