/**
 * Checks across fields: listener → group and check references, duplicate listener addresses and
 * names, TLS-only settings on plain listeners, fields that do not fit a check's type. They run on
 * the raw data, so they are reported even when other parts of the file are invalid.
 */
import { checkUdpListener } from './udp-schema.ts';
import { checkHttpListener } from './http-schema.ts';
import { formatAddress } from '../../core/address.ts';
import type { Address } from '../../core/address.ts';
import type { CheckKind } from '../../core/health/check-spec.ts';
import { defaultListenerName } from './build.ts';
import { CHECK_FIELDS, checkShape, COMMON_CHECK_FIELDS } from './check-schema.ts';
import { parsePayload } from '../../core/health/udp-expect.ts';
import { parseListen } from './leaves.ts';
import { didYouMean, type Found, type Path } from './messages.ts';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function addressKey(a: Address): string {
  return a.kind === 'unix' ? `unix:${a.path}` : formatAddress({ ...a, host: a.host.toLowerCase() });
}

/** `check:` / `agent_check:` names must name a definition of the right kind. */
function checkCheckReferences(raw: Record<string, unknown>): Found[] {
  const out: Found[] = [];
  const defs = isRecord(raw.checks) ? raw.checks : {};
  const names = Object.keys(defs);
  for (const [name, def] of Object.entries(defs)) out.push(...checkFieldsFit(def, ['checks', name]));
  if (!isRecord(raw.groups)) return out;
  for (const [gname, g] of Object.entries(raw.groups)) {
    if (!isRecord(g)) continue;
    for (const field of ['check', 'agent_check'] as const) {
      const ref = g[field];
      if (isRecord(ref)) out.push(...checkFieldsFit(ref, ['groups', gname, field]));
      if (typeof ref !== 'string') continue;
      const def = defs[ref];
      if (!isRecord(def)) {
        const known = names.length === 0 ? ' (no checks are defined under `checks`)' : didYouMean(ref, names) || ` (defined: ${names.join(', ')})`;
        out.push({ path: ['groups', gname, field], message: `unknown check '${ref}'${known}` });
        continue;
      }
      const isAgent = def.type === 'agent';
      if (field === 'check' && isAgent) out.push({ path: ['groups', gname, field], message: `'${ref}' is an agent check; use it as agent_check` });
      if (field === 'agent_check' && !isAgent && typeof def.type === 'string') out.push({ path: ['groups', gname, field], message: `'${ref}' is a ${def.type} check, not an agent check; use it as check` });
    }
  }
  return out;
}

export function checkReferences(raw: unknown): Found[] {
  if (isRecord(raw) && !Array.isArray(raw.listeners)) return checkCheckReferences(raw);
  if (!isRecord(raw) || !Array.isArray(raw.listeners)) return [];
  const groups = isRecord(raw.groups) ? Object.keys(raw.groups) : [];
  const out: Found[] = [];
  if (isRecord(raw.groups)) {
    for (const [name, g] of Object.entries(raw.groups)) {
      if (isRecord(g) && isRecord(g.tls) && (g.send_proxy === 'v1' || g.send_proxy === 'v2')) {
        out.push({
          path: ['groups', name, 'send_proxy'],
          message: 'send_proxy with tls is not supported yet: the PROXY header must precede the TLS handshake, and Fulcrum would send it inside TLS',
        });
      }
    }
  }
  const addresses = new Map<string, number>();
  const names = new Map<string, number>();
  raw.listeners.forEach((l: unknown, i) => {
    if (!isRecord(l)) return;
    out.push(...checkTlsReferences(l, i, groups), ...checkAcceptProxy(l, i), ...checkForwardedFor(l, i));
    out.push(...checkUdpListener(l, i, isRecord(raw.global) ? raw.global.workers : undefined));
    out.push(...checkHttpListener(l, i, groups));
    if (typeof l.group === 'string' && !groups.includes(l.group)) {
      const known = groups.length === 0 ? ' (no groups are defined)' : didYouMean(l.group, groups) || ` (defined: ${groups.join(', ')})`;
      out.push({ path: ['listeners', i, 'group'], message: `unknown group '${l.group}'${known}` });
    }
    if (typeof l.listen === 'string' || typeof l.listen === 'number') {
      const a = parseListen(String(l.listen));
      if (typeof a !== 'string') {
        const key = addressKey(a);
        const first = addresses.get(key);
        if (first === undefined) addresses.set(key, i);
        else out.push({ path: ['listeners', i, 'listen'], message: `${formatAddress(a)} is already the address of listeners[${first}]` });
      }
    }
    const name = l.name === undefined ? defaultListenerName(i) : l.name;
    if (typeof name === 'string') {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else out.push({ path: l.name === undefined ? ['listeners', i] : ['listeners', i, 'name'], message: `listener name '${name}' is already used by listeners[${first}]` });
    }
  });
  out.push(...checkCheckReferences(raw));
  return out;
}

