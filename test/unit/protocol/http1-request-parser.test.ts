/**
 * The client request parser: each rule of its request line, fields, framing and chunked bodies,
 * and the smuggling cases of test/e2e/http-smuggling.test.ts. Every case is fed whole, split at
 * each byte boundary, and a byte at a time, and must come out the same every way.
 */
import { describe, expect, test } from 'bun:test';
import { DEFAULT_MAX_FIELDS, RequestParser, type RequestError, type RequestHead, type RequestLimits, type RequestSink } from '../../../src/protocol/http1-request-parser.ts';
import { SMUGGLING_REQUESTS } from '../../fixtures/http/smuggling-requests.ts';

const LIMITS: RequestLimits = { maxHeadBytes: 8192, maxBodyBytes: 1 << 20 };

/** Records the events, and checks their order: a head, body chunks (never empty), an end. */
class Recorder implements RequestSink {
  heads: RequestHead[] = [];
  bodies: string[] = [];
  ends = 0;
  requestHead(h: RequestHead): void {
    expect(this.heads.length).toBe(this.ends);
    // `raw` is valid only during this call (a view of the caller's buffer): kept as a copy.
    this.heads.push({ ...h, raw: Uint8Array.from(h.raw) });
    this.bodies.push('');
  }
  requestBody(c: Uint8Array): void {
    expect(this.heads.length).toBe(this.ends + 1);
    expect(c.length).toBeGreaterThan(0);
    this.bodies[this.bodies.length - 1] += Buffer.from(c).toString('latin1');
  }
  requestEnd(): void {
    expect(this.heads.length).toBe(this.ends + 1);
    this.ends++;
  }
}

interface Outcome {
  heads: RequestHead[];
  bodies: string[];
  ends: number;
  error: RequestError | null;
  /** Bytes consumed in all, and the parser's state once all was fed. */
  consumed: number;
  idle: boolean;
  inBody: boolean;
  eof: string | null;
}

/**
 * Feeds `bytes` in pieces cut at `cuts`, each piece copied after 3 junk bytes into a scratch
 * buffer (fed from `at` = 3) that is overwritten once feed returns: what the parser keeps must be
 * its own copy. A complete request is followed by next() and the rest of the piece.
 */
function feed(bytes: Uint8Array, cuts: number[], limits: RequestLimits): Outcome {
  const r = new Recorder();
  const p = new RequestParser(r, { ...limits });
  let consumed = 0;
  const bounds = [0, ...cuts, bytes.length];
  pieces: for (let k = 0; k + 1 < bounds.length; k++) {
    const scratch = new Uint8Array(3 + bounds[k + 1]! - bounds[k]!).fill(0xee);
    scratch.set(bytes.subarray(bounds[k]!, bounds[k + 1]!), 3);
    for (let at = 3; at < scratch.length; ) {
      const n = p.feed(scratch, at);
      if (n < 0) {
        expect(p.feed(scratch, at)).toBe(-1);
        break pieces;
      }
      consumed += n - at;
      if (!p.complete) {
        expect(n).toBe(scratch.length);
        break;
      }
      expect(p.feed(scratch, n)).toBe(n); // nothing more until next()
      p.next();
      at = n;
    }
    scratch.fill(0xee);
  }
  // What was consumed before an error depends on the split (a feed that fails consumes nothing).
  return { heads: r.heads, bodies: r.bodies, ends: r.ends, error: p.error, consumed: p.error === null ? consumed : -1, idle: p.idle, inBody: p.inBody, eof: p.eof() };
}

/** The outcome of `text`, the same whole, split in two anywhere, and a byte at a time. */
function run(text: string, limits: RequestLimits = LIMITS): Outcome {
  const bytes = Buffer.from(text, 'latin1');
  const whole = feed(bytes, [], limits);
  for (let i = 1; i < bytes.length; i++) expect(feed(bytes, [i], limits)).toEqual(whole);
  expect(feed(bytes, Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1), limits)).toEqual(whole);
  return whole;
}

/** A valid request: its one head (and the outcome). */
function ok(text: string, limits?: RequestLimits): RequestHead {
  const o = run(text, limits);
  expect(o.error).toBeNull();
  expect(o.heads.length).toBeGreaterThan(0);
  return o.heads[0]!;
}

