// The send/expect UDP check's payload syntax and matcher (src/core/health/udp-expect.ts).
import { expect, test } from 'bun:test';
import { matchReply, parsePayload } from '../../../../src/core/health/udp-expect.ts';

const bytes = (spec: string) => {
  const r = parsePayload(spec);
  if (r.kind !== 'payload') throw new Error(r.reason);
  return r.bytes;
};

test('payloads: hex (with spaces or colons between bytes), text:, or plain text', () => {
  expect([...bytes('hex:ff 00:0A')]).toEqual([0xff, 0x00, 0x0a]);
  expect(new TextDecoder().decode(bytes('text:hex:not'))).toBe('hex:not');
  expect(new TextDecoder().decode(bytes('PING'))).toBe('PING');
  expect(bytes('hex:').length).toBe(0);
  expect(parsePayload('hex:abc').kind).toBe('invalid');
  expect(parsePayload('hex:zz').kind).toBe('invalid');
});

test('exact, prefix and contains', () => {
  const reply = new TextEncoder().encode('+PONG v2');
  expect(matchReply(reply, { bytes: bytes('+PONG v2'), match: 'exact' })).toBe(true);
  expect(matchReply(reply, { bytes: bytes('+PONG'), match: 'exact' })).toBe(false);
  expect(matchReply(reply, { bytes: bytes('+PONG'), match: 'prefix' })).toBe(true);
  expect(matchReply(reply, { bytes: bytes('PONG'), match: 'prefix' })).toBe(false);
  expect(matchReply(reply, { bytes: bytes('v2'), match: 'contains' })).toBe(true);
  expect(matchReply(reply, { bytes: bytes('v3'), match: 'contains' })).toBe(false);
  expect(matchReply(new Uint8Array(), { bytes: bytes('x'), match: 'contains' })).toBe(false);
  expect(matchReply(reply, { bytes: new Uint8Array(), match: 'prefix' })).toBe(true);
});
