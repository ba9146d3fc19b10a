/**
 * The conversations of the two UDP check kinds (docs/udp.md), without sockets: `udp` sends a
 * payload and judges the reply with the send/expect matcher (udp-expect.ts), `dns` sends a query
 * (protocol/dns.ts) and checks the answer's RCODE. The UDP probe (dataplane/udp-probe.ts) sends
 * what `connected()` returns on a connected socket and feeds each datagram to `data()`; a datagram
 * that does not answer this query (another id or question) is ignored, the deadline judges then.
 */
import { buildDnsQuery, DNS_TYPES, parseDnsResponse, RCODE_NAMES, type DnsQuestion, type DnsTypeName } from '../../protocol/dns.ts';
import type { DnsCheckSpec, UdpCheckSpec } from './check-spec.ts';
import { excerpt, fail, latin1, pass, type Conversation, type Step, type Verdict } from './conversation.ts';
import { matchReply } from './udp-expect.ts';

/** A datagram was sent and nothing came back (UDP has no end of stream). */
const noReply = (): Verdict => fail('no reply');

function hexExcerpt(b: Uint8Array, max = 16): string {
  const hex = Buffer.from(b.subarray(0, max)).toString('hex');
  return b.length > max ? `${hex}…` : hex;
}

export class UdpExpectConversation implements Conversation {
  constructor(readonly spec: UdpCheckSpec) {}

  connected(): Step {
    return { send: this.spec.send };
  }

  data(reply: Uint8Array): Step {
    const e = this.spec.expect;
    if (e === null) return pass(`reply of ${reply.length} bytes`);
    if (matchReply(reply, e)) return pass(`reply of ${reply.length} bytes matched`);
    const text = latin1(reply);
    const shown = /^[\x20-\x7e\r\n\t]*$/.test(text) ? excerpt(text) : `hex ${hexExcerpt(reply)}`;
    return fail(`reply ${shown} does not ${e.match === 'exact' ? 'equal' : e.match === 'prefix' ? 'start with' : 'contain'} the expected bytes`);
  }

  ended(): Verdict {
    return noReply();
  }

  waitingFor(): string {
    return 'waiting for a reply';
  }
}

/** Query ids: a different one per check, so that a late answer is not taken for the current one. */
let nextId = 0x2f1c;

export class DnsConversation implements Conversation {
  readonly #q: DnsQuestion;

  constructor(readonly spec: DnsCheckSpec) {
    nextId = (nextId * 75 + 74) % 65537 & 0xffff; // a full-period walk; predictable ids are fine on a connected socket
    this.#q = { id: nextId, name: spec.name, type: spec.type };
  }

  connected(): Step {
    const q = buildDnsQuery(this.#q);
    return q.kind === 'query' ? { send: q.bytes } : fail(`cannot build the query: ${q.reason}`);
  }

  data(reply: Uint8Array): Step {
    const r = parseDnsResponse(reply, this.#q);
    if (r.kind === 'mismatch') return null; // not the answer to this query: keep waiting
    if (r.kind === 'invalid') return fail(`malformed DNS answer: ${r.reason}`);
    const what = `${r.rcodeName} for ${this.spec.name} ${String(this.spec.type)}, ${r.answers} answer${r.answers === 1 ? '' : 's'}`;
    return this.spec.rcodes.includes(r.rcode) ? pass(what) : fail(`${what}, expected ${this.spec.rcodes.map(rcodeName).join(' or ')}`);
  }

  ended(): Verdict {
    return noReply();
  }

  waitingFor(): string {
    return `waiting for the answer to ${this.spec.name} ${String(this.spec.type)}`;
  }
}

export function rcodeName(n: number): string {
  return RCODE_NAMES[n] ?? `RCODE${n}`;
}

/** DNS type names a `dns` check's `query_type` accepts (a number 0..65535 works too). */
export const DNS_TYPE_NAMES = Object.keys(DNS_TYPES) as [DnsTypeName, ...DnsTypeName[]];

/** Why `name` cannot be queried, or undefined when it can (for the config). */
export function dnsNameProblem(name: string): string | undefined {
  const q = buildDnsQuery({ id: 0, name, type: 'A' });
  return q.kind === 'invalid' ? q.reason : undefined;
}

/** An RCODE written as a name (NOERROR, NXDOMAIN, ...) or a number 0..15; a reason when it is neither. */
export function parseRcode(v: string | number): number | string {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 15 ? v : `RCODE ${v} is not 0-15`;
  const i = (RCODE_NAMES as readonly string[]).indexOf(v.toUpperCase());
  return i >= 0 ? i : `"${v}" is not an RCODE (${RCODE_NAMES.join(', ')} or 0-15)`;
}
