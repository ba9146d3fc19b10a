/**
 * One request of HTTP mode and its answer (docs/http.md), between the client's connection
 * (dataplane/http-client.ts) and a pooled server connection (dataplane/http-backend.ts).
 *
 * The request: a body that ends within WHOLE_BODY_BYTES and WHOLE_BODY_WAIT_MS of its head is
 * read whole first and sent with a Content-Length in one write with the head, so a malformed one
 * (a smuggling attempt) is answered 400 and never reaches a server, and the request can be sent
 * again on a fresh connection if a pooled one turns out stale. A longer or slower body is
 * streamed as it comes, framed as the client framed it, with backpressure both ways (the client
 * is paused while the server's socket is full). The response timeout runs while the request
 * waits and from the body's end, not during its upload.
 *
 * The answer is written straight to the client's socket: a response with a Content-Length up to
 * WHOLE_RESPONSE_MAX is gathered and written with its head in one write (a server that cuts it
 * short gives the client a 502, not a torn answer); a longer one, a chunked one, or one delimited
 * by the server's close is streamed (chunked toward HTTP/1.1 clients, so the client connection
 * stays open), the server's socket paused while the client's is full. A 101 to an upgrade turns
 * both connections into a byte tunnel, of any protocol.
 *
 * Failures become HTTP answers: 503 when no server is available, 502 when the server fails
 * before its response, 504 when it does not begin one within the response timeout. A request not
 * yet sent (connect failed) is tried once more on another server; one that met a stale keep-alive
 * connection is sent once more on a fresh one, and an idempotent one a server dropped unanswered
 * once more on another server, unless part of a streamed body went already.
 *
 * The exchange is the connection's user, the pool's waiter, the client's request user, the
 * timer lists' entry and its own access log record (request-record.ts): no closure per request
 * or chunk.
 */
import { relist, type DeadlineEntry, type DeadlineList } from '../../core/deadline-list.ts';
import type { SelectionState } from '../../core/selector.ts';
import type { Server } from '../../core/servers/server.ts';
import { forwardedResponseLines } from '../../core/http/forwarding.ts';
import { stickyCookie } from '../../core/http/sticky.ts';
import type { PoolWaiter } from '../../core/http/pool.ts';
import type { ResponseHead } from '../../protocol/http1-response.ts';
import type { RequestHead } from '../../protocol/http1-request-parser.ts';
import { chunkFrame, LAST_CHUNK } from '../../protocol/http1-request.ts';
import { headBytes } from '../../protocol/http1-lex.ts';
import type { BackendConnection, BackendUser } from '../../dataplane/http-backend.ts';
import type { ClientFailure, ClientRequestUser, HttpClient } from '../../dataplane/http-client.ts';
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
  /** The wait for a whole body (WHOLE_BODY_WAIT_MS) and the response timeout. */
  readonly bodyWait: DeadlineList<Exchange>;
  readonly responseWait: DeadlineList<Exchange>;
  readonly responseTimeoutMs: number;
  open(server: Server, user: BackendUser): BackendConnection;
  release(server: Server, c: BackendConnection, reusable: boolean): void;
  /** The server for a request: the sticky cookie's (noted on the record), else the group's Selector's; null: none. */
  choose(x: Exchange, nowMs: number): Server | null;
  stickyValue(group: HttpGroup, server: Server): string | null;
  event(message: string): void;
  /** Writes an answer of Fulcrum's own for `status` to `client` (`keep`: the connection stays open). */
  writeAnswer(client: HttpClient, status: number, text: string, keep: boolean): void;
  /** An exchange is over (its status: the answer, 101 for a tunnel): counted, logged. */
  finished(x: RequestRecord): void;
}

const NO_BYTES: readonly Uint8Array[] = [];

/** Methods a server may see twice without harm (RFC 9110 §9.2.2): sent again elsewhere if one drops them unanswered. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Connects tried after the first for one request (on another server). */
const CONNECT_RETRIES = 1;

