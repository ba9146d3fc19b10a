/**
 * The backend every balancer forwards to: one Bun listener that answers by the mode byte each
 * connection starts with (see protocol.ts). It runs in the bench's own process, on the load core
 * beside the generator, so a request costs the load core one event loop instead of two
 * processes taking turns.
 *
 * Handlers are shared objects and per-connection state is a small class (no closures per
 * connection or per chunk): the backend has to stay cheaper than any balancer in front of it.
 *
 * It may listen on more ports (`ports`), all counted together: over loopback, a balancer
 * holding more than ~9,000 connections to one address and port slows every new connect() to it
 * (see PER_DESTINATION in idle.ts), so Fulcrum with workers spreads them over several.
 */
import type { Socket, SocketHandler, TCPSocketListener } from 'bun';
import { BULK_CHUNK, BULK_MAX_BYTES, IDLE_ACK, MODE_BULK, MODE_CLOSE, MODE_IDLE, MODE_KEEPALIVE, REQUEST_SIZE, RESPONSE_SIZE } from './protocol.ts';

/** Enough responses for a generous pipeline in one write. */
const RESPONSES = new Uint8Array(RESPONSE_SIZE * 256).fill(0x72); // 'r'
const BULK = new Uint8Array(BULK_CHUNK).fill(0x62); // 'b'

class Conn {
  mode = 0;
  /** Request bytes received and not yet answered (less than one request). */
  partial = 0;
  /** Response bytes owed to the client: kept when its socket would not take them (backpressure). */
  owed = 0;
  streamed = 0;
  idle = false;
  constructor(readonly backend: Backend) {}
}

/** What the listener carries; each accepted socket then gets its own Conn. */
interface ListenerData {
  backend: Backend;
}

export class Backend {
  /** The first listener's port: the one a balancer forwards to unless it is given several. */
  readonly port: number;
  /** Connections currently held in idle mode: how the bench knows idle connections arrived. */
  idleConnections = 0;
  readonly #host: string;
  readonly #listeners: TCPSocketListener<Conn>[] = [];

  constructor(host: string, port = 0) {
    this.#host = host;
    this.port = this.#listen(port);
  }

  /** The ports of `n` listeners, opening more as needed; they stay open until close(). */
  ports(n: number): number[] {
    while (this.#listeners.length < n) this.#listen(0);
    return this.#listeners.slice(0, n).map((l) => l.port);
  }

  close(): void {
    for (const l of this.#listeners) l.stop(true);
  }

  #listen(port: number): number {
    const data: ListenerData = { backend: this };
    const listener = Bun.listen<Conn>({ hostname: this.#host, port, socket: handlers, data: data as unknown as Conn });
    this.#listeners.push(listener);
    return listener.port;
  }
}

const handlers: SocketHandler<Conn> = {
  open(socket) {
    const listener = socket.listener as unknown as { data: ListenerData };
    socket.data = new Conn(listener.data.backend);
    socket.setNoDelay(true);
  },
  data(socket, chunk) {
    const c = socket.data;
    if (c.mode === 0) {
      c.mode = chunk[0] ?? 0;
      if (c.mode === MODE_IDLE) {
        c.idle = true;
        c.backend.idleConnections++;
        socket.write(IDLE_ACK); // lets the holder pace itself on connections that arrived
        return;
      }
      if (c.mode === MODE_BULK) {
        stream(socket, c);
        return;
      }
    }
    if (c.mode === MODE_KEEPALIVE) {
      const total = c.partial + chunk.length;
      c.partial = total % REQUEST_SIZE;
      c.owed += ((total - c.partial) / REQUEST_SIZE) * RESPONSE_SIZE;
      flush(socket, c);
    } else if (c.mode === MODE_CLOSE) {
      c.partial += chunk.length;
      if (c.partial >= REQUEST_SIZE) {
        c.mode = -1; // answered: ignore anything more
        socket.end(RESPONSES, 0, RESPONSE_SIZE);
      }
    }
  },
  drain(socket) {
    const c = socket.data;
    if (c.mode === MODE_BULK) stream(socket, c);
    else flush(socket, c);
  },
  close(socket) {
    const c = socket.data;
    if (c.idle) {
      c.idle = false;
      c.backend.idleConnections--;
    }
  },
};

/** Writes owed responses until done or the socket is full (then drain calls again). */
function flush(socket: Socket<Conn>, c: Conn): void {
  while (c.owed > 0) {
    const n = Math.min(c.owed, RESPONSES.length);
    const written = socket.write(RESPONSES, 0, n);
    if (written <= 0) return;
    c.owed -= written;
    if (written < n) return;
  }
}

/** Streams bulk data until the socket is full; bounded by BULK_MAX_BYTES per connection. */
function stream(socket: Socket<Conn>, c: Conn): void {
  while (c.streamed < BULK_MAX_BYTES) {
    const written = socket.write(BULK);
    if (written <= 0) return;
    c.streamed += written;
    if (written < BULK.length) return;
  }
  socket.end();
}
