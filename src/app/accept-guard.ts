/**
 * What a new session must get past before admission, in one place: our own descriptor budget
 * (resource-guard.ts) and its client's per-source count and rate (source-guard.ts). What it takes
 * here goes back when the session ends, whatever ended it; a TLS or passthrough connection took
 * its source's count and rate when its gate opened, and one descriptor for the gate.
 */
import type { TerminationReason } from '../core/termination.ts';
import type { ResourceGuard } from './resource-guard.ts';
import type { SourceGuard } from './source-guard.ts';

export class AcceptGuard {
  constructor(
    readonly resources: ResourceGuard,
    readonly sources: SourceGuard,
  ) {}

  /**
   * Takes what a new session holds (two descriptors; its source's count unless its gate took it)
   * and says why it must be refused, or null. Everything taken is given back by `release`.
   */
  take(key: string, gated: boolean, stopping: boolean): TerminationReason | null {
    const fits = this.resources.take(2);
    const withinSource = gated || this.sources.take(key);
    const withinRate = gated || this.sources.rate(key);
    if (stopping) return 'shutdown';
    if (!fits) {
      this.resources.failed();
      return 'no-resources';
    }
    if (!withinRate) return 'rate-limit';
    if (!withinSource) return 'source-limit';
    return null;
  }

  /** A session ended: its descriptors and its source's count go back. */
  release(key: string): void {
    this.resources.give(2);
    this.sources.give(key);
  }

  /** A TLS or passthrough gate opens (one descriptor) or ends; false: over the descriptor budget. */
  gateDescriptor(delta: 1 | -1): boolean {
    if (delta < 0) {
      this.resources.give(1);
      return true;
    }
    if (this.resources.take(1)) return true;
    this.resources.give(1);
    this.resources.failed();
    return false;
  }
}
