import { describe, expect, test } from 'bun:test';
import { chunkFrame, LAST_CHUNK, requestTarget } from '../../../src/protocol/http1-request.ts';

const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

describe('the request side of HTTP mode', () => {
  test('the target is the path and query, from an absolute-form target or an origin-form one', () => {
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
    // Origin-form targets as a client sends them: the same path, and '//x' stays a path, not a host.
    for (const t of [...fixed, '//evil.example/x', '/a//b/../c']) expect(requestTarget(t)).toBe(viaUrl(`http://h.example${t}`));
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
      expect(requestTarget(t)).toBe(viaUrl(url));
    }
  });

  test('chunks are framed with their size in hex, and the body ends with the last chunk', () => {
    expect(text(chunkFrame(new TextEncoder().encode('hello, world!!!!!')))).toBe('11\r\nhello, world!!!!!\r\n');
    expect(text(LAST_CHUNK)).toBe('0\r\n\r\n');
  });

});
