/**
 * One proxied connection: a client side and a server side, each a `Side` that pumps what its
 * socket reads into the other side's socket. The logic is symmetric and written once:
 *
 * - Backpressure: when the peer's socket takes only part of a chunk, the rest is kept (one
 *   buffer per direction) and this socket is paused until the peer drains, so memory per
 *   connection stays bounded whatever the speed mismatch.
 * - Early bytes: a client is read from accept on (HAProxy does the same); what it sends while its
 *   server connects is kept for the server, and the client is paused only beyond EARLY_BYTES_MAX.
 *   Pausing every client at accept and resuming it on connect cost four epoll_ctl and two
 *   setsockopt calls per connection (docs/performance.md).
 * - Half-close: a FIN read from one side is passed on (shutdown) once everything before it has
 *   been written; the other direction keeps flowing until it ends too.
 * - Reset: a reset on one side is passed on as a reset (terminate) on the other.
 * - One teardown path: Session.#finish() runs exactly once, whatever ended the connection.
 */
import type { Address } from '../core/address.ts';
import type { Clock } from '../core/clock.ts';
import type { DeadlineEntry, DeadlineList } from '../core/deadline-list.ts';
import type { ChoiceReason, RefusalReason, SelectionState, Selector } from '../core/selector.ts';
import type { ClientEntry } from '../core/clients/client-table.ts';
import type { ClientIp } from '../core/ip.ts';
import type { Server } from '../core/servers/server.ts';
import type { ConnectionFacts } from './gate.ts';
import { clientKey } from '../core/ip.ts';
import { encodeProxyV1, encodeProxyV2, type ProxiedAddresses } from '../protocol/proxy-protocol.ts';
import type { StreamSocket } from './socket.ts';
import { concat } from './bytes.ts';
import { Side, type SideSession } from './side.ts';
import { ForwardedFor } from './forwarded-for.ts';

export { EARLY_BYTES_MAX, Side } from './side.ts';

// The vocabulary lives in core (every plane reads it); re-exported for the data plane's users.
export { TERMINATION_REASONS, type TerminationReason } from '../core/termination.ts';
import { closesAtOnce, type TerminationReason } from '../core/termination.ts';
import { Linger } from './linger.ts';

/** What a session needs from the balancer that owns it. */
export interface SessionOwner {
  readonly selector: Selector;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly tcpNoDelay: boolean;
  /** PROXY protocol header to send to servers first, if any. */
  readonly sendProxy: 'off' | 'v1' | 'v2';
  /** pen's tcp_fastclose: which side's FIN closes the whole connection. */
  readonly fastClose: 'off' | 'up' | 'down' | 'both';
  /**
   * The connect deadlines of this owner's sessions (core/deadline-list.ts): one timer for all of
   * them, calling session.connectTimedOut() for each that expires.
   */
  readonly connectDeadlines: DeadlineList<Session>;
  /** Start a connect; the adapter calls side.connected(socket) or side.connectFailed(). */
  connect(address: Address, side: Side): void;
  /** Coarse current time (ms), refreshed by a timer, cheap to read per chunk. */
  coarseNow(): number;
  /** The time source for timestamps and the connect timer. */
  readonly clock: Clock;
  sessionConnected(session: Session): void;
  sessionEnded(session: Session): void;
  /** A connect failed for want of our own resources (file descriptors): not the server's fault. */
  resourceFailure?(session: Session): void;
  /**
   * Every eligible server is full: hold the session (unread) until a slot frees or its queue
   * time is up. False when it cannot wait (no queue, or the queue is full); the session then
   * closes with the refusal.
   */
  enqueue?(session: Session): boolean;
  /** pen's -dd communication dumps: called per chunk only for sessions with `dump` set. */
  dumpChunk(session: Session, fromClient: boolean, chunk: Uint8Array): void;
}

/**
 * What a session knows of the listener that accepted it: a name for the access log and O(1)
 * counters the balancer updates at accept and at the end (read by metrics at scrape time).
 */
export interface SessionListener {
  readonly name: string;
  active: number;
  bytesFromClients: number;
  bytesToClients: number;
}

let nextSessionId = 1;

/**
 * One proxied connection, in as few objects as the design allows: the session is its client's
 * Side (it extends Side: `client` is the session itself) and its own selection state
 * (core/selector.ts: the selector works on the session's fields), so a connection allocates the
 * Session and one server Side per connect attempt. `server` is therefore the chosen Server and
 * `reason` why it was chosen; the server's socket is `serverSide`, and how the connection ended
 * is `termination`. Every field is initialised here, in one order (one hidden class).
 */
