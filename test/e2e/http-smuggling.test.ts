/**
 * Request smuggling refused in HTTP mode (docs/http.md, "Smuggling"): each ambiguous request
 * (test/fixtures/http/smuggling-requests.ts) is answered with 400 (505 for a version other than
 * 1.0 and 1.1) and never reaches the server,
 * and each ambiguous response from a server becomes 502 without its head reaching the client.
 * Raw sockets both ways; the backend records every byte it receives. "Never reached" is checked
 * without waiting: after each bad request a good one follows through the same pooled connection,
 * and the backend must have seen only the good ones, in order.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import type { TCPSocketListener } from 'bun';
import { connect, freePort, Harness } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';
import { SMUGGLING_REQUESTS } from '../fixtures/http/smuggling-requests.ts';

setDefaultTimeout(60_000);

/** A backend that records what it receives; a request for /bad/<name> is answered with RESPONSES[name]. */
function recordingBackend(): { port: number; received: () => string; stop: () => void } {
  let received = '';
  const l: TCPSocketListener<{ buf: string }> = Bun.listen<{ buf: string }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: '' };
      },
      data(s, d) {
        const text = d.toString('latin1');
        received += text;
        s.data.buf += text;
        for (;;) {
          const end = s.data.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const line = s.data.buf.slice(0, s.data.buf.indexOf('\r\n'));
          s.data.buf = s.data.buf.slice(end + 4);
          const path = line.split(' ')[1] ?? '/';
          const bad = path.startsWith('/bad/') ? RESPONSES[path.slice(5)] : undefined;
          if (bad !== undefined) {
            s.end(bad);
            return;
          }
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
        }
      },
    },
  });
  return { port: l.port, received: () => received, stop: () => l.stop(true) };
}

const OK_HEAD = 'HTTP/1.1 200 OK\r\nX-Leak: yes\r\n';
/** Ambiguous responses: none of them may reach the client (the X-Leak header tells). */
const RESPONSES: Record<string, string> = {
  'two-lengths': `${OK_HEAD}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
  'length-and-chunked': `${OK_HEAD}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'te-not-chunked-last': `${OK_HEAD}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
  'chunked-twice': `${OK_HEAD}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'obs-fold': `${OK_HEAD}X-A: b\r\n c\r\nContent-Length: 0\r\n\r\n`,
  'space-before-colon': `${OK_HEAD}Content-Length : 0\r\n\r\n`,
  nul: `${OK_HEAD}X-A: b\0c\r\nContent-Length: 0\r\n\r\n`,
  'bare-cr': `${OK_HEAD}X-A: b\rc\r\nContent-Length: 0\r\n\r\n`,
  'bad-status-line': 'HTTP/1.1 2000 OK\r\nX-Leak: yes\r\nContent-Length: 0\r\n\r\n',
};


describe('HTTP mode refuses request smuggling', () => {
  const h = new Harness();
  afterAll(() => h.close());
  let port = 0;
  let backend: ReturnType<typeof recordingBackend>;

  async function start(): Promise<void> {
    if (port !== 0) return;
    backend = recordingBackend();
    h.defer(() => backend.stop());
    const path = join(tempDir(h), 'fulcrum.yaml');
    port = freePort();
    writeYaml(path, { groups: { web: { servers: [`127.0.0.1:${backend.port}`], blacklist: 0 } }, listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http', pool: { max_per_server: 1 } }] });
    await h.startFulcrum(['--config', path], { port: [port] });
  }

  /** Sends `raw` on a fresh connection and returns the status line's code (0 if closed without one). */
  async function send(raw: string): Promise<{ status: number; head: string }> {
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write(raw);
    let head = '';
    try {
      head = await c.readUntil('\r\n\r\n');
    } catch {
      // closed without an answer
    }
    await c.close();
    return { status: Number(head.split(' ')[1] ?? 0), head };
  }

  let good = 0;
  /** A good request through the same pooled connection: the backend must see it right after the previous good one. */
  async function goodRequest(): Promise<void> {
    const path = `/good${good++}`;
    const r = await send(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    expect(r.status).toBe(200);
    const lines = backend.received().split('\r\n').filter((l) => /^[A-Z(]+ \S+ HTTP/.test(l) || /^[A-Z(]+ \S+$/.test(l));
    expect(lines).toEqual(Array.from({ length: good }, (_, i) => `GET /good${i} HTTP/1.1`));
    // The request as the server got it, byte for byte: the client's head, then the forwarding fields.
    expect(backend.received().endsWith(`GET ${path} HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nforwarded: for=127.0.0.1;proto=http;host="a"\r\n\r\n`)).toBe(true);
  }

  for (const [name, raw, status] of SMUGGLING_REQUESTS) {
    test(`${name}: ${status}, never forwarded`, async () => {
      await start();
      const r = await send(raw);
      expect(r.status).toBe(status);
      await goodRequest();
    });
  }

  for (const name of Object.keys(RESPONSES)) {
    test(`a response with ${name}: 502, its head not forwarded`, async () => {
      await start();
      const r = await send(`GET /bad/${name} HTTP/1.1\r\nHost: a\r\n\r\n`);
      expect(r.status).toBe(502);
      expect(r.head.toLowerCase()).not.toContain('x-leak');
    });
  }

  test('a bad chunk size in a response cuts the response short (the client does not get a complete answer)', async () => {
    await start();
    RESPONSES['bad-chunk'] = `${OK_HEAD}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nsmuggled\r\n0\r\n\r\n`;
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET /bad/bad-chunk HTTP/1.1\r\nHost: a\r\n\r\n');
    const kind = await c.closed;
    expect(c.peek().toString()).not.toContain('smuggled');
    expect(c.peek().toString()).not.toMatch(/\r\n0\r\n\r\n$/); // no last chunk: the client sees a truncated body
    expect(kind).not.toBe('timeout');
  });
});
