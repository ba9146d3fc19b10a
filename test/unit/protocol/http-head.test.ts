import { describe, expect, test } from 'bun:test';
import { forwardedLines, HTTP_HEAD_MAX, RequestHeadScanner, UNFRAMED, type HeadScan } from '../../../src/protocol/http-head.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Feeds `text` in pieces of `step` bytes (the same growing buffer), returning the last result. */
function scanInSteps(text: string, step: number): HeadScan {
  const all = bytes(text);
  const scanner = new RequestHeadScanner();
  let r: HeadScan = { kind: 'need-more' };
  for (let n = Math.min(step, all.length); ; n = Math.min(n + step, all.length)) {
    r = scanner.scan(all.subarray(0, n));
    if (r.kind !== 'need-more' || n === all.length) return r;
  }
}

const head = (r: HeadScan) => {
  if (r.kind !== 'head') throw new Error(`expected a head, got ${r.kind}`);
  return r.head;
};

describe('RequestHeadScanner', () => {
  test('a GET: the insertion point is the empty line, no body', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const h = head(scanInSteps(text, text.length));
    expect(h.insertAt).toBe(text.length - 2);
    expect(h.end).toBe(text.length);
    expect(h).toMatchObject({ crlf: true, hasForwardedFor: false, hasForwardedProto: false, body: 0 });
  });

  test('the same answer whatever the split, one byte at a time included', () => {
    const text = 'POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n';
    const whole = head(scanInSteps(text, text.length));
    for (const step of [1, 2, 3, 7, 16]) expect(head(scanInSteps(text, step))).toEqual(whole);
    expect(whole.body).toBe(12);
  });

  test('an incomplete head asks for more', () => {
    expect(scanInSteps('GET / HT', 100).kind).toBe('need-more');
    expect(scanInSteps('GET / HTTP/1.1\r\nHost: a\r\n', 100).kind).toBe('need-more');
  });

  test('existing X-Forwarded-For / -Proto are noticed, in any case', () => {
    const h = head(scanInSteps('GET / HTTP/1.0\r\nx-forwarded-FOR: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n', 5));
    expect(h.hasForwardedFor).toBe(true);
    expect(h.hasForwardedProto).toBe(true);
    expect(forwardedLines(h, '10.0.0.1', 'http')).toBe('');
  });

  test('a bare-LF head keeps its line ending', () => {
    const h = head(scanInSteps('GET / HTTP/1.0\nHost: a\n\n', 3));
    expect(h.crlf).toBe(false);
    expect(forwardedLines(h, '10.0.0.1', 'http')).toBe('X-Forwarded-Proto: http\nX-Forwarded-For: 10.0.0.1\n');
  });

  test('bodies we cannot count end the job: chunked, upgrades, CONNECT, bad or conflicting lengths', () => {
    for (const text of [
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n',
      'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n',
      'POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n',
      'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    ]) expect(head(scanInSteps(text, 4)).body).toBe(UNFRAMED);
    expect(head(scanInSteps('POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n', 4)).body).toBe(3);
  });

  test('not HTTP: decided from the first byte that cannot belong to a request line', () => {
    for (const text of ['\x16\x03\x01\x02\x00', 'SSH-2.0-OpenSSH_9.6\r\n', 'HELO mail\r\n', 'GET /\r\n', 'GET / FTP/1.0\r\n', 'GET  / HTTP/1.1\r\n', 'GET / HTTP/1.1\r\n bad fold\r\n\r\n']) {
      expect(scanInSteps(text, 1).kind).toBe('not-http');
    }
    expect(scanInSteps('\x00', 1).kind).toBe('not-http');
  });

  test('a head longer than HTTP_HEAD_MAX is not waited for', () => {
    const long = `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(HTTP_HEAD_MAX)}\r\n\r\n`;
    expect(scanInSteps(long, 4096).kind).toBe('not-http');
    const justFits = `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(HTTP_HEAD_MAX - 30)}\r\n\r\n`;
    expect(scanInSteps(justFits, 4096).kind).toBe('head');
  });

  test('reset(offset) scans the next request of the same buffer', () => {
    const text = 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nX-Forwarded-For: z\r\n\r\n';
    const all = bytes(text);
    const s = new RequestHeadScanner();
    const first = head(s.scan(all));
    s.reset(first.end);
    const second = head(s.scan(all));
    expect(second.end).toBe(all.length);
    expect(second.hasForwardedFor).toBe(true);
  });
});
