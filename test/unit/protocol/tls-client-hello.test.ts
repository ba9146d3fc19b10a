import { describe, expect, test } from 'bun:test';
import { DEFAULT_MAX_HELLO_BYTES, parseClientHello, tlsVersionName, type ClientHelloResult } from '../../../src/protocol/tls-client-hello.ts';

/** A ClientHello captured from `openssl s_client -servername api.Example.COM. -alpn h2,http/1.1` (OpenSSL 3.0). */
const OPENSSL_HELLO = Buffer.from(
  '160301014f0100014b030337733290034460a93c40c54171c6ffdd58b2405bf1c8fe49ab2d12309baaaff82017fceffc82358c47fcb3bf5aaa1cd15ab627ae' +
    '5f4795107677c81816a4df27ef003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c01300' +
    '33009d009c003d003c0035002f00ff010000c40000001500130000106170692e4578616d706c652e434f4d2e000b000403000102000a0016001400' +
    '1d0017001e0019001801000101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a00280403050306' +
    '03080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d0002010100330026002400' +
    '1d00205a861e4ddf6985c031627817b8ddf8ba4c39a8d2099461bd194c58cfa945146c',
  'hex',
);

const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const u24 = (n: number): number[] => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

function extension(type: number, data: number[]): number[] {
  return [...u16(type), ...u16(data.length), ...data];
}

function sniExtension(...names: string[]): number[] {
  const entries = names.flatMap((n) => [0, ...u16(n.length), ...ascii(n)]);
  return extension(0, [...u16(entries.length), ...entries]);
}

function alpnExtension(...protocols: string[]): number[] {
  const list = protocols.flatMap((p) => [p.length, ...ascii(p)]);
  return extension(16, [...u16(list.length), ...list]);
}

function versionsExtension(...versions: number[]): number[] {
  const list = versions.flatMap(u16);
  return extension(43, [list.length, ...list]);
}

/** A ClientHello handshake message (type + length + body) with the given extensions. */
function handshake(extensions: number[][] | null, opts: { sessionId?: number; legacy?: number } = {}): number[] {
  const body = [
    ...u16(opts.legacy ?? 0x0303),
    ...new Array<number>(32).fill(7), // random
    opts.sessionId ?? 0, ...new Array<number>(opts.sessionId ?? 0).fill(1),
    ...u16(4), 0x13, 0x01, 0xc0, 0x2f, // two cipher suites
    1, 0, // null compression
  ];
  if (extensions !== null) {
    const all = extensions.flat();
    body.push(...u16(all.length), ...all);
  }
  return [1, ...u24(body.length), ...body];
}

/** Wraps handshake bytes in TLS records, cutting them at the given offsets. */
function records(hs: number[], cuts: number[] = []): Uint8Array {
  const out: number[] = [];
  let from = 0;
  for (const to of [...cuts, hs.length]) {
    const part = hs.slice(from, to);
    out.push(0x16, 3, 1, ...u16(part.length), ...part);
    from = to;
  }
  return new Uint8Array(out);
}

function parsed(r: ClientHelloResult) {
  if (r.kind !== 'parsed') throw new Error(`expected parsed, got ${JSON.stringify(r)}`);
  return r.hello;
}

/** Every proper prefix needs more; the whole parses; what follows the hello is left alone. */
function expectEverySplit(bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) {
    const r = parseClientHello(bytes.subarray(0, i));
    if (r.kind !== 'need-more') throw new Error(`prefix of ${i}/${bytes.length} bytes: ${JSON.stringify(r)}`);
  }
  const whole = parsed(parseClientHello(bytes));
  const withData = Buffer.concat([bytes, Buffer.from('\x17\x03\x03\x00\x05hello')]);
  expect(parsed(parseClientHello(withData))).toEqual(whole);
  expect(whole.length).toBe(bytes.length);
}

