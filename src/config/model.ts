/**
 * The resolved configuration that the balancer runs from. Both front ends produce it: pen's
 * command line (pen-args.ts, plus -F/-o pen commands) and the YAML config file (yaml-config.ts).
 * Times are milliseconds; 0 means "off" wherever pen uses 0 that way.
 */
import type { Address } from '../core/address.ts';
import type { AclEntry } from '../core/acl/acl.ts';
import type { AlgorithmName } from '../core/balancing/registry.ts';
import { DEFAULT_MAX_TLS_VERSION, DEFAULT_MIN_TLS_VERSION, type TlsVersion } from '../core/tls.ts';

export interface ServerConfig {
  address: Address;
  /** Host name as written (re-resolved on reload), when the address was given by name. */
  hostname?: string;
  maxConnections: number;
  hardLimit: number;
  weight: number;
  priority: number;
  acl: number;
}

export interface GroupConfig {
  name: string;
  algorithm: AlgorithmName;
  /** Remember each client's server (pen default; off with -r). */
  tracking: boolean;
  /** Save choices in the client table (off with -N). */
  saveTracking: boolean;
  stubborn: boolean;
  /** pen's `-h -r`: mix the client's source port into the hash (pen PR #18). */
  hashSourcePort: boolean;
  /** Client table slots (-c). */
  clientsMax: number;
  /** Client table expiry (-T), 0 = never. */
  trackingMs: number;
  blacklistMs: number;
  connectTimeoutMs: number;
  clientAcl: number;
  servers: ServerConfig[];
  emergency: ServerConfig | null;
  abuse: ServerConfig | null;
  /** TLS toward the servers (re-encryption); absent or null = plain TCP. */
  tls?: GroupTlsConfig | null;
}

export interface ListenerConfig {
  name: string;
  address: Address;
  /** The group served when no route matches (the only group without routes). */
  group: string;
  /** TLS termination; absent or null = the bytes are forwarded as they are. */
  tls?: ListenerTlsConfig | null;
  /**
   * Routes by server name (and ALPN, client identity). With `tls` they apply after the handshake;
   * without it the listener reads the ClientHello, routes, and passes the encrypted stream through.
   */
  sniRoutes?: SniRouteConfig[];
  /** Passthrough: how long a client may take to send its ClientHello. */
  prereadTimeoutMs?: number;
}

/** One certificate chain and its key; entries serving the same names are offered side by side (RSA + ECDSA). */
export interface CertificateConfig {
  /** PEM file: the certificate, then intermediates. */
  cert: string;
  /** PEM file with the private key (pen: may be the certificate file). */
  key: string;
  /** SNI patterns this certificate serves; null = the names in the certificate (SAN, else CN). */
  names: string[] | null;
  /** Served to clients whose server name matches nothing (or who send none). */
  isDefault: boolean;
}

export type ClientAuthMode = 'none' | 'optional' | 'required';

export interface ClientAuthConfig {
  /** none: no certificate asked; optional: asked, and verified if sent; required: must be sent and valid. */
  mode: ClientAuthMode;
  /** PEM bundle of CAs that sign client certificates (pen -G). */
  caFile: string | null;
  /** Directory of CA certificates (pen -A). */
  caDir: string | null;
}

export interface ListenerTlsConfig {
  certificates: CertificateConfig[];
  /** pen's ssl_sni_path: a directory of `domain.crt`, `domain.key` and optional `domain.ca`. */
  sniPath: string | null;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  /** OpenSSL/BoringSSL cipher list for TLS 1.2 and below (pen's ssl_ciphers); null = BoringSSL's defaults. */
  ciphers: string | null;
  /** Key exchange groups, e.g. "X25519:P-256"; null = defaults. */
  curves: string | null;
  /** pen's ssl_option cipher_server_preference. */
  preferServerCiphers: boolean;
  /** ALPN protocols in the server's order of preference; empty = no ALPN. */
  alpn: string[];
  clientAuth: ClientAuthConfig;
  /** Clients must finish the handshake within this (0 = no limit). */
  handshakeTimeoutMs: number;
  sessionTickets: boolean;
  /** How often certificate files are checked for changes (0 = only on SIGHUP). */
  reloadCheckMs: number;
  /** pen's ssl_ocsp_response: a pre-fetched OCSP response (DER). */
  ocspResponse: string | null;
  /** pen's ssl_client_renegotiation_interval (seconds); client renegotiation is always refused. */
  renegotiationIntervalS: number;
}

export interface SniRouteConfig {
  /** Server name patterns (exact or `*.domain`); empty = any. */
  serverNames: string[];
  /** ALPN protocols; empty = any. */
  alpn: string[];
  /** Verified client identity globs (`CN=...`); needs termination with client_auth. */
  clientIdentities: string[];
  group: string;
}

