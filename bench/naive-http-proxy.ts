/**
 * The HTTP reference row: the simplest HTTP proxy one would write on this runtime's own parts:
 * Bun.serve toward clients (the same front as Fulcrum's HTTP mode) and a pool of keep-alive
 * Bun.connect connections to one server, X-Forwarded-For added. No validation of the server's
 * answer (Content-Length framing only), no routing, stickiness, timeouts, retries or logging.
 * It shows what this design costs on Bun per request, so that Fulcrum's share can be told from
 * the runtime's. Usage: bun bench/naive-http-proxy.ts LISTEN_PORT BACKEND_HOST:BACKEND_PORT POOL
 */
import type { Socket, SocketHandler } from 'bun';

const [listenPort, backend, poolMax] = [Number(process.argv[2]), process.argv[3] ?? '', Number(process.argv[4] ?? 64)];
const colon = backend.lastIndexOf(':');
const backendHost = backend.slice(0, colon);
const backendPort = Number(backend.slice(colon + 1));

/** A connection to the server, and the request it is answering. */
class Conn {
  socket: Socket<Conn> | null = null;
  answer: ((r: Response) => void) | null = null;
  pending: Buffer | null = null;
}

const idle: Conn[] = [];
const waiting: ((c: Conn) => void)[] = [];
let open = 0;

function give(c: Conn): void {
  const w = waiting.shift();
  if (w === undefined) idle.push(c);
  else w(c);
}

const handlers: SocketHandler<Conn> = {
  open(s) {
    s.data.socket = s;
    give(s.data);
  },
  data(s, chunk) {
    const c = s.data;
    const buf = c.pending === null ? chunk : Buffer.concat([c.pending, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    const head = end < 0 ? '' : buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    const length = m === null ? 0 : Number(m[1]);
    if (end < 0 || buf.length < end + 4 + length) {
      c.pending = Buffer.from(buf);
      return;
    }
    c.pending = null;
    const lines = head.split('\r\n');
    const headers: [string, string][] = [];
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]!;
      const k = l.indexOf(':');
      const name = l.slice(0, k);
      if (name.toLowerCase() !== 'content-length') headers.push([name, l.slice(k + 1).trim()]);
    }
    const answer = c.answer!;
    c.answer = null;
    answer(new Response(buf.slice(end + 4, end + 4 + length), { status: Number(lines[0]!.slice(9, 12)), headers }));
    give(c);
  },
  close(s) {
    open--;
    s.data.answer?.(new Response('server closed', { status: 502 }));
  },
  connectError(s) {
    open--;
    s.data.answer?.(new Response('connect failed', { status: 502 }));
  },
};

function connection(): Conn | Promise<Conn> {
  const c = idle.pop();
  if (c !== undefined) return c;
  if (open < poolMax) {
    open++;
    void Bun.connect<Conn>({ hostname: backendHost, port: backendPort, socket: handlers, data: new Conn() });
  }
  return new Promise((r) => waiting.push(r));
}

Bun.serve({
  hostname: '127.0.0.1',
  port: listenPort,
  development: false,
  async fetch(req, server) {
    const ip = server.requestIP(req);
    const got = connection();
    const c = got instanceof Conn ? got : await got;
    const url = req.url;
    let head = `${req.method} ${url.slice(url.indexOf('/', url.indexOf('//') + 2))} HTTP/1.1\r\n`;
    for (const [n, v] of req.headers) head += `${n}: ${v}\r\n`;
    head += `x-forwarded-for: ${ip?.address ?? ''}\r\n\r\n`;
    return new Promise<Response>((r) => {
      c.answer = r;
      c.socket!.write(head);
    });
  },
});
process.on('SIGTERM', () => process.exit(0));
