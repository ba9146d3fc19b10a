/**
 * Just enough DER to check a pre-fetched OCSP response (RFC 6960) before accepting it for pen's
 * `ssl_ocsp_response`: the response status, and for a successful response the first
 * certificate's status and its thisUpdate/nextUpdate times. Pure and total: bad input gives an
 * error message, never an exception.
 */

interface Tlv {
  tag: number;
  start: number; // of the value
  end: number;
}

function readTlv(b: Uint8Array, at: number, end: number): Tlv | null {
  if (at + 2 > end) return null;
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > end) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
  }
  if (p + len > end) return null;
  return { tag, start: p, end: p + len };
}

/** The children of a constructed value. */
function children(b: Uint8Array, t: Tlv): Tlv[] | null {
  const out: Tlv[] = [];
  let at = t.start;
  while (at < t.end) {
    const c = readTlv(b, at, t.end);
    if (c === null) return null;
    out.push(c);
    at = c.end;
  }
  return out;
}

const STATUS = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(4)', 'sigRequired', 'unauthorized'];

function time(b: Uint8Array, t: Tlv): string {
  let s = '';
  for (let i = t.start; i < t.end; i++) s += String.fromCharCode(b[i]!);
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})/.exec(s);
  return m === null ? s : `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
}

export function ocspResponseSummary(bytes: Uint8Array): { text: string; status: string; certStatus: string | null; nextUpdate: string | null } | { error: string } {
  const bad = { error: 'not a DER-encoded OCSP response' };
  const top = readTlv(bytes, 0, bytes.length);
  if (top === null || top.tag !== 0x30 || top.end !== bytes.length) return bad;
  const parts = children(bytes, top);
  if (parts === null || parts.length < 1 || parts[0]!.tag !== 0x0a || parts[0]!.end - parts[0]!.start !== 1) return bad;
  const code = bytes[parts[0]!.start]!;
  const status = STATUS[code] ?? `(${code})`;
  if (code !== 0) return { error: `the OCSP response status is ${status}, not successful` };
  // responseBytes [0] EXPLICIT SEQUENCE { responseType OID, response OCTET STRING }
  const rb = parts[1];
  if (rb === undefined || rb.tag !== 0xa0) return bad;
  const seq = children(bytes, rb)?.[0];
  const rbParts = seq === undefined || seq.tag !== 0x30 ? null : children(bytes, seq);
  const octets = rbParts?.[1];
  if (octets === undefined || octets.tag !== 0x04) return bad;
  // BasicOCSPResponse SEQUENCE { tbsResponseData SEQUENCE {...}, ... }
  const basic = readTlv(bytes, octets.start, octets.end);
  const tbs = basic === null ? undefined : children(bytes, basic)?.[0];
  const rd = tbs === undefined ? null : children(bytes, tbs);
  if (rd === null) return bad;
  // ResponseData: [0] version?, responderID, producedAt, responses SEQUENCE OF SingleResponse
  const responses = rd.find((t, i) => t.tag === 0x30 && i >= 2);
  const single = responses === undefined ? undefined : children(bytes, responses)?.[0];
  const sr = single === undefined ? null : children(bytes, single);
  if (sr === null || sr.length < 3) return bad;
  const certStatusTag = sr[1]!.tag & 0x1f;
  const certStatus = certStatusTag === 0 ? 'good' : certStatusTag === 1 ? 'revoked' : 'unknown';
  const thisUpdate = sr[2]!.tag === 0x18 ? time(bytes, sr[2]!) : null;
  const nu = sr.find((t) => t.tag === 0xa0);
  const nuInner = nu === undefined ? undefined : children(bytes, nu)?.[0];
  const nextUpdate = nuInner !== undefined && nuInner.tag === 0x18 ? time(bytes, nuInner) : null;
  const text = `OCSP response ${status}, certificate ${certStatus}${thisUpdate !== null ? `, this update ${thisUpdate}` : ''}${nextUpdate !== null ? `, next update ${nextUpdate}` : ''}`;
  return { text, status, certStatus, nextUpdate };
}
