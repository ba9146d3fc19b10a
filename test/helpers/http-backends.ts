/**
 * HTTP/1.1 test backends for HTTP mode's tests: a keep-alive server over Bun.listen that answers
 * each request with JSON naming itself, the request line and the headers it got, and counts the
 * connections it accepted (the pool's bound is checked there). `mode: 'reset'` drops the
 * connection on each request instead of answering (a server failing before its response);
 * `mode: 'hold'` reads requests and never answers (a server too slow for the response timeout).
 */
import type { Socket, TCPSocketListener } from 'bun';

export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface HttpBackend {
  name: string;
  port: number;
  address: string;
  /** Connections accepted so far, and open now. */
  accepted: number;
  open: number;
  /** The most connections open at once. */
  peak: number;
  requests: SeenRequest[];
  close(): void;
}

interface ConnState {
  buf: string;
}

export function httpBackend(name: string, o: { mode?: 'answer' | 'reset' | 'hold' } = {}): HttpBackend {
  const b: HttpBackend = { name, port: 0, address: '', accepted: 0, open: 0, peak: 0, requests: [], close: () => listener.stop(true) };
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: '' };
        b.accepted++;
        b.open++;
        b.peak = Math.max(b.peak, b.open);
      },
      data(s, d) {
        s.data.buf += d.toString('latin1');
        serve(s);
      },
      close() {
        b.open--;
      },
    },
  });
  function serve(s: Socket<ConnState>): void {
    for (;;) {
      const t = s.data.buf;
      const end = t.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = t.slice(0, end).split('\r\n');
      const [method, path] = lines[0]!.split(' ');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      const len = Number(headers['content-length'] ?? 0);
      if (t.length < end + 4 + len) return;
      const body = t.slice(end + 4, end + 4 + len);
      s.data.buf = t.slice(end + 4 + len);
      const seen = { method: method!, path: path!, headers, body };
      b.requests.push(seen);
      if (o.mode === 'reset') {
        s.terminate();
        return;
      }
      if (o.mode === 'hold') continue;
      const json = JSON.stringify({ server: name, ...seen });
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: keep-alive\r\n\r\n${json}`);
    }
  }
  b.port = listener.port;
  b.address = `127.0.0.1:${listener.port}`;
  return b;
}
