/**
 * Connections held per client address, for the per-source limit (global
 * `max_connections_per_source`): one map entry per address that holds a connection now, O(1) per
 * accept and per end, removed when its count drops to 0 so that the map never outgrows the
 * connections. A flood of idle connections from one address then takes at most its share of the
 * process-wide -x, and a client from another address is still served (docs/hardening.md).
 */
export class SourceCounts {
  readonly #counts = new Map<string, number>();
  /** Connections refused for the limit, since start. */
  refused = 0;

  /** Counts one more connection of `source`; false (counted all the same: give it back) beyond `max` (0 = no limit). */
  take(source: string, max: number): boolean {
    const n = (this.#counts.get(source) ?? 0) + 1;
    this.#counts.set(source, n);
    if (max > 0 && n > max) {
      this.refused++;
      return false;
    }
    return true;
  }

  give(source: string): void {
    const n = (this.#counts.get(source) ?? 0) - 1;
    if (n <= 0) this.#counts.delete(source);
    else this.#counts.set(source, n);
  }

  /** Connections `source` holds now. */
  held(source: string): number {
    return this.#counts.get(source) ?? 0;
  }

  /** Addresses holding at least one connection. */
  get sources(): number {
    return this.#counts.size;
  }
}
