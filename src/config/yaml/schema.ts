/**
 * The schema of the whole config file (snake_case keys as written in it), and the translation of
 * zod's issues into ours: one per unknown key (with "did you mean"), unions narrowed to the branch
 * that was meant.
 */
import { z } from 'zod';
import { algorithmNames } from '../../core/balancing/registry.ts';
import { parseAdminAddress } from '../admin-address.ts';
import { MAX_WORKERS } from '../model.ts';
import type { AdminConfig } from '../model.ts';
import { clusterSection, clusterShape } from './cluster-schema.ts';
import { checkDef, checkRef, checkShape, scriptStepShape, tlsShape } from './check-schema.ts';
import { parseEntry } from '../../core/trusted-sources.ts';
import { aclNumber, bool, checkedText, duration, filePath, fraction, hostText, int, mapping, MAX_INT, nameText, oneOf, parseAclRule, parsed, parseListen, parseServerAddress, parseShortServer, portNumber, withHostname } from './leaves.ts';
import { describe, didYouMean, expecting, type Found, type Path } from './messages.ts';
import { udpListenerFields, udpShape } from './udp-schema.ts';
import { cookieName, httpListenerFields, httpPoolShape, httpRouteShape } from './http-schema.ts';
import { certificateShape, clientAuthShape, groupTls, groupTlsShape, listenerTls, listenerTlsShape, sniRouteShape } from './tls-schema.ts';

export const globalShape = {
  max_connections: int(1, MAX_INT).optional(),
  pending_max: int(1, MAX_INT).optional(),
  backlog: int(0, MAX_INT).optional(),
  max_connections_per_source: int(0, MAX_INT).optional(),
  max_new_connections_per_source_per_second: int(0, MAX_INT).optional(),
  multi_accept: int(1, MAX_INT).optional(),
  idle_timeout: duration.optional(),
  tcp_nodelay: bool.optional(),
  tcp_fastclose: oneOf(['off', 'up', 'down', 'both']).optional(),
  control_acl: aclNumber.optional(),
  log_file: filePath.nullable().optional(),
  log_format: oneOf(['pen', 'fulcrum']).optional(),
  pid_file: filePath.nullable().optional(),
  status_file: filePath.nullable().optional(),
  user: z.string({ error: expecting('a user name') }).min(1, { error: expecting('a user name') }).nullable().optional(),
  debug: int(0, MAX_INT).optional(),
  ascii_dumps: bool.optional(),
  workers: z
    .custom<number | 'auto'>((v) => v === 'auto' || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_WORKERS), {
      error: expecting(`a number of processes 1-${MAX_WORKERS}, or auto`),
    })
    .optional(),
  state_file: filePath.nullable().optional(),
  /** stderr | syslog | syslog:/path/to/socket | a file path (the diagnostics, not pen's -l log). */
  diagnostics_log: filePath.nullable().optional(),
};

export const serverShape = {
  address: parsed('a server address: host:port, [ipv6]:port or a Unix socket path', parseServerAddress),
  max_connections: int(0, MAX_INT).optional(),
  hard_limit: int(0, MAX_INT).optional(),
  weight: int(0, 65535).optional(),
  priority: int(0, 65535).optional(),
  acl: aclNumber.optional(),
  backup: bool.optional(),
  check_port: portNumber.optional(),
  check_address: hostText.optional(),
  state: oneOf(['enabled', 'drain', 'maintenance']).optional(),
};

const SERVER_TEXT = 'a server: "host:port[:maxc[:hard[:weight[:prio]]]]", a Unix socket path, or a mapping with an address';

const longServer = mapping('a mapping', serverShape).transform((s) =>
  withHostname(s.address, {
    maxConnections: s.max_connections ?? 0,
    hardLimit: s.hard_limit ?? 0,
    weight: s.weight ?? 0,
    priority: s.priority ?? 0,
    acl: s.acl ?? 0,
    ...(s.backup !== undefined ? { backup: s.backup } : {}),
    ...(s.check_port !== undefined ? { checkPort: s.check_port } : {}),
    ...(s.check_address !== undefined ? { checkAddress: s.check_address } : {}),
    ...(s.state !== undefined ? { state: s.state } : {}),
  }),
);

const queueShape = {
  max: int(1, MAX_INT),
  timeout: duration,
};