describe('ClientHello reader', () => {
  test('a real OpenSSL ClientHello: SNI lower-cased without its trailing dot, ALPN in order, TLS 1.3 offered', () => {
    const hello = parsed(parseClientHello(OPENSSL_HELLO));
    expect(hello).toEqual({ serverName: 'api.example.com', alpn: ['h2', 'http/1.1'], maxVersion: 0x0304, length: OPENSSL_HELLO.length });
    expect(tlsVersionName(hello.maxVersion)).toBe('TLSv1.3');
  });

  test('every split point of the real ClientHello needs more, then parses', () => {
    expectEverySplit(new Uint8Array(OPENSSL_HELLO));
  });

  test('a ClientHello spread over several records, at every split point', () => {
    const hs = handshake([sniExtension('a.example.com'), alpnExtension('h2')]);
    for (const cuts of [[1], [3], [4], [10], [hs.length - 1], [2, 30, 60]]) {
      const bytes = records(hs, cuts);
      expectEverySplit(bytes);
      expect(parsed(parseClientHello(bytes))).toMatchObject({ serverName: 'a.example.com', alpn: ['h2'] });
    }
  });

  test('no server name, no ALPN, and no extensions at all are all valid', () => {
    expect(parsed(parseClientHello(records(handshake([alpnExtension('http/1.1')]))))).toMatchObject({ serverName: null, alpn: ['http/1.1'] });
    expect(parsed(parseClientHello(records(handshake([]))))).toMatchObject({ serverName: null, alpn: [], maxVersion: 0x0303 });
    expect(parsed(parseClientHello(records(handshake(null, { sessionId: 32 }))))).toMatchObject({ serverName: null, alpn: [] });
  });

  test('the first host_name counts; GREASE versions are ignored', () => {
    const hs = handshake([sniExtension('first.example', 'second.example'), versionsExtension(0x1a1a, 0x0304, 0x0303)]);
    expect(parsed(parseClientHello(records(hs)))).toMatchObject({ serverName: 'first.example', maxVersion: 0x0304 });
  });

  test('plain text, SSLv2 and other record types are told apart', () => {
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ kind: 'invalid', reason: 'not-tls' });
    expect(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]))).toMatchObject({ kind: 'invalid', reason: 'sslv2' });
    expect(parseClientHello(Buffer.from([0x17, 3, 3, 0, 1, 0]))).toMatchObject({ kind: 'invalid', reason: 'not-tls' });
    expect(parseClientHello(Buffer.from([0x16, 2, 0, 0, 1, 0]))).toMatchObject({ kind: 'invalid', reason: 'not-tls' });
    // A handshake record that is not a ClientHello (a ServerHello, type 2).
    const hs = handshake([]);
    hs[0] = 2;
    expect(parseClientHello(records(hs))).toMatchObject({ kind: 'invalid', reason: 'malformed' });
  });

  test('nothing beyond the bound is awaited', () => {
    const big = handshake([sniExtension('x.example'), extension(0xfe00, new Array<number>(3000).fill(0))]);
    const bytes = records(big);
    expect(parseClientHello(bytes.subarray(0, 5), 1000)).toMatchObject({ kind: 'invalid', reason: 'too-large' });
    expect(parseClientHello(bytes, 1000)).toMatchObject({ kind: 'invalid', reason: 'too-large' });
    expect(parsed(parseClientHello(bytes, 4000))).toMatchObject({ serverName: 'x.example' });
    // A record longer than TLS allows is malformed, whatever the bound.
    expect(parseClientHello(Buffer.from([0x16, 3, 1, 0x40, 0x01]), 1e6)).toMatchObject({ kind: 'invalid', reason: 'malformed' });
    // Continuation records make the hello too large too.
    expect(parseClientHello(records(big, [100, 200, 300]), 250)).toMatchObject({ kind: 'invalid', reason: 'too-large' });
    expect(DEFAULT_MAX_HELLO_BYTES).toBeGreaterThanOrEqual(16_384);
  });

  test('broken lengths and names are malformed, never a crash', () => {
    const cases: number[][] = [
      handshake([[0, 0, 0, 5, 0, 3, 0, 0, 9]]), // server_name entry longer than its list
      handshake([sniExtension('')]),
      handshake([sniExtension('bad\x00name')]),
      handshake([sniExtension('has space')]),
      handshake([alpnExtension('h2', '')]),
      handshake([sniExtension('a.example'), sniExtension('b.example')]), // duplicate extension
      handshake([extension(43, [3, 3, 4, 3])]), // odd supported_versions
      handshake([], { legacy: 0x0200 }),
    ];
    for (const hs of cases) expect(parseClientHello(records(hs))).toMatchObject({ kind: 'invalid', reason: 'malformed' });
    // A handshake length that overruns what the records hold, once they end.
    const hs = handshake([sniExtension('a.example')]);
    const truncated = hs.slice(0, 60);
    expect(parseClientHello(records(truncated))).toEqual({ kind: 'need-more' });
  });

  test('fuzz: mutated and random inputs never throw, and a prefix never contradicts the whole', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const bases = [new Uint8Array(OPENSSL_HELLO), records(handshake([sniExtension('a.b.c'), alpnExtension('h2', 'x')]), [7, 40])];
    for (let round = 0; round < 3000; round++) {
      const base = bases[round % bases.length]!;
      const input = new Uint8Array(base);
      const flips = 1 + rand(4);
      for (let k = 0; k < flips; k++) input[rand(input.length)] = rand(256);
      const cut = rand(input.length + 1);
      const whole = input.subarray(0, cut);
      const r = parseClientHello(whole);
      expect(['need-more', 'parsed', 'invalid']).toContain(r.kind);
      // Monotonic: a final answer on a prefix is the same answer on more bytes.
      const prefix = parseClientHello(whole.subarray(0, rand(cut + 1)));
      if (prefix.kind === 'parsed') expect(r).toEqual(prefix);
      if (prefix.kind === 'invalid') expect(r.kind === 'invalid' && r.reason).toBe(prefix.reason);
    }
    for (let round = 0; round < 2000; round++) {
      const input = new Uint8Array(rand(64));
      for (let i = 0; i < input.length; i++) input[i] = rand(256);
      if (round % 2 === 0 && input.length > 0) input[0] = 0x16;
      expect(() => parseClientHello(input)).not.toThrow();
    }
  });
});
