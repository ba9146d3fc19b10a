/** The backend response parser: each framing, interim answers, and the ambiguities it refuses. */
import { expect, test } from 'bun:test';
import { ResponseParser, type ResponseHead, type ResponseSink } from '../../../src/protocol/http1-response.ts';

class Collect implements ResponseSink {
  heads: ResponseHead[] = [];
  body = '';
  ends: boolean[] = [];
  responseHead(h: ResponseHead): void {
    this.heads.push(h);
  }
  responseBody(c: Uint8Array): void {
    this.body += Buffer.from(c).toString('latin1');
  }
  responseEnd(k: boolean): void {
    this.ends.push(k);
  }
}

/** Feeds `text` one byte at a time and whole, and expects the same outcome both ways. */
function run(text: string, method = 'GET', eof = false): { c: Collect; error: string | null } {
  const results = [1, text.length].map((step) => {
    const c = new Collect();
    const p = new ResponseParser(c);
    p.expect(method);
    let error: string | null = null;
    const bytes = Buffer.from(text, 'latin1');
    for (let i = 0; i < bytes.length && error === null; i += step) error = p.feed(bytes.subarray(i, i + step));
    if (eof && error === null) error = p.eof();
    return { c, error };
  });
  expect(results[0]!.c.body).toBe(results[1]!.c.body);
  expect(results[0]!.error).toBe(results[1]!.error);
  return results[1]!;
}

test('Content-Length', () => {
  const { c, error } = run('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello');
  expect(error).toBeNull();
  expect(c.heads[0]!.status).toBe(200);
  expect(c.heads[0]!.headers).toContainEqual(['X-A', 'b']);
  expect(c.body).toBe('hello');
  expect(c.ends).toEqual([true]);
});

test('chunked, with extensions and trailers', () => {
  const { c, error } = run('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n');
  expect(error).toBeNull();
  expect(c.heads[0]!.framing).toBe('chunked');
  expect(c.body).toBe('hello world');
  expect(c.ends).toEqual([true]);
});

test('close-delimited: ends at EOF and the connection is not reused', () => {
  const { c, error } = run('HTTP/1.1 200 OK\r\n\r\nall of it', 'GET', true);
  expect(error).toBeNull();
  expect(c.body).toBe('all of it');
  expect(c.ends).toEqual([false]);
});

test('HEAD, 204 and 304 have no body; Connection: close and HTTP/1.0 are not reused', () => {
  expect(run('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'HEAD').c.ends).toEqual([true]);
  expect(run('HTTP/1.1 204 No Content\r\n\r\n').c.ends).toEqual([true]);
  expect(run('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').c.ends).toEqual([false]);
  expect(run('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').c.ends).toEqual([false]);
  expect(run('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').c.ends).toEqual([true]);
});

test('100 Continue is skipped', () => {
  const { c } = run('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
  expect(c.heads.map((h) => h.status)).toEqual([201]);
  expect(c.body).toBe('ok');
});

test('ambiguities are errors', () => {
  expect(run('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n').error).toContain('Content-Length');
  expect(run('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n').error).toContain('both');
  expect(run('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n').error).toContain('chunk size');
  expect(run('HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n').error).toContain('obs-fold');
  expect(run('HTTP/1.1 2000 OK\r\n\r\n').error).toContain('status line');
  expect(run('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab').error).toContain('no response was expected');
  expect(run('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab', 'GET', true).error).toContain('middle');
  expect(run('', 'GET', true).error).toContain('before answering');
});
