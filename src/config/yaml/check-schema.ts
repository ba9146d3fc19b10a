/**
 * The schema of health check definitions (`checks:` and a group's `check:` / `agent_check:`), and
 * which fields each kind of check accepts.
 */
import { z } from 'zod';
import { parseStatusRanges } from '../../core/health/check-spec.ts';
import { CHECK_KINDS } from '../../core/health/check-kinds.ts';
import { CHECK_KIND_NAMES, type CheckKind, type ScriptStep } from '../../core/health/check-spec.ts';
import { bool, checkedText, duration, filePath, fraction, hostText, int, mapping, nameText, oneOf, parsed, portNumber } from './leaves.ts';
import { describe, expecting } from './messages.ts';
import { DNS_TYPE_NAMES, dnsNameProblem, parseRcode } from '../../core/health/udp-check.ts';
import { parsePayload } from '../../core/health/udp-expect.ts';


function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`;
  }
}

const regexText = checkedText('a regular expression', regexProblem);
const hexBytes = parsed('bytes in hex, e.g. "0d0a"', (t) => {
  const clean = t.replace(/\s+/g, '');
  return /^([0-9a-fA-F]{2})+$/.test(clean) ? Uint8Array.from(Buffer.from(clean, 'hex')) : `"${t}" is not an even number of hex digits`;
});
const nonEmpty = (what: string) => z.string({ error: expecting(what) }).min(1, { error: expecting(what) });

export const scriptStepShape = {
  send: z.string({ error: expecting('text to send') }).optional(),
  send_hex: hexBytes.optional(),
  expect: nonEmpty('text the answer contains').optional(),
  expect_regex: regexText.optional(),
  expect_hex: hexBytes.optional(),
};

const scriptStep = mapping('a step: one of send, send_hex, expect, expect_regex, expect_hex', scriptStepShape).transform((st, ctx): ScriptStep => {
  const keys = Object.keys(st);
  if (keys.length !== 1) {
    ctx.addIssue({ code: 'custom', message: `a step has exactly one of send, send_hex, expect, expect_regex, expect_hex${keys.length > 1 ? `, got ${keys.join(' and ')}` : ''}` });
    return z.NEVER;
  }
  if (st.send !== undefined) return { kind: 'send', data: new TextEncoder().encode(st.send) };
  if (st.send_hex !== undefined) return { kind: 'send', data: st.send_hex };
  if (st.expect !== undefined) return { kind: 'expect', match: { kind: 'string', text: st.expect } };
  if (st.expect_regex !== undefined) return { kind: 'expect', match: { kind: 'regex', source: st.expect_regex } };
  return { kind: 'expect', match: { kind: 'bytes', data: st.expect_hex! } };
});

export const tlsShape = {
  server_name: hostText.optional(),
  verify: bool.optional(),
  ca_file: filePath.optional(),
};

/** A UDP payload: `hex:0a1b...`, `text:...`, or plain text. */
const payloadBytes = parsed('bytes as "text:..." or "hex:..."', (t) => {
  const r = parsePayload(t);
  return r.kind === 'payload' ? r.bytes : r.reason;
});
const rcodeItem = z.union([z.int(), z.string()], { error: expecting('an RCODE such as NOERROR or 3') });

const statusItem = z.union([z.int(), z.string()], { error: expecting('a status such as 200, "2xx" or "200-299"') });

export const checkShape = {
  type: oneOf(CHECK_KIND_NAMES),
  interval: duration.optional(),
  down_interval: duration.optional(),
  timeout: duration.optional(),
  rise: int(1, 1000).optional(),
  fall: int(1, 1000).optional(),
  jitter: fraction.optional(),
  port: portNumber.optional(),
  address: hostText.optional(),
  method: z.string({ error: expecting('an HTTP method') }).regex(/^[A-Z]+$/, { error: expecting('an HTTP method such as GET or HEAD') }).optional(),
  path: z.string({ error: expecting('a path starting with "/"') }).regex(/^\/\S*$/, { error: expecting('a path starting with "/", without spaces') }).optional(),
  host: hostText.optional(),
  expect_status: z
    .union([statusItem, z.array(statusItem)], { error: expecting('a status or a list of statuses such as [200, "3xx"]') })
    .transform((v, ctx) => {
      const r = parseStatusRanges(Array.isArray(v) ? v : [v]);
      if (r !== null) return r;
      ctx.addIssue({ code: 'custom', message: `expected statuses such as 200, "2xx" or "200-299" (100-599), got ${describe(v)}` });
      return z.NEVER;
    })
    .optional(),
  expect_body: regexText.optional(),
  tls: z.union([bool, mapping('a mapping with server_name, verify, ca_file', tlsShape)], { error: expecting('true, false or a mapping with server_name, verify, ca_file') }).optional(),
  script: z.array(scriptStep, { error: expecting('a list of steps') }).min(1, { error: 'a script needs at least one step' }).optional(),
  /** agent: text sent once connected; udp: the datagram, `hex:...` or `text:...` (checked in cross-field.ts). */
  send: z.string({ error: expecting('text to send (udp: "text:..." or "hex:...")') }).optional(),
  expect: payloadBytes.optional(),
  expect_match: oneOf(['exact', 'prefix', 'contains']).optional(),
  query: checkedText('a domain name to query, e.g. example.com', dnsNameProblem).optional(),
  query_type: z.union([oneOf(DNS_TYPE_NAMES), int(0, 65535)], { error: expecting(`a DNS type (${DNS_TYPE_NAMES.join(', ')}) or a number`) }).optional(),
  expect_rcode: z
    .union([rcodeItem, z.array(rcodeItem).min(1)], { error: expecting('an RCODE or a list of RCODEs such as [NOERROR, NXDOMAIN]') })
    .transform((v, ctx) => {
      const out: number[] = [];
      for (const item of Array.isArray(v) ? v : [v]) {
        const r = parseRcode(item);
        if (typeof r === 'number') out.push(r);
        else {
          ctx.addIssue({ code: 'custom', message: r });
          return z.NEVER;
        }
      }
      return out;
    })
    .optional(),
};

/** Which fields each kind of check accepts, beyond the common timing fields. */
export const CHECK_FIELDS: Readonly<Record<CheckKind, readonly string[]>> = Object.fromEntries(CHECK_KIND_NAMES.map((k) => [k, CHECK_KINDS[k].fields])) as Record<CheckKind, readonly string[]>;
export const COMMON_CHECK_FIELDS = ['type', 'interval', 'down_interval', 'timeout', 'rise', 'fall', 'jitter', 'port', 'address'];

export type ParsedCheck = z.output<typeof checkDef>;

export const checkDef = mapping('a check: a mapping with a type', checkShape);

/** A group's `check:` or `agent_check:`: the name of a definition in `checks`, or one written in place. */
export const checkRef = z.union([nameText('the name of a check'), checkDef], { error: expecting('the name of a check in `checks`, or a check mapping') });
