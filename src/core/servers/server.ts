/**
 * A server (one backend address) with pen's per-server settings and its live counters.
 * Counters are plain fields updated in O(1) on the connection path and read in O(1) by stats.
 *
 * State has two axes, as in HAProxy: what the operator set (`admin`: enabled, drain,
 * maintenance) and what was observed (`healthy` from active checks, `agent` from the server's
 * own agent, `blacklistedUntilMs` from failed connects). The selector asks one question,
 * `isUnavailable(now)`, which is kept cheap: the axes fold into one cached flag whenever one of
 * them changes, so the hot path reads a boolean and compares one time.
 */
import type { Address } from '../address.ts';
import type { AgentState } from '../health/agent-check.ts';
import type { OutlierState } from '../health/outlier.ts';
import { slowStartFactor } from '../health/slow-start.ts';
import { Ring } from '../ring.ts';
import { LatencyHistogram } from './latency-histogram.ts';

/** State changes kept per server for the API and the dashboard. */
export const STATE_HISTORY_MAX = 10;

/** One state change: when, to what, and why (the same words as the log line). */
export interface StateChange {
  readonly atMs: number;
  /** A ServerStatus, or what changed on another axis (`agent drain`, `enabled`). */
  readonly state: string;
  readonly reason: string;
}

/** Operator-set state, separate from what health checks observe (HAProxy's admin axis). */
export type AdminState = 'enabled' | 'drain' | 'maintenance';

/** What a user sees: the one state that explains why a server takes new clients or not. */
export type ServerStatus = 'up' | 'starting' | 'down' | 'ejected' | 'drain' | 'maintenance';

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

export class Server implements OutlierState {
  /** Position in its group's list (primaries and backups are numbered apart); changes only on reconfiguration. */
  index: number;
  readonly role: 'regular' | 'backup' | 'emergency' | 'abuse';
  address: Address;
  // Set by applySettings(), from the constructor and on reconfiguration.
  hostname: string | undefined;
  maxConnections!: number;
  hardLimit!: number;
  weight!: number;
  priority!: number;
  acl!: number;
  #admin: AdminState = 'enabled';
  #healthy = true;
  /** What the server's agent reported last ('up' = nothing against it). */
  #agent: AgentState = 'up';
  /** admin/health/agent folded: out of rotation whatever the time. */
  #out = false;
  /** Why the server is down, when it is: which check, what it saw. */
  downReason = '';
  /** Blacklisted (pen) or ejected (outlier detection) until this time. */
  blacklistedUntilMs = 0;
  /** Outlier detection: failures in a row, ejections so far, length of the last one. */
  consecutiveFailures = 0;
  ejections = 0;
  lastEjectionMs = 0;
  /** Slow start: the ramp runs from rampStartMs to rampEndMs (0 = no ramp). */
  rampStartMs = 0;
  rampEndMs = 0;
  /** Weight scale from the agent (percent / 100); 1 when the agent said nothing. */
  agentScale = 1;
  /** Checks go to this port / host instead of the server's own, when set (a health endpoint). */
  checkPort: number | null = null;
  checkAddress: string | null = null;
  /** Round robin under slow start or agent weight: credit towards the next admission. */
  rampCredit = 0;
  /** Open connections (connected sessions). */
  connections = 0;
  /** Connects in progress. */
  pending = 0;
  totalConnections = 0;
  connectFailures = 0;
  connectTimeouts = 0;
  /** Resets or closes before the server sent a byte (counted when outlier detection watches them). */
  earlyResets = 0;
  bytesToServer = 0;
  bytesFromServer = 0;
  /** State changes, for stats. */
  downTransitions = 0;
  upTransitions = 0;
  checksPassed = 0;
  checksFailed = 0;
  /** Time of the last state change (ms), 0 if none. */
  lastChangeMs = 0;
  /** Who or what set the operator state last (`admin API`, `operator`, `config`), and when. */
  adminReason = '';
  adminSinceMs = 0;
  /** Why the current (or last) ejection happened, and when it began. */
  ejectReason = '';
  ejectedAtMs = 0;
  /** The last active check: when (0 = never), its outcome, what it saw. */
  lastCheckMs = 0;
  lastCheckPassed = false;
  lastCheckDetail = '';
  /** The last state changes (O(1) per change), for the API and the dashboard. */
  readonly history = new Ring<StateChange>(STATE_HISTORY_MAX);
  /** Connect latency (O(1) per connect), for percentiles and /metrics. */
  readonly connectLatency = new LatencyHistogram();

