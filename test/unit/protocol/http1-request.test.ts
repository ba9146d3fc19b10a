import { describe, expect, test } from 'bun:test';
import { bodyFraming, chunkFrame, framingHeader, LAST_CHUNK, relayableCloseCode, requestTarget } from '../../../src/protocol/http1-request.ts';

const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

describe('the request side of HTTP mode', () => {
  test('the target is the path and query, from an absolute URL or a bare one (HTTP/1.0 without Host)', () => {
    expect(requestTarget('http://a.example:8080/p/q?x=1&y')).toBe('/p/q?x=1&y');
    expect(requestTarget('/old?q=1')).toBe('/old?q=1');
    expect(requestTarget('http://a.example')).toBe('/');
  });

  test('a body keeps its Content-Length, is chunked without one, and POST without a body says 0', () => {
    expect(bodyFraming('POST', true, '22')).toEqual({ kind: 'length', length: 22 });
    expect(bodyFraming('POST', true, null)).toEqual({ kind: 'chunked' });
    expect(bodyFraming('POST', false, null)).toEqual({ kind: 'length', length: 0 });
    expect(bodyFraming('GET', false, null)).toEqual({ kind: 'none' });
    expect(framingHeader({ kind: 'chunked' })).toBe('transfer-encoding: chunked');
    expect(framingHeader({ kind: 'length', length: 5 })).toBe('content-length: 5');
    expect(framingHeader({ kind: 'none' })).toBeNull();
  });

  test('chunks are framed with their size in hex, and the body ends with the last chunk', () => {
    expect(text(chunkFrame(new TextEncoder().encode('hello, world!!!!!')))).toBe('11\r\nhello, world!!!!!\r\n');
    expect(text(LAST_CHUNK)).toBe('0\r\n\r\n');
  });

  test('WebSocket close codes that may not be sent are dropped, the others relayed', () => {
    expect([1000, 1001, 1011, 3000, 4999].map(relayableCloseCode)).toEqual([1000, 1001, 1011, 3000, 4999]);
    expect([1004, 1005, 1006, 1015, 999, 2000, 5000].map(relayableCloseCode)).toEqual([null, null, null, null, null, null, null]);
  });
});
