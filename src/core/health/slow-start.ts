/**
 * Slow start: a server that comes back (from down, maintenance or an ejection) gets a share of
 * new connections that grows linearly from a small floor to its full weight over `slowStartMs`,
 * so that a cold server is not flooded the moment it returns (HAProxy `slowstart`, Envoy
 * slow_start_config). Pure functions of elapsed time; the server caches the end of the ramp so
 * that the hot path pays one comparison when no ramp is running.
 */

/** The smallest share a ramping server gets, so that it is never starved completely. */
export const SLOW_START_FLOOR = 0.05;

/** Share of full weight (SLOW_START_FLOOR..1) after `sinceMs` of a `slowStartMs` ramp. */
export function slowStartFactor(sinceMs: number, slowStartMs: number): number {
  if (slowStartMs <= 0 || sinceMs >= slowStartMs) return 1;
  if (sinceMs <= 0) return SLOW_START_FLOOR;
  return Math.max(SLOW_START_FLOOR, sinceMs / slowStartMs);
}

/** Effective weight of a server of `weight` that returned `sinceMs` ago. */
export function slowStartWeight(weight: number, sinceMs: number, slowStartMs: number): number {
  return weight * slowStartFactor(sinceMs, slowStartMs);
}