const outlierShape = {
  consecutive_failures: int(1, 1000).optional(),
  max_ejection: duration.optional(),
  early_resets: bool.optional(),
};

export const server = z.union([parsed(SERVER_TEXT, parseShortServer), longServer], { error: expecting(SERVER_TEXT) });

const groupShape = {
  algorithm: oneOf(algorithmNames as [(typeof algorithmNames)[number], ...(typeof algorithmNames)[number][]]).optional(),
  tracking: bool.optional(),
  save_tracking: bool.optional(),
  stubborn: bool.optional(),
  hash_source_port: bool.optional(),
  send_proxy: z.enum(['off', 'v1', 'v2']).optional(),
  clients_max: int(1, MAX_INT).optional(),
  tracking_expiry: duration.optional(),
  blacklist: duration.optional(),
  connect_timeout: duration.optional(),
  client_acl: aclNumber.optional(),
  servers: z.array(server, { error: expecting('a list of servers') }).min(1, { error: 'a group needs at least one server' }),
  emergency: server.nullable().optional(),
  abuse: server.nullable().optional(),
  tls: groupTls.optional(),
  check: checkRef.nullable().optional(),
  agent_check: checkRef.nullable().optional(),
  outlier: mapping('a mapping with consecutive_failures, max_ejection, early_resets', outlierShape).optional(),
  slow_start: duration.optional(),
  retries: int(0, 1000).optional(),
  queue: mapping('a mapping with max and timeout', queueShape).nullable().optional(),
  max_connection_age: duration.optional(),
  max_connection_age_jitter: fraction.optional(),
  drain_budget: int(0, MAX_INT).optional(),
  on_server_down: oneOf(['keep', 'close']).optional(),
  backup_balance: oneOf(['first', 'roundrobin']).optional(),
  sticky_cookie: cookieName.nullable().optional(),
};

const listenerShape = {
  name: nameText('a listener name').optional(),
  // A bare port is the usual listener, and YAML reads `listen: 8080` as a number.
  listen: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), parsed('a listen address: [host:]port, [ipv6]:port or a Unix socket path', parseListen)),
  group: z.string({ error: expecting('the name of a group') }),
  tls: listenerTls.optional(),
  sni_routes: z.array(mapping('a mapping with server_names and group', sniRouteShape), { error: expecting('a list of routes') }).optional(),
  preread_timeout: duration.optional(),
  accept_proxy: bool.optional(),
  proxy_trusted: z.array(checkedText('an IP address or CIDR block', trustedProblem), { error: expecting('a list of addresses or CIDR blocks') }).optional(),
  proxy_timeout: duration.optional(),
  x_forwarded_for: bool.optional(),
  ...udpListenerFields,
  ...httpListenerFields,
};

function trustedProblem(text: string): string | undefined {
  const r = parseEntry(text);
  return typeof r === 'string' ? r : undefined;
}

const ADMIN_TEXT = 'an admin address: 127.0.0.1:PORT, [::1]:PORT or a Unix socket path';

const adminShape = {
  listen: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string({ error: expecting(ADMIN_TEXT) })),
  token_file: filePath.nullable().optional(),
  allow_remote: bool.optional(),
};

const adminSection = mapping('a mapping with listen, token_file and allow_remote', adminShape).transform((a, ctx): AdminConfig => {
  const address = parseAdminAddress(a.listen, a.allow_remote ?? false);
  if (typeof address === 'string') {
    ctx.addIssue({ code: 'custom', path: ['listen'], message: address });
    return z.NEVER;
  }
  return { address, tokenFile: a.token_file ?? null, allowRemote: a.allow_remote ?? false };
});

const accessLogShape = {
  file: z.string({ error: expecting('a file path, or "-" for standard output') }).min(1, { error: expecting('a file path, or "-" for standard output') }),
  format: oneOf(['json', 'text']).optional(),
};

