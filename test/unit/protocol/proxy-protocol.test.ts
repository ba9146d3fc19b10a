import { describe, expect, test } from 'bun:test';
import { decodeProxyHeader, encodeProxyV1, encodeProxyV2, type ProxiedAddresses } from '../../../src/protocol/proxy-protocol.ts';
import { seededRandom } from '../../../src/core/clock.ts';

const v4: ProxiedAddresses = { family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '10.0.0.2', destinationPort: 443 };
const v6: ProxiedAddresses = { family: 'tcp6', sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '::ffff:10.0.0.1', destinationPort: 65535 };

describe('round trips', () => {
  for (const [name, enc] of [['v1', encodeProxyV1], ['v2', encodeProxyV2]] as const) {
    test(`${name}: IPv4 and IPv6 decode to what was encoded`, () => {
      for (const a of [v4, v6]) {
        const bytes = enc(a);
        const r = decodeProxyHeader(bytes);
        expect(r.kind).toBe('parsed');
        if (r.kind !== 'parsed') return;
        expect(r.length).toBe(bytes.length);
        expect(r.header.family).toBe(a.family);
        expect(r.header.sourcePort).toBe(a.sourcePort);
        expect(r.header.destinationPort).toBe(a.destinationPort);
        expect(r.header.sourceAddress).toBe(a.family === 'tcp6' && name === 'v2' ? '2001:db8::1' : a.sourceAddress);
      }
    });
  }

  test('the spec example line', () => {
    const line = new TextEncoder().encode('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n');
    const r = decodeProxyHeader(line);
    expect(r).toEqual({ kind: 'parsed', version: 1, length: 47, header: { family: 'tcp4', sourceAddress: '192.168.0.1', sourcePort: 56324, destinationAddress: '192.168.0.11', destinationPort: 443 } });
  });

  test('UNKNOWN and LOCAL carry no addresses', () => {
    expect(decodeProxyHeader(new TextEncoder().encode('PROXY UNKNOWN\r\n'))).toMatchObject({ kind: 'parsed', header: { family: 'unknown' } });
    expect(decodeProxyHeader(encodeProxyV2({ ...v4, family: 'local' }))).toMatchObject({ kind: 'parsed', header: { family: 'local' } });
  });
});

describe('every split point', () => {
  for (const [name, bytes] of [['v1', encodeProxyV1(v4)], ['v2', encodeProxyV2(v6)]] as const) {
    test(`${name}: any prefix is need-more, never invalid`, () => {
      for (let i = 0; i < bytes.length; i++) expect(decodeProxyHeader(bytes.subarray(0, i)).kind).toBe('need-more');
      expect(decodeProxyHeader(bytes).kind).toBe('parsed');
    });
  }
});