/** A refused request: its status and reason. */
function bad(text: string, status: number, reason?: string, limits?: RequestLimits): void {
  const o = run(text, limits);
  expect(o.error?.status).toBe(status);
  if (reason !== undefined) expect(o.error!.reason).toContain(reason);
  expect(o.error!.reason.length).toBeLessThan(120);
}

const H = 'Host: a\r\n';

describe('request line', () => {
  test('method, target and version as received', () => {
    const h = ok(`GET /a?b=c HTTP/1.1\r\n${H}\r\n`);
    expect([h.method, h.target, h.minor]).toEqual(['GET', '/a?b=c', 1]);
    expect(ok(`GET / HTTP/1.0\r\n\r\n`).minor).toBe(0);
    expect(ok(`!#$%&'*+-.^_\`|~09azAZ / HTTP/1.1\r\n${H}\r\n`).method).toBe("!#$%&'*+-.^_`|~09azAZ");
    expect(ok(`get / HTTP/1.1\r\n${H}\r\n`).method).toBe('get');
    // The head as received, byte for byte, and its field lines as text, however it was split.
    const raw = `GET /r HTTP/1.1\r\n${H}X-Case: Kept\r\n\r\n`;
    const r = ok(raw);
    expect(Buffer.from(r.raw).toString('latin1')).toBe(raw);
    expect(r.fields).toBe(`${H}X-Case: Kept\r\n`);
  });

  test('a method that is not a token: 400', () => {
    for (const m of ['G(T', 'GE@T', '"GET"', 'G,T', 'GÉT', 'G\x01T', 'G\x7fT']) bad(`${m} / HTTP/1.1\r\n${H}\r\n`, 400, 'method');
    bad(` GET / HTTP/1.1\r\n${H}\r\n`, 400);
    bad(`GET\r\n${H}\r\n`, 400);
  });

  test('exactly one space between the parts: 400', () => {
    bad(`GET  / HTTP/1.1\r\n${H}\r\n`, 400, 'two spaces');
    bad(`GET /  HTTP/1.1\r\n${H}\r\n`, 400);
    bad(`GET / HTTP/1.1 \r\n${H}\r\n`, 400);
    bad(`GET / \r\n${H}\r\n`, 400);
    bad(`GET\t/ HTTP/1.1\r\n${H}\r\n`, 400);
    bad(`GET /\tHTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('a target with a control character, a space or a byte over 0x7E: 400', () => {
    for (const t of ['/a\x00', '/a\x01b', '/\x7f', '/\x80', '/é', '/\xff']) bad(`GET ${t} HTTP/1.1\r\n${H}\r\n`, 400, 'target');
    bad(`GET / x HTTP/1.1\r\n${H}\r\n`, 400);
  });

  test('a version other than HTTP/1.1 or 1.0, or none (HTTP/0.9): 505', () => {
    for (const v of ['HTTP/1.2', 'HTTP/2.0', 'HTXP/1.1', 'http/1.1', 'HTTP/1.10', 'HTTP/1', 'HTTP/01.1', 'FOO']) bad(`GET / ${v}\r\n${H}\r\n`, 505, 'version');
    bad('GET /\r\n\r\n', 505, 'HTTP/0.9');
    // An HTTP/2 client's connection preface (a client that negotiated h2 by ALPN, or speaks it in clear).
    bad('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505);
    bad(`GET /\r\n${H}\r\n`, 505);
  });

  test('CONNECT: 501', () => {
    bad(`CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n`, 501, 'CONNECT');
  });

  test('target forms: origin, absolute http(s), * only with OPTIONS; anything else 400', () => {
    expect(ok(`GET http://a/b HTTP/1.1\r\n${H}\r\n`).target).toBe('http://a/b');
    expect(ok(`GET HTTPS://a HTTP/1.1\r\n${H}\r\n`).target).toBe('HTTPS://a');
    expect(ok(`OPTIONS * HTTP/1.1\r\n${H}\r\n`).target).toBe('*');
    bad(`GET * HTTP/1.1\r\n${H}\r\n`, 400, 'OPTIONS');
    for (const t of ['foo', 'a:443', 'http://', 'http:///x', 'ftp://a/', '**', 'http:/a']) bad(`GET ${t} HTTP/1.1\r\n${H}\r\n`, 400, 'target');
  });
});

describe('line endings', () => {
  test('a bare LF anywhere in the head: 400', () => {
    bad(`GET / HTTP/1.1\n${H}\r\n`, 400, 'bare LF');
    bad(`GET / HTTP/1.1\r\nHost: a\n\r\n`, 400, 'bare LF');
    bad(`GET / HTTP/1.1\r\n${H}\n`, 400, 'bare LF');
    bad(`GET / HTTP/1.1\n\n`, 400, 'bare LF');
    bad(`GET / HTTP/1.1\r\n${H}X: a\nb\r\n\r\n`, 400, 'bare LF');
    bad(`\nGET / HTTP/1.1\r\n${H}\r\n`, 400, 'bare LF');
  });

  test('a bare CR anywhere in the head: 400', () => {
    bad(`GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`, 400, 'bare CR');
    bad(`GET / HTTP/1.1\r\n${H}X-A: b\r\r\n\r\n`, 400);
    bad(`GET / HTTP/1.1\r\n${H}X\rA: b\r\n\r\n`, 400);
    bad(`GET /\r HTTP/1.1\r\n${H}\r\n`, 400);
    bad(`GET / HTTP/1.1\r\r\n${H}\r\n`, 400);
    bad(`GET / HTTP/1.1\r\n${H}\r\r\n\r\n`, 400);
    bad(`\rGET / HTTP/1.1\r\n${H}\r\n`, 400, 'bare CR');
  });

  test('up to 8 empty lines before the request line are skipped, and leave the parser idle', () => {
    expect(ok(`${'\r\n'.repeat(8)}GET / HTTP/1.1\r\n${H}\r\n`).target).toBe('/');
    bad(`${'\r\n'.repeat(9)}GET / HTTP/1.1\r\n${H}\r\n`, 400, 'empty lines');
    const o = run('\r\n\r\n');
    expect([o.idle, o.eof, o.consumed, o.error]).toEqual([true, null, 4, null]);
    // Between pipelined requests too, and they count afresh for each.
    expect(run(`GET /1 HTTP/1.1\r\n${H}\r\n${'\r\n'.repeat(8)}GET /2 HTTP/1.1\r\n${H}\r\n`).heads.map((h) => h.target)).toEqual(['/1', '/2']);
  });
});

describe('fields', () => {
  test('names as received, values trimmed of spaces and tabs, in order', () => {
    const h = ok(`GET / HTTP/1.1\r\nhOsT: a\r\nX-A:  \t b \t c\t \r\nX-Empty:\r\nX-B:x\r\nX-A: 2\r\n\r\n`);
    expect(h.headers).toEqual([['hOsT', 'a'], ['X-A', 'b \t c'], ['X-Empty', ''], ['X-B', 'x'], ['X-A', '2']]);
    expect(h.host).toBe('a');
  });

  test('obs-text and tabs are allowed in a value; NUL, other CTLs and DEL are not', () => {
    expect(ok(`GET / HTTP/1.1\r\n${H}X: caf\xe9\tb\xff\r\n\r\n`).headers[1]).toEqual(['X', 'caf\xe9\tb\xff']);
    for (const c of ['\x00', '\x01', '\x0b', '\x1f', '\x7f']) bad(`GET / HTTP/1.1\r\n${H}X: a${c}b\r\n\r\n`, 400, 'control character');
  });

  test('a name that is not a token, or no colon: 400', () => {
    for (const l of ['X-A : b', 'X A: b', 'X-A\t: b', ': b', 'no colon', 'X(A): b', 'X\xe9: b', 'X\x00: b']) bad(`GET / HTTP/1.1\r\n${H}${l}\r\n\r\n`, 400, 'field line');
  });

  test('obs-fold (a line starting with a space or a tab): 400', () => {
    bad(`GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, 400, 'obs-fold');
    bad(`GET / HTTP/1.1\r\n${H}X-A: b\r\n\tc\r\n\r\n`, 400, 'obs-fold');
    bad(`GET / HTTP/1.1\r\n Host: a\r\n\r\n`, 400, 'obs-fold');
  });

  test('more than maxFields fields: 431 (default 100)', () => {
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X${i}: ${i}\r\n`).join('');
    const l3 = { ...LIMITS, maxFields: 3 };
    expect(ok(`GET / HTTP/1.1\r\n${H}${fields(2)}\r\n`, l3).headers.length).toBe(3);
    bad(`GET / HTTP/1.1\r\n${H}${fields(3)}\r\n`, 431, 'header fields', l3);
    expect(DEFAULT_MAX_FIELDS).toBe(100);
    expect(ok(`GET / HTTP/1.1\r\n${H}${fields(99)}\r\n`).headers.length).toBe(100);
    bad(`GET / HTTP/1.1\r\n${H}${fields(100)}\r\n`, 431);
  });

  test('a head over maxHeadBytes: 431, as soon as the buffered part is over it', () => {
    const head = `GET / HTTP/1.1\r\n${H}X: ${'a'.repeat(20)}\r\n\r\n`;
    expect(ok(head, { ...LIMITS, maxHeadBytes: head.length }).target).toBe('/');
    bad(head, 431, 'head over', { ...LIMITS, maxHeadBytes: head.length - 1 });
    // Without its end: refused once one byte over the limit has arrived.
    const endless = `GET / HTTP/1.1\r\n${H}X: ${'a'.repeat(60)}`;
    bad(endless, 431, 'head over', { ...LIMITS, maxHeadBytes: 50 });
    const o = run(endless.slice(0, 50), { ...LIMITS, maxHeadBytes: 50 });
    expect([o.error, o.idle, o.eof]).toEqual([null, false, 'the client closed the connection in the middle of a request']);
    // A bare LF within the limit is still the reason, whichever comes first.
    bad(`GET / HTTP/1.1\nX: ${'a'.repeat(60)}`, 400, 'bare LF', { ...LIMITS, maxHeadBytes: 50 });
    bad(`GET / HTTP/1.1\r\nX: ${'a'.repeat(60)}\n\r\n`, 431, 'head over', { ...LIMITS, maxHeadBytes: 50 });
  });
});

describe('Host', () => {
  test('exactly one in HTTP/1.1', () => {
    bad('GET / HTTP/1.1\r\n\r\n', 400, 'no Host');
    bad('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, 'two Host');
    bad('GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 400, 'two Host');
    expect(ok('GET / HTTP/1.1\r\nHost: a.b:8080\r\n\r\n').host).toBe('a.b:8080');
    expect(ok('GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n').host).toBe('[::1]:80');
    expect(ok('GET / HTTP/1.1\r\nHost:\r\n\r\n').host).toBe('');
  });

  test('at most one in HTTP/1.0', () => {
    expect(ok('GET / HTTP/1.0\r\n\r\n').host).toBeNull();
    expect(ok('GET / HTTP/1.0\r\nHost: a\r\n\r\n').host).toBe('a');
    bad('GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n', 400, 'two Host');
  });

  test('whitespace, a slash, an @ or a comma in the value: 400', () => {
    for (const v of ['a b', 'a\tb', 'a/b', 'u@a', 'a,b', 'a, a']) bad(`GET / HTTP/1.1\r\nHost: ${v}\r\n\r\n`, 400, 'bad Host');
  });
});

describe('Content-Length', () => {
  test('1 to 15 digits; 0 means no body', () => {
    const h = ok(`POST / HTTP/1.1\r\n${H}Content-Length:  3 \r\n\r\nabc`);
    expect([h.framing, h.length]).toEqual(['length', 3]);
    expect(ok(`POST / HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`).framing).toBe('none');
    expect(ok(`POST / HTTP/1.1\r\n${H}Content-Length: 000\r\n\r\n`).framing).toBe('none');
    for (const v of ['', '+3', '-1', '3 3', '3,3', '3, 4', '0x3', '3a', '1e3', '1234567890123456', '３']) bad(`POST / HTTP/1.1\r\n${H}Content-Length: ${v}\r\n\r\n`, 400, 'Content-Length');
  });

  test('several: the same value is accepted, any difference is 400', () => {
    expect(ok(`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\ncontent-length: 03\r\n\r\nabc`).length).toBe(3);
    bad(`POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400, 'different');
  });

  test('over maxBodyBytes: 413 at the head', () => {
    const l = { ...LIMITS, maxBodyBytes: 10 };
    expect(ok(`POST / HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n0123456789`, l).length).toBe(10);
    bad(`POST / HTTP/1.1\r\n${H}Content-Length: 11\r\n\r\n`, 413, 'over the 10-byte limit', l);
    bad(`POST / HTTP/1.1\r\n${H}Content-Length: 999999999999999\r\n\r\n`, 413);
  });

  test('the body is exactly that many bytes; what follows is the next request', () => {
    const o = run(`POST /1 HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\n${H}\r\n`);
    expect(o.heads.map((h) => h.target)).toEqual(['/1', '/2']);
    expect(o.bodies).toEqual(['hello', '']);
    expect(o.ends).toBe(2);
  });
});

describe('Transfer-Encoding', () => {
  test('exactly one field, exactly chunked (any case)', () => {
    expect(ok(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`).framing).toBe('chunked');
    expect(ok(`POST / HTTP/1.1\r\n${H}transfer-encoding: \tChUnKeD \r\n\r\n0\r\n\r\n`).framing).toBe('chunked');
    for (const v of ['gzip, chunked', 'chunked, gzip', 'identity', '', 'chunked,', 'chunked;q=1', 'chunked chunked']) bad(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: ${v}\r\n\r\n0\r\n\r\n`, 400, 'Transfer-Encoding');
    bad(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'two Transfer-Encoding');
  });

  test('in HTTP/1.0, or with Content-Length (either order): 400', () => {
    bad('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'HTTP/1.0');
    bad(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`, 400, 'both');
    bad(`POST / HTTP/1.1\r\n${H}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'both');
  });
});

describe('framing, Connection, Upgrade, Expect', () => {
  test('no Content-Length nor Transfer-Encoding: no body, whatever the method', () => {
    for (const m of ['GET', 'HEAD', 'DELETE', 'POST', 'PUT']) {
      const o = run(`${m} / HTTP/1.1\r\n${H}\r\n`);
      expect([o.heads[0]!.framing, o.heads[0]!.length, o.ends, o.bodies]).toEqual(['none', 0, 1, ['']]);
    }
  });

  test('keepAlive: HTTP/1.1 unless close, HTTP/1.0 only with keep-alive', () => {
    const ka = (v: string, l: string): boolean => ok(`GET / HTTP/1.${v}\r\n${H}${l}\r\n`).keepAlive;
    expect(ka('1', '')).toBe(true);
    expect(ka('1', 'Connection: close\r\n')).toBe(false);
    expect(ka('1', 'Connection: foo, CLOSE\r\n')).toBe(false);
    expect(ka('1', 'Connection: foo\r\nconnection: Close\r\n')).toBe(false);
    expect(ka('1', 'Connection: closed\r\n')).toBe(true);
    expect(ka('0', '')).toBe(false);
    expect(ka('0', 'Connection: Keep-Alive\r\n')).toBe(true);
    expect(ka('0', 'Connection: x,keep-alive ,y\r\n')).toBe(true);
    expect(ka('0', 'Connection: keep-alive, close\r\n')).toBe(false);
  });

  test('upgrade: the Upgrade value when Connection names upgrade', () => {
    const up = (l: string, v = '1'): string | null => ok(`GET / HTTP/1.${v}\r\n${H}${l}\r\n`).upgrade;
    expect(up('Connection: Upgrade\r\nUpgrade: websocket\r\n')).toBe('websocket');
    expect(up('Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n')).toBe('websocket');
    expect(up('Upgrade: websocket\r\n')).toBeNull();
    expect(up('Connection: upgrade\r\n')).toBeNull();
    expect(up('Connection: upgrade\r\nUpgrade:\r\n')).toBeNull();
    expect(up('Connection: upgrade\r\nUpgrade: a\r\nUpgrade: b\r\n')).toBe('a, b');
    expect(up('Connection: upgrade\r\nUpgrade: websocket\r\n', '0')).toBeNull();
  });

  test('expectContinue: Expect: 100-continue in any case (HTTP/1.1)', () => {
    const ex = (l: string, v = '1'): boolean => ok(`POST / HTTP/1.${v}\r\n${H}${l}Content-Length: 1\r\n\r\nx`).expectContinue;
    expect(ex('Expect: 100-continue\r\n')).toBe(true);
    expect(ex('expect: 100-Continue\r\n')).toBe(true);
    expect(ex('')).toBe(false);
    expect(ex('Expect: 100-continued\r\n')).toBe(false);
    expect(ex('Expect: 100-continue\r\n', '0')).toBe(false);
  });
});

describe('chunked body', () => {
  const C = `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`;

  test('de-chunked, with extensions, upper-case hex and leading zeros up to 8 digits', () => {
    const o = run(`${C}5\r\nhello\r\n6;a=b ; c="d e"\t\r\n world\r\nA ;x\r\n0123456789\r\n00000001\r\n!\r\n0;end\r\n\r\n`);
    expect(o.error).toBeNull();
    expect([o.bodies, o.ends, o.idle]).toEqual([['hello world0123456789!'], 1, true]);
  });

  test('chunk sizes: hex junk, a sign, 0x, whitespace, more than 8 digits, no digits: 400', () => {
    for (const s of ['zz', '-3', '+3', '0x3', ' 3', '\t3', '', ';a', '3 ', '3\t', '3 x']) bad(`${C}${s}\r\nabc\r\n0\r\n\r\n`, 400, 'chunk size');
    bad(`${C}000000003\r\nabc\r\n0\r\n\r\n`, 400, 'chunk size too large');
    bad(`${C}10000000000000003\r\nabc\r\n0\r\n\r\n`, 400, 'chunk size too large');
  });

  test('a bare LF or CR, or a control character, in a chunk-size line: 400', () => {
    bad(`${C}3\nabc\r\n0\r\n\r\n`, 400, 'bare LF');
    bad(`${C}3;a\nabc\r\n0\r\n\r\n`, 400, 'bare LF');
    bad(`${C}3\rabc\r\n0\r\n\r\n`, 400, 'bare CR');
    bad(`${C}3;a\x00\r\nabc\r\n0\r\n\r\n`, 400, 'control character');
    bad(`${C}3;a\x7f\r\nabc\r\n0\r\n\r\n`, 400, 'control character');
    bad(`${C}3;${'a'.repeat(5000)}\r\nabc\r\n0\r\n\r\n`.slice(0, 5200), 400, 'chunk-size line over');
  });

  test('chunk data not followed by exactly CRLF: 400', () => {
    bad(`${C}3\r\nabcX\r\n0\r\n\r\n`, 400, 'longer than its size');
    bad(`${C}3\r\nabc\rX0\r\n\r\n`, 400, 'longer than its size');
    bad(`${C}3\r\nabc\n0\r\n\r\n`, 400, 'longer than its size');
  });

  test('trailers: checked like fields, not reported, within maxHeadBytes', () => {
    const o = run(`${C}1\r\nx\r\n0\r\nX-T: 1\r\nX-U:\tv \r\n\r\n`);
    expect([o.error, o.bodies, o.ends, o.heads[0]!.headers.length]).toEqual([null, ['x'], 1, 2]);
    bad(`${C}0\r\nX-T: 1\r\n folded\r\n\r\n`, 400, 'obs-fold');
    bad(`${C}0\r\nX-T : 1\r\n\r\n`, 400, 'field line');
    bad(`${C}0\r\nX-T: a\x00b\r\n\r\n`, 400, 'control character');
    bad(`${C}0\r\nX-T: 1\n\r\n`, 400, 'bare LF');
    bad(`${C}0\r\n\n`, 400, 'bare LF');
    bad(`${C}0\r\nX-T: a\rb\r\n\r\n`, 400, 'bare CR');
    // The head just fits; trailers (with their empty line) up to the same size, then 431.
    const l = { ...LIMITS, maxHeadBytes: C.length };
    const fits = `X-T: ${'a'.repeat(C.length - 9)}\r\n\r\n`;
    expect(run(`${C}0\r\n${fits}`, l).error).toBeNull();
    bad(`${C}0\r\nX${fits}`, 431, 'trailer', l);
    bad(`${C}0\r\nX${fits.slice(0, -4)}aaaa`, 431, 'trailer', l);
  });

  test('chunk data over maxBodyBytes: 413 when a size line takes it over', () => {
    const l = { ...LIMITS, maxBodyBytes: 10 };
    expect(run(`${C}5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n`, l).error).toBeNull();
    const o = run(`${C}5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n`, l);
    expect(o.error?.status).toBe(413);
    expect(o.bodies).toEqual(['hello']);
  });

  test('then the next request', () => {
    const o = run(`${C}3\r\nabc\r\n0\r\n\r\nGET /2 HTTP/1.1\r\n${H}\r\n`);
    expect([o.heads.map((h) => h.target), o.bodies, o.ends]).toEqual([['/', '/2'], ['abc', ''], 2]);
  });
});

describe('feed, next, error, eof', () => {
  const GET = `GET / HTTP/1.1\r\n${H}\r\n`;

  test('stops after a request: the rest is not consumed until next()', () => {
    const r = new Recorder();
    const p = new RequestParser(r, LIMITS);
    const bytes = Buffer.from(`POST / HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nok${GET}`, 'latin1');
    const n = p.feed(bytes);
    expect(n).toBe(bytes.length - GET.length);
    expect([p.complete, p.idle, p.inBody, r.ends]).toEqual([true, false, false, 1]);
    expect(p.feed(bytes, n)).toBe(n);
    expect(r.heads.length).toBe(1);
    p.next();
    expect([p.complete, p.idle]).toEqual([false, true]);
    expect(p.feed(bytes, n)).toBe(bytes.length);
    expect(r.heads.map((h) => h.method)).toEqual(['POST', 'GET']);
  });

  test('a sink that calls next() inside requestEnd does not make feed go on', () => {
    const p: RequestParser = new RequestParser({ requestHead() {}, requestBody() {}, requestEnd: () => p.next() }, LIMITS);
    expect(p.feed(Buffer.from(GET + GET))).toBe(GET.length);
  });

  test('after an error feed returns -1 and the error stays', () => {
    const p = new RequestParser(new Recorder(), LIMITS);
    expect(p.feed(Buffer.from('G(T / HTTP/1.1\r\n\r\n'))).toBe(-1);
    expect(p.feed(Buffer.from(GET))).toBe(-1);
    expect(p.error?.status).toBe(400);
    p.next();
    expect(p.feed(Buffer.from(GET))).toBe(-1);
  });

  test('states and eof() through a request', () => {
    const p = new RequestParser(new Recorder(), LIMITS);
    const state = (): unknown => [p.idle, p.inBody, p.complete, p.eof()];
    const cut = 'the client closed the connection in the middle of a request';
    expect(state()).toEqual([true, false, false, null]);
    p.feed(Buffer.from('\r\n'));
    expect(state()).toEqual([true, false, false, null]);
    p.feed(Buffer.from('POST / HTTP/1.1\r\n'));
    expect(state()).toEqual([false, false, false, cut]);
    p.feed(Buffer.from(`${H}Content-Length: 2\r\n\r\no`));
    expect(state()).toEqual([false, true, false, cut]);
    p.feed(Buffer.from('k'));
    expect(state()).toEqual([false, false, true, null]);
    p.next();
    expect(state()).toEqual([true, false, false, null]);
    p.feed(Buffer.from('x\n'));
    expect(p.eof()).toContain('malformed');
  });

  test('limits changed between requests apply to the next one', () => {
    const p = new RequestParser(new Recorder(), LIMITS);
    expect(p.feed(Buffer.from(GET))).toBe(GET.length);
    p.next();
    p.limits = { ...LIMITS, maxHeadBytes: 10 };
    expect(p.feed(Buffer.from(GET))).toBe(-1);
    expect(p.error?.status).toBe(431);
  });

  test('a Uint8Array that is not a Buffer, and a Buffer fed from an offset', () => {
    const p = new RequestParser(new Recorder(), LIMITS);
    expect(p.feed(new TextEncoder().encode(GET))).toBe(GET.length);
    p.next();
    expect(p.feed(Buffer.from(`junk${GET}`), 4)).toBe(GET.length + 4);
  });
});

describe('the smuggling cases of test/e2e/http-smuggling.test.ts', () => {
  for (const [name, raw, status] of SMUGGLING_REQUESTS) test(`${name}: ${status}`, () => bad(raw, status));
});
