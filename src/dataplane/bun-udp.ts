/**
 * The adapter on Bun's native UDP sockets (`Bun.udpSocket`) for UDP load balancing (docs/udp.md).
 *
 * - `UdpListener`: the listening socket. Each client datagram goes to the handler object as
 *   (payload, address, port); replies go back from this socket, so the client sees the address
 *   it sent to. Replies can be sent at once or queued and sent together with `sendMany` (one
 *   system call for a burst) at the end of the current tick.
 * - `UdpUpstream`: one socket per session, connected to the session's server, so that the kernel
 *   matches the server's replies to the session (and the server sees one stable source port per
 *   client, as with pen). Creating it is asynchronous in Bun: datagrams sent before it is ready
 *   wait in a small bounded queue. ICMP port unreachable from the server surfaces as an error on
 *   the connected socket (Bun reads the socket's error queue: `ECONNREFUSED`, `errqueue: true`),
 *   and is reported as `serverUnreachable` (passive health).
 *
 * Handlers are shared objects: no closure is allocated per datagram. A connected socket finds
 * its `UdpUpstream` through a property set on the socket object once, at creation.
 */
import type { udp } from 'bun';

/** Receives client datagrams from a listener. */
export interface UdpListenerHandler {
  clientDatagram(listener: UdpListener, payload: Buffer, address: string, port: number): void;
  /**
   * An error on the listening socket, e.g. ICMP port unreachable for a reply to a client that
   * has gone (Bun does not say which client). Counted by the caller; the socket stays open.
   */
  listenerError?(listener: UdpListener, error: Error): void;
}

/** Receives what happens on sessions' upstream sockets; `S` is the caller's session object. */
export interface UdpUpstreamHandler<S> {
  serverDatagram(upstream: UdpUpstream<S>, payload: Buffer): void;
  /** ICMP port/host/network unreachable: the server is not there. The socket stays open. */
  serverUnreachable(upstream: UdpUpstream<S>, error: Error): void;
  /** Any other failure (socket creation, send errors). */
  serverError(upstream: UdpUpstream<S>, error: Error): void;
}

type ListenSocket = udp.Socket<'buffer'>;
type ConnectedSocket = udp.ConnectedSocket<'buffer'>;
type Payload = Buffer | Uint8Array;

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

/** Whether a socket error means the destination is unreachable (an ICMP error). */
export function isUnreachable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && UNREACHABLE.has(String((error as { code?: unknown }).code));
}

/**
 * Bun 1.4 calls a UDP `error` handler as `error.call(socket, err)`, while bun-types declares
 * `error(socket, err)`: accept both.
 */
function errorArgs<T>(self: unknown, a: unknown, b: unknown): [T, Error] {
  if (b !== undefined) return [a as T, toError(b)];
  return [self as T, toError(a)];
}

function ignore(): void {}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

const listenerHandlers = {
  data(socket: ListenSocket, data: Buffer, port: number, address: string): void {
    const l = (socket as unknown as Tagged<UdpListener>).fulcrum;
    l.datagramsIn++;
    l.handler.clientDatagram(l, data, address, port);
  },
  error(this: unknown, a: unknown, b?: unknown): void {
    const [socket, err] = errorArgs<ListenSocket>(this, a, b);
    const l = (socket as unknown as Partial<Tagged<UdpListener>>).fulcrum;
    if (l === undefined) return;
    l.errors++;
    l.handler.listenerError?.(l, err);
  },
};

interface Tagged<T> {
  fulcrum: T;
}

export interface ListenOptions {
  hostname: string;
  port: number;
}

export class UdpListener {
  datagramsIn = 0;
  datagramsOut = 0;
  /** Replies the kernel would not take (socket buffer full): dropped, as UDP allows. */
  sendDrops = 0;
  errors = 0;
  /** sendMany calls made by flush(): datagramsOut / batches is the mean batch size. */
  batches = 0;
  readonly #socket: ListenSocket;
  /** Queued replies, flat as sendMany wants them: payload, port, address, payload, ... */
  #batch: (Payload | number | string)[] = [];
  #flushQueued = false;
  readonly #flush = (): void => this.flush();

  private constructor(
    socket: ListenSocket,
    readonly handler: UdpListenerHandler,
  ) {
    this.#socket = socket;
    (socket as unknown as Tagged<UdpListener>).fulcrum = this;
  }

  /**
   * Binds at once: Bun creates the socket inside the call (a bind error throws there) and hands
   * back a settled promise, which `Bun.peek` reads, so a listener binds in the same
   * synchronous step as a TCP one (start and reload are transactions).
   */
  static bind(options: ListenOptions, handler: UdpListenerHandler): UdpListener {
    const promise = Bun.udpSocket({ hostname: options.hostname, port: options.port, socket: listenerHandlers as never });
    const socket = Bun.peek(promise);
    if (Bun.peek.status(promise) !== 'fulfilled') {
      promise.then((s) => s.close(), ignore);
      throw new Error('the runtime did not bind the UDP socket at once');
    }
    return new UdpListener(socket as ListenSocket, handler);
  }

  static async listen(options: ListenOptions, handler: UdpListenerHandler): Promise<UdpListener> {
    const socket = await Bun.udpSocket({ hostname: options.hostname, port: options.port, socket: listenerHandlers as never });
    return new UdpListener(socket, handler);
  }

  get address(): string {
    return this.#socket.address.address;
  }
  get port(): number {
    return this.#socket.port;
  }
  get closed(): boolean {
    return this.#socket.closed;
  }

