// A small promise-based TCP/Unix client for tests, on node:net because Bun.connect cannot bind
// a source address (needed to give loopback clients distinct IPs such as 127.0.0.2).
// Every read has a deadline; the connection is always half-open capable so half-close can be tested.
import net from 'node:net';
import { parseDigestReply, type DigestResult } from './backends.ts';
import {
  DEFAULT_TIMEOUT_MS,
  TimeoutError,
  errorCode,
  errorMessage,
  firstDifference,
  nextSeed,
  payload,
  preview,
  sha256,
} from './util.ts';

/** Where to connect: a port on 127.0.0.1, "host:port" / "[v6]:port" / "/unix/path", or anything with port/host/unix (a Backend, a process). */
export type Target = number | string | { readonly port: number; readonly host?: string; readonly unix?: string | undefined };

export interface ConnectOptions {
  /** Host for a bare port; '127.0.0.1' by default. */
  host?: string;
  /** Source IP to bind, e.g. '127.0.0.2' (any 127.0.0.0/8 address works on Linux loopback). */
  localAddress?: string;
  localPort?: number;
  /** Bound for connecting, and the default bound for every read on this client. */
  timeoutMs?: number;
}

/** How the peer ended the connection as seen by the client ('local': we closed it first; 'timeout': nothing within the bound). */
export type CloseKind = 'fin' | 'reset' | 'error' | 'local' | 'timeout';

export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

interface Endpoint {
  host?: string;
  port?: number;
  path?: string;
  label: string;
}

