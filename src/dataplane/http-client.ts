/**
 * One client connection of HTTP mode on the runtime's TCP (or TLS) sockets (docs/http.md, "The
 * client side"): bytes are parsed by protocol/http1-request-parser.ts, each request's head goes
 * to the handler, which returns the request's user (the exchange); its body follows as it is
 * read, and the user writes the answer back through write() and answerDone(). One request at a
 * time: bytes of pipelined requests that follow are held, unparsed, until the answer is done
 * (past HELD_MAX the socket is paused), so answers go out in order.
 *
 * The connection's timer, by phase (one deadline list per length, entries linked through the
 * connection itself, no timer per connection or per request):
 * - waiting for a head, or reading one: `header_timeout` from the end of the previous answer (or
 *   the connect); bytes do not extend it; closed silently if nothing of a request came, else 408;
 * - reading a body: the idle timeout between reads (408 if the request is unanswered);
 * - writing an answer the client does not read: the idle timeout while bytes wait (closed);
 * - waiting for the server: none here (the exchange's response timeout answers 504).
 *
 * After an upgrade (101) the connection is a byte tunnel: reads go to the user as they come.
 */
import type { Clock } from '../core/clock.ts';
import { relist, type DeadlineEntry, type DeadlineList } from '../core/deadline-list.ts';
import { RequestParser, type RequestError, type RequestHead, type RequestLimits, type RequestSink } from '../protocol/http1-request-parser.ts';
import { concat } from './bytes.ts';
import type { StreamSocket } from './socket.ts';

/** Why a request's client side failed before its end. */
export type ClientFailure = RequestError | 'closed' | 'timeout';

/** Who a request in progress belongs to (an exchange): what it hears from the client. */
export interface ClientRequestUser {
  /** Body bytes, de-chunked: a view valid only during the call. */
  clientBody(chunk: Uint8Array): void;
  /** The request's body is complete (right after the head when it has none). */
  clientBodyEnd(): void;
  /** The request cannot complete: a malformed or oversized body, the client's timeout or close. */
  clientFailed(why: ClientFailure): void;
  /** Everything written was taken by the socket (after write() returned false). */
  clientDrained(): void;
  /** Tunnel bytes from the client (after startTunnel): a view valid only during the call. */
  tunnelData(chunk: Uint8Array): void;
}

/** The listener's side: requests, refusals, and the end of each connection. */
export interface HttpClientHandler {
  /** A request's head: its user, which takes the body and answers. */
  request(c: HttpClient, head: RequestHead): ClientRequestUser;
  /** Answer `status` of our own on `c` and close it (a malformed head, or 408 for a slow one). */
  refuse(c: HttpClient, status: number, reason: string): void;
  /** The connection is gone. */
  closed(c: HttpClient): void;
}

/** The listener's timers for its connections: the head and body phases, with their lengths. */
export interface ClientTimers {
  readonly clock: Clock;
  readonly header: DeadlineList<HttpClient>;
  readonly headerMs: number;
  readonly idle: DeadlineList<HttpClient>;
  readonly idleMs: number;
}

/** Bytes of pipelined requests held while a request is answered, before the socket is paused. */
const HELD_MAX = 64 * 1024;

const CONTINUE = new TextEncoder().encode('HTTP/1.1 100 Continue\r\n\r\n');

const enum Phase {
  /** Waiting for a head or reading one (header_timeout). */
  Head,
  /** Reading a body. */
  Body,
  /** The request is read; its answer is awaited or written. */
  Answer,
  /** A byte tunnel after 101. */
  Tunnel,
  Closed,
}

export class HttpClient implements RequestSink, DeadlineEntry<HttpClient> {
  // DeadlineEntry (the timer lists)
  deadlineMs = 0;
  deadlinePrev: HttpClient | null = null;
  deadlineNext: HttpClient | null = null;
  /** The list this connection is on, if any. */
  #list: DeadlineList<HttpClient> | null = null;
  /** When bytes last moved in the body phase (the idle deadline is checked against it when it falls due). */
  #activeMs = 0;

  readonly parser: RequestParser;
  /** The request being read or answered, or null between requests. */
  user: ClientRequestUser | null = null;
  /** The head of the current request. */
  head: RequestHead | null = null;
  /** Bytes read from the client and written to it (the access log's and the listener's totals). */
  bytesRead = 0;
  bytesWritten = 0;
  #phase = Phase.Head;
  /** Bytes read after the current request, held until it is answered. */
  #held: Uint8Array | null = null;
  #unsent: Uint8Array | null = null;
  #endAfterFlush = false;
  #paused = 0;
  /** True while #consume runs: an answer done meanwhile lets its loop go on. */
  #consuming = false;
  /** An answer was done while the parser was running: next() once feed returns. */
  #nextPending = false;
  /** end() was called: nothing more is read or answered. */
  #ended = false;

