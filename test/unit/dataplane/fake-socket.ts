/**
 * A fake socket behind the data plane's socket interface (src/dataplane/socket.ts), and a rig
 * that runs one session on fake sockets with a manual clock. Events are delivered through the
 * adapter's own handler objects (bun-tcp.ts), exactly as Bun would call them, so the tests cover
 * the dispatch as well as the session logic, with no real socket.
 */
import type { Socket, SocketHandler } from 'bun';
import type { Address } from '../../../src/core/address.ts';
import type { AlgorithmName } from '../../../src/core/balancing/registry.ts';
import type { Selector, SelectorSettings } from '../../../src/core/selector.ts';
import type { Server } from '../../../src/core/servers/server.ts';
import { DeadlineList } from '../../../src/core/deadline-list.ts';
import { clientHandlers, serverHandlers } from '../../../src/dataplane/bun-tcp.ts';
import { Session, type SessionOwner, type Side } from '../../../src/dataplane/session.ts';
import type { StreamSocket } from '../../../src/dataplane/socket.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';
import { selectorFor, servers } from '../core/helpers.ts';

const text = new TextDecoder();
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Records what the code under test does to it, in order (`ops`): `write:<text>` (what was
 * accepted), `pause`, `resume`, `shutdown`, `end`, `terminate`, `timeout:<s>`, `nodelay`.
 * `capacity` is how many more bytes write() accepts (a partial write beyond it); after end()
 * or terminate() write() returns -1, as a closed socket does.
 */
export class FakeSocket<D> implements StreamSocket<D> {
  data!: D;
  readonly ops: string[] = [];
  capacity = Infinity;
  paused = false;
  closed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress = '192.0.2.1';
  readonly localPort = 8080;
  readonly #handlers: SocketHandler<D>;

  constructor(handlers: SocketHandler<D>, remoteAddress = '198.51.100.7', remotePort = 40000) {
    this.#handlers = handlers;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  write(data: Uint8Array): number {
    if (this.closed) return -1;
    const n = Math.min(data.length, this.capacity);
    this.capacity -= n;
    if (n > 0) this.ops.push(`write:${text.decode(data.subarray(0, n))}`);
    return n;
  }
  shutdown(): void {
    this.ops.push('shutdown');
  }
  end(): void {
    this.ops.push('end');
    this.closed = true;
  }
  terminate(): void {
    this.ops.push('terminate');
    this.closed = true;
  }
  pause(): void {
    this.ops.push('pause');
    this.paused = true;
  }
  resume(): void {
    this.ops.push('resume');
    this.paused = false;
  }
  setNoDelay(): boolean {
    this.ops.push('nodelay');
    return true;
  }
  timeout(seconds: number): void {
    this.ops.push(`timeout:${seconds}`);
  }

  /** Everything written to it, as text. */
  get written(): string {
    return this.ops.filter((o) => o.startsWith('write:')).map((o) => o.slice(6)).join('');
  }
  /** Only the ops that close it, in order: shutdown (FIN), end, terminate (RST). */
  get closes(): string[] {
    return this.ops.filter((o) => o === 'shutdown' || o === 'end' || o === 'terminate');
  }

  // Events, as the runtime delivers them.
  #bun(): Socket<D> {
    return this as unknown as Socket<D>;
  }
  open(): void {
    this.#handlers.open?.(this.#bun());
  }
  receive(s: string): void {
    this.#handlers.data?.(this.#bun(), Buffer.from(s));
  }
  drain(): void {
    this.#handlers.drain?.(this.#bun());
  }
  fin(): void {
    this.#handlers.end?.(this.#bun());
  }
  close(error?: Error): void {
    this.#handlers.close?.(this.#bun(), error as Error);
  }
  error(error: Error): void {
    this.#handlers.error?.(this.#bun(), error);
  }
  idle(): void {
    this.#handlers.timeout?.(this.#bun());
  }
  connectError(error: Error): void {
    this.#handlers.connectError?.(this.#bun(), error);
  }
}

export const reset = (): Error => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

/** A connect the session asked for: the fake server socket to answer it with. */
export interface ConnectRequest {
  address: Address;
  side: Side;
  socket: FakeSocket<Side>;
}

export interface RigOptions {
  servers?: number;
  algorithm?: AlgorithmName;
  settings?: Partial<SelectorSettings>;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  tcpNoDelay?: boolean;
  sendProxy?: SessionOwner['sendProxy'];
  fastClose?: SessionOwner['fastClose'];
  /**
   * The client was paused before the session began, as a TLS or passthrough gate hands it over
   * (default). false: as a plain listener does, which reads the client from accept on.
   */
  pausedAtAccept?: boolean;
}

