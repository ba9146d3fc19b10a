/**
 * The checked file (the schema's output, snake_case) → FulcrumConfig: defaults filled in, checks
 * resolved by name, listeners named. Runs only on a file without problems.
 */
import { buildUdp } from './udp-schema.ts';
import { buildHttp } from './http-schema.ts';
import { checkSpec, CHECK_DEFAULTS, DEFAULT_HTTP_STATUS } from '../../core/health/check-spec.ts';
import type { CheckSpec } from '../../core/health/check-spec.ts';
import { parsePayload } from '../../core/health/udp-expect.ts';
import { defaultGlobal, defaultGroup, defaultMaxPerSource, PROXY_TIMEOUT_DEFAULT_MS } from '../model.ts';
import type { FulcrumConfig, GlobalConfig, GroupConfig, ListenerConfig } from '../model.ts';
import { defaultGroupTls, defaultListenerTls, TLS_DEFAULTS, type GroupTlsConfig, type ListenerTlsConfig, type SniRouteConfig } from '../tls-settings.ts';
import type { ParsedCheck } from './check-schema.ts';
import type { ParsedFile } from './schema.ts';

export function build(p: ParsedFile): FulcrumConfig {
  const g = p.global ?? {};
  const d = defaultGlobal();
  const global: GlobalConfig = {
    ...d,
    maxConnections: g.max_connections ?? d.maxConnections,
    pendingMax: g.pending_max ?? d.pendingMax,
    backlog: g.backlog ?? d.backlog,
    maxPerSource: g.max_connections_per_source ?? defaultMaxPerSource(g.max_connections ?? d.maxConnections),
    // No rate by default: one address's rate cannot tell churn from a benchmark, a NAT or a
    // connection-per-request client, and the limits on by default already keep a real client served.
    maxNewPerSource: g.max_new_connections_per_source_per_second ?? d.maxNewPerSource,
    multiAccept: g.multi_accept ?? d.multiAccept,
    idleTimeoutMs: g.idle_timeout ?? d.idleTimeoutMs,
    tcpNoDelay: g.tcp_nodelay ?? d.tcpNoDelay,
    tcpFastClose: g.tcp_fastclose ?? d.tcpFastClose,
    controlAcl: g.control_acl ?? d.controlAcl,
    logFile: g.log_file ?? d.logFile,
    logFormat: g.log_format ?? d.logFormat,
    pidFile: g.pid_file ?? d.pidFile,
    statusFile: g.status_file ?? d.statusFile,
    user: g.user ?? d.user,
    debug: g.debug ?? d.debug,
    asciiDumps: g.ascii_dumps ?? d.asciiDumps,
    workers: g.workers ?? d.workers,
    stateFile: g.state_file ?? d.stateFile,
    diagnosticsLog: g.diagnostics_log ?? d.diagnosticsLog,
    admin: p.admin ?? null,
    cluster: p.cluster ?? null,
    accessLog: p.access_log === null || p.access_log === undefined ? null : { path: p.access_log.file, format: p.access_log.format ?? 'json' },
  };

  const acls = Object.entries(p.acls ?? {})
    .sort(([a], [b]) => Number(a) - Number(b))
    .flatMap(([list, rules]) => rules.map((entry) => ({ list: Number(list), entry })));

  const checks = new Map(Object.entries(p.checks ?? {}).map(([name, c]) => [name, buildCheck(name, c)]));
  const resolveCheck = (group: string, field: string, ref: string | ParsedCheck | null | undefined): CheckSpec | null => {
    if (ref === undefined || ref === null) return null;
    if (typeof ref === 'string') return checks.get(ref)!; // references were checked
    return buildCheck(`${group}.${field}`, ref);
  };

  const groups = Object.entries(p.groups ?? {}).map(([name, s]): GroupConfig => {
    const dg = defaultGroup(name);
    return {
      ...dg,
      algorithm: s.algorithm ?? dg.algorithm,
      tracking: s.tracking ?? dg.tracking,
      saveTracking: s.save_tracking ?? dg.saveTracking,
      stubborn: s.stubborn ?? dg.stubborn,
      hashSourcePort: s.hash_source_port ?? dg.hashSourcePort,
      sendProxy: s.send_proxy ?? dg.sendProxy,
      clientsMax: s.clients_max ?? dg.clientsMax,
      trackingMs: s.tracking_expiry ?? dg.trackingMs,
      blacklistMs: s.blacklist ?? dg.blacklistMs,
      connectTimeoutMs: s.connect_timeout ?? dg.connectTimeoutMs,
      clientAcl: s.client_acl ?? dg.clientAcl,
      servers: s.servers,
      emergency: s.emergency ?? null,
      abuse: s.abuse ?? null,
      ...(s.tls === undefined ? {} : { tls: buildGroupTls(s.tls) }),
      check: resolveCheck(name, 'check', s.check),
      agentCheck: resolveCheck(name, 'agent_check', s.agent_check),
      outlier: {
        consecutiveFailures: s.outlier?.consecutive_failures ?? dg.outlier.consecutiveFailures,
        maxEjectionMs: s.outlier?.max_ejection ?? dg.outlier.maxEjectionMs,
        // Watching early resets is what the outlier section is for; pen's -b alone does not.
        earlyResets: s.outlier === undefined ? false : (s.outlier.early_resets ?? true),
      },
      slowStartMs: s.slow_start ?? dg.slowStartMs,
      retries: s.retries ?? dg.retries,
      queueMax: s.queue?.max ?? 0,
      queueTimeoutMs: s.queue?.timeout ?? 0,
      maxConnectionAgeMs: s.max_connection_age ?? dg.maxConnectionAgeMs,
      maxConnectionAgeJitter: s.max_connection_age_jitter ?? dg.maxConnectionAgeJitter,
      drainBudget: s.drain_budget ?? dg.drainBudget,
      onServerDown: s.on_server_down ?? dg.onServerDown,
      backupBalance: s.backup_balance ?? dg.backupBalance,
      ...(s.sticky_cookie != null ? { stickyCookie: s.sticky_cookie } : {}),
    };
  });

  const listeners = p.listeners.map((l, i): ListenerConfig => {
    const out: ListenerConfig = { name: l.name ?? defaultListenerName(i), address: l.listen, group: l.group };
    if (l.tls !== undefined) out.tls = buildListenerTls(l.tls);
    if (l.sni_routes !== undefined) out.sniRoutes = l.sni_routes.map(buildRoute);
    const udp = buildUdp(l.protocol, l.udp);
    if (udp !== undefined) out.udp = udp;
    const http = buildHttp(l);
    if (http !== undefined) out.http = http;
    if (l.preread_timeout !== undefined) out.prereadTimeoutMs = l.preread_timeout;
    else if (out.tls === undefined && (out.sniRoutes?.length ?? 0) > 0) out.prereadTimeoutMs = TLS_DEFAULTS.prereadTimeoutMs;
    if (l.x_forwarded_for === true) out.forwardedFor = true;
    if (l.accept_proxy === true) out.acceptProxy = { trusted: l.proxy_trusted ?? [], timeoutMs: l.proxy_timeout ?? PROXY_TIMEOUT_DEFAULT_MS };
    return out;
  });

  return { global, acls, groups, listeners };
}

