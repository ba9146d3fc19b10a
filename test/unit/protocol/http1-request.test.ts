import { describe, expect, test } from 'bun:test';
import { bodyFraming, chunkFrame, framingHeader, LAST_CHUNK, relayableCloseCode, requestTarget } from '../../../src/protocol/http1-request.ts';

const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

describe('the request side of HTTP mode', () => {
  test('the target is the path and query, from an absolute URL or a bare one (HTTP/1.0 without Host)', () => {
    expect(requestTarget('http://a.example:8080/p/q?x=1&y')).toBe('/p/q?x=1&y');
    expect(requestTarget('/old?q=1')).toBe('/old?q=1');
    expect(requestTarget('http://a.example')).toBe('/');
  });

  test('the plain-target shortcut gives exactly what the URL parser gives (dot segments, escapes, odd characters)', () => {
    const viaUrl = (url: string): string => {
      const u = new URL(url);
      return `${u.pathname}${u.search}`;
    };
    const fixed = ['/a/../b', '/a/./b', '/.hidden', '/a/%2e%2e/b', '/a%2Fb', "/q?x='y'", '/p?a b', '/p?"q"', '/p#frag', '/p\\q', '/é', '/a/..', '/a?b/../c', '/x?y=.'];
    for (const t of fixed) expect(requestTarget(`http://h.example${t}`)).toBe(viaUrl(`http://h.example${t}`));
    // A sweep over the characters the shortcut must get right, in random targets.
    const alphabet = "abZ09-_~./?=&,;:@+*!$()%#'\"<>`{}|^[] \u00e9";
    let seed = 7;
    const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    for (let i = 0; i < 5000; i++) {
      let t = '/';
      for (let j = next(12); j > 0; j--) t += alphabet[next(alphabet.length)];
      let url: string;
      try {
        url = new URL(`http://h.example${t}`).href === '' ? '' : `http://h.example${t}`;
      } catch {
        continue;
      }
      expect(requestTarget(url)).toBe(viaUrl(url));
    }
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
