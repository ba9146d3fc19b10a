/**
 * A small request/reply line protocol over TCP or a Unix socket, as pen's control port speaks
 * it: the client connects, sends one command line, the server answers and closes. This file
 * is the server side (control-client-socket.ts is the client): it owns the listening sockets and
 * the defences against clients that do not follow the protocol; what a line means is the
 * LineService's business.
 *
 * Every connection is bounded: at most `maxLineBytes` are buffered before the line ends, the
 * first byte must arrive within `firstByteTimeoutMs` and the line within `timeoutMs` of it, the
 * reply must be taken within `timeoutMs`, and at most `maxConnections` control connections are
 * open at once. Bytes after the first line are discarded. Nothing here can throw into the event
 * loop: a misbehaving client gets an error reply (or, if it stops reading, a reset) and is
 * counted by the service.
 *
 * Idle connections must not lock the operator out, so when all slots are taken a new connection
 * does not get `busy` while some connection is merely waiting: the one that has sent nothing for
 * longest is given up first, else the one quiet for longest that is not running a command. Two
 * intrusive lists ordered by last activity make that O(1) per event (no scan over connections).
 */
import type { Socket, SocketHandler, SocketListener } from 'bun';
import type { Address } from '../core/address.ts';
import type { JunkReason, LineReply, LineService } from '../core/line-service.ts';
import { clampTimerMs, type Clock, type TimerHandle } from '../core/clock.ts';
import { concat } from './bytes.ts';
import { FulcrumError } from '../core/errors.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

export interface LineListenerOptions {
  maxLineBytes: number;
  timeoutMs: number;
  /** Time for the first byte (shorter than `timeoutMs`: a client that sends nothing is idle, not slow). */
  firstByteTimeoutMs: number;
  maxConnections: number;
  /** The time source for the deadlines. */
  clock: Clock;
}

export interface LineListenHandle {
  readonly address: Address;
  /** The bound TCP port (useful with port 0); 0 for Unix sockets. */
  readonly port: number;
  /** Open control connections right now. */
  readonly open: number;
  /** Stops listening (and removes the Unix socket file); open connections finish. */
  stop(): void;
}

/** A doubly linked list threaded through the connections themselves: O(1) append, remove, head. */
class IdleList {
  head: LineConnection | null = null;
  tail: LineConnection | null = null;

  push(c: LineConnection): void {
    c.list = this;
    c.prev = this.tail;
    c.next = null;
    if (this.tail === null) this.head = c;
    else this.tail.next = c;
    this.tail = c;
  }

  remove(c: LineConnection): void {
    if (c.prev === null) this.head = c.next;
    else c.prev.next = c.next;
    if (c.next === null) this.tail = c.prev;
    else c.next.prev = c.prev;
    c.prev = c.next = null;
    c.list = null;
  }
}

interface ListenerState {
  service: LineService;
  options: LineListenerOptions;
  clock: Clock;
  open: number;
  /** Connections that have sent nothing yet, oldest first: given up first when all slots are taken. */
  silent: IdleList;
  /** Connections waiting on their client (line begun, reply going out, or our FIN sent), least recently active first. */
  waiting: IdleList;
}

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Control characters other than tab and CR mean this is not a command line. */
function isBinary(b: number): boolean {
  return (b < 0x20 && b !== 0x09 && b !== 0x0d) || b === 0x7f;
}

/**
 * reading: waiting for the line; running: the service is working on it; writing: the reply is
 * going out; draining: the reply and our FIN are out, and whatever the client still sends is
 * read and dropped until it closes too (closing with unread input would make the kernel send a
 * reset, and the client could lose the reply); closed.
 */
type Phase = 'reading' | 'running' | 'writing' | 'draining' | 'closed';

