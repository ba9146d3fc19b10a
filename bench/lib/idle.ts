/**
 * Idle connections held open through a balancer by separate holder processes (bench/holder.ts),
 * pinned to the load core. They are counted where they arrive, at the backend, so a balancer
 * that accepted but never connected onwards is not credited with holding them.
 */
import { join } from 'node:path';
import { bunPath, repoRoot, spawnProcess, type RunningProcess } from '../../test/harness/process.ts';
import { waitFor } from '../../test/harness/util.ts';
import type { Backend } from './backend.ts';
import type { Target } from './generator.ts';

/** Connections per holder: one file each, well inside the 20,000 files a process may open. */
export const PER_HOLDER = 9_000;
/** A holder leaves by itself after this long, even if nobody stops it. */
const HOLDER_MAX_SECONDS = 3_600;

export class IdlePool {
  readonly #holders: RunningProcess[] = [];
  #held = 0;

  constructor(
    readonly target: Target,
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
      const cmd = [bunPath(), join(repoRoot, 'bench/holder.ts'), this.target.host, String(this.target.port), String(n), String(HOLDER_MAX_SECONDS)];
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
