/**
 * The interface every balancing algorithm implements: one algorithm per file, registered in
 * registry.ts. An algorithm only makes the *first* choice for a client that has no remembered
 * server; limits, ACLs and failover are the selector's job (selector.ts), as in pen.
 */
import type { Random } from '../clock.ts';
import type { Server } from '../servers/server.ts';

/** An algorithm reads it during pick() only: the selector reuses one object for every pick. */
export interface PickInput {
  /** Hash of the client address (see ip.ts penHashValue); used by hashing algorithms. */
  readonly clientHash: number;
  readonly nowMs: number;
}

export interface Algorithm {
  /** Index of the chosen regular server, or -1 when none is available. */
  pick(servers: readonly Server[], input: PickInput): number;
  /** The server set or a weight changed; algorithms with precomputed state rebuild here. */
  serversChanged?(servers: readonly Server[]): void;
}

export interface AlgorithmKind {
  /** Keyword in the config file and for --algorithm. */
  readonly name: string;
  readonly summary: string;
  /** True for algorithms that choose by client address (pen's tracking adds nothing to them). */
  readonly hashesClient: boolean;
  create(random: Random): Algorithm;
}