function resolveTarget(target: Target, host: string): Endpoint {
  if (typeof target === 'number') return { host, port: target, label: `${host}:${target}` };
  if (typeof target === 'object') {
    if (target.unix) return { path: target.unix, label: target.unix };
    const h = target.host || host;
    return { host: h, port: target.port, label: `${h}:${target.port}` };
  }
  if (target.startsWith('/') || target.startsWith('unix:')) {
    const path = target.replace(/^unix:/, '');
    return { path, label: path };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(target) ?? /^()()(\d+)$/.exec(target);
  if (!match?.[3]) throw new Error(`cannot parse connect target ${JSON.stringify(target)}`);
  const h = match[1] || match[2] || host;
  return { host: h, port: Number(match[3]), label: `${h}:${match[3]}` };
}

type Waiter = { check: () => boolean };

export class Client implements AsyncDisposable {
  /** Total bytes received so far (including those already consumed by reads). */
  bytesReceived = 0;
  /** How the peer closed, once known; undefined while open. */
  closeKind: Exclude<CloseKind, 'timeout'> | undefined;
  /** The error that closed the connection, if any. */
  closeError: Error | undefined;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private peerEnded = false;
  private socketClosed = false;
  private readonly waiters = new Set<Waiter>();
  private readonly closedPromise: Promise<Exclude<CloseKind, 'timeout'>>;
  private readonly fullyClosed: Promise<void>;
  // Captured at connect: node clears them once the socket closes, and tests often look afterwards.
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;

  constructor(readonly socket: net.Socket, readonly label: string, readonly timeoutMs: number) {
    this.localAddress = socket.localAddress;
    this.localPort = socket.localPort;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    let settleClosed: (kind: Exclude<CloseKind, 'timeout'>) => void = () => {};
    this.closedPromise = new Promise((resolve) => { settleClosed = resolve; });
    const settle = (kind: Exclude<CloseKind, 'timeout'>): void => {
      if (this.closeKind === undefined) {
        this.closeKind = kind;
        settleClosed(kind);
      }
      this.notify();
    };
    this.fullyClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.bytesReceived += chunk.length;
      this.notify();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      settle('fin');
    });
    socket.on('error', (err: Error) => {
      this.closeError ??= err;
      const code = errorCode(err);
      settle(code === 'ECONNRESET' || code === 'EPIPE' ? 'reset' : 'error');
    });
    socket.on('close', () => {
      this.socketClosed = true;
      settle('local');
    });
  }


  /**
   * How the peer closed: 'fin', 'reset', 'error', 'local' (we closed first), or 'timeout' if nothing
   * happened within this client's timeoutMs counted from this access. Never rejects.
   */
  get closed(): Promise<CloseKind> {
    return this.waitClosed(this.timeoutMs);
  }

  /** Like `closed` with an explicit bound; 'timeout' means still open after `timeoutMs`. */
  waitClosed(timeoutMs = this.timeoutMs): Promise<CloseKind> {
    if (this.closeKind !== undefined) return Promise.resolve(this.closeKind);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
    return Promise.race([this.closedPromise, timeout]).finally(() => clearTimeout(timer));
  }

  /** Writes; resolves once the bytes are handed to the kernel. Rejects on error or after `timeoutMs` (peer not reading). */
  write(data: Uint8Array | string, timeoutMs = this.timeoutMs): Promise<void> {
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    return this.handled(this.bounded(new Promise<void>((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    }), timeoutMs, `write of ${length} bytes to be flushed (is the peer reading?)`));
  }

  /** Half-close: sends FIN after pending writes; we can still read. Resolves once FIN is sent. */
  end(data?: Uint8Array | string, timeoutMs = this.timeoutMs): Promise<void> {
    return this.handled(this.bounded(new Promise<void>((resolve, reject) => {
      if (this.socket.writableFinished || this.socketClosed) return resolve();
      const onFinish = (): void => { this.socket.off('error', reject); resolve(); };
      this.socket.once('error', reject);
      this.socket.once('finish', onFinish);
      if (data === undefined) this.socket.end();
      else this.socket.end(data);
    }), timeoutMs, 'our FIN to be sent'));
  }

  /** Everything until the peer's FIN (consumes it). Rejects on reset or timeout. */
  readAll(timeoutMs = this.timeoutMs): Promise<Buffer> {
    return this.waitUntil(`FIN from ${this.label}`, timeoutMs, () => {
      if (this.peerEnded) return this.take(this.buffered);
      if (this.closeKind !== undefined) throw this.closedEarly('FIN');
      return undefined;
    });
  }

  /** Exactly `n` bytes (consumes them). Rejects if the stream ends first or on timeout. */
  readExactly(n: number, timeoutMs = this.timeoutMs): Promise<Buffer> {
    return this.waitUntil(`${n} bytes from ${this.label}`, timeoutMs, () => {
      if (this.buffered >= n) return this.take(n);
      if (this.peerEnded || this.closeKind !== undefined) throw this.closedEarly(`${n} bytes`);
      return undefined;
    });
  }

  /** Text up to and including `delimiter` (consumes it). */
  readUntil(delimiter: string, timeoutMs = this.timeoutMs): Promise<string> {
    const needle = Buffer.from(delimiter);
    return this.waitUntil(`${JSON.stringify(delimiter)} from ${this.label}`, timeoutMs, () => {
      const all = this.peek();
      const at = all.indexOf(needle);
      if (at >= 0) return this.take(at + needle.length).toString();
      if (this.peerEnded || this.closeKind !== undefined) throw this.closedEarly(JSON.stringify(delimiter));
      return undefined;
    });
  }

  /** One line without its "\n". */
  async readLine(timeoutMs = this.timeoutMs): Promise<string> {
    return (await this.readUntil('\n', timeoutMs)).replace(/\r?\n$/, '');
  }

  /** Bytes received and not yet consumed by a read. */
  peek(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Stop reading from the socket (the kernel buffers fill and the peer feels backpressure). */
  pause(): void { this.socket.pause(); }
  resume(): void { this.socket.resume(); }

  /** Abort with RST. */
  reset(): void {
    if (!this.socketClosed) this.socket.resetAndDestroy();
  }

  /** Closes both directions at once (no waiting for the peer). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Destroys the socket and waits (bounded) for it to be closed. Idempotent. */
  async close(): Promise<void> {
    if (!this.socketClosed) this.socket.destroy();
    await this.bounded(this.fullyClosed, this.timeoutMs, `client socket to ${this.label} to close`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private take(n: number): Buffer {
    const all = this.peek();
    const head = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return head;
  }

  private closedEarly(wanted: string): Error {
    const how = this.closeKind === 'reset' ? 'reset' : this.closeKind === 'error' ? `failed (${errorMessage(this.closeError)})` : 'closed (FIN)';
    return new Error(`connection to ${this.label} ${how} before ${wanted}; unread: ${preview(this.peek())}, received ${this.bytesReceived} bytes in total`);
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter.check();
  }

  private waitUntil<T>(what: string, timeoutMs: number, attempt: () => T | undefined): Promise<T> {
    return this.handled(new Promise<T>((resolve, reject) => {
      // Assigned after the first synchronous check, which may already settle the wait.
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const waiter: Waiter = {
        check: () => {
          let value: T | undefined;
          try {
            value = attempt();
          } catch (err) {
            this.waiters.delete(waiter);
            clearTimeout(timer);
            reject(err instanceof Error ? err : new Error(String(err)));
            return true;
          }
          if (value === undefined) return false;
          this.waiters.delete(waiter);
          clearTimeout(timer);
          resolve(value);
          return true;
        },
      };
      if (waiter.check()) return;
      this.waiters.add(waiter);
      timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new TimeoutError(`timed out after ${timeoutMs}ms waiting for ${what}; unread: ${preview(this.peek())}, received ${this.bytesReceived} bytes in total, connection ${this.closeKind ?? 'open'}`));
      }, timeoutMs);
    }));
  }

  private bounded<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`timed out after ${timeoutMs}ms waiting for ${what} (${this.label})`)), timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /** Marks a promise as handled so fire-and-forget calls cannot crash the run with an unhandled rejection; awaiting it still rejects. */
  private handled<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => {});
    return promise;
  }
}

