/**
 * The balancer's totals since start, by outcome. Its own file so that the balancer (which keeps
 * them) and the workers' shared state (which keeps them in shared memory) both import it without
 * importing each other.
 */
import type { TerminationReason } from '../core/termination.ts';

/** Totals since start, by outcome; read in O(1). */
export interface Totals {
  accepted: number;
  connected: number;
  finished: number;
  queued: number;
  bytesFromClients: number;
  bytesToClients: number;
  ends: Partial<Record<TerminationReason, number>>;
}

/** Zeroed totals for a process that keeps its own. */
export function newTotals(): Totals {
  return { accepted: 0, connected: 0, finished: 0, queued: 0, bytesFromClients: 0, bytesToClients: 0, ends: {} };
}