/** Bodies up to this size that arrive within WHOLE_BODY_WAIT_MS are read whole before they are sent. */
export const WHOLE_BODY_BYTES = 64 * 1024;
/** How long a body may take to arrive whole before it is streamed as it comes (an upload in progress). */
export const WHOLE_BODY_WAIT_MS = 100;

/** A response body with a Content-Length up to this size is written with its head, in one write. */
const WHOLE_RESPONSE_MAX = 64 * 1024;

const enum Stage {
  /** The body is being read before the request is sent (or the head alone, briefly). */
  Reading,
  /** A server was chosen: the request waits for a connection, or is sent. */
  Sent,
  /** A 101: bytes flow both ways as they come. */
  Tunnel,
  Done,
}

export class Exchange extends RequestRecord implements BackendUser, PoolWaiter<BackendConnection>, ClientRequestUser, DeadlineEntry<Exchange> {
  // DeadlineEntry
  deadlineMs = 0;
  deadlinePrev: Exchange | null = null;
  deadlineNext: Exchange | null = null;
  #list: DeadlineList<Exchange> | null = null;

  conn: BackendConnection | null = null;
  /** The selector slot was turned into a connection (released, not abandoned, at the end). */
  connected = false;
  #stage = Stage.Reading;
  #connectRetries = 0;
  #staleRetried = false;
  /** Set-Cookie to add to the response (a sticky request that was not sticky yet, or re-stuck). */
  setCookie: string | null = null;
  /** The sticky cookie's value the request came with, or null. */
  cookieIn: string | null = null;

  // The request body
  #held: Uint8Array[] | null = null;
  #heldBytes = 0;
  #bodyEnded = false;
  /** The body is streamed (it was not whole when the request was sent), chunked or not. */
  #streamed = false;
  #chunkedOut = false;
  /** Body bytes went to a server (the request cannot be sent again). */
  #bodyWent = false;
  /** The whole request (head and body) when it was sent in one piece: kept for a stale retry. */
  #whole: Uint8Array | null = null;
  #clientPaused = false;
  /** In the pool's queue for a connection. */
  #waiting = false;

  // The answer
  #answerStarted = false;
  #gather: Uint8Array | null = null;
  #gatherAt = 0;
  #chunkOut = false;
  #keepClient = false;
  #serverPaused = false;

  constructor(
    readonly proxy: ExchangeHost,
    readonly client: HttpClient,
    group: HttpGroup,
    st: SelectionState,
    readonly req: RequestHead,
    target: string,
    startMs: number,
    /** The request's header lines, forwarded (without the framing fields). */
    readonly headLines: string,
    /** The whole request to send, when it was made already (a plain request without a body: its own bytes). */
    whole: Uint8Array | null = null,
  ) {
    super(proxy.listener, group, st, req.method, target, req.host, startMs);
    this.#whole = whole;
    if (req.framing !== 'none') this.#arm(proxy.bodyWait, WHOLE_BODY_WAIT_MS);
  }

  // ClientRequestUser

