/**
 * Our own resource exhaustion (out of file descriptors), counted and reported without blaming
 * the servers. A budget of descriptors for client connections keeps Fulcrum under its
 * open-files limit (a client beyond it is closed at once with `no-resources`); a connect that
 * still fails for want of a descriptor ends its client the same way (the session does that).
 * Both land in `failed()`, where they are counted and reported by
 * at most one log line per interval, so that a flood cannot flood the log too. Counting the open
 * descriptors reads /proc/self/fd, so it is done only when a line is written.
 */
import type { Clock } from '../core/clock.ts';
import { lingeringSockets } from '../dataplane/linger.ts';
import { descriptorUsage } from '../dataplane/resources.ts';

/**
 * Descriptors kept free for everything that is not a client connection (health checks, log
 * files, the control and admin ports, the runtime's own), on top of those open at start.
 */
export const DESCRIPTOR_RESERVE = 16;

/** At most one "out of file descriptors" line per this many ms. */
export const RESOURCE_LOG_INTERVAL_MS = 10_000;

export class ResourceGuard {
  /** Connects that failed for want of our own resources, since start (this process). */
  failures = 0;
  readonly #clock: Clock;
  readonly #log: (message: string) => void;
  #lastLogMs = Number.NEGATIVE_INFINITY;
  #unlogged = 0;
  /** Descriptors client connections may hold (open-files limit − open at start − reserve). */
  #budget = Number.POSITIVE_INFINITY;
  /** Descriptors held by client connections: 2 per session (client + server), 1 per gate. */
  #held = 0;

  constructor(clock: Clock, log: (message: string) => void) {
    this.#clock = clock;
    this.#log = log;
  }

  /**
   * Once, after the listeners are bound: the budget. The runtime accepts for us, and once an
   * accept fails for want of a descriptor it stops accepting for good (Bun 1.4: observed, the
   * listener never recovers), so Fulcrum must refuse clients *before* the limit is reached.
   */
  measure(): void {
    const u = descriptorUsage();
    if (u !== null && u.limit !== null) this.#budget = Math.max(4, u.limit - u.open - DESCRIPTOR_RESERVE);
  }

  /** Takes `n` descriptors for a connection; false (still taken: give them back) when over budget. */
  take(n: number): boolean {
    this.#held += n;
    return this.#held + lingeringSockets() <= this.#budget;
  }

  give(n: number): void {
    this.#held -= n;
  }

  get held(): number {
    return this.#held;
  }

  get budget(): number {
    return this.#budget;
  }

  failed(): void {
    this.failures++;
    const now = this.#clock.now();
    if (now - this.#lastLogMs < RESOURCE_LOG_INTERVAL_MS) {
      this.#unlogged++;
      return;
    }
    this.#lastLogMs = now;
    const u = descriptorUsage();
    const usage = u === null ? 'unknown' : `${u.open} in use of ${u.limit ?? 'unlimited'}`;
    const more = this.#unlogged > 0 ? ` (${this.#unlogged} more failures since the last line)` : '';
    this.#unlogged = 0;
    this.#log(`out of file descriptors: ${usage}; clients are closed (no-resources), servers are not blamed${more}`);
  }
}
