/**
 * The resolved configuration that the balancer runs from. Both front ends produce it: pen's
 * command line (pen-args.ts, plus -F/-o pen commands) and the YAML config file (yaml-config.ts).
 * Times are milliseconds; 0 means "off" wherever pen uses 0 that way.
 */
import type { Address } from '../core/address.ts';
import type { AclEntry } from '../core/acl/acl.ts';
import type { AlgorithmName } from '../core/balancing/registry.ts';

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
}

export interface ListenerConfig {
  name: string;
  address: Address;
  group: string;
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
