/**
 * Idle connections held open through a balancer by separate holder processes (bench/holder.ts),
 * pinned to the load core. They are counted where they arrive, at the backend, so a balancer
 * that accepted but never connected onwards is not credited with holding them. Given several
 * targets, holder k connects to target k (modulo their number).
 */
import { join } from 'node:path';
import { bunPath, repoRoot, spawnProcess, type RunningProcess } from '../../test/harness/process.ts';
import { waitFor } from '../../test/harness/util.ts';
import type { Backend } from './backend.ts';
import type { Target } from './generator.ts';

/** Connections per holder: one file each, well inside the 20,000 files a process may open. */
export const PER_HOLDER = 9_000;
/**
 * Connections held toward one loopback address and port, at most, where new connections to it
 * are measured too. Every connection comes from 127.0.0.1, and Linux's connect() looks for a
 * free local port starting with the even ones (half of 32768–60999): once they are taken toward
 * a destination, each new connect() to it searches the whole range. Measured on the bench
 * machine with no balancer: 15,000 held to one port took new connects to it from ~12,000/s to
 * ~1,000/s, while another port kept its rate; 9,000 changed nothing.
 */
export const PER_DESTINATION = 9_000;
/** A holder leaves by itself after this long, even if nobody stops it. */
const HOLDER_MAX_SECONDS = 3_600;

/** How many holders a ladder climbed from 0 starts (one per step, split at PER_HOLDER). */
export function holdersFor(ladder: readonly number[]): number {
  let count = 0;
  for (let i = 1; i < ladder.length; i++) count += Math.ceil((ladder[i]! - ladder[i - 1]!) / PER_HOLDER);
  return count;
}

export class IdlePool {
  readonly #holders: RunningProcess[] = [];
  #held = 0;

  constructor(
    readonly targets: readonly Target[],
    readonly backend: Backend,
    readonly cpu: number | null,
  ) {}

  get held(): number {
    return this.#held;
  }

  /** Opens more idle connections until `total` are held end to end. */
  async grow(total: number): Promise<void> {
    const base = this.backend.idleConnections - this.#held;
    while (this.#held < total) {
      const n = Math.min(total - this.#held, PER_HOLDER);
      const target = this.targets[this.#holders.length % this.targets.length]!;
      const cmd = [bunPath(), join(repoRoot, 'bench/holder.ts'), target.host, String(target.port), String(n), String(HOLDER_MAX_SECONDS)];
      const holder = await spawnProcess(this.cpu === null ? cmd : ['taskset', '-c', String(this.cpu), ...cmd], {
        name: 'holder',
        readiness: false,
        readyLine: /^held \d+ failed \d+$/,
        timeoutMs: 30_000 + n * 5,
      });
      this.#holders.push(holder);
      const m = /^held (\d+) failed (\d+)$/m.exec(holder.stdout());
      const held = Number(m?.[1] ?? 0);
      if (held !== n) throw new Error(`a holder opened ${held} of ${n} idle connections (${m?.[2] ?? '?'} failed)`);
      this.#held += n;
    }
    await waitFor(() => this.backend.idleConnections - base >= total, {
      timeoutMs: 30_000,
      what: `${total} idle connections to reach the backend`,
      details: () => `the backend holds ${this.backend.idleConnections - base}`,
    });
  }

  /** Closes every idle connection and waits until the backend has seen them go. */
  async close(): Promise<void> {
    const base = this.backend.idleConnections - this.#held;
    await Promise.all(this.#holders.map((h) => h.close()));
    this.#holders.length = 0;
    this.#held = 0;
    await waitFor(() => this.backend.idleConnections <= base, {
      timeoutMs: 30_000,
      what: 'idle connections to close at the backend',
      details: () => `the backend still holds ${this.backend.idleConnections - base}`,
    }).catch(() => {
      // A balancer slow to pass closes on only delays the next peer; the backend's count says so.
    });
  }
}
