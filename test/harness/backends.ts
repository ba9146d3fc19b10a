// Scripted test backends ("servers" behind the balancer), on Bun's native sockets.
// Each one listens on 127.0.0.1:0 by default (or `host: '::1'`, or a Unix path via `unix`),
// counts what it accepts, and stops everything on close().
import { createHash, type Hash } from 'node:crypto';
import type { Socket, SocketListener } from 'bun';
import {
  DEFAULT_TIMEOUT_MS,
  freePort,
  hostPort,
  payload,
  removeTempSocketPath,
  sha256,
  waitFor,
} from './util.ts';

export interface ListenOptions {
  /** IP to listen on; '127.0.0.1' by default. '::1' for IPv6. */
  host?: string;
  /** Listen on this Unix socket path instead of TCP (see tempSocketPath()). */
  unix?: string;
  /** Fixed TCP port; 0 (any free port) by default. */
  port?: number;
}

export interface Peer {
  address: string;
  port: number;
}

/** Echo pauses reading while this much is queued for a client that does not read, so backpressure propagates. */
const HIGH_WATER = 1 << 20;

/** One accepted connection, with a write queue that respects backpressure. */
export class Conn {
  bytesReceived = 0;
  bytesSent = 0;
  /** True once the peer sent FIN. */
  peerEnded = false;
  closed = false;
  /** Once closed, how: 'reset' (peer RST), 'error', 'fin' (peer FIN'd before the close), 'local' (we ended it). */
  closeKind: 'fin' | 'reset' | 'error' | 'local' | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** What to do once the queue drains: nothing yet, send FIN, or close the socket. */
  private ending: 'fin' | 'close' | undefined;
  /** What finish() already did, so repeated drains do not repeat it. */
  private finished: 'fin' | 'close' | undefined;
  private readonly drainWaiters: Array<() => void> = [];

  constructor(readonly socket: Socket<undefined>) {
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
  }

  /** Bytes accepted by write() but not yet taken by the kernel. */
  get pending(): number {
    return this.queued;
  }