type ParsedListener = ParsedFile['listeners'][number];

function buildListenerTls(t: NonNullable<ParsedListener['tls']>): ListenerTlsConfig {
  const d = defaultListenerTls();
  const ca = t.client_auth;
  return {
    ...d,
    certificates: (t.certificates ?? []).map((c) => ({ cert: c.cert, key: c.key ?? c.cert, names: c.names ?? null, isDefault: c.default ?? false })),
    sniPath: t.sni_path ?? null,
    minVersion: t.min_version ?? d.minVersion,
    maxVersion: t.max_version ?? d.maxVersion,
    ciphers: t.ciphers ?? null,
    curves: t.curves ?? null,
    preferServerCiphers: t.prefer_server_ciphers ?? false,
    alpn: t.alpn ?? [],
    clientAuth: ca === undefined ? d.clientAuth : { mode: ca.mode ?? 'required', caFile: ca.ca ?? null, caDir: ca.ca_dir ?? null },
    handshakeTimeoutMs: t.handshake_timeout ?? d.handshakeTimeoutMs,
    sessionTickets: t.session_tickets ?? d.sessionTickets,
    reloadCheckMs: t.file_check_interval ?? d.reloadCheckMs,
  };
}

function buildRoute(r: NonNullable<ParsedListener['sni_routes']>[number]): SniRouteConfig {
  return { serverNames: r.server_names ?? [], alpn: r.alpn ?? [], clientIdentities: r.client_identities ?? [], group: r.group };
}

function buildGroupTls(t: NonNullable<NonNullable<ParsedFile['groups']>[string]['tls']>): GroupTlsConfig {
  const d = defaultGroupTls();
  return {
    caFile: t.ca ?? null,
    serverName: t.server_name ?? null,
    insecure: t.insecure ?? false,
    certFile: t.cert ?? null,
    keyFile: t.key ?? t.cert ?? null,
    minVersion: t.min_version ?? d.minVersion,
    maxVersion: t.max_version ?? d.maxVersion,
    ciphers: t.ciphers ?? null,
    alpn: t.alpn ?? [],
  };
}

/** The name of a listener the file does not name. */
export function defaultListenerName(index: number): string {
  return `listener-${index + 1}`;
}

function buildCheck(name: string, c: ParsedCheck): CheckSpec {
  const intervalMs = Math.max(1, c.interval ?? CHECK_DEFAULTS.intervalMs);
  const tlsOn = c.type === 'tls' || (c.tls !== undefined && c.tls !== false);
  const t = typeof c.tls === 'object' ? c.tls : {};
  return checkSpec(name, c.type, {
    intervalMs,
    downIntervalMs: Math.max(1, c.down_interval ?? intervalMs),
    timeoutMs: Math.max(1, c.timeout ?? Math.min(CHECK_DEFAULTS.timeoutMs, intervalMs)),
    rise: c.rise ?? CHECK_DEFAULTS.rise,
    fall: c.fall ?? CHECK_DEFAULTS.fall,
    jitter: c.jitter ?? CHECK_DEFAULTS.jitter,
    port: c.port ?? null,
    address: c.address ?? null,
    http:
      c.type === 'http'
        ? { method: c.method ?? 'GET', path: c.path ?? '/', host: c.host ?? null, expectStatus: c.expect_status ?? DEFAULT_HTTP_STATUS, expectBody: c.expect_body ?? null }
        : null,
    tls: tlsOn ? { serverName: t.server_name ?? null, verify: t.verify ?? false, caFile: t.ca_file ?? null } : null,
    script: c.script ?? null,
    agentSend: c.type === 'agent' ? (c.send ?? null) : null,
    udp: c.type === 'udp' ? { send: payloadOf(c.send ?? ''), expect: c.expect === undefined ? null : { bytes: c.expect, match: c.expect_match ?? 'exact' } } : null,
    dns: c.type === 'dns' ? { name: c.query ?? '.', type: c.query_type ?? 'A', rcodes: c.expect_rcode ?? [0] } : null,
  });
}

/** A udp check's datagram (already checked in cross-field.ts). */
function payloadOf(send: string): Uint8Array {
  const p = parsePayload(send);
  return p.kind === 'payload' ? p.bytes : new Uint8Array(0);
}
