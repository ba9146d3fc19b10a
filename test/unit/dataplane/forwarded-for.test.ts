import { expect, test } from 'bun:test';
import { ForwardedFor } from '../../../src/dataplane/forwarded-for.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('latin1');

/** Runs pieces through one connection's -H, returning what the server gets for each piece. */
function through(pieces: string[], proto: 'http' | 'https' = 'http'): { out: string[]; done: boolean } {
  const f = new ForwardedFor('192.0.2.7', proto);
  const out = pieces.map((p) => (f.done ? p : dec.decode(f.rewrite(enc.encode(p)))));
  return { out, done: f.done };
}

const ADDED = 'X-Forwarded-Proto: http\r\nX-Forwarded-For: 192.0.2.7\r\n';

test('the lines go before the empty line, after the client\'s own (where pen puts them)', () => {
  expect(through(['GET / HTTP/1.1\r\nHost: a\r\n\r\n']).out).toEqual([`GET / HTTP/1.1\r\nHost: a\r\n${ADDED}\r\n`]);
  expect(through(['GET / HTTP/1.1\r\n\r\n'], 'https').out[0]).toContain('X-Forwarded-Proto: https\r\n');
});

test('a split head is held until complete, then sent whole', () => {
  expect(through(['GET / HT', 'TP/1.1\r\nHost: a\r\n', '\r\n']).out).toEqual(['', '', `GET / HTTP/1.1\r\nHost: a\r\n${ADDED}\r\n`]);
});

test('every request of a keep-alive connection, pipelined or not; bodies pass unread', () => {
  const body = 'GET / HTTP/1.1\r\n\r\n'; // a body that looks like a request is still a body
  const post = `POST /p HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`;
  const r = through([post + body.slice(0, 5), body.slice(5) + 'GET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n']);
  const withAdded = (h: string) => h.replace(/\r\n\r\n$/, `\r\n${ADDED}\r\n`);
  expect(r.out.join('')).toBe(withAdded(post) + body + withAdded('GET /2 HTTP/1.1\r\n\r\n') + withAdded('GET /3 HTTP/1.1\r\n\r\n'));
  expect(r.done).toBe(false);
});

test('an existing X-Forwarded-For is kept and not added to (pen)', () => {
  const text = 'GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n';
  expect(through([text]).out[0]).toBe('GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: http\r\n\r\n');
});

test('not HTTP: passed as it is and the job ends at once', () => {
  const r = through(['\x16\x03\x01hello', 'GET / HTTP/1.1\r\n\r\n']);
  expect(r.out).toEqual(['\x16\x03\x01hello', 'GET / HTTP/1.1\r\n\r\n']);
  expect(r.done).toBe(true);
});

test('after an upgrade the job ends: the tunnel is not looked at', () => {
  const r = through(['GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x01\x05hello']);
  expect(r.out[0]).toEndWith(`${ADDED}\r\n\x01\x05hello`);
  expect(r.done).toBe(true);
});

test('flush gives back a held partial head as it is', () => {
  const f = new ForwardedFor('192.0.2.7', 'http');
  expect(f.rewrite(enc.encode('GET / HTTP/1.1\r\nHo')).length).toBe(0);
  expect(dec.decode(f.flush()!)).toBe('GET / HTTP/1.1\r\nHo');
  expect(f.done).toBe(true);
});