/** TLS from Fulcrum to the servers of a group. */
export interface GroupTlsConfig {
  /** CA bundle that server certificates must chain to; null = the system's trusted roots. */
  caFile: string | null;
  /** SNI sent and the name verified; null = the server's host name as written (no SNI for an IP). */
  serverName: string | null;
  /** Skip verification (lab use only; logged at start). */
  insecure: boolean;
  /** Client certificate presented to the servers. */
  certFile: string | null;
  keyFile: string | null;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  ciphers: string | null;
  alpn: string[];
}

export interface GlobalConfig {
  /** -x: simultaneous connections; beyond it new clients wait (bounded by backlog). */
  maxConnections: number;
  /** Connects in progress at once (pen's pending_max). */
  pendingMax: number;
  /** -q: accepted clients that may wait for a free slot. */
  backlog: number;
  /** -m: accepts per event in pen; informational with Bun (the runtime accepts in batches). */
  multiAccept: number;
  idleTimeoutMs: number;
  tcpNoDelay: boolean;
  /** pen's tcp_fastclose: 'off' passes half-closes on; otherwise close both sides at the first FIN. */
  tcpFastClose: 'off' | 'up' | 'down' | 'both';
  controlAcl: number;
  logFile: string | null;
  pidFile: string | null;
  statusFile: string | null;
  user: string | null;
  debug: number;
  asciiDumps: boolean;
  foreground: boolean;
  /** pen's -F file, re-read on SIGHUP. */
  commandFile: string | null;
  /** The YAML config file, re-read on SIGHUP. */
  configFile: string | null;
}

export interface FulcrumConfig {
  global: GlobalConfig;
  acls: { list: number; entry: AclEntry }[];
  groups: GroupConfig[];
  listeners: ListenerConfig[];
}

/** pen's defaults (pen -h, checked against pen 0.34.1). */
export const PEN_DEFAULTS = {
  clientsMax: 2048,
  maxConnections: 500,
  blacklistMs: 30_000,
  connectTimeoutMs: 3_000,
  trackingMs: 0,
  pendingMax: 100,
  backlog: 511,
  multiAccept: 100,
} as const;

export function defaultGlobal(): GlobalConfig {
  return {
    maxConnections: PEN_DEFAULTS.maxConnections,
    pendingMax: PEN_DEFAULTS.pendingMax,
    backlog: PEN_DEFAULTS.backlog,
    multiAccept: PEN_DEFAULTS.multiAccept,
    idleTimeoutMs: 0,
    tcpNoDelay: false,
    tcpFastClose: 'off',
    controlAcl: 0,
    logFile: null,
    pidFile: null,
    statusFile: null,
    user: null,
    debug: 0,
    asciiDumps: false,
    foreground: false,
    commandFile: null,
    configFile: null,
  };
}

export function defaultGroup(name: string): GroupConfig {
  return {
    name,
    algorithm: 'roundrobin',
    tracking: true,
    saveTracking: true,
    stubborn: false,
    hashSourcePort: false,
    clientsMax: PEN_DEFAULTS.clientsMax,
    trackingMs: PEN_DEFAULTS.trackingMs,
    blacklistMs: PEN_DEFAULTS.blacklistMs,
    connectTimeoutMs: PEN_DEFAULTS.connectTimeoutMs,
    clientAcl: 0,
    servers: [],
    emergency: null,
    abuse: null,
  };
}

export function serverConfig(address: Address, fields: Partial<Omit<ServerConfig, 'address'>> = {}): ServerConfig {
  return { address, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0, ...fields };
}

/** Defaults for a listener's `tls` section (and pen's -E). */
export function defaultListenerTls(): ListenerTlsConfig {
  return {
    certificates: [],
    sniPath: null,
    minVersion: DEFAULT_MIN_TLS_VERSION,
    maxVersion: DEFAULT_MAX_TLS_VERSION,
    ciphers: null,
    curves: null,
    preferServerCiphers: false,
    alpn: [],
    clientAuth: { mode: 'none', caFile: null, caDir: null },
    handshakeTimeoutMs: TLS_DEFAULTS.handshakeTimeoutMs,
    sessionTickets: true,
    reloadCheckMs: TLS_DEFAULTS.reloadCheckMs,
    ocspResponse: null,
    renegotiationIntervalS: 3600,
  };
}

export function defaultGroupTls(): GroupTlsConfig {
  return {
    caFile: null,
    serverName: null,
    insecure: false,
    certFile: null,
    keyFile: null,
    minVersion: DEFAULT_MIN_TLS_VERSION,
    maxVersion: DEFAULT_MAX_TLS_VERSION,
    ciphers: null,
    alpn: [],
  };
}

export const TLS_DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  prereadTimeoutMs: 5_000,
  reloadCheckMs: 5_000,
} as const;