/** Connects to `target`; rejects with a ConnectError (with .code, e.g. 'ECONNREFUSED') or a TimeoutError. */
export function connect(target: Target, opts: ConnectOptions = {}): Promise<Client> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const endpoint = resolveTarget(target, opts.host ?? '127.0.0.1');
  return new Promise<Client>((resolve, reject) => {
    const socket = endpoint.path !== undefined
      ? net.connect({ path: endpoint.path, allowHalfOpen: true })
      : net.connect({
        host: endpoint.host ?? '127.0.0.1',
        port: endpoint.port ?? 0,
        allowHalfOpen: true,
        ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
        ...(opts.localPort !== undefined ? { localPort: opts.localPort } : {}),
      });
    const from = opts.localAddress ? ` from ${opts.localAddress}` : '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`timed out after ${timeoutMs}ms connecting to ${endpoint.label}${from}`));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new ConnectError(`connect to ${endpoint.label}${from} failed: ${err.message}`, errorCode(err)));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(new Client(socket, endpoint.label, timeoutMs));
    });
  });
}

export function connectUnix(path: string, opts: Omit<ConnectOptions, 'host' | 'localAddress' | 'localPort'> = {}): Promise<Client> {
  return connect({ port: 0, unix: path }, opts);
}

/** Bound for a bulk transfer: the usual one plus a second per MB, since the machine is shared. */
function transferTimeout(bytes: number, opts: ConnectOptions): number {
  return opts.timeoutMs ?? DEFAULT_TIMEOUT_MS + Math.ceil(bytes / 1_000_000) * 1_000;
}

export interface TransferOptions extends ConnectOptions {
  /** Seed of the pseudo-random payload; a fresh one per call by default. */
  seed?: number;
}

export interface TransferResult {
  bytes: number;
  sha256: string;
  localAddress: string | undefined;
}

/**
 * Round trip through an echo backend: sends `bytes` pseudo-random bytes while reading, half-closes,
 * and checks the echoed stream has the same length and sha256. Throws on any difference, naming the first bad offset.
 */
export async function transfer(target: Target, bytes: number, opts: TransferOptions = {}): Promise<TransferResult> {
  const data = payload(bytes, opts.seed ?? nextSeed());
  const expected = sha256(data);
  const client = await connect(target, { ...opts, timeoutMs: transferTimeout(bytes, opts) });
  try {
    // Write and read concurrently: a full-duplex echo deadlocks if we only read after writing.
    const reading = client.readAll();
    await client.write(data);
    await client.end();
    const got = await reading;
    const actual = sha256(got);
    if (got.length !== bytes || actual !== expected) {
      throw new Error(`transfer via ${client.label} corrupted: sent ${bytes} bytes (sha256 ${expected}), got back ${got.length} bytes (sha256 ${actual}); first difference at offset ${firstDifference(data, got)}`);
    }
    return { bytes, sha256: actual, localAddress: client.localAddress };
  } finally {
    await client.close();
  }
}

/** Sends `bytes` pseudo-random bytes to a sink (or slowReader) and checks its digest reply. */
export async function upload(target: Target, bytes: number, opts: TransferOptions = {}): Promise<DigestResult> {
  const data = payload(bytes, opts.seed ?? nextSeed());
  const expected = { bytes, sha256: sha256(data) };
  const client = await connect(target, { ...opts, timeoutMs: transferTimeout(bytes, opts) });
  try {
    const reading = client.readAll();
    await client.write(data);
    await client.end();
    const reply = parseDigestReply((await reading).toString());
    if (reply.bytes !== expected.bytes || reply.sha256 !== expected.sha256) {
      throw new Error(`upload via ${client.label} corrupted: sent ${expected.bytes} bytes (sha256 ${expected.sha256}), sink got ${reply.bytes} bytes (sha256 ${reply.sha256})`);
    }
    return reply;
  } finally {
    await client.close();
  }
}

/** Reads a source backend's stream to FIN and checks it against the source's length and sha256. */
export async function download(target: Target, expected: DigestResult, opts: ConnectOptions = {}): Promise<DigestResult> {
  const client = await connect(target, { ...opts, timeoutMs: transferTimeout(expected.bytes, opts) });
  try {
    const got = await client.readAll();
    const actual = { bytes: got.length, sha256: sha256(got) };
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      throw new Error(`download via ${client.label} corrupted: expected ${expected.bytes} bytes (sha256 ${expected.sha256}), got ${actual.bytes} bytes (sha256 ${actual.sha256})`);
    }
    return actual;
  } finally {
    await client.close();
  }
}

export interface WhoOptions extends ConnectOptions {
  /** Alias of localAddress: the client's source IP. */
  sourceIp?: string;
}

function connectOptions(opts: WhoOptions): ConnectOptions {
  const { sourceIp, ...rest } = opts;
  return sourceIp !== undefined ? { ...rest, localAddress: sourceIp } : rest;
}

/** Connects, reads the identify backend's name line, disconnects; returns the name. */
export async function whoServes(target: Target, opts: WhoOptions = {}): Promise<string> {
  const client = await connect(target, connectOptions(opts));
  try {
    return await client.readLine();
  } finally {
    await client.close();
  }
}

/** `n` sequential whoServes calls; the names in order (for round-robin and stickiness checks). */
export async function sequence(target: Target, n: number, opts: WhoOptions = {}): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(await whoServes(target, opts));
  return names;
}

/** Counts occurrences: tally(['a','b','a']) → { a: 2, b: 1 }. */
export function tally(names: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}
