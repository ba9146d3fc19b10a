// The DNS codec for the UDP DNS check (src/protocol/dns.ts): the query's exact bytes, and
// responses that do and do not answer it; malformed input must give a result, never a throw.
import { expect, test } from 'bun:test';
import { buildDnsQuery, parseDnsResponse, type DnsQuestion } from '../../../src/protocol/dns.ts';
import { seededRandom } from '../../../src/core/clock.ts';

const q: DnsQuestion = { id: 0x1234, name: 'example.com', type: 'A' };

function query(question: DnsQuestion = q): Uint8Array {
  const r = buildDnsQuery(question);
  if (r.kind !== 'query') throw new Error(r.reason);
  return r.bytes;
}

/** A response to `question`: the query with QR set, `rcode`, and `answers` A records (compressed names). */
function response(question: DnsQuestion = q, opts: { rcode?: number; answers?: number; flags?: number; id?: number } = {}): Uint8Array {
  const head = Buffer.from(query(question));
  head.writeUInt16BE(opts.id ?? question.id, 0);
  head.writeUInt16BE(opts.flags ?? (0x8180 | (opts.rcode ?? 0)), 2);
  const n = opts.answers ?? 1;
  head.writeUInt16BE(n, 6);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
  return Buffer.concat([head, ...Array.from({ length: n }, () => rr)]);
}

test('the query on the wire: id, RD, one question, QTYPE and class IN', () => {
  expect(Buffer.from(query()).toString('hex')).toBe('123401000001000000000000' + '076578616d706c6503636f6d00' + '00010001');
  const noRd = query({ id: 1, name: 'a.', type: 'TXT', recursionDesired: false });
  expect(Buffer.from(noRd).toString('hex')).toBe('000100000001000000000000' + '016100' + '00100001');
  expect(Buffer.from(query({ id: 0, name: '.', type: 28 })).toString('hex')).toBe('000001000001000000000000' + '00' + '001c0001');
});

test('invalid questions are refused with a reason', () => {
  for (const bad of [
    { ...q, id: 70000 },
    { ...q, name: 'a..b' },
    { ...q, name: 'x'.repeat(64) + '.com' },
    { ...q, name: Array.from({ length: 60 }, () => 'abcd').join('.') },
    { ...q, name: 'bücher.de' },
    { ...q, name: 'a b.com' },
    { ...q, type: 'BOGUS' as 'A' },
    { ...q, type: 65536 },
  ]) {
    expect(buildDnsQuery(bad).kind).toBe('invalid');
  }
});

test('a response to the question: RCODE, answer count, flags', () => {
  expect(parseDnsResponse(response(), q)).toEqual({ kind: 'answer', rcode: 0, rcodeName: 'NOERROR', answers: 1, authoritative: false, truncated: false });
  const nx = parseDnsResponse(response(q, { rcode: 3, answers: 0 }), q);
  expect(nx).toMatchObject({ kind: 'answer', rcodeName: 'NXDOMAIN', answers: 0 });
  expect(parseDnsResponse(response(q, { flags: 0x8780 }), q)).toMatchObject({ authoritative: true, truncated: true });
  expect(parseDnsResponse(response(q, { rcode: 9 }), q)).toMatchObject({ rcodeName: 'RCODE9' });
});

test('names compare without case (0x20 randomisation) and with or without the trailing dot', () => {
  const mixed = { ...q, name: 'ExAmPlE.CoM.' };
  expect(parseDnsResponse(response(mixed), q).kind).toBe('answer');
  expect(parseDnsResponse(response(q), mixed).kind).toBe('answer');
});

test('responses to something else are mismatches', () => {
  expect(parseDnsResponse(query(), q)).toMatchObject({ kind: 'mismatch', reason: expect.stringContaining('QR') });
  expect(parseDnsResponse(response(q, { id: 1 }), q)).toMatchObject({ kind: 'mismatch', reason: expect.stringContaining('id') });
  expect(parseDnsResponse(response({ ...q, name: 'example.org' }), q)).toMatchObject({ kind: 'mismatch' });
  expect(parseDnsResponse(response({ ...q, type: 'AAAA' }), q)).toMatchObject({ kind: 'mismatch', reason: expect.stringContaining('type') });
  expect(parseDnsResponse(response(q, { flags: 0x8000 | (2 << 11) }), q)).toMatchObject({ kind: 'mismatch', reason: expect.stringContaining('opcode') });
});

test('an error response without the question is still read (FORMERR, NOTIMP)', () => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(q.id, 0);
  b.writeUInt16BE(0x8001, 2);
  expect(parseDnsResponse(b, q)).toMatchObject({ kind: 'answer', rcodeName: 'FORMERR' });
});

test('a compressed question name is followed; a pointer loop is invalid', () => {
  // Question name = pointer to itself.
  const loop = Buffer.from('123481800001000000000000c00c00010001', 'hex');
  expect(parseDnsResponse(loop, q)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('loop') });
});

test('every truncation of a valid response, and random bytes, give a result without throwing', () => {
  const full = response(q, { answers: 2 });
  for (let n = 0; n < full.length; n++) {
    const r = parseDnsResponse(full.subarray(0, n), q);
    expect(['invalid', 'mismatch', 'answer']).toContain(r.kind);
    if (n < 12 + 17) expect(r.kind).not.toBe('answer');
  }
  const rnd = seededRandom(12);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(Math.floor(rnd.next() * 64));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd.next() * 256);
    if (b.length >= 4) b[2]! |= 0x80; // mostly responses, to reach the question parser
    expect(() => parseDnsResponse(b, q)).not.toThrow();
  }
});