  /** Sends a reply now; false if the kernel did not take it (counted as a drop). */
  sendToClient(payload: Payload, address: string, port: number): boolean {
    let ok: boolean;
    try {
      ok = this.#socket.send(payload, port, address);
    } catch (err) {
      this.errors++;
      this.handler.listenerError?.(this, toError(err));
      return false;
    }
    if (ok) this.datagramsOut++;
    else this.sendDrops++;
    return ok;
  }

  /**
   * Queues a reply; the queue goes out with one `sendMany` at the end of the tick (or at
   * `flush()`), so a burst of replies costs one system call instead of one each.
   */
  queueToClient(payload: Payload, address: string, port: number): void {
    this.#batch.push(payload, port, address);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  flush(): void {
    this.#flushQueued = false;
    const batch = this.#batch;
    if (batch.length === 0 || this.#socket.closed) {
      batch.length = 0;
      return;
    }
    const queued = batch.length / 3;
    let sent = 0;
    try {
      sent = this.#socket.sendMany(batch);
      this.batches++;
    } catch (err) {
      this.errors++;
      this.handler.listenerError?.(this, toError(err));
    }
    this.datagramsOut += sent;
    this.sendDrops += queued - sent;
    batch.length = 0;
  }

  close(): void {
    this.#batch.length = 0;
    this.#socket.close();
  }
}

const upstreamHandlers = {
  data(socket: ConnectedSocket, data: Buffer): void {
    const u = (socket as unknown as Tagged<UdpUpstream<unknown>>).fulcrum;
    u.datagramsIn++;
    u.handler.serverDatagram(u, data);
  },
  error(this: unknown, a: unknown, b?: unknown): void {
    const [socket, err] = errorArgs<ConnectedSocket>(this, a, b);
    const u = (socket as unknown as Partial<Tagged<UdpUpstream<unknown>>>).fulcrum;
    if (u !== undefined) u.failed(err);
  },
};

/** At most this many datagrams wait for an upstream socket being created; more are dropped. */
export const UPSTREAM_PENDING_MAX = 16;

export interface UpstreamOptions {
  /** The server's address (an IP) and port. */
  hostname: string;
  port: number;
  /** The local address to send from; by default the wildcard of the server's family. */
  localAddress?: string;
}

export class UdpUpstream<S> {
  datagramsIn = 0;
  datagramsOut = 0;
  /** Datagrams dropped: kernel buffer full, queue full while connecting, or sent after close. */
  sendDrops = 0;
  #socket: ConnectedSocket | null = null;
  #pending: Payload[] | null = [];
  #closed = false;

  private constructor(
    readonly session: S,
    readonly handler: UdpUpstreamHandler<S>,
  ) {}

  /**
   * Starts creating the session's socket connected to the server; usable at once (sends wait
   * until the socket exists). Creation failures go to `handler.serverError`.
   */
  static open<S>(session: S, options: UpstreamOptions, handler: UdpUpstreamHandler<S>): UdpUpstream<S> {
    const u = new UdpUpstream(session, handler);
    const localAddress = options.localAddress ?? (options.hostname.includes(':') ? '::' : '0.0.0.0');
    let promise: Promise<unknown>;
    try {
      promise = Bun.udpSocket({
        hostname: localAddress,
        port: 0,
        connect: { hostname: options.hostname, port: options.port },
        socket: upstreamHandlers as never,
      });
    } catch (err) {
      promise = Promise.reject(toError(err));
    }
    // Bun settles the promise inside the call: take the socket now, so the first datagram goes
    // out at once instead of through the pending queue (the queue stays for a runtime that waits).
    const status = Bun.peek.status(promise);
    if (status === 'fulfilled') u.#ready(Bun.peek(promise) as ConnectedSocket);
    else if (status === 'rejected') {
      promise.catch(ignore);
      u.failed(toError(Bun.peek(promise)));
    } else {
      promise.then(
        (socket) => u.#ready(socket as ConnectedSocket),
        (err: unknown) => u.failed(toError(err)),
      );
    }
    return u;
  }

  get ready(): boolean {
    return this.#socket !== null;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** The local port the server sees, once ready. */
  get localPort(): number | undefined {
    return this.#socket?.port;
  }

  /** Sends a datagram to the server (queued while connecting); false if dropped. */
  send(payload: Payload): boolean {
    if (this.#closed) {
      this.sendDrops++;
      return false;
    }
    const socket = this.#socket;
    if (socket === null) {
      const pending = this.#pending!;
      if (pending.length >= UPSTREAM_PENDING_MAX) {
        this.sendDrops++;
        return false;
      }
      pending.push(payload);
      return true;
    }
    return this.#send(socket, payload);
  }

  /** Closes the socket (or drops it once created). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = null;
    this.#socket?.close();
  }

  /** @internal an error on the socket or its creation. */
  failed(err: Error): void {
    if (this.#closed) return;
    if (isUnreachable(err)) this.handler.serverUnreachable(this, err);
    else this.handler.serverError(this, err);
  }

  #ready(socket: ConnectedSocket): void {
    if (this.#closed) {
      socket.close();
      return;
    }
    (socket as unknown as Tagged<UdpUpstream<S>>).fulcrum = this;
    this.#socket = socket;
    const pending = this.#pending!;
    this.#pending = null;
    for (const p of pending) {
      if (this.#closed) break;
      this.#send(socket, p);
    }
  }

  #send(socket: ConnectedSocket, payload: Payload): boolean {
    let ok: boolean;
    try {
      ok = socket.send(payload);
    } catch (err) {
      // A pending ICMP error may be returned by the next send instead of the error queue.
      this.sendDrops++;
      this.failed(toError(err));
      return false;
    }
    if (ok) this.datagramsOut++;
    else this.sendDrops++;
    return ok;
  }
}