class LineConnection {
  readonly #socket: Socket<LineConnection>;
  readonly #state: ListenerState;
  readonly #remote: string;
  #phase: Phase = 'reading';
  #buffer: Uint8Array | null = null;
  #out: Uint8Array | null = null;
  #after: (() => void) | undefined;
  #timer: TimerHandle | null = null;
  /** The client has sent its FIN. */
  #peerEnded = false;
  /** Nothing has arrived yet. */
  #silent = true;
  /** Position in one of the listener's idle lists (null while a command runs, or once closed). */
  list: IdleList | null = null;
  prev: LineConnection | null = null;
  next: LineConnection | null = null;

  constructor(socket: Socket<LineConnection>, state: ListenerState) {
    this.#socket = socket;
    this.#state = state;
    this.#remote = socket.remoteAddress ?? '';
    state.open++;
    state.silent.push(this);
    this.#arm(Math.min(state.options.firstByteTimeoutMs, state.options.timeoutMs));
  }

  #arm(ms: number = this.#state.options.timeoutMs): void {
    this.#state.clock.clearTimer(this.#timer);
    this.#timer = this.#state.clock.setTimeout(onConnectionTimeout, clampTimerMs(ms), this);
  }

  /** The client did something: it moves to the end of the waiting list (given up last). */
  #touch(): void {
    if (this.list !== null) this.list.remove(this);
    this.#state.waiting.push(this);
  }

  #unlist(): void {
    if (this.list !== null) this.list.remove(this);
  }

  /** Closed to make room for a new connection; counted as gone at once. */
  evict(): void {
    const remote = this.#remote;
    this.#finish();
    this.#socket.terminate();
    this.#state.service.evicted?.(remote);
  }

  start(): void {
    const refusal = this.#state.service.admit(this.#remote);
    if (refusal !== null) this.#reply({ text: refusal });
  }

  onTimeout(): void {
    this.#timer = null;
    if (this.#phase === 'reading') this.#junk(this.#silent ? 'silent' : 'timeout');
    else if (this.#phase === 'writing' || this.#phase === 'draining') this.#socket.terminate(); // the client stopped reading or never closes
    // 'running': the command is still executing; the timer is re-armed when the reply is ready.
  }

  onData(chunk: Uint8Array): void {
    if (this.#phase === 'closed' || this.#phase === 'running') return;
    this.#touch();
    if (this.#phase !== 'reading') return; // pen reads one line per connection; the rest is dropped
    if (this.#silent) {
      this.#silent = false;
      this.#arm(); // the first byte came: the line has the full time
    }
    const start = this.#buffer === null ? 0 : this.#buffer.length;
    const data = this.#buffer === null ? chunk : concat(this.#buffer, chunk);
    const max = this.#state.options.maxLineBytes;
    for (let i = start; i < data.length; i++) {
      const b = data[i]!;
      if (b === 0x0a) {
        if (i > max) return this.#junk('too-long');
        this.#line(data.subarray(0, i));
        return;
      }
      if (isBinary(b)) return this.#junk('binary');
      if (i >= max) return this.#junk('too-long');
    }
    this.#buffer = data;
  }

  /** FIN from the client. Before a line end, what came is the command (pen handles whatever one read returned). */
  onEnd(): void {
    this.#peerEnded = true;
    if (this.#phase === 'draining') {
      this.#socket.end();
      return;
    }
    if (this.#phase !== 'reading') return;
    const data = this.#buffer;
    if (data === null || data.length === 0) {
      this.#phase = 'draining';
      this.#socket.end();
      return;
    }
    this.#line(data);
  }

  onDrain(): void {
    if (this.#phase === 'writing') {
      this.#touch();
      this.#flush();
    }
  }

  onClose(): void {
    if (this.#phase === 'closed') return;
    this.#finish();
  }

  #finish(): void {
    const wasOpen = this.#phase !== 'closed';
    this.#phase = 'closed';
    this.#unlist();
    this.#state.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#buffer = null;
    this.#out = null;
    if (wasOpen) this.#state.open--;
    const after = this.#after;
    this.#after = undefined;
    if (after !== undefined) after();
  }

  #line(bytes: Uint8Array): void {
    this.#buffer = null;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    let text: string;
    try {
      text = strictUtf8.decode(bytes.subarray(0, end));
    } catch {
      this.#junk('binary');
      return;
    }
    this.#phase = 'running';
    this.#unlist(); // a running command is never given up
    this.#state.service.request(text, this.#remote).then(
      (reply) => this.#reply(reply),
      (e: unknown) => this.#reply({ text: `error: ${(e as Error)?.message ?? String(e)}\n` }),
    );
  }

  #junk(reason: JunkReason): void {
    this.#buffer = null;
    let text: string;
    try {
      text = this.#state.service.junk(reason, this.#remote);
    } catch {
      text = 'error: protocol error\n';
    }
    this.#reply({ text });
  }

  #reply(reply: LineReply): void {
    if (this.#phase === 'closed') {
      reply.after?.();
      return;
    }
    this.#after = reply.after;
    this.#phase = 'writing';
    this.#touch();
    this.#out = reply.text === '' ? null : encoder.encode(reply.text);
    this.#arm();
    this.#flush();
  }

  #flush(): void {
    const out = this.#out;
    if (out !== null) {
      const n = this.#socket.write(out);
      if (n < 0) {
        this.#socket.terminate();
        return;
      }
      if (n < out.length) {
        this.#out = out.subarray(n);
        return; // wait for drain
      }
      this.#out = null;
    }
    if (this.#peerEnded) {
      this.#phase = 'draining';
      this.#socket.end();
      return;
    }
    this.#phase = 'draining';
    this.#socket.shutdown(); // FIN; keep reading until the client closes
  }
}

