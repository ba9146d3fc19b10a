/**
 * A second HTTP reference row: the same naive proxy as naive-http-proxy.ts, but with the
 * client side on Bun.listen and a head splitter instead of Bun.serve (no validation at all: not a
 * design to ship, a measure of what the client side could cost with a parser of our own on raw
 * sockets). One request at a time per client connection; Content-Length framing only; the
 * server's response is relayed as it comes. Usage: bun bench/naive-http-raw.ts LISTEN_PORT
 * BACKEND_HOST:BACKEND_PORT POOL
 */
import type { Socket, SocketHandler } from 'bun';

const [listenPort, backend, poolMax] = [Number(process.argv[2]), process.argv[3] ?? '', Number(process.argv[4] ?? 64)];
const colon = backend.lastIndexOf(':');
const backendHost = backend.slice(0, colon);
const backendPort = Number(backend.slice(colon + 1));
const HEAD_END = Buffer.from('\r\n\r\n');

class Client {
  socket: Socket<Client> | null = null;
  pending: Buffer | null = null;
}
class Conn {
  socket: Socket<Conn> | null = null;
  client: Client | null = null;
  /** Response bytes still to relay after the head (Content-Length), or -1 while reading a head. */
  remaining = -1;
  head: Buffer | null = null;
}

const idle: Conn[] = [];
const waiting: [Client, Buffer][] = [];
let open = 0;

function send(c: Conn, client: Client, head: Buffer): void {
  c.client = client;
  c.remaining = -1;
  c.socket!.write(head);
}

function take(client: Client, head: Buffer): void {
  const c = idle.pop();
  if (c !== undefined) return send(c, client, head);
  waiting.push([client, head]);
  if (open < poolMax) {
    open++;
    void Bun.connect<Conn>({ hostname: backendHost, port: backendPort, socket: serverSide, data: new Conn() });
  }
}

function free(c: Conn): void {
  c.client = null;
  const w = waiting.shift();
  if (w === undefined) idle.push(c);
  else send(c, w[0], w[1]);
}

const clientSide: SocketHandler<Client> = {
  open(s) {
    s.data = new Client();
    s.data.socket = s;
  },
  data(s, chunk) {
    const cl = s.data;
    const buf = cl.pending === null ? chunk : Buffer.concat([cl.pending, chunk]);
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      cl.pending = Buffer.from(buf);
      return;
    }
    cl.pending = null;
    // The request line and fields, then our X-Forwarded-For, then the blank line.
    const head = Buffer.concat([buf.subarray(0, end + 2), Buffer.from(`x-forwarded-for: ${s.remoteAddress}\r\n\r\n`)]);
    take(cl, head);
  },
};

const serverSide: SocketHandler<Conn> = {
  open(s) {
    s.data.socket = s;
    free(s.data);
  },
  data(s, chunk) {
    const c = s.data;
    const client = c.client!;
    if (c.remaining < 0) {
      const buf = c.head === null ? chunk : Buffer.concat([c.head, chunk]);
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        c.head = Buffer.from(buf);
        return;
      }
      c.head = null;
      const m = /\r\ncontent-length: *(\d+)/i.exec(buf.toString('latin1', 0, end));
      c.remaining = (m === null ? 0 : Number(m[1])) - (buf.length - end - 4);
      client.socket!.write(buf);
    } else {
      c.remaining -= chunk.length;
      client.socket!.write(chunk);
    }
    if (c.remaining <= 0) free(c);
  },
  close() {
    open--;
  },
};

Bun.listen<Client>({ hostname: '127.0.0.1', port: listenPort, socket: clientSide });
process.on('SIGTERM', () => process.exit(0));
