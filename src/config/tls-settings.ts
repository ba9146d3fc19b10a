/**
 * The TLS part of the config model (model.ts holds the rest): a terminating listener's
 * certificates, versions, ciphers and client authentication, the routes by SNI / ALPN / client
 * identity, TLS from Fulcrum to a group's servers, and their defaults (pen's -E and the config
 * file's `tls` sections).
 */
import { DEFAULT_MAX_TLS_VERSION, DEFAULT_MIN_TLS_VERSION, type TlsVersion } from '../core/tls-rules.ts';

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