describe('garbage is refused with a reason, never a throw', () => {
  const cases: [string, string | Uint8Array][] = [
    ['plain HTTP', 'GET / HTTP/1.1\r\n'],
    ['bad protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['bad address', 'PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n'],
    ['v6 address for TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
    ['bad port', 'PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n'],
    ['missing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
    ['too long', 'PROXY TCP4 ' + 'x'.repeat(200)],
    ['control byte', 'PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n'],
  ];
  for (const [name, input] of cases) {
    test(name, () => {
      const r = decodeProxyHeader(typeof input === 'string' ? new TextEncoder().encode(input) : input);
      expect(r.kind).toBe('invalid');
    });
  }

  test('v2 with a bad version, a bad command or a huge length', () => {
    const good = encodeProxyV2(v4);
    const badVersion = Uint8Array.from(good);
    badVersion[12] = 0x11;
    const badCmd = Uint8Array.from(good);
    badCmd[12] = 0x2f;
    const huge = Uint8Array.from(good);
    huge[14] = 0xff;
    for (const b of [badVersion, badCmd, huge]) expect(decodeProxyHeader(b).kind).toBe('invalid');
  });

  test('fuzz: random bytes and random mutations never throw', () => {
    const rnd = seededRandom(99);
    const base = [encodeProxyV1(v4), encodeProxyV2(v4), encodeProxyV2(v6)];
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rnd.next() * 120);
      let buf: Uint8Array;
      if (i % 2 === 0) {
        buf = Uint8Array.from({ length: len }, () => Math.floor(rnd.next() * 256));
      } else {
        buf = Uint8Array.from(base[i % 3]!);
        buf[Math.floor(rnd.next() * buf.length)] = Math.floor(rnd.next() * 256);
      }
      const r = decodeProxyHeader(buf);
      expect(['need-more', 'parsed', 'invalid']).toContain(r.kind);
      if (r.kind === 'parsed') expect(r.length).toBeLessThanOrEqual(buf.length);
    }
  });
});

describe('v2 families and transports the spec does not define are refused', () => {
  const withFamily = (famProto: number, len = 12): Uint8Array => {
    const b = new Uint8Array(16 + len);
    b.set(encodeProxyV2(v4).subarray(0, 12), 0);
    b.set([0x21, famProto, len >> 8, len & 255], 12);
    return b;
  };
  test('family 4+ or transport 3+ is invalid', () => {
    expect(decodeProxyHeader(withFamily(0x41))).toMatchObject({ kind: 'invalid' });
    expect(decodeProxyHeader(withFamily(0x13))).toMatchObject({ kind: 'invalid' });
  });
  test('a Unix block shorter than 216 bytes is invalid; a full one is parsed as unknown', () => {
    expect(decodeProxyHeader(withFamily(0x31, 12))).toMatchObject({ kind: 'invalid' });
    expect(decodeProxyHeader(withFamily(0x31, 216))).toMatchObject({ kind: 'parsed', header: { family: 'unknown' } });
  });
  test('UDP over IPv4 is parsed but carries no TCP addresses', () => {
    expect(decodeProxyHeader(withFamily(0x12))).toMatchObject({ kind: 'parsed', header: { family: 'unknown' } });
  });
  test('IPv4 and IPv6 blocks shorter than their addresses are invalid', () => {
    expect(decodeProxyHeader(withFamily(0x11, 8))).toMatchObject({ kind: 'invalid' });
    expect(decodeProxyHeader(withFamily(0x21, 20))).toMatchObject({ kind: 'invalid' });
  });
  test('TLVs after the addresses are skipped: the length covers them', () => {
    const b = withFamily(0x11, 12 + 7);
    b.set([1, 2, 3, 4, 5, 6, 7, 8], 16);
    b.set([0x01, 0x00, 0x02, 0x68, 0x32], 28); // PP2_TYPE_ALPN "h2"
    const r = decodeProxyHeader(Uint8Array.from([...b, 0x16, 0x03]));
    expect(r).toMatchObject({ kind: 'parsed', length: 35, header: { sourceAddress: '1.2.3.4', destinationAddress: '5.6.7.8' } });
  });
});

describe('more malformed v1 lines', () => {
  const cases: [string, string][] = [
    ['empty after PROXY', 'PROXY \r\n'],
    ['double space', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
    ['leading-zero port', 'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'],
    ['leading-zero octet', 'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n'],
    ['trailing field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'],
    ['lower-case protocol', 'PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['bare LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n' + 'x'.repeat(120)],
    ['v4 address for TCP6', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'],
    ['triple colon v6', 'PROXY TCP6 1:::2 ::1 1 2\r\n'],
    ['IPv4 before ::', 'PROXY TCP6 1.2.3.4:: ::1 1 2\r\n'],
    ['nine groups', 'PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n'],
  ];
  for (const [name, input] of cases) {
    test(name, () => expect(decodeProxyHeader(new TextEncoder().encode(input)).kind).toBe('invalid'));
  }
  test('a prefix of the v2 signature or of "PROXY " is need-more; anything else is refused at once', () => {
    expect(decodeProxyHeader(new TextEncoder().encode('PRO')).kind).toBe('need-more');
    expect(decodeProxyHeader(Uint8Array.of(0x0d, 0x0a, 0x0d)).kind).toBe('need-more');
    expect(decodeProxyHeader(Uint8Array.of(0x16, 0x03, 0x01)).kind).toBe('invalid');
  });
});
