/**
 * One keep-alive connection from HTTP mode to a server (docs/http.md): Bun.connect with shared
 * handler objects (the connection is the socket's data, no closure per connection or chunk), the
 * request head and its streamed body written with backpressure (the user hears when the
 * socket drained), the response read by protocol/http1-response.ts and handed to the exchange
 * that uses the connection now. Between requests the connection belongs to the
 * pool (core/http/pool.ts), which the owner drives.
 */
import type { Socket, SocketHandler } from 'bun';
import type { Address } from '../core/address.ts';
import type { Pooled } from '../core/http/pool.ts';
import { concat } from './bytes.ts';
import { ResponseParser, type ResponseHead, type ResponseSink } from '../protocol/http1-response.ts';

/** The exchange (one request and its response) using a connection. */
export interface BackendUser {
  backendConnected(c: BackendConnection): void;
  /** The connect failed (refused, reset, unreachable). */
  backendConnectFailed(c: BackendConnection, why: string): void;
  /** Everything written so far has reached the socket (after write() returned false). */
  backendDrained(c: BackendConnection): void;
  backendHead(c: BackendConnection, head: ResponseHead): void;
  backendBody(c: BackendConnection, chunk: Uint8Array): void;
  /** The response is complete; `reusable`: the connection may serve another request. */
  backendEnd(c: BackendConnection, reusable: boolean): void;
  /** The connection failed during the exchange; `responseStarted`: the head was already given. */
  backendFailed(c: BackendConnection, why: string, responseStarted: boolean): void;
}

/** Whoever counts connections (the pool's owner): told once when one is gone, whatever its state. */
export interface BackendOwner {
  connectionGone(c: BackendConnection): void;
}

export class BackendConnection implements ResponseSink, Pooled {
  // Pooled (core/http/pool.ts)
  idlePrev: Pooled | null = null;
  idleNext: Pooled | null = null;
  idleSince = -1;
  poolKey: unknown = null;
  socket: Socket<BackendConnection> | null = null;
  user: BackendUser | null;
  readonly parser = new ResponseParser(this);
  /** Requests this connection carried (1 = fresh: a failure is not a stale keep-alive). */
  uses = 0;
  closed = false;
  #unsent: Uint8Array | null = null;
  #gone = false;
  #paused = false;

  constructor(
    readonly owner: BackendOwner,
    readonly server: unknown,
    user: BackendUser,
  ) {
    this.user = user;
  }

  /** Opens a connection to `address` for `user`. */
  static open(address: Address, server: unknown, user: BackendUser, owner: BackendOwner): BackendConnection {
    const c = new BackendConnection(owner, server, user);
    if (address.kind === 'unix') void Bun.connect<BackendConnection>({ unix: address.path, socket: handlers, data: c });
    else void Bun.connect<BackendConnection>({ hostname: address.host, port: address.port, socket: handlers, data: c });
    return c;
  }

  /** Sends one request's head (and maybe body) and expects its response; more of its body, if any, follows by write(). */
  send(method: string, head: Uint8Array, upgrade = false): boolean {
    this.uses++;
    this.parser.expect(method, upgrade);
    return this.write(head);
  }

  /**
   * Writes request bytes in order; false when some wait for the socket to drain (the user hears
   * backendDrained then, and should write no more before). What waits is copied (`bytes` may
   * be a read buffer the runtime reuses).
   */
  write(bytes: Uint8Array): boolean {
    const s = this.socket;
    if (s === null || this.closed) return true;
    const held = this.#unsent;
    if (held !== null) {
      this.#unsent = concat(held, bytes);
      return false;
    }
    const n = s.write(bytes);
    this.#unsent = n < 0 ? null : n < bytes.length ? bytes.slice(n) : null;
    return this.#unsent === null;
  }

  drained(): void {
    const rest = this.#unsent;
    if (rest === null) return;
    this.#unsent = null;
    if (this.write(rest)) this.user?.backendDrained(this);
  }

  pause(): void {
    this.#paused = true;
    this.socket?.pause();
  }

  /** Reads again after pause() (a call into the runtime only when it was paused). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket?.resume();
  }

  /** Closes the connection; no more events reach its user. */
  close(): void {
    this.user = null;
    if (this.closed) return;
    this.closed = true;
    this.socket?.end();
  }

  // ResponseSink: the parser's events go to the current user.
  responseHead(head: ResponseHead): void {
    this.user?.backendHead(this, head);
  }
  responseBody(chunk: Uint8Array): void {
    this.user?.backendBody(this, chunk);
  }
  responseEnd(keepAlive: boolean): void {
    const u = this.user;
    this.user = null;
    u?.backendEnd(this, keepAlive && !this.closed);
  }

  /** The socket went away (closed, reset, error): the user hears of it, then the owner, once. */
  ended(why: string): void {
    if (this.#gone) return;
    this.#gone = true;
    const u = this.user;
    if (u !== null) {
      // A close-delimited body ends here (eof() completes the response, and the user hears of it).
      const started = this.parser.started;
      const e = this.parser.busy ? this.parser.eof() : why;
      this.closed = true;
      if (this.user !== null) {
        this.user = null;
        u.backendFailed(this, e ?? why, started);
      }
    }
    this.closed = true;
    this.socket = null;
    this.owner.connectionGone(this);
  }

  /** The connect failed: the user, then the owner. */
  connectFailed(why: string): void {
    if (this.#gone) return;
    this.#gone = true;
    const u = this.user;
    this.user = null;
    this.closed = true;
    u?.backendConnectFailed(this, why);
    this.owner.connectionGone(this);
  }

  /** The server broke the protocol: the connection is reset, and the user hears why. */
  protocolError(why: string): void {
    const u = this.user;
    const started = this.parser.started;
    this.user = null;
    this.closed = true;
    this.socket?.terminate();
    u?.backendFailed(this, `bad response: ${why}`, started);
  }
}

const handlers: SocketHandler<BackendConnection> = {
  open(s) {
    const c = s.data;
    c.socket = s;
    if (c.closed) {
      s.end();
      return;
    }
    c.user?.backendConnected(c);
  },
  data(s, bytes) {
    const e = s.data.parser.feed(bytes);
    if (e !== null) s.data.protocolError(e);
  },
  drain(s) {
    s.data.drained();
  },
  close(s, err) {
    s.data.ended(err === undefined ? 'the server closed the connection' : `connection error: ${err.message}`);
  },
  error(s, err) {
    s.data.ended(`connection error: ${err.message}`);
  },
  connectError(s, err) {
    s.data.connectFailed(err.message);
  },
};