/** One session on fake sockets: the owner's side of it, recorded. */
export class Rig implements SessionOwner {
  readonly selector: Selector;
  readonly clock: ManualClock;
  readonly servers: Server[];
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly tcpNoDelay: boolean;
  readonly sendProxy: SessionOwner['sendProxy'];
  readonly fastClose: SessionOwner['fastClose'];
  readonly connects: ConnectRequest[] = [];
  /** The session's connect deadline, as a group keeps it (one list, one timer). */
  readonly connectDeadlines: DeadlineList<Session>;
  readonly client: FakeSocket<Side>;
  readonly session: Session;
  connectedCalls = 0;
  endedCalls = 0;

  constructor(o: RigOptions = {}) {
    this.servers = servers(o.servers ?? 1);
    const sel = selectorFor(this.servers, o.algorithm ?? 'roundrobin', o.settings ?? {});
    this.selector = sel.selector;
    this.clock = sel.clock;
    this.connectDeadlines = new DeadlineList<Session>(this.clock, (s) => s.connectTimedOut());
    this.connectTimeoutMs = o.connectTimeoutMs ?? 0;
    this.idleTimeoutMs = o.idleTimeoutMs ?? 0;
    this.tcpNoDelay = o.tcpNoDelay ?? false;
    this.sendProxy = o.sendProxy ?? 'off';
    this.fastClose = o.fastClose ?? 'off';
    this.client = new FakeSocket<Side>(clientHandlers);
    // What a gate does before it hands the client to a session (a plain listener does not).
    if (o.pausedAtAccept !== false) this.client.pause();
    this.session = new Session(this, this.client, this.client.remoteAddress);
  }

  connect(address: Address, side: Side): void {
    const socket = new FakeSocket<Side>(serverHandlers, address.kind === 'tcp' ? address.host : 'unix', 80);
    socket.data = side; // Bun.connect's `data`
    this.connects.push({ address, side, socket });
  }
  coarseNow(): number {
    return this.clock.now();
  }
  sessionConnected(): void {
    this.connectedCalls++;
  }
  sessionEnded(): void {
    this.endedCalls++;
  }
  dumpChunk(): void {}

  /** Admits the session (it chooses a server and connects). */
  begin(): this {
    this.session.begin();
    return this;
  }
  /** The fake socket of the latest connect attempt. */
  get server(): FakeSocket<Side> {
    const c = this.connects.at(-1);
    if (c === undefined) throw new Error('no connect was asked for');
    return c.socket;
  }
  /** The servers connected to, in the order of the attempts. */
  get attempted(): Server[] {
    return this.connects.map((c) => this.servers.find((s) => s.address === c.address)!);
  }
  /** begin() and complete the connect: the usual start of a test. */
  connected(): this {
    this.begin();
    this.server.open();
    return this;
  }
  /**
   * What a finished session must leave behind: no connect deadline (the list's one timer may stay
   * armed: it is not the session's), no counted connection, one end.
   */
  get leftovers(): { timers: number; pending: number; connections: number; endedCalls: number } {
    return {
      timers: this.connectDeadlines.size,
      pending: this.servers.reduce((n, s) => n + s.pending, 0),
      connections: this.servers.reduce((n, s) => n + s.connections, 0),
      endedCalls: this.endedCalls,
    };
  }
}

export const CLEAN = { timers: 0, pending: 0, connections: 0, endedCalls: 1 };
export { bytes };

/**
 * Plays events given as `side:event[:text]`: side `c` (client) or `s` (latest server socket);
 * events data:TEXT, fin, close (clean), reset (close with an error), error, drain, idle,
 * open, connect-error; and `advance:MS` moves the manual clock.
 */
export function play(rig: Rig, steps: readonly string[]): void {
  for (const step of steps) {
    const [who, what, arg = ''] = step.split(':') as [string, string, string?];
    if (who === 'advance') {
      rig.clock.advance(Number(what));
      continue;
    }
    const sock = who === 'c' ? rig.client : who === 's' ? rig.server : null;
    if (sock === null) throw new Error(`bad step ${step}`);
    switch (what) {
      case 'data': sock.receive(arg); break;
      case 'fin': sock.fin(); break;
      case 'close': sock.close(); break;
      case 'reset': sock.close(reset()); break;
      case 'error': sock.error(reset()); break;
      case 'drain': sock.drain(); break;
      case 'idle': sock.idle(); break;
      case 'open': sock.open(); break;
      case 'connect-error': sock.connectError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })); break;
      default: throw new Error(`bad step ${step}`);
    }
  }
}