export class Session extends Side implements SideSession, SelectionState, DeadlineEntry<Session> {
  readonly id = nextSessionId++;
  readonly owner: SessionOwner;
  #attempts = 0;
  /** The current server side; replaced on each connect attempt so stale attempts are recognised. */
  serverSide: Side;
  // SelectionState: the selector reads and writes these (clientPort is the getter below).
  /** Client table key: the normalised client address, or "unix". */
  readonly clientKey: string;
  clientIp: ClientIp | null = null;
  clientEntry: ClientEntry | null = null;
  initial = -1;
  /** The chosen server (it holds a slot there), or null. */
  server: Server | null = null;
  /** Why `server` was chosen. */
  reason: ChoiceReason = 'algorithm';
  /** The servers whose connect failed, in order (objects, so a reload cannot renumber them). */
  failedServers: Server[] | null = null;
  refusal: RefusalReason | null = null;
  /** Client address, captured at accept (a closed socket no longer knows it). */
  readonly clientAddress: string;
  /** The client's port: -1 until read (each read is a getpeername; see `clientPort`). */
  #clientPort = -1;
  readonly startMs: number;
  lastActivityMs: number;
  connectStartMs = 0;
  connectedMs = 0;
  endMs = 0;
  /** How the connection ended (the first cause), or null while it lasts. */
  termination: TerminationReason | null = null;
  readonly #clock: Clock;
  /** The connect deadline: its place in owner.connectDeadlines while a connect is under way. */
  deadlineMs = 0;
  deadlinePrev: Session | null = null;
  deadlineNext: Session | null = null;
  #serverJudged = false;
  finished = false;
  connecting = false;
  /** Dump every chunk (pen's -dd); decided once per connection so the data path pays one check. */
  dump = false;
  /** Error text of failed connects, in order, for the log. */
  connectErrors: string[] | null = null;
  /** What a TLS or passthrough listener learnt before the session began (SNI, client identity ...). */
  facts: ConnectionFacts | null = null;
  /** Bytes read before the session began, not yet counted for a server. */
  #preloaded = 0;
  /** The listener that accepted the client (set by the balancer). */
  listener: SessionListener | null = null;
  /** Waiting in its group's queue for a server slot (see GroupRuntime.enqueue). */
  inGroupQueue = false;
  /** When it started waiting there (0 = never queued). */
  queuedMs = 0;
  /** Connection age limit: due time and position in the group's age heap (TimerHeap entry). */
  dueMs = 0;
  heapIndex = -1;
  /**
   * Links in the admission's list of sessions that have not sent a byte yet (app/admission.ts,
   * for -x's eviction of quiet clients): the list needs no node object per session.
   */
  quietPrev: Session | null = null;
  quietNext: Session | null = null;
  /** Links in its server's list of open connections (app/server-connections.ts). */
  byServerPrev: Session | null = null;
  byServerNext: Session | null = null;

  /** The real client and address it connected to, as a PROXY header named them (accept_proxy); else null. */
  readonly origin: ProxiedAddresses | null;

  constructor(owner: SessionOwner, clientSocket: StreamSocket<Side>, clientKey: string, clientAddress: string = clientSocket.remoteAddress ?? '', origin: ProxiedAddresses | null = null) {
    super(null, true); // the client's side is this object
    this.owner = owner;
    this.#clock = owner.clock;
    this.socket = clientSocket;
    clientSocket.data = this;
    this.serverSide = new Side(this, false);
    this.peer = this.serverSide;
    this.serverSide.peer = this;
    this.clientKey = clientKey;
    this.origin = origin;
    this.clientAddress = origin?.sourceAddress ?? clientAddress;
    // A PROXY header named the port; otherwise it is read from the socket only when asked.
    if (origin !== null) this.#clientPort = origin.sourcePort;
    this.startMs = this.#clock.now();
    this.lastActivityMs = owner.coarseNow();
  }

  /** The client's side: the session itself (a getter, so that it costs no field). */
  get client(): Side {
    return this;
  }

  /**
   * The client's port, read from the socket the first time it is asked for (a system call that
   * most connections never need). Whoever needs it after the client has gone (the logs) reads it
   * at accept; once the client's socket is closed an unread port is 0.
   */
  get clientPort(): number {
    if (this.#clientPort < 0) {
      const port = this.client.gone ? undefined : this.client.socket?.remotePort;
      if (port === undefined) return 0;
      this.#clientPort = port;
    }
    return this.#clientPort;
  }

  /** The client waits unread (admission FIFO, group queue) until a server is connected. */
  hold(): void {
    if (!this.client.gone) this.client.socket?.pause();
  }

