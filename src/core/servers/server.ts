/**
 * A server (one backend address) with pen's per-server settings and its live counters.
 * Counters are plain fields updated in O(1) on the connection path and read in O(1) by stats.
 */
import type { Address } from '../address.ts';

/** Operator-set state, separate from what health checks observe (HAProxy's admin axis). */
export type AdminState = 'enabled' | 'drain' | 'maintenance';

export interface ServerSettings {
  address: Address;
  /** Host name as written, kept for re-resolution on reload. */
  hostname?: string;
  /** Soft limit for new clients; 0 = unlimited (pen's `maxc`). */
  maxConnections: number;
  /** Limit for clients that were here before (pen's `hard`); 0 = same as maxConnections. */
  hardLimit: number;
  weight: number;
  priority: number;
  /** ACL list that clients must pass to use this server (pen's `server N acl`). */
  acl: number;
}

export class Server {
  /** Position in its group's list; changes only on reconfiguration. */
  index: number;
  readonly role: 'regular' | 'emergency' | 'abuse';
  address: Address;
  hostname: string | undefined;
  maxConnections: number;
  hardLimit: number;
  weight: number;
  priority: number;
  acl: number;
  admin: AdminState = 'enabled';
  /** Health as observed by checks (true until a check says otherwise). */
  healthy = true;
  /** Why the server is down, when it is. */
  downReason = '';
  /** Blacklisted (pen) or ejected (outlier detection) until this time. */
  blacklistedUntilMs = 0;
  /** Open connections (connected sessions). */
  connections = 0;
  /** Connects in progress. */
  pending = 0;
  totalConnections = 0;
  connectFailures = 0;
  connectTimeouts = 0;
  bytesToServer = 0;
  bytesFromServer = 0;

  constructor(index: number, settings: ServerSettings, role: Server['role'] = 'regular') {
    this.index = index;
    this.role = role;
    this.address = settings.address;
    this.hostname = settings.hostname;
    this.maxConnections = settings.maxConnections;
    this.hardLimit = settings.hardLimit;
    this.weight = settings.weight;
    this.priority = settings.priority;
    this.acl = settings.acl;
  }

  isBlacklisted(nowMs: number): boolean {
    return nowMs < this.blacklistedUntilMs;
  }

  /** Out of rotation for new clients: blacklisted, down, draining or in maintenance. */
  isUnavailable(nowMs: number): boolean {
    return this.admin !== 'enabled' || !this.healthy || nowMs < this.blacklistedUntilMs;
  }

  /**
   * pen's limit rule: a server at its soft limit takes no new clients, but a client that was
   * here before may still come back until the hard limit.
   */
  isFull(returningClient: boolean): boolean {
    if (this.maxConnections === 0) return false;
    const active = this.connections + this.pending;
    if (active < this.maxConnections) return false;
    return !returningClient || active >= Math.max(this.hardLimit, this.maxConnections);
  }
}
