/**
 * The reference row: the simplest TCP proxy one would write on Bun.listen / Bun.connect, with
 * nothing but what correctness needs (backpressure by pause/resume, half-close by shutdown).
 * No selection, limits, tracking, timeouts or logging. It shows what the runtime itself costs
 * per connection (system calls, CPU, memory at rest), so that Fulcrum's own share can be told
 * apart from Bun's. Usage: bun bench/naive-proxy.ts LISTEN_PORT BACKEND_HOST:BACKEND_PORT
 */
import type { Socket, SocketHandler } from 'bun';

const [listenPort, backend] = [Number(process.argv[2]), process.argv[3] ?? ''];
const colon = backend.lastIndexOf(':');
const backendHost = backend.slice(0, colon);
const backendPort = Number(backend.slice(colon + 1));

/** One proxied connection: the two sockets, and bytes one could not take yet. */
class Pair {
  client: Socket<Pair> | null = null;
  server: Socket<Pair> | null = null;
  /** Client bytes read before the server connected, or not yet taken by it. */
  toServer: Uint8Array | null = null;
  toClient: Uint8Array | null = null;
  clientEof = false;
  serverEof = false;
}

function other(p: Pair, s: Socket<Pair>): Socket<Pair> | null {
  return s === p.client ? p.server : p.client;
}

/** Writes what it can; keeps the rest and pauses the reader until the writer drains. */
function forward(p: Pair, from: Socket<Pair>, chunk: Uint8Array): void {
  const fromClient = from === p.client;
  const to = other(p, from);
  const held = fromClient ? p.toServer : p.toClient;
  let rest: Uint8Array | null = chunk;
  if (to !== null && held === null) {
    const n = to.write(chunk);
    rest = n >= chunk.length || n < 0 ? null : chunk.subarray(n);
  } else if (held !== null) {
    const joined = new Uint8Array(held.length + chunk.length);
    joined.set(held);
    joined.set(chunk, held.length);
    rest = joined;
  }
  if (fromClient) p.toServer = rest;
  else p.toClient = rest;
  // Before the server connects the first bytes are simply kept (no pause: that costs epoll calls).
  if (rest !== null && to !== null) from.pause();
}

function drained(p: Pair, to: Socket<Pair>): void {
  const toServer = to === p.server;
  const held = toServer ? p.toServer : p.toClient;
  if (held !== null) {
    const n = to.write(held);
    const rest = n >= held.length || n < 0 ? null : held.subarray(n);
    if (toServer) p.toServer = rest;
    else p.toClient = rest;
    if (rest !== null) return;
  }
  const from = other(p, to);
  if (toServer ? p.clientEof : p.serverEof) to.shutdown();
  else from?.resume();
}

function ended(p: Pair, s: Socket<Pair>): void {
  const fromClient = s === p.client;
  if (fromClient) p.clientEof = true;
  else p.serverEof = true;
  const to = other(p, s);
  if (to !== null && (fromClient ? p.toServer : p.toClient) === null) to.shutdown();
  if (p.clientEof && p.serverEof) {
    p.client?.end();
    p.server?.end();
  }
}

function closed(p: Pair, s: Socket<Pair>): void {
  const to = other(p, s);
  if (to !== null && (s === p.client ? p.toServer : p.toClient) === null) to.end();
}

const common = {
  data: (s: Socket<Pair>, chunk: Buffer) => forward(s.data, s, chunk),
  drain: (s: Socket<Pair>) => drained(s.data, s),
  end: (s: Socket<Pair>) => ended(s.data, s),
  close: (s: Socket<Pair>) => closed(s.data, s),
};

const serverSide: SocketHandler<Pair> = {
  ...common,
  open(s) {
    const p = s.data;
    p.server = s;
    drained(p, s); // flush what the client sent meanwhile
  },
  connectError(s) {
    s.data.client?.end();
  },
};

const clientSide: SocketHandler<Pair> = {
  ...common,
  open(s) {
    const p = new Pair();
    p.client = s;
    s.data = p;
    void Bun.connect<Pair>({ hostname: backendHost, port: backendPort, allowHalfOpen: true, socket: serverSide, data: p });
  },
};

const listener = Bun.listen<Pair>({ hostname: '127.0.0.1', port: listenPort, allowHalfOpen: true, socket: clientSide, data: undefined as unknown as Pair });
console.log(`naive proxy listening on ${listener.hostname}:${listener.port}`);