const topShape = {
  global: mapping('a mapping of global settings', globalShape).nullish(),
  admin: adminSection.nullish(),
  access_log: mapping('a mapping with file and format', accessLogShape).nullish(),
  cluster: clusterSection.nullish(),
  acls: z
    .record(
      z.string().regex(/^[0-9]$/, { error: (iss) => `ACL numbers are 0-9, got ${describe(iss.input)}` }),
      z.array(parsed('an ACL rule such as "permit 10.0.0.0 255.0.0.0"', parseAclRule), { error: expecting('a list of ACL rules') }),
      { error: expecting('a mapping from ACL numbers 0-9 to lists of rules') },
    )
    .nullish(),
  checks: z.record(nameText('a check name'), checkDef, { error: expecting('a mapping of check definitions by name') }).nullish(),
  groups: z.record(nameText('a group name'), mapping('a mapping of group settings', groupShape), { error: expecting('a mapping of groups by name') }).nullish(),
  listeners: z.array(mapping('a mapping with listen and group', listenerShape), { error: expecting('a list of listeners') }).min(1, { error: 'at least one listener is needed' }),
};

export const fileSchema = mapping('a mapping with global, acls, groups and listeners', topShape);

export type ParsedFile = z.output<typeof fileSchema>;

/** Known field names of the mapping at `path`, for "did you mean" on unknown fields. */
function fieldsAt(path: Path): readonly string[] {
  const p = path.map((s) => (typeof s === 'number' ? s : String(s)));
  if (p.length === 0) return Object.keys(topShape);
  if (p[0] === 'global' && p.length === 1) return Object.keys(globalShape);
  if (p[0] === 'admin' && p.length === 1) return Object.keys(adminShape);
  if (p[0] === 'access_log' && p.length === 1) return Object.keys(accessLogShape);
  if (p[0] === 'cluster' && p.length === 1) return Object.keys(clusterShape);
  if (p[0] === 'groups' && p.length === 2) return Object.keys(groupShape);
  if (p[0] === 'groups' && ((p.length === 4 && p[2] === 'servers') || (p.length === 3 && (p[2] === 'emergency' || p[2] === 'abuse')))) {
    return Object.keys(serverShape);
  }
  if (p[0] === 'groups' && p.length === 3 && p[2] === 'tls') return Object.keys(groupTlsShape);
  if (p[0] === 'listeners' && p.length === 2) return Object.keys(listenerShape);
  if (p[0] === 'listeners' && p[2] === 'tls') {
    if (p.length === 3) return Object.keys(listenerTlsShape);
    if (p.length === 5 && p[3] === 'certificates') return Object.keys(certificateShape);
    if (p.length === 4 && p[3] === 'client_auth') return Object.keys(clientAuthShape);
  }
  if (p[0] === 'listeners' && p.length === 4 && p[2] === 'sni_routes') return Object.keys(sniRouteShape);
  if (p[0] === 'listeners' && p.length === 3 && p[2] === 'udp') return Object.keys(udpShape);
  if (p[0] === 'listeners' && p.length === 3 && p[2] === 'pool') return Object.keys(httpPoolShape);
  if (p[0] === 'listeners' && p.length === 4 && p[2] === 'routes') return Object.keys(httpRouteShape);
  if ((p[0] === 'checks' && p.length === 2) || (p[0] === 'groups' && p.length === 3 && (p[2] === 'check' || p[2] === 'agent_check'))) return Object.keys(checkShape);
  const last = p[p.length - 1];
  if (p[0] === 'checks' && last === 'tls') return Object.keys(tlsShape);
  if (p[0] === 'checks' && p[p.length - 2] === 'script') return Object.keys(scriptStepShape);
  if (p[0] === 'groups' && p.length === 3 && last === 'queue') return Object.keys(queueShape);
  if (p[0] === 'groups' && p.length === 3 && last === 'outlier') return Object.keys(outlierShape);
  return [];
}

/** Turns zod's issues into ours: one per unknown key, and union failures narrowed to the branch meant. */
export function flatten(issue: z.core.$ZodIssue, base: Path, known: (path: Path) => readonly string[] = fieldsAt): Found[] {
  const path = [...base, ...issue.path];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field '${k}'${didYouMean(k, known(path))}`, atKey: true }));
    case 'invalid_key':
      return issue.issues.map((i) => ({ path, message: i.message, atKey: true }));
    case 'invalid_union': {
      // A branch that failed only because the value had the other type (string vs mapping) is not the one meant.
      const meant = issue.errors.filter((b) => !(b.length === 1 && b[0]!.code === 'invalid_type' && b[0]!.path.length === 0));
      if (meant.length === 1) return meant[0]!.flatMap((i) => flatten(i, path, known));
      return [{ path, message: issue.message }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}