  clientBody(chunk: Uint8Array): void {
    this.bytesFromClient += chunk.length;
    if (this.#stage === Stage.Done) return;
    const c = this.conn;
    if (this.#streamed && c !== null && this.#held === null) {
      this.#writeBody(c, chunk);
      return;
    }
    // Kept (a copy: the chunk is the runtime's read buffer) until the request is sent.
    (this.#held ??= []).push(chunk.slice());
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < WHOLE_BODY_BYTES) return;
    if (this.#stage === Stage.Reading) this.#begin(this.proxy.clock.now());
    // Waiting for a connection: no more is read until it comes.
    else this.#pauseClient();
  }

  clientBodyEnd(): void {
    this.#bodyEnded = true;
    if (this.#stage === Stage.Reading) {
      // A request without a body ends where its head did: the clock read then still holds.
      this.#begin(this.req.framing === 'none' ? this.startMs : this.proxy.clock.now());
      return;
    }
    if (this.#stage !== Stage.Sent || !this.#streamed) return;
    const c = this.conn;
    if (c === null || this.#held !== null) return; // sent with the held bytes
    this.#bodyDone(c);
  }

  clientFailed(why: ClientFailure): void {
    if (this.#stage === Stage.Done) return;
    if (this.#stage === Stage.Tunnel) {
      this.#tunnelEnded('client-closed');
      return;
    }
    if (why === 'closed') {
      this.#abort('client-aborted', 'the client went away');
      return;
    }
    if (!this.#answerStarted) {
      const status = why === 'timeout' ? 408 : why.status;
      const text = why === 'timeout' ? 'the request body stalled past the idle timeout' : why.reason;
      this.#answer(status, status === 413 ? 'body-too-large' : why === 'timeout' ? 'client-timeout' : 'bad-request', text);
      return;
    }
    this.#abort('client-aborted', why === 'timeout' ? 'the request body stalled past the idle timeout' : `the request body was refused: ${why.reason}`);
  }

  clientDrained(): void {
    if (this.#serverPaused) {
      this.#serverPaused = false;
      this.conn?.resume();
    }
  }

  tunnelData(chunk: Uint8Array): void {
    this.bytesFromClient += chunk.length;
    const c = this.conn;
    if (c !== null && !c.write(chunk)) this.#pauseClient();
  }

  // The request

  /** Chooses the server and sends the request (the body is whole, or long enough to stream); `nowMs`: the clock's time. */
  #begin(nowMs: number): void {
    this.#disarm();
    this.#stage = Stage.Sent;
    const server = this.proxy.choose(this, nowMs);
    if (server === null) {
      const refusal = this.st.refusal ?? 'no-server';
      this.#answer(503, refusal, `no server available in group ${this.group.name} (${refusal})`);
      return;
    }
    this.#list = this.proxy.responseWait;
    this.#list.addAt(this, nowMs + this.proxy.responseTimeoutMs);
    this.#use(server, nowMs);
  }

  /** `nowMs`: the clock's time when the caller has it (the connection may be given at once). */
  #use(server: Server, nowMs?: number): void {
    this.server = server;
    this.#noteCookie(server);
    const a = this.proxy.pool.acquire(server, this);
    if (a === 'open') this.conn = this.proxy.open(server, this);
    else if (a === 'wait') this.#waiting = true;
    else this.#send(a, nowMs);
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
    this.#waiting = false;
    const server = this.st.server!;
    if (this.#stage === Stage.Done) {
      if (conn !== null) this.proxy.release(server, conn, true);
      else this.proxy.pool.closed(server, null);
      return;
    }
    if (conn !== null) this.#send(conn);
    else this.conn = this.proxy.open(server, this);
  }

  #send(conn: BackendConnection, nowMs?: number): void {
    this.conn = conn;
    conn.user = this;
    if (!this.connected) {
      this.connected = true;
      this.group.selector.connected(this.st, nowMs);
    }
    this.connectionUses = conn.uses + 1;
    const upgrade = this.req.upgrade !== null;
    if (this.#whole !== null) {
      conn.send(this.method, this.#whole, upgrade); // sent again, whole, on a fresh connection
      return;
    }
    if (this.#bodyEnded) {
      // Whole: one write of the head and the body, kept for a stale retry.
      const n = this.#heldBytes;
      const framing = n > 0 || hasBodyMethod(this.method) ? `content-length: ${n}\r\n` : '';
      const whole = requestBytes(this, framing, n);
      let at = whole.length - n;
      for (const b of this.#held ?? NO_BYTES) {
        whole.set(b, at);
        at += b.length;
      }
      this.#held = null;
      this.#heldBytes = 0;
      this.#whole = whole;
      conn.send(this.method, whole, upgrade);
      return;
    }
    // Streamed as the client sends it: the upload's time is the client's, not the server's.
    this.#disarm();
    this.#streamed = true;
    this.#chunkedOut = this.req.framing === 'chunked';
    conn.send(this.method, requestBytes(this, this.#chunkedOut ? 'transfer-encoding: chunked\r\n' : `content-length: ${this.req.length}\r\n`, 0), upgrade);
    this.#flushHeld(conn);
  }

  /** Writes the body bytes held so far, then the end of the body if it came. */
  #flushHeld(c: BackendConnection): void {
    const held = this.#held ?? NO_BYTES;
    this.#held = null;
    this.#heldBytes = 0;
    let ok = true;
    for (const b of held) ok = this.#writeBody(c, b) && ok;
    if (ok) this.#resumeClient();
    if (this.#bodyEnded) this.#bodyDone(c);
  }

  /** One piece of a streamed body to the server; the client waits while the server's socket is full. */
  #writeBody(c: BackendConnection, chunk: Uint8Array): boolean {
    this.#bodyWent = true;
    const ok = c.write(this.#chunkedOut ? chunkFrame(chunk) : chunk);
    if (!ok) this.#pauseClient();
    return ok;
  }

  /** The client is not read while the server's side cannot take more (once, however often asked). */
  #pauseClient(): void {
    if (this.#clientPaused) return;
    this.#clientPaused = true;
    this.client.pauseReading();
  }

  #resumeClient(): void {
    if (!this.#clientPaused) return;
    this.#clientPaused = false;
    this.client.resumeReading();
  }

  /** A streamed body is all sent: the server's time to answer starts. */
  #bodyDone(c: BackendConnection): void {
    if (this.#chunkedOut) c.write(LAST_CHUNK);
    if (this.status === 0 && !this.#answerStarted) this.#arm(this.proxy.responseWait, this.proxy.responseTimeoutMs);
  }

  // BackendUser
  backendConnected(c: BackendConnection): void {
    this.#send(c);
  }

  backendDrained(c: BackendConnection): void {
    if (this.#held !== null) {
      this.#flushHeld(c);
      return;
    }
    this.#resumeClient();
  }

  backendConnectFailed(_c: BackendConnection, why: string): void {
    this.conn = null;
    if (this.#stage === Stage.Done) return;
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

  backendHead(c: BackendConnection, head: ResponseHead): void {
    if (this.#stage === Stage.Done) return;
    this.headMs = this.proxy.clock.now();
    this.status = head.status;
    const client = this.client;
    const tunnel = head.framing === 'tunnel';
    const bodiless = this.method === 'HEAD' || head.status === 204 || head.status === 304;
    // HAProxy's nocache: a response that sticks a client must not be cached for others.
    const fields = forwardedResponseLines(head.headers, this.setCookie !== null, head.fields);
    // Passed on as received, with the server's own Content-Length if it sent one.
    const asSent = fields === head.fields;
    const framed = bodiless || head.framing === 'length' || head.framing === 'none';
    // Close-delimited toward an HTTP/1.0 client; otherwise the client connection stays open if its request allows it and its body was read whole.
    this.#keepClient = !tunnel && (framed || this.req.minor === 1) && client.keepAlive && client.bodyDone;
    this.#answerStarted = true;
    // The usual answer needs nothing added or taken out: the server's head goes on byte for byte.
    const bytes = !tunnel && framed && asSent && this.setCookie === null && this.#keepClient && head.minor === 1 && this.req.minor === 1 ? head.raw : null;
    let text = '';
    if (bytes === null) {
      text = `HTTP/1.1 ${head.status} ${head.reason}\r\n${fields}`;
      if (this.setCookie !== null) text += `set-cookie: ${this.setCookie}\r\ncache-control: private\r\n`;
      if (tunnel) {
        text += `connection: upgrade\r\nupgrade: ${headerValue(head.headers, 'upgrade') ?? this.req.upgrade}\r\n\r\n`;
      } else {
        if (bodiless) {
          // A HEAD's or a 304's Content-Length describes the body a GET would have had.
          const cl = head.status === 204 || asSent ? null : headerValue(head.headers, 'content-length');
          if (cl !== null) text += `content-length: ${cl}\r\n`;
        } else if (head.framing === 'length') {
          if (!asSent) text += `content-length: ${head.length}\r\n`;
        } else if (head.framing === 'none') {
          if (!asSent) text += 'content-length: 0\r\n';
        } else if (this.req.minor === 1) {
          text += 'transfer-encoding: chunked\r\n';
          this.#chunkOut = true;
        }
        text += !this.#keepClient ? 'connection: close\r\n\r\n' : this.req.minor === 0 ? 'connection: keep-alive\r\n\r\n' : '\r\n';
      }
    }
    if (!tunnel && head.framing === 'length' && head.length <= WHOLE_RESPONSE_MAX) {
      let whole: Uint8Array;
      if (bytes !== null) {
        whole = Buffer.allocUnsafe(bytes.length + head.length);
        whole.set(bytes);
      } else whole = headBytes(text, head.length);
      this.#gather = whole;
      this.#gatherAt = whole.length - head.length;
      // The response timeout runs on until the body is all here: the client has seen nothing yet.
      if (this.#list === null) this.#arm(this.proxy.responseWait, this.proxy.responseTimeoutMs);
      return;
    }
    this.#disarm();
    if (!client.write(bytes ?? headBytes(text))) this.#pauseServer(c);
    if (tunnel) {
      this.websocket = true;
      this.#stage = Stage.Tunnel;
      client.startTunnel(this);
    }
  }

  backendBody(c: BackendConnection, chunk: Uint8Array): void {
    const g = this.#gather;
    if (g !== null) {
      // The parser never gives more than the Content-Length.
      g.set(chunk, this.#gatherAt);
      this.#gatherAt += chunk.length;
      this.bytesToClient += chunk.length;
      return;
    }
    if (this.#stage === Stage.Done) return;
    this.bytesToClient += chunk.length;
    if (!this.client.write(this.#chunkOut ? chunkFrame(chunk) : chunk)) this.#pauseServer(c);
  }

  #pauseServer(c: BackendConnection): void {
    if (this.#serverPaused) return;
    this.#serverPaused = true;
    c.pause();
  }

  backendEnd(c: BackendConnection, reusable: boolean): void {
    if (this.#stage === Stage.Done) return;
    if (this.#stage === Stage.Tunnel) {
      this.#tunnelEnded('server-closed');
      return;
    }
    const client = this.client;
    const g = this.#gather;
    this.#gather = null;
    if (g !== null) client.write(g);
    else if (this.#chunkOut) client.write(LAST_CHUNK);
    // Answered before the whole body was read: the rest is not sent, and the connection not reused.
    const early = !client.bodyDone;
    if (early) this.detail = 'answered before the request body was all sent';
    // The connection goes back before the client may send its next request (which may take it).
    this.#finish(c, reusable && !early);
    client.answerDone(this.#keepClient);
  }

  backendFailed(c: BackendConnection, why: string, responseStarted: boolean): void {
    this.conn = null;
    if (this.#stage === Stage.Done) return;
    if (this.#stage === Stage.Tunnel) {
      this.#tunnelEnded('server-closed');
      return;
    }
    if (responseStarted && this.#gather !== null) {
      // Cut short while gathered: the client has seen nothing yet, so it gets a 502, not a torn
      // response. Not sent again: the server has the request.
      this.#gather = null;
      this.#answerStarted = false;
      const server = this.st.server;
      if (server !== null) this.group.selector.passiveFailure(server, why);
      this.#answer(502, 'server-aborted', 'the server failed during its response', why);
      return;
    }
    if (responseStarted) {
      this.#abort('server-aborted', why);
      return;
    }
    // A keep-alive connection the server had closed meanwhile: once more on a fresh one, unless
    // streamed body bytes went to it already (the client cannot send them again).
    if (c.uses > 1 && !this.#staleRetried && !this.#bodyWent) {
      this.#staleRetried = true;
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
    // An idempotent request (RFC 9110 §9.2.2) the server dropped before answering: once more on
    // another server, if none of a streamed body went (a whole one is kept and sent again).
    const failed = this.st.server;
    if (failed !== null && IDEMPOTENT.has(this.method) && !this.#bodyWent && this.#connectRetries < CONNECT_RETRIES && this.connected) {
      const sel = this.group.selector;
      // The connected slot back to a reserved one, so that the failover is the connect failure's.
      sel.released(this.st);
      this.connected = false;
      if (failed.reserve(true)) {
        const next = sel.connectFailed(this.st, false);
        if (next !== null) {
          this.#connectRetries++;
          this.failedOnce(failed, `server failed before answering: ${why}`, 'server-failed');
          this.sticky = false;
          this.#use(next);
          return;
        }
        this.#answer(502, 'server-failed', 'the server failed before answering', why);
        return;
      }
      this.st.server = null;
    }
    const server = this.st.server;
    if (server !== null) this.group.selector.passiveFailure(server, why);
    this.#answer(502, 'server-failed', 'the server failed before answering', why);
  }

  /** The body wait (begin with what came) or the response timeout (504: no head, or a gathered body not complete). */
  deadlinePassed(): void {
    this.#list = null;
    if (this.#stage === Stage.Reading) {
      this.#begin(this.proxy.clock.now());
      return;
    }
    if (this.#stage !== Stage.Sent) return;
    this.#gather = null;
    this.#answerStarted = false;
    this.#answer(504, 'response-timeout', 'the server did not answer in time');
  }

  /** Either side's end ends a tunnel: the server's connection closes, the client's after what is on its way. */
  #tunnelEnded(end: 'client-closed' | 'server-closed'): void {
    this.end = end;
    this.client.closeAfterFlush();
    this.#finish(null, false);
  }

  /** The answer was given and then cut, or the client went away (`end` says which). */
  #abort(end: string, detail: string): void {
    this.end = end;
    this.detail = detail;
    const c = this.conn;
    this.conn = null;
    c?.close();
    this.client.close();
    this.#finish(null, false);
  }

  /**
   * An answer of ours (`text` its body, `end` and `why` for the access log); the selector slot is
   * given back. The client connection stays open if its request was read whole.
   */
  #answer(status: number, end: string, text: string, why: string | null = null): void {
    this.answered(status, end, why === null ? text : `${text}: ${why}`, this.proxy.clock.now());
    const c = this.conn;
    this.conn = null;
    c?.close();
    const client = this.client;
    // After a server's failure the request was read whole and the connection can go on; a
    // malformed or cut request leaves its stream where nothing can be trusted: closed.
    const keep = status >= 500 && client.bodyDone && client.keepAlive;
    this.proxy.writeAnswer(client, status, text, keep);
    this.#finish(null, false);
    client.answerDone(keep);
  }

  /** Ends the exchange once: the timer, the connection (to the pool or closed), the selector slot. */
  #finish(c: BackendConnection | null, reusable: boolean): void {
    if (this.#stage === Stage.Done) return;
    this.#stage = Stage.Done;
    this.#disarm();
    this.#held = null;
    this.#whole = null;
    const server = this.st.server;
    if (c !== null && server !== null) this.proxy.release(server, c, reusable);
    else if (this.conn !== null) this.conn.close();
    this.conn = null;
    if (this.#waiting && server !== null) {
      this.#waiting = false;
      this.proxy.pool.cancel(server, this);
    }
    if (this.#serverPaused) c?.resume();
    if (this.connected) this.group.selector.released(this.st);
    else if (server !== null) this.group.selector.abandoned(this.st);
    this.#resumeClient();
    this.proxy.finished(this);
  }

  #arm(list: DeadlineList<Exchange>, ms: number): void {
    this.#list = relist(this, this.#list, list, ms);
  }

  #disarm(): void {
    this.#list?.remove(this);
    this.#list = null;
  }
}

/** The timer lists' expiry. */
export function exchangeDeadline(x: Exchange): void {
  x.deadlinePassed();
}

/** Methods whose request is sent with `Content-Length: 0` when it has no body (some servers want a length). */
export function hasBodyMethod(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH';
}

/** The request head to send (request line, forwarded fields, `framing`, the empty line) in a buffer with `extra` bytes of room after it. */
function requestBytes(x: Exchange, framing: string, extra: number): Uint8Array {
  return headBytes(`${x.method} ${x.target} HTTP/1.1\r\n${x.headLines}${framing}\r\n`, extra);
}

/** The value of the first field named `name` (lower-case), or null. */
function headerValue(headers: readonly [string, string][], name: string): string | null {
  for (const [n, v] of headers) if (n.length === name.length && n.toLowerCase() === name) return v;
  return null;
}