function onConnectionTimeout(c: LineConnection): void {
  c.onTimeout();
}

const busyReply = encoder.encode('error: too many control connections, try again\n');

const handlers: SocketHandler<LineConnection> = {
  open(socket) {
    const listener = socket.listener as (SocketListener<unknown> & { data: ListenerState }) | undefined;
    const state = listener?.data;
    // A new socket starts with the listener's data; until it has its own, events must ignore it.
    socket.data = null as unknown as LineConnection;
    if (state === undefined) {
      socket.terminate();
      return;
    }
    if (state.open >= state.options.maxConnections) (state.silent.head ?? state.waiting.head)?.evict();
    if (state.open >= state.options.maxConnections) {
      state.service.busy?.(socket.remoteAddress ?? '');
      socket.write(busyReply);
      socket.end();
      return;
    }
    const c = new LineConnection(socket, state);
    socket.data = c;
    c.start();
  },
  data(socket, chunk) {
    socket.data?.onData(chunk);
  },
  drain(socket) {
    socket.data?.onDrain();
  },
  end(socket) {
    socket.data?.onEnd();
  },
  close(socket) {
    socket.data?.onClose();
  },
  error(socket) {
    socket.data?.onClose();
  },
};

/** Removes a stale Unix socket file (never anything else) so that the path can be bound again. */
function removeStaleSocket(path: string): void {
  let st;
  try {
    st = fs().lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new FulcrumError('E_LISTEN', `${path} exists and is not a socket`);
  fs().unlinkSync(path);
}

export function listenLines(address: Address, service: LineService, options: LineListenerOptions): LineListenHandle {
  const state: ListenerState = { service, options, clock: options.clock, open: 0, silent: new IdleList(), waiting: new IdleList() };
  const data = state as unknown as LineConnection;
  if (address.kind === 'unix') {
    removeStaleSocket(address.path);
    const l = Bun.listen<LineConnection>({ unix: address.path, allowHalfOpen: true, socket: handlers, data });
    return {
      address,
      port: 0,
      get open() {
        return state.open;
      },
      stop: () => {
        l.stop(false);
        try {
          fs().unlinkSync(address.path);
        } catch {
          // already gone
        }
      },
    };
  }
  const l = Bun.listen<LineConnection>({ hostname: address.host, port: address.port, allowHalfOpen: true, exclusive: true, socket: handlers, data });
  return {
    address,
    port: l.port,
    get open() {
      return state.open;
    },
    stop: () => l.stop(false),
  };
}
