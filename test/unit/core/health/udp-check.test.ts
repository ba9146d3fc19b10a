// The udp and dns check conversations (core/health/udp-check.ts), fed bytes without sockets.
import { expect, test } from 'bun:test';
import { isVerdict, type Step, type Verdict } from '../../../../src/core/health/conversation.ts';
import { DnsConversation, parseRcode, UdpExpectConversation } from '../../../../src/core/health/udp-check.ts';
import { buildDnsQuery } from '../../../../src/protocol/dns.ts';

const bytes = (t: string): Uint8Array => new TextEncoder().encode(t);
function verdict(s: Step): Verdict {
  if (!isVerdict(s)) throw new Error(`expected a verdict, got ${JSON.stringify(s)}`);
  return s;
}

test('udp: sends its payload; any reply passes without an expectation; a mismatch fails with what came', () => {
  const any = new UdpExpectConversation({ send: bytes('ping'), expect: null });
  expect(any.connected()).toEqual({ send: bytes('ping') });
  expect(verdict(any.data(bytes('whatever'))).passed).toBe(true);
  const exact = new UdpExpectConversation({ send: bytes('ping'), expect: { bytes: bytes('pong'), match: 'exact' } });
  expect(verdict(exact.data(bytes('pong'))).passed).toBe(true);
  const wrong = verdict(exact.data(bytes('pong!')));
  expect(wrong.passed).toBe(false);
  expect(wrong.detail).toContain('"pong!"');
  expect(verdict(exact.data(Uint8Array.of(0, 1, 0xff))).detail).toContain('hex 0001ff');
  const contains = new UdpExpectConversation({ send: bytes('x'), expect: { bytes: bytes('OK'), match: 'contains' } });
  expect(verdict(contains.data(bytes('status OK now'))).passed).toBe(true);
  expect(exact.ended().passed).toBe(false);
});

/** A response to `query`: the header's flags set to QR + `rcode`, ANCOUNT `answers`, the question kept. */
function answer(query: Uint8Array, rcode: number, answers = 0): Uint8Array {
  const r = Uint8Array.from(query);
  const v = new DataView(r.buffer);
  v.setUint16(2, 0x8180 | rcode);
  v.setUint16(6, answers);
  return r;
}

test('dns: the query asks the configured name and type; the RCODE decides; another id is ignored', () => {
  const spec = { name: 'example.com', type: 'A' as const, rcodes: [0, 3] };
  const conv = new DnsConversation(spec);
  const sent = conv.connected();
  if (sent === null || isVerdict(sent)) throw new Error('expected a query');
  const q = sent.send;
  const id = new DataView(q.buffer, q.byteOffset).getUint16(0);
  const again = buildDnsQuery({ id, name: 'example.com', type: 'A' });
  expect(again.kind === 'query' && Buffer.from(again.bytes).equals(Buffer.from(q))).toBe(true);
  const stale = answer(q, 0);
  new DataView(stale.buffer).setUint16(0, (id + 1) & 0xffff);
  expect(conv.data(stale)).toBeNull();
  const ok = verdict(conv.data(answer(q, 0, 2)));
  expect(ok).toEqual({ passed: true, detail: 'NOERROR for example.com A, 2 answers' });
  expect(verdict(conv.data(answer(q, 3))).passed).toBe(true); // NXDOMAIN is in the set
  const bad = verdict(conv.data(answer(q, 2)));
  expect(bad).toEqual({ passed: false, detail: 'SERVFAIL for example.com A, 0 answers, expected NOERROR or NXDOMAIN' });
  expect(verdict(conv.data(Uint8Array.of(1, 2, 3))).detail).toContain('malformed DNS answer');
});

test('dns: each check asks with a new id', () => {
  const ids = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const s = new DnsConversation({ name: '.', type: 'SOA', rcodes: [0] }).connected();
    if (s === null || isVerdict(s)) throw new Error('expected a query');
    ids.add(new DataView(s.send.buffer, s.send.byteOffset).getUint16(0));
  }
  expect(ids.size).toBe(100);
});

test('RCODEs by name or number', () => {
  expect(parseRcode('noerror')).toBe(0);
  expect(parseRcode('NXDOMAIN')).toBe(3);
  expect(parseRcode(5)).toBe(5);
  expect(parseRcode(16)).toMatch(/not 0-15/);
  expect(parseRcode('NOPE')).toMatch(/not an RCODE/);
});