  /**
   * pen's -H: the client's requests get X-Forwarded-For (and X-Forwarded-Proto) lines. Called at
   * accept, before any preload, only for listeners with -H; the client address is the normalised
   * one (an IPv4-mapped address as IPv4), or the real client a PROXY header named.
   */
  forwardFor(proto: 'http' | 'https'): void {
    this.client.forwardedFor = new ForwardedFor(this.clientKey, proto);
  }

  /**
   * Bytes the client sent before the session began (a passthrough listener's ClientHello): they
   * go to the server first, before anything else the client sends.
   */
  preload(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.client.bytesRead += bytes.length;
    this.#preloaded += bytes.length;
    const xff = this.client.forwardedFor;
    let out = bytes;
    if (xff !== null) {
      out = xff.rewrite(bytes);
      if (xff.done) this.client.forwardedFor = null;
      if (out.length === 0) return;
    }
    this.serverSide.pending = this.serverSide.pending === null ? out : concat(this.serverSide.pending, out);
  }

  /** Choose a server and connect (called when the balancer admits the connection). */
  begin(): void {
    // The selector reads clientPort (a getpeername) only when the hash takes the port.
    const server = this.owner.selector.begin(this);
    if (server === null) {
      const refusal = this.refusal ?? 'no-server';
      if (refusal === 'all-full' && this.owner.enqueue?.(this) === true) {
        if (!this.finished) this.hold();
        return;
      }
      this.close(refusal, false);
      return;
    }
    this.#connectTo(server);
  }