  /** Queues `data`; whatever the kernel refuses now is sent on drain. */
  write(data: Uint8Array | string): void {
    if (this.closed || this.ending) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length === 0) return;
    if (this.queue.length > 0) {
      this.queue.push(bytes);
      this.queued += bytes.length;
      return;
    }
    const n = Math.max(0, this.socket.write(bytes));
    this.bytesSent += n;
    if (n < bytes.length) {
      this.queue.push(bytes.subarray(n));
      this.queued += bytes.length - n;
    }
  }

  /**
   * Sends FIN once everything queued has been written, and keeps reading (a half-close).
   * Bun's socket.end() closes the whole socket, so the FIN alone is shutdown(); once both sides
   * have sent FIN the socket is closed.
   */
  end(): void {
    if (this.ending || this.closed) return;
    this.ending = 'fin';
    if (this.queue.length === 0) this.finish();
  }

  /** Closes the socket (both directions) once everything queued has been written; data sent to it afterwards gets a RST. */
  close(): void {
    if (this.closed) return;
    this.ending = 'close';
    if (this.queue.length === 0) this.finish();
  }

  /** Aborts with RST (SO_LINGER 0 then close). */
  reset(): void {
    this.closed = true;
    this.closeKind ??= 'local';
    this.socket.terminate();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Resolves when the write queue is empty (or the connection is gone). */
  drained(): Promise<void> {
    if (this.queue.length === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** @internal called from the socket's drain handler. */
  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (head === undefined) break;
      const n = Math.max(0, this.socket.write(head));
      this.bytesSent += n;
      this.queued -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
    if (this.ending) this.finish();
    this.notifyDrained();
  }

  /** True once we sent FIN with shutdown() (the socket still reads). */
  get halfClosed(): boolean {
    return this.finished === 'fin' && !this.peerEnded;
  }

  private finish(): void {
    const how = this.ending === 'close' || this.peerEnded ? 'close' : 'fin';
    if (this.finished === how || this.finished === 'close') return;
    this.finished = how;
    if (how === 'close') this.socket.end();
    else this.socket.shutdown();
  }

  /** @internal */
  markClosed(error?: Error, byUs = false): void {
    if (byUs) this.closeKind ??= 'local';
    if (this.closeKind === undefined) {
      const code = error && 'code' in error ? String(error.code) : undefined;
      // After our shutdown() Bun reports the peer's FIN as a plain close, without the end callback.
      this.closeKind = error
        ? (code === 'ECONNRESET' || /reset/i.test(error.message) ? 'reset' : 'error')
        : this.peerEnded || this.finished === 'fin' ? 'fin' : 'local';
    }
    this.closed = true;
    this.queue = [];
    this.queued = 0;
    this.notifyDrained();
  }

  private notifyDrained(): void {
    for (const waiter of this.drainWaiters.splice(0)) waiter();
  }
}

/** What a backend does with each connection. Omitted `end` means: reply FIN once our queue drains. */
export interface BackendBehaviour {
  open?(conn: Conn): void;
  data?(conn: Conn, chunk: Buffer): void;
  /** The peer sent FIN (the connection is half-open: we may still write). */
  end?(conn: Conn): void;
  drain?(conn: Conn): void;
  close?(conn: Conn, error?: Error): void;
}

export interface Backend extends AsyncDisposable {
  readonly kind: string;
  /** Listening IP ('' for Unix sockets). */
  readonly host: string;
  /** Listening TCP port (0 for Unix sockets). */
  readonly port: number;
  /** Unix socket path when listening on one. */
  readonly unix?: string;
  /** What to put on pen's/Fulcrum's command line: `127.0.0.1:PORT`, `[::1]:PORT`, or the Unix path. */
  readonly address: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections open right now. */
  readonly active: number;
  /** Total bytes received over all connections. */
  readonly bytesReceived: number;
  /** Remote address of every accepted connection, in order (to check which source IP the balancer used). */
  readonly peers: readonly Peer[];
  /** Live connections (for ad hoc pokes in tests). */
  readonly conns: ReadonlySet<Conn>;
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  waitForActive(n: number, timeoutMs?: number): Promise<void>;
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>;
}

class BackendImpl implements Backend {
  connections = 0;
  bytesReceived = 0;
  readonly peers: Peer[] = [];
  readonly conns = new Set<Conn>();
  readonly host: string;
  readonly unix?: string;
  port = 0;
  address = '';
  private listener: SocketListener<undefined> | undefined;
  private stopped = false;

  constructor(readonly kind: string, listen: ListenOptions) {
    this.host = listen.unix === undefined ? (listen.host ?? '127.0.0.1') : '';
    if (listen.unix !== undefined) this.unix = listen.unix;
  }

  /** Set once listening: handlers are created before the listener exists. */
  attach(listener: SocketListener<undefined>, port: number): void {
    this.listener = listener;
    this.port = port;
    this.address = this.unix ?? hostPort(this.host, port);
  }

  get active(): number {
    return this.conns.size;
  }

  waitForConnections(n: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return waitFor(() => this.connections >= n, {
      timeoutMs,
      what: `${this.kind} backend ${this.address} to accept ${n} connection(s) (has ${this.connections})`,
    }).then(() => undefined);
  }

  waitForActive(n: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    return waitFor(() => this.conns.size === n, {
      timeoutMs,
      what: `${this.kind} backend ${this.address} to have ${n} open connection(s) (has ${this.conns.size})`,
    }).then(() => undefined);
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.listener?.stop(true);
    for (const conn of this.conns) {
      conn.markClosed(undefined, true);
      conn.socket.terminate();
    }
    this.conns.clear();
    if (this.unix !== undefined) removeTempSocketPath(this.unix);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Starts a backend with a custom per-connection behaviour; the building block of all the others. */
export function customBackend(kind: string, behaviour: BackendBehaviour, listen: ListenOptions = {}): Backend {
  const byId = new WeakMap<Socket<undefined>, Conn>();
  const backend = new BackendImpl(kind, listen);
  const connOf = (socket: Socket<undefined>): Conn | undefined => byId.get(socket);
  const handlers = {
    open(socket: Socket<undefined>) {
      const conn = new Conn(socket);
      byId.set(socket, conn);
      backend.connections++;
      backend.conns.add(conn);
      backend.peers.push({ address: conn.remoteAddress, port: conn.remotePort });
      behaviour.open?.(conn);
    },
    data(socket: Socket<undefined>, chunk: Buffer) {
      const conn = connOf(socket);
      if (!conn) return;
      conn.bytesReceived += chunk.length;
      backend.bytesReceived += chunk.length;
      behaviour.data?.(conn, chunk);
    },
    end(socket: Socket<undefined>) {
      const conn = connOf(socket);
      if (!conn) return;
      conn.peerEnded = true;
      if (behaviour.end) behaviour.end(conn);
      else conn.end();
    },
    drain(socket: Socket<undefined>) {
      const conn = connOf(socket);
      if (!conn) return;
      conn.flush();
      behaviour.drain?.(conn);
    },
    close(socket: Socket<undefined>, error?: Error) {
      const conn = connOf(socket);
      if (!conn) return;
      // After our shutdown(), Bun reports the peer's FIN as this close without calling end(): deliver it.
      const finWithoutEnd = !error && !conn.peerEnded && conn.halfClosed;
      conn.markClosed(error);
      backend.conns.delete(conn);
      if (finWithoutEnd) {
        conn.peerEnded = true;
        behaviour.end?.(conn);
      }
      behaviour.close?.(conn, error);
    },
    // A throwing behaviour must not crash the test process: drop that connection instead.
    error(socket: Socket<undefined>) {
      socket.terminate();
    },
  };
  // allowHalfOpen: a client's FIN must not close our side, or half-close could not be tested.
  if (listen.unix !== undefined) {
    backend.attach(Bun.listen({ unix: listen.unix, allowHalfOpen: true, socket: handlers }), 0);
  } else {
    const tcp = Bun.listen({ hostname: listen.host ?? '127.0.0.1', port: listen.port ?? 0, allowHalfOpen: true, socket: handlers });
    backend.attach(tcp, tcp.port);
  }
  return backend;
}

/** Echoes everything; on the client's FIN, finishes echoing and then sends FIN. */
export function echo(listen: ListenOptions = {}): Backend {
  return customBackend('echo', {
    data(conn, chunk) {
      conn.write(chunk);
      // Stop reading while the client is not taking our echo, so backpressure reaches the client.
      if (conn.pending > HIGH_WATER) conn.pause();
    },
    drain(conn) {
      if (conn.pending === 0 && !conn.closed) conn.resume();
    },
  }, listen);
}

export interface IdentifyOptions extends ListenOptions {
  /** After writing `name\n`: 'close' (FIN, default), 'echo' (keep echoing), or 'hold' (stay silent and open). */
  after?: 'close' | 'echo' | 'hold';
  /** Shorthand: true = after 'hold', false = after 'close'. `after` wins when both are given. */
  keepOpen?: boolean;
}

/** Writes `name` + "\n" on accept, then closes/echoes/holds; tells which server a client reached. */
export function identify(name: string, opts: IdentifyOptions = {}): Backend {
  const after = opts.after ?? (opts.keepOpen ? 'hold' : 'close');
  return customBackend(`identify(${name})`, {
    open(conn) {
      conn.write(`${name}\n`);
      if (after === 'close') conn.end();
    },
    data(conn, chunk) {
      if (after === 'echo') conn.write(chunk);
    },
    end(conn) {
      if (after !== 'hold') conn.end();
    },
  }, opts);
}

/** Accepts and reads (discarding), never writes or closes, not even on the client's FIN. */
export function hold(listen: ListenOptions = {}): Backend {
  return customBackend('hold', { end() {} }, listen);
}

/** Accepts and closes the socket at once: the client sees FIN (and a RST if it writes afterwards). */
export function closeAtOnce(listen: ListenOptions = {}): Backend {
  return customBackend('closeAtOnce', { open(conn) { conn.close(); } }, listen);
}

export interface ResetOptions extends ListenOptions {
  /** Reset once this many bytes have arrived instead of at accept (to test a reset mid-stream). */
  afterBytes?: number;
}

/** Accepts and aborts the connection with a TCP RST. */
export function reset(opts: ResetOptions = {}): Backend {
  const afterBytes = opts.afterBytes ?? 0;
  return customBackend('reset', {
    open(conn) {
      if (afterBytes <= 0) conn.reset();
    },
    data(conn) {
      if (conn.bytesReceived >= afterBytes) conn.reset();
    },
  }, opts);
}

/** A port with nothing listening: connecting to it is refused. */
export interface RefusedPort extends AsyncDisposable {
  readonly kind: 'refuse';
  readonly host: string;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

export function refuse(opts: { host?: string } = {}): RefusedPort {
  const host = opts.host ?? '127.0.0.1';
  const port = freePort(host);
  const close = async (): Promise<void> => {};
  return { kind: 'refuse', host, port, address: hostPort(host, port), close, [Symbol.asyncDispose]: close };
}

export interface DigestResult {
  bytes: number;
  sha256: string;
}

/** The sink's reply: `<sha256 hex> <byte count>\n`. */
export function formatDigestReply(result: DigestResult): string {
  return `${result.sha256} ${result.bytes}\n`;
}

export function parseDigestReply(text: string): DigestResult {
  const match = /^([0-9a-f]{64}) (\d+)\n?$/.exec(text);
  if (!match?.[1] || !match[2]) throw new Error(`not a sink digest reply: ${JSON.stringify(text)}`);
  return { sha256: match[1], bytes: Number(match[2]) };
}

export interface DigestBackend extends Backend {
  /** Digest of each connection that ended with FIN, in completion order. */
  readonly results: readonly DigestResult[];
}

function digestBehaviour(results: DigestResult[], extra: BackendBehaviour = {}): BackendBehaviour {
  const hashes = new WeakMap<Conn, Hash>();
  return {
    ...extra,
    open(conn) {
      hashes.set(conn, createHash('sha256'));
      extra.open?.(conn);
    },
    data(conn, chunk) {
      hashes.get(conn)?.update(chunk);
      extra.data?.(conn, chunk);
    },
    end(conn) {
      const hash = hashes.get(conn);
      if (!hash) return;
      const result = { bytes: conn.bytesReceived, sha256: hash.digest('hex') };
      results.push(result);
      conn.write(formatDigestReply(result));
      conn.end();
    },
  };
}

/** Counts and hashes everything received; on FIN replies `<sha256> <bytes>\n` and FINs. */
export function sink(listen: ListenOptions = {}): DigestBackend {
  const results: DigestResult[] = [];
  return Object.assign(customBackend('sink', digestBehaviour(results), listen), { results });
}

export interface SourceBackend extends Backend {
  /** Bytes each connection receives. */
  readonly bytes: number;
  /** sha256 hex of those bytes. */
  readonly sha256: string;
  readonly data: Buffer;
}

/** On accept sends `bytes` deterministic pseudo-random bytes (same for every connection), then FIN. */
export function source(bytes: number, opts: ListenOptions & { seed?: number } = {}): SourceBackend {
  const data = payload(bytes, opts.seed ?? 0x5eed);
  const backend = customBackend(`source(${bytes})`, {
    open(conn) {
      conn.write(data);
      conn.end();
    },
    // Whatever the client sends is discarded; its FIN must not cut our stream short.
    end() {},
  }, opts);
  return Object.assign(backend, { bytes, sha256: sha256(data), data });
}

export interface SlowReaderOptions extends ListenOptions {
  /** Average read rate. Default 256 KiB/s: far below loopback speed, so the sender's buffers fill. */
  bytesPerSecond?: number;
  /** The same rate said as "bytesPerTick every tickMs" (tickMs defaults to 10); ignored when bytesPerSecond is set. */
  bytesPerTick?: number;
  tickMs?: number;
}

export interface SlowReaderBackend extends DigestBackend {
  /** Switches every connection (and later ones) to full-speed reading, to let a blocked transfer finish. */
  speedUp(): void;
}

/**
 * Reads slowly so backpressure builds upstream: after each chunk it pauses reading for as long as that chunk
 * "costs" at `bytesPerSecond` (Bun reads in big chunks, so a per-chunk pause is how the average rate is held).
 * Like sink, it hashes what it got and replies `<sha256> <bytes>\n` on FIN, so integrity under backpressure can be checked too.
 */
export function slowReader(opts: SlowReaderOptions = {}): SlowReaderBackend {
  const rate = opts.bytesPerSecond
    ?? (opts.bytesPerTick !== undefined ? (opts.bytesPerTick * 1000) / (opts.tickMs ?? 10) : 256 * 1024);
  const results: DigestResult[] = [];
  const resumeAt = new WeakMap<Conn, number>();
  const timers = new Map<Conn, ReturnType<typeof setTimeout>>();
  let fast = false;
  const backend = customBackend('slowReader', digestBehaviour(results, {
    data(conn, chunk) {
      if (fast) return;
      const now = performance.now();
      const at = Math.max(now, resumeAt.get(conn) ?? now) + (chunk.length / rate) * 1000;
      resumeAt.set(conn, at);
      conn.pause();
      clearTimeout(timers.get(conn));
      timers.set(conn, setTimeout(() => {
        timers.delete(conn);
        if (!conn.closed) conn.resume();
      }, at - now));
    },
    close(conn) {
      clearTimeout(timers.get(conn));
      timers.delete(conn);
    },
  }), opts);
  const stopTimers = (): void => {
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
  };
  const close = backend.close.bind(backend);
  return Object.assign(backend, {
    results,
    speedUp(): void {
      fast = true;
      stopTimers();
      for (const conn of backend.conns) conn.resume();
    },
    async close(): Promise<void> {
      stopTimers();
      await close();
    },
  });
}

/** Accepts and never reads: the kernel buffers fill and the writer blocks. */
export function stall(listen: ListenOptions = {}): Backend {
  return customBackend('stall', { open(conn) { conn.pause(); }, end() {} }, listen);
}
