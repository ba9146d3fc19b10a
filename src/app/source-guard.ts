/**
 * The per-source limits of the global config, for the balancer: connections one client address
 * holds (core/source-counts.ts) and new connections it opens per second (core/source-rates.ts),
 * both O(1) per connection. A plain connection is checked at accept; a TLS or passthrough one
 * when its gate opens, by the real client after a PROXY header (docs/hardening.md).
 */
import type { Clock } from '../core/clock.ts';
import { clientKey } from '../core/ip.ts';
import { SourceCounts } from '../core/source-counts.ts';
import { SourceRates } from '../core/source-rates.ts';
import type { GlobalConfig } from '../config/model.ts';
import type { SourceLimits } from '../control/observed.ts';

export type SourceLimitsPatch = Partial<Pick<SourceLimits, 'maxConnectionsPerSource' | 'maxNewConnectionsPerSourcePerSecond'>>;

export class SourceGuard {
  /** Connections per client address (global max_connections_per_source). */
  readonly counts = new SourceCounts();
  /** New connections per second per client address (global max_new_connections_per_source_per_second). */
  readonly rates = new SourceRates();
  readonly #global: () => GlobalConfig;
  readonly #clock: Clock;

  constructor(global: () => GlobalConfig, clock: Clock) {
    this.#global = global;
    this.#clock = clock;
  }

  /** One more connection held by `key` (a clientKey); false: over the limit (given back all the same at its end). */
  take(key: string): boolean {
    return this.counts.take(key, this.#global().maxPerSource);
  }

  give(key: string): void {
    this.counts.give(key);
  }

  /** A new connection from `key`; false: over the per-source rate. */
  rate(key: string): boolean {
    return this.rates.take(key, this.#global().maxNewPerSource, this.#clock.now());
  }

  /** A gate opens (1) or ends (-1) for a client address; false: over the limit (nothing kept). */
  gate(remoteAddress: string, delta: 1 | -1): boolean {
    const key = clientKey(remoteAddress);
    if (delta < 0) {
      this.counts.give(key);
      return true;
    }
    if (this.take(key)) return true;
    this.counts.give(key);
    return false;
  }

  gateRate(remoteAddress: string): boolean {
    return this.rate(clientKey(remoteAddress));
  }

  limits(idleEvicted: number): SourceLimits {
    const g = this.#global();
    return {
      maxConnectionsPerSource: g.maxPerSource,
      maxNewConnectionsPerSourcePerSecond: g.maxNewPerSource,
      sourcesHolding: this.counts.sources,
      sourcesRated: this.rates.sources,
      refusedForConnections: this.counts.refused,
      refusedForRate: this.rates.refused,
      idleEvicted,
    };
  }

  /** Changes the limits in the live global settings (a reload sets them from the file again). */
  set(patch: SourceLimitsPatch): string[] {
    const changes: string[] = [];
    const g = this.#global();
    if (patch.maxConnectionsPerSource !== undefined && patch.maxConnectionsPerSource !== g.maxPerSource) {
      changes.push(`max_connections_per_source ${g.maxPerSource} -> ${patch.maxConnectionsPerSource}`);
      g.maxPerSource = patch.maxConnectionsPerSource;
    }
    if (patch.maxNewConnectionsPerSourcePerSecond !== undefined && patch.maxNewConnectionsPerSourcePerSecond !== g.maxNewPerSource) {
      changes.push(`max_new_connections_per_source_per_second ${g.maxNewPerSource} -> ${patch.maxNewConnectionsPerSourcePerSecond}`);
      g.maxNewPerSource = patch.maxNewConnectionsPerSourcePerSecond;
    }
    return changes;
  }
}
