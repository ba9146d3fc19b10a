/**
 * The send/expect UDP health check's payloads and matcher (docs/udp.md): a payload is written
 * `hex:0a1b...` or `text:...` (plain text when there is no prefix), and a server's reply passes
 * when it equals, starts with or contains the expected bytes. Pure; the data plane sends and
 * receives, this decides.
 */

export type UdpMatch = 'exact' | 'prefix' | 'contains';

export interface UdpExpect {
  bytes: Uint8Array;
  match: UdpMatch;
}

export type PayloadResult = { kind: 'payload'; bytes: Uint8Array } | { kind: 'invalid'; reason: string };

/** Parses `hex:...` (pairs of hex digits; spaces and colons between bytes allowed) or `text:...`. */
export function parsePayload(spec: string): PayloadResult {
  if (spec.startsWith('hex:')) {
    const digits = spec.slice(4).replace(/[\s:]/g, '');
    if (digits.length % 2 !== 0) return { kind: 'invalid', reason: `odd number of hex digits in ${JSON.stringify(spec)}` };
    if (!/^[0-9a-fA-F]*$/.test(digits)) return { kind: 'invalid', reason: `not hex: ${JSON.stringify(spec)}` };
    const bytes = new Uint8Array(digits.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
    return { kind: 'payload', bytes };
  }
  const text = spec.startsWith('text:') ? spec.slice(5) : spec;
  return { kind: 'payload', bytes: new TextEncoder().encode(text) };
}

/** Whether `reply` is what the check expects. An empty expectation with 'prefix' or 'contains' accepts any reply. */
export function matchReply(reply: Uint8Array, expect: UdpExpect): boolean {
  const want = expect.bytes;
  switch (expect.match) {
    case 'exact':
      return reply.length === want.length && startsWith(reply, want, 0);
    case 'prefix':
      return reply.length >= want.length && startsWith(reply, want, 0);
    case 'contains':
      for (let at = 0; at + want.length <= reply.length; at++) if (startsWith(reply, want, at)) return true;
      return false;
  }
}

function startsWith(b: Uint8Array, want: Uint8Array, at: number): boolean {
  for (let i = 0; i < want.length; i++) if (b[at + i] !== want[i]) return false;
  return true;
}