  constructor(
    readonly socket: StreamSocket<unknown>,
    readonly handler: HttpClientHandler,
    readonly timers: ClientTimers,
    limits: RequestLimits,
    /** The client's address (a PROXY header's, if one came first) and port. */
    readonly address: string,
    readonly port: number,
  ) {
    this.parser = new RequestParser(this, limits);
    this.#arm(timers.header, timers.headerMs);
  }

  /** The current request asks to keep the connection (its version and Connection field). */
  get keepAlive(): boolean {
    return this.head !== null && this.head.keepAlive && !this.#endAfterFlush;
  }

  /** The current request's body has been read whole. */
  get bodyDone(): boolean {
    return this.#phase !== Phase.Head && this.#phase !== Phase.Body;
  }

  // Socket events (the listener's shared handlers call these).

  onData(chunk: Uint8Array): void {
    this.bytesRead += chunk.length;
    if (this.#phase === Phase.Tunnel) {
      this.user?.tunnelData(chunk);
      return;
    }
    if (this.#ended) return;
    if (this.#phase === Phase.Answer || this.#held !== null) {
      this.#hold(chunk, 0);
      return;
    }
    if (this.#phase === Phase.Body) this.#activeMs = this.timers.clock.now();
    this.#consume(chunk);
  }

  onDrain(): void {
    const rest = this.#unsent;
    if (rest === null) return;
    this.#unsent = null;
    if (!this.#send(rest)) return;
    if (this.#endAfterFlush) {
      this.#end();
      return;
    }
    if (this.#phase === Phase.Answer || this.#phase === Phase.Tunnel) this.#disarm();
    this.user?.clientDrained();
  }

  onEnd(): void {
    // The client closed its side: a request in progress is answered first; a cut one fails.
    if (this.#phase === Phase.Tunnel || this.#phase === Phase.Answer) {
      if (this.#phase === Phase.Answer && this.user === null) this.#end();
      else this.#endAfterFlush = true;
      if (this.#phase === Phase.Tunnel) this.user?.clientFailed('closed');
      return;
    }
    const cut = this.parser.eof();
    if (cut !== null && this.user !== null) this.user.clientFailed('closed');
    this.#end();
  }

  onTimeout(): void {}

  onClose(): void {
    if (this.#phase === Phase.Closed) return;
    this.#phase = Phase.Closed;
    this.#disarm();
    const u = this.user;
    this.user = null;
    u?.clientFailed('closed');
    this.handler.closed(this);
  }

  // RequestSink (the parser's events)

  /** The handler's request() must not answer: its user may, from clientBodyEnd (or a failure) on. */
  requestHead(head: RequestHead): void {
    this.head = head;
    this.#phase = Phase.Body;
    if (head.framing === 'none') this.#disarm(); // requestEnd follows at once
    else {
      this.#activeMs = this.timers.clock.now();
      this.#arm(this.timers.idle, this.timers.idleMs);
    }
    if (head.expectContinue && head.framing !== 'none' && head.minor === 1) this.#send(CONTINUE);
    this.user = this.handler.request(this, head);
  }

  requestBody(chunk: Uint8Array): void {
    this.user?.clientBody(chunk);
  }

  requestEnd(): void {
    this.#phase = Phase.Answer;
    this.#disarm();
    this.user?.clientBodyEnd();
  }

  // What the request's user does.

  /** Writes answer bytes in order; false when some wait for the socket (clientDrained follows). */
  write(bytes: Uint8Array): boolean {
    if (this.#phase === Phase.Closed) return true;
    this.bytesWritten += bytes.length;
    const held = this.#unsent;
    if (held !== null) {
      this.#unsent = concat(held, bytes);
      return false;
    }
    return this.#send(bytes);
  }

  /** Stops reading from the client (a server that does not take the body fast enough). */
  pauseReading(): void {
    if (this.#paused++ === 0) this.socket.pause();
  }

  resumeReading(): void {
    if (this.#paused > 0 && --this.#paused === 0) this.socket.resume();
  }

  /**
   * The answer is complete (or its last bytes queued): with `keep`, the connection waits for the
   * next request (held pipelined bytes first); otherwise it closes once they are written.
   */
  answerDone(keep: boolean): void {
    this.user = null;
    if (this.#phase === Phase.Closed) return;
    if (!keep || !this.bodyDone || !this.keepAlive) {
      this.#endAfterFlush = true;
      if (this.#unsent === null) this.#end();
      return;
    }
    this.head = null;
    this.#phase = Phase.Head;
    this.#arm(this.timers.header, this.timers.headerMs);
    if (this.#consuming) {
      // Inside the parser's own call (an answer given at once): #consume goes on after it returns.
      this.#nextPending = true;
      return;
    }
    this.parser.next();
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    if (this.#paused > 0 && held.length >= HELD_MAX) this.resumeReading();
    this.#consume(held);
  }

  /** After a 101: bytes from the client go to `user` as they come, and held ones first. */
  startTunnel(user: ClientRequestUser): void {
    this.#phase = Phase.Tunnel;
    this.#disarm();
    this.user = user;
    const held = this.#held;
    this.#held = null;
    if (held === null) return;
    // Past HELD_MAX the socket was paused: the tunnel reads it again.
    if (this.#paused > 0 && held.length >= HELD_MAX) this.resumeReading();
    user.tunnelData(held);
  }

  /** Closes now (an aborted answer, a failed tunnel). */
  close(): void {
    this.#end();
  }

  /** Closes once what was written is sent. */
  closeAfterFlush(): void {
    this.#endAfterFlush = true;
    if (this.#unsent === null) this.#end();
  }

  /** The listener's timer fired for this connection. */
  deadlinePassed(): void {
    this.#list = null;
    const now = this.timers.clock.now();
    if (this.#phase === Phase.Body) {
      // Bytes came meanwhile: the deadline moves to the idle timeout after the last of them.
      const left = this.#activeMs + this.timers.idleMs - now;
      if (left > 0) return this.#arm(this.timers.idle, left);
      const u = this.user;
      if (u !== null) u.clientFailed('timeout');
      else this.#end();
      return;
    }
    if (this.#phase === Phase.Head) {
      if (this.parser.idle) this.#end();
      else this.handler.refuse(this, 408, 'the request head was not complete within header_timeout');
      return;
    }
    // An answer the client does not read.
    this.#end();
  }

  // Inside

  #consume(bytes: Uint8Array): void {
    this.#consuming = true;
    let at = 0;
    try {
      while (at < bytes.length && !this.#ended) {
        const end = this.parser.feed(bytes, at);
        if (end < 0) {
          this.#malformed(this.parser.error!);
          return;
        }
        if (end === at && !this.#nextPending) return;
        at = end;
        if (this.#nextPending) {
          this.#nextPending = false;
          this.parser.next();
          continue;
        }
        if (this.#phase === Phase.Head || this.#phase === Phase.Body) continue;
        // A request is complete; what follows waits for its answer (unless it came already).
        if (this.#phase === Phase.Answer && at < bytes.length) {
          this.#hold(bytes, at);
          return;
        }
        if (this.#phase === Phase.Tunnel && at < bytes.length) {
          this.user?.tunnelData(bytes.subarray(at));
          return;
        }
      }
    } finally {
      this.#consuming = false;
      if (this.#nextPending) {
        this.#nextPending = false;
        this.parser.next();
      }
    }
  }

  /** A malformed request: its user fails it (an answer of its own), or the handler refuses it. */
  #malformed(e: RequestError): void {
    const u = this.user;
    if (u !== null) u.clientFailed(e);
    else this.handler.refuse(this, e.status, e.reason);
  }

  #hold(bytes: Uint8Array, from: number): void {
    const add = bytes.subarray(from);
    const held = this.#held;
    const before = held === null ? 0 : held.length;
    this.#held = held === null ? add.slice() : concat(held, add);
    if (before < HELD_MAX && before + add.length >= HELD_MAX) this.pauseReading();
  }

  /** Writes to the socket; the rest is kept (a copy: the caller's bytes may be a read buffer). */
  #send(bytes: Uint8Array): boolean {
    const n = this.socket.write(bytes);
    if (n >= bytes.length || n < 0) return true;
    this.#unsent = bytes.slice(n);
    // A client that does not read has the idle timeout to take these.
    if (this.#phase !== Phase.Body) this.#arm(this.timers.idle, this.timers.idleMs);
    return false;
  }

  #arm(list: DeadlineList<HttpClient>, ms: number): void {
    this.#list = relist(this, this.#list, list, ms);
  }

  #disarm(): void {
    this.#list?.remove(this);
    this.#list = null;
  }

  #end(): void {
    if (this.#ended || this.#phase === Phase.Closed) return;
    this.#ended = true;
    this.#disarm();
    this.socket.end();
  }
}

/** The lists' expiry: the connection decides what its phase makes of it. */
export function clientDeadline(c: HttpClient): void {
  c.deadlinePassed();
}