/** SNI routes name known groups; client identities need verified client certificates. */
function checkTlsReferences(l: Record<string, unknown>, i: number, groups: string[]): Found[] {
  const out: Found[] = [];
  const tls = isRecord(l.tls) ? l.tls : null;
  const clientAuth = tls !== null && isRecord(tls.client_auth) ? tls.client_auth : null;
  const verifies = clientAuth !== null && clientAuth.mode !== 'none';
  if (Array.isArray(l.sni_routes)) {
    l.sni_routes.forEach((r: unknown, j) => {
      if (!isRecord(r)) return;
      if (typeof r.group === 'string' && !groups.includes(r.group)) {
        const known = groups.length === 0 ? ' (no groups are defined)' : didYouMean(r.group, groups) || ` (defined: ${groups.join(', ')})`;
        out.push({ path: ['listeners', i, 'sni_routes', j, 'group'], message: `unknown group '${r.group}'${known}` });
      }
      if (r.client_identities !== undefined && !verifies) {
        out.push({
          path: ['listeners', i, 'sni_routes', j, 'client_identities'],
          message: tls === null ? 'client identities are only known when Fulcrum terminates TLS (add tls with client_auth)' : 'client identities need verified client certificates: set tls.client_auth (mode optional or required)',
          atKey: true,
        });
      }
    });
  }
  if (l.preread_timeout !== undefined && tls !== null) {
    out.push({ path: ['listeners', i, 'preread_timeout'], message: 'preread_timeout is for passthrough listeners (sni_routes without tls); a TLS listener uses tls.handshake_timeout', atKey: true });
  }
  if (l.preread_timeout !== undefined && tls === null && !(Array.isArray(l.sni_routes) && l.sni_routes.length > 0)) {
    out.push({ path: ['listeners', i, 'preread_timeout'], message: 'preread_timeout applies only to passthrough listeners, which have sni_routes', atKey: true });
  }
  return out;
}

/** PROXY protocol in: a header lets its sender name any client, so who may send one must be said. */
function checkAcceptProxy(l: Record<string, unknown>, i: number): Found[] {
  const on = l.accept_proxy === true;
  const out: Found[] = [];
  if (on && (!Array.isArray(l.proxy_trusted) || l.proxy_trusted.length === 0)) {
    out.push({ path: ['listeners', i, 'accept_proxy'], message: 'accept_proxy needs proxy_trusted: the addresses or CIDR blocks of the balancers allowed to send a PROXY header', atKey: true });
  }
  for (const k of ['proxy_trusted', 'proxy_timeout']) {
    if (!on && l[k] !== undefined) out.push({ path: ['listeners', i, k], message: `${k} applies only with accept_proxy: true`, atKey: true });
  }
  return out;
}

/** x_forwarded_for (pen's -H) edits HTTP requests: a UDP or passthrough listener never sees one. */
function checkForwardedFor(l: Record<string, unknown>, i: number): Found[] {
  if (l.x_forwarded_for !== true) return [];
  const passthrough = l.tls === undefined && Array.isArray(l.sni_routes) && l.sni_routes.length > 0;
  if (l.protocol !== 'udp' && !passthrough) return [];
  const why = passthrough ? 'a passthrough listener forwards encrypted bytes (add tls to terminate TLS)' : 'a UDP listener carries datagrams, not HTTP requests';
  return [{ path: ['listeners', i, 'x_forwarded_for'], message: `x_forwarded_for needs HTTP over TCP: ${why}`, atKey: true }];
}

function checkFieldsFit(def: unknown, path: Path): Found[] {
  if (!isRecord(def) || typeof def.type !== 'string' || !Object.hasOwn(CHECK_FIELDS, def.type)) return [];
  const type = def.type as CheckKind;
  const out: Found[] = [];
  for (const k of Object.keys(def)) {
    if (COMMON_CHECK_FIELDS.includes(k) || CHECK_FIELDS[type].includes(k) || !Object.hasOwn(checkShape, k)) continue;
    const owners = (Object.keys(CHECK_FIELDS) as CheckKind[]).filter((kind) => CHECK_FIELDS[kind].includes(k));
    out.push({ path: [...path, k], message: `'${k}' does not apply to ${type} checks (only to ${owners.join(', ')})`, atKey: true });
  }
  if (type === 'script' && def.script === undefined) out.push({ path: [...path, 'type'], message: 'a script check needs a script: a list of send/expect steps' });
  if (type === 'udp') {
    if (typeof def.send !== 'string') out.push({ path: [...path, 'type'], message: 'a udp check needs send: the datagram, as "text:..." or "hex:..."' });
    else {
      const p = parsePayload(def.send);
      if (p.kind === 'invalid') out.push({ path: [...path, 'send'], message: p.reason });
      else if (p.bytes.length === 0) out.push({ path: [...path, 'send'], message: 'a udp check sends at least one byte' });
    }
  }
  if (type === 'dns' && def.query === undefined) out.push({ path: [...path, 'type'], message: 'a dns check needs query: the name to ask for, e.g. example.com' });
  return out;
}