  constructor(index: number, settings: ServerSettings, role: Server['role'] = 'regular') {
    this.index = index;
    this.role = role;
    this.address = settings.address;
    this.applySettings(settings);
  }

  /** The operator's settings (not the address, which identifies the server across reloads). */
  applySettings(settings: Omit<ServerSettings, 'address'>): void {
    this.hostname = settings.hostname;
    this.maxConnections = settings.maxConnections;
    this.hardLimit = settings.hardLimit;
    this.weight = settings.weight;
    this.priority = settings.priority;
    this.acl = settings.acl;
  }

  get admin(): AdminState {
    return this.#admin;
  }
  set admin(v: AdminState) {
    this.#admin = v;
    this.#fold();
  }
  get healthy(): boolean {
    return this.#healthy;
  }
  set healthy(v: boolean) {
    this.#healthy = v;
    this.#fold();
  }
  get agent(): AgentState {
    return this.#agent;
  }
  set agent(v: AgentState) {
    this.#agent = v;
    this.#fold();
  }

  #fold(): void {
    this.#out = this.#admin !== 'enabled' || !this.#healthy || this.#agent !== 'up';
  }

  isBlacklisted(nowMs: number): boolean {
    return nowMs < this.blacklistedUntilMs;
  }

  /** Keeps a state change in the history; `lastChange` also stamps lastChangeMs. */
  noteChange(nowMs: number, state: string, reason: string, lastChange = true): void {
    if (lastChange) this.lastChangeMs = nowMs;
    this.history.push({ atMs: nowMs, state, reason });
  }

  /** Out of rotation for new clients: blacklisted, down, draining or in maintenance. */
  isUnavailable(nowMs: number): boolean {
    return this.#out || nowMs < this.blacklistedUntilMs;
  }

  /** Out of rotation by state (operator, checks or agent), ejections aside. */
  get isOut(): boolean {
    return this.#out;
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

  /**
   * Takes a connect slot for a client if the limit allows (pen's limit rule, see isFull): counts
   * it as pending and returns true, or returns false and changes nothing. One step, so that a
   * server shared by worker processes (shared-server.ts) can check and count atomically.
   */
  reserve(returningClient: boolean): boolean {
    if (this.isFull(returningClient)) return false;
    this.pending++;
    return true;
  }

  /** A reserved connect ended without a connection (failed, timed out, abandoned). */
  unreserve(): void {
    if (this.pending > 0) this.pending--;
  }

  /** A reserved connect succeeded: it is now an open connection. */
  connectedNow(): void {
    this.pending--;
    this.connections++;
    this.totalConnections++;
  }

  /** An open connection ended. */
  release(): void {
    if (this.connections > 0) this.connections--;
  }

  /** Starts a slow-start ramp (the server just returned to rotation). */
  startRamp(nowMs: number, slowStartMs: number): void {
    if (slowStartMs <= 0) return;
    this.rampStartMs = nowMs;
    this.rampEndMs = nowMs + slowStartMs;
    this.rampCredit = 0;
  }

  /**
   * Multiplier of the configured weight: the agent's percentage times the slow-start share.
   * One comparison when no ramp runs.
   */
  weightScale(nowMs: number): number {
    if (nowMs >= this.rampEndMs) return this.agentScale;
    return this.agentScale * slowStartFactor(nowMs - this.rampStartMs, this.rampEndMs - this.rampStartMs);
  }

  /**
   * For algorithms that ignore weights (round robin): admits a server whose scale is below 1 on
   * only that share of the turns that land on it, deterministically (a credit counter).
   */
  admitsByScale(nowMs: number): boolean {
    const scale = this.weightScale(nowMs);
    if (scale >= 1) return true;
    this.rampCredit += scale;
    if (this.rampCredit < 1) return false;
    this.rampCredit -= 1;
    return true;
  }

  /** The state a user sees. */
  status(nowMs: number): ServerStatus {
    if (this.#admin === 'maintenance' || this.#agent === 'maint') return 'maintenance';
    if (!this.#healthy || this.#agent === 'down') return 'down';
    if (this.#admin === 'drain' || this.#agent === 'drain') return 'drain';
    if (nowMs < this.blacklistedUntilMs) return 'ejected';
    if (nowMs < this.rampEndMs) return 'starting';
    return 'up';
  }
}
