/**
 * A group's counters as a whole (queue and connection lifecycle, read in O(1)) and the parts of
 * a group that workers keep in shared memory (app/workers/shared-state.ts); GroupRuntime
 * (runtime.ts) uses its own or the shared ones.
 */
import type { ClientTracker } from '../core/clients/client-table.ts';
import type { QueueStats } from './group-queue.ts';

/** Counters of the group as a whole (queue and connection lifecycle); read in O(1). */
export interface GroupStats extends QueueStats {
  /** Closed for their age (max_connection_age). */
  maxAgeClosed: number;
  /** Closed because their server went down (on_server_down: close). */
  closedOnDown: number;
}

/** What a group keeps in shared memory when workers share it (app/workers/shared-state.ts). */
export interface GroupSharedParts {
  clients: ClientTracker;
  stats: GroupStats;
  /** Publishes this worker's queue length; the sum over the workers (primary). */
  setQueueLength(n: number): void;
  queueLength(): number;
}
