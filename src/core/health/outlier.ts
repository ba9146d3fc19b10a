/**
 * Passive health (outlier detection): failures seen on real traffic — connect refused, connect
 * timeout, and optionally a reset or close before the server sent anything — count against a
 * server. After `consecutiveFailures` in a row it is ejected (its `blacklistedUntilMs` is set) for
 * `baseEjectionMs × 2^(ejections so far)`, at most `maxEjectionMs`. It returns on its own when the
 * time is up, or earlier when an active check passes. The ejection count starts over once the
 * server has stayed in rotation, without a failure, for as long as its last ejection lasted.
 *
 * pen's `-b` blacklist is the simple case: one failure ejects for a fixed time
 * (consecutiveFailures 1, base = max = the blacklist time).
 */

export interface OutlierSettings {
  /** Failures in a row that eject the server (≥ 1). */
  consecutiveFailures: number;
  /** First ejection time; 0 disables ejection (pen's `-b 0`). */
  baseEjectionMs: number;
  /** Upper bound of the growing ejection time; below base it counts as base. */
  maxEjectionMs: number;
}

/** The per-server fields this policy reads and writes (Server has them). */
export interface OutlierState {
  consecutiveFailures: number;
  /** Ejections since the server last proved itself; grows the next ejection time. */
  ejections: number;
  blacklistedUntilMs: number;
  /** Length of the last ejection, to know when the server has proved itself. */
  lastEjectionMs: number;
}

export function ejectionMs(settings: OutlierSettings, previousEjections: number): number {
  const base = settings.baseEjectionMs;
  const max = Math.max(base, settings.maxEjectionMs);
  // 2^30 × base overflows nothing that matters: the bound applies long before.
  return Math.min(max, base * 2 ** Math.min(previousEjections, 30));
}

/**
 * A failure on real traffic. Returns the ejection time when this failure ejects the server,
 * else 0.
 */
export function recordFailure(state: OutlierState, settings: OutlierSettings, nowMs: number): number {
  state.consecutiveFailures++;
  if (settings.baseEjectionMs <= 0) return 0;
  if (state.consecutiveFailures < Math.max(1, settings.consecutiveFailures)) return 0;
  const ms = ejectionMs(settings, state.ejections);
  state.ejections++;
  state.consecutiveFailures = 0;
  state.blacklistedUntilMs = nowMs + ms;
  state.lastEjectionMs = ms;
  return ms;
}

/** A success on real traffic: the failure streak ends; long enough in rotation, the ejections are forgotten. */
export function recordSuccess(state: OutlierState, nowMs: number): void {
  state.consecutiveFailures = 0;
  if (state.ejections > 0 && nowMs >= state.blacklistedUntilMs + state.lastEjectionMs) state.ejections = 0;
}