  #connectTo(server: Server): void {
    // The first attempt uses the server side made with the session; each retry gets a fresh one,
    // so that events of an earlier attempt (a late open after a timeout) are recognised as stale.
    if (this.#attempts++ > 0) {
      const side = new Side(this, false);
      side.peer = this.client;
      // Carry over anything the client already sent (a failed attempt may have buffered some).
      side.pending = this.serverSide.pending;
      this.serverSide = side;
      this.client.peer = side;
    }
    const side = this.serverSide;
    this.connecting = true;
    this.connectStartMs = this.#clock.now();
    const ms = this.owner.connectTimeoutMs;
    // No timer of its own: the owner's list has one for all its sessions' connects.
    if (ms > 0) this.owner.connectDeadlines.add(this, ms);
    this.owner.connect(server.address, side);
  }

  /** Adapter callback: the server side's socket connected. */
  serverConnected(side: Side, socket: StreamSocket<Side>): void {
    if (side !== this.serverSide || this.finished || !this.connecting) {
      socket.terminate(); // a stale attempt that completed after its timeout
      return;
    }
    this.connecting = false;
    this.#clearConnectTimer();
    side.socket = socket;
    socket.data = side;
    this.connectedMs = this.#clock.now();
    this.server?.connectLatency.record(this.connectedMs - this.connectStartMs);
    this.owner.selector.connected(this);
    if (this.#preloaded > 0 && this.server !== null) {
      this.server.bytesToServer += this.#preloaded;
      this.#preloaded = 0;
    }
    if (this.owner.tcpNoDelay) {
      socket.setNoDelay(true);
      this.client.socket?.setNoDelay(true);
    }
    const idleS = Math.ceil(this.owner.idleTimeoutMs / 1000);
    if (idleS > 0) {
      socket.timeout(idleS);
      this.client.socket?.timeout(idleS);
    }
    this.owner.sessionConnected(this);
    if (this.owner.sendProxy !== 'off') {
      // The header goes before anything the client has sent.
      const header = this.#proxyHeader(this.owner.sendProxy);
      side.pending = side.pending === null ? header : concat(header, side.pending);
    }
    side.onDrain(); // flush anything buffered, pass on an early FIN, and resume the client
    if (!this.client.eof) this.client.socket?.resume();
  }

  #proxyHeader(version: 'v1' | 'v2'): Uint8Array {
    const source = this.clientKey; // normalised: IPv4-mapped addresses as IPv4
    const o = this.origin;
    const destination = o !== null ? o.destinationAddress : clientKey(this.client.socket?.localAddress);
    const family = source === 'unix' ? 'unknown' : source.includes(':') ? 'tcp6' : 'tcp4';
    // A v4 client on a v6 listener address (or the reverse) cannot be expressed: say UNKNOWN.
    const consistent = family !== 'unknown' && (family === 'tcp6') === destination.includes(':');
    const header: ProxiedAddresses = {
      family: consistent ? family : 'unknown',
      sourceAddress: source,
      sourcePort: this.clientPort,
      destinationAddress: destination,
      destinationPort: o !== null ? o.destinationPort : (this.client.socket?.localPort ?? 0),
    };
    return version === 'v1' ? encodeProxyV1(header) : encodeProxyV2(header);
  }

  /**
   * Adapter callback: the connect failed (refused, unreachable, reset during connect). `ours`:
   * it failed for want of our own resources (out of file descriptors), which says nothing about
   * the server: its health and blacklist are left alone and the client is closed cleanly.
   */
  serverConnectFailed(side: Side, error: Error | undefined, ours = false): void {
    if (side !== this.serverSide || this.finished || !this.connecting) return;
    if (ours) {
      (this.connectErrors ??= []).push('out of file descriptors');
      this.owner.resourceFailure?.(this);
      this.close('no-resources', false); // #finish abandons the connect: the server is not judged
      return;
    }
    this.#retry(false, error?.message ?? 'connect failed');
  }

  /** Its connect deadline passed (called by owner.connectDeadlines, the session out of it). */
  connectTimedOut(): void {
    if (!this.connecting || this.finished) return;
    this.#retry(true, 'connect timeout');
  }

  #retry(timedOut: boolean, why: string): void {
    this.#clearConnectTimer();
    this.connecting = false;
    (this.connectErrors ??= []).push(why);
    // The selector adds the server to failedServers.
    const next = this.owner.selector.connectFailed(this, timedOut);
    if (next === null) {
      const refusal = this.refusal;
      this.close(refusal === 'no-server' || refusal === null ? (timedOut ? 'connect-timeout' : 'connect-failed') : refusal, false);
      return;
    }
    this.#connectTo(next);
  }

  #clearConnectTimer(): void {
    this.owner.connectDeadlines.remove(this);
  }

  /**
   * Bytes Fulcrum holds for this connection (both directions), read at report time. A side stops
   * reading at the first byte its peer could not take, so this is at most one read per direction
   * (Bun reads up to 512 KiB at a time); the kernel's socket buffers are not counted here.
   */
  get buffered(): number {
    return (this.client.pending?.length ?? 0) + (this.serverSide.pending?.length ?? 0);
  }

  /** Remember the first thing that ended the connection. */
  noteEnd(reason: TerminationReason): void {
    this.termination ??= reason;
  }

  /** Both sockets closed, or both directions completed: tear down once. */
  maybeFinished(): void {
    if (this.finished) return;
    const c = this.client;
    const s = this.serverSide;
    const clientDone = c.gone || (c.eof && c.shut);
    const serverDone = s.socket === null ? !this.connecting : s.gone || (s.eof && s.shut);
    if (clientDone && serverDone && c.pending === null && s.pending === null) this.#finish();
    else if (c.gone && s.gone) this.#finish();
  }

  /**
   * Ends the connection now. `abort` resets both sides (a reset is passed on as a reset);
   * otherwise both sides get a FIN and are closed.
   */
  close(reason: TerminationReason, abort: boolean): void {
    if (this.finished) return;
    this.noteEnd(reason);
    this.#closeSide(this.client, reason, abort);
    this.#closeSide(this.serverSide, reason, abort);
    this.#finish();
  }

  #closeSide(side: Side, reason: TerminationReason, abort: boolean): void {
    const sock = side.socket;
    if (sock === null || side.gone) return;
    side.gone = true;
    if (abort) sock.terminate();
    // A client refused before it was read may have unread bytes: FIN, then drain to its FIN
    // (not under a flood: short of descriptors, or one address over its limit; then the
    // descriptor is what we need back).
    else if (side === this.client && this.connectedMs === 0 && !closesAtOnce(reason)) Linger.start(sock as StreamSocket<unknown>);
    else sock.end();
  }

  /**
   * The server side ended (FIN, reset or close), or the session ended first: tells the selector
   * once whether the server dropped the connection early — before sending a byte, soon after the
   * connect (within the connect timeout), while the client was still there — for outlier detection.
   */
  serverEnded(): void {
    if (this.#serverJudged || this.connectedMs === 0) return;
    this.#serverJudged = true;
    const early =
      !this.finished &&
      this.serverSide.bytesRead === 0 &&
      !this.client.eof &&
      this.#clock.now() - this.connectedMs <= Math.max(1000, this.owner.connectTimeoutMs);
    this.owner.selector.serverEnded(this, early);
  }

  #finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.#clearConnectTimer();
    this.endMs = this.#clock.now();
    this.termination ??= 'client-closed';
    const sel = this.owner.selector;
    if (this.connecting) {
      this.connecting = false;
      sel.abandoned(this);
    } else if (this.serverSide.socket !== null) {
      this.serverEnded();
      sel.released(this);
    }
    // Close whatever is still open (e.g. a server that kept its write side open).
    endSide(this.client);
    endSide(this.serverSide);
    this.owner.sessionEnded(this);
  }
}

function endSide(side: Side): void {
  if (side.socket !== null && !side.gone) {
    side.gone = true;
    side.socket.end();
  }
}
