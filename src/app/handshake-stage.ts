/**
 * The handshake stage of a TLS or passthrough listener, which ListenerRuntime delegates its
 * GatedAcceptor bookkeeping to: admitting a new gate (per-source rate and count, the -x bound
 * with the oldest unfinished gate given up, the descriptor budget), the open gates in order,
 * and the counts of successes and failures by reason. The counters stay on the listener, where
 * workers may replace them with accessors into shared memory, so the stage writes them there.
 */
import { OrderedList } from '../core/ordered-list.ts';
import type { GlobalConfig } from '../config/model.ts';
import type { ConnectionFacts, Gate, GateFailure } from '../dataplane/gate.ts';

/** Counters of one TLS listener; read by SIGUSR1 stats and (later) metrics. */
export interface HandshakeStats {
  /** Handshakes (or ClientHellos read) that succeeded. */
  ok: number;
  /** Of those, resumed TLS sessions. */
  resumed: number;
  /** Connections in their gate now. */
  inProgress: number;
  /** Failures by reason. */
  failures: Record<string, number>;
  /** The latest failure with its detail (for operators: "why do handshakes fail?"). */
  last: string | null;
}

export function newHandshakeStats(): HandshakeStats {
  return { ok: 0, resumed: 0, inProgress: 0, failures: {}, last: null };
}

/** What the stage needs of the process (RuntimeHooks provides it). */
export interface HandshakeStageHooks {
  /** The live global settings (read each time: a reload replaces them). */
  readonly global: GlobalConfig;
  gateDescriptor?(delta: 1 | -1): boolean;
  gateSource?(remoteAddress: string, delta: 1 | -1): boolean;
  gateRate?(remoteAddress: string): boolean;
}

/** The listener's counters that the stage updates. */
export interface HandshakeCounters {
  accepted: number;
  handshakeFailures: number;
  readonly handshakes: HandshakeStats;
}

export class HandshakeStage {
  readonly #counters: HandshakeCounters;
  readonly #hooks: HandshakeStageHooks;
  /** Gates not finished yet, oldest first: the oldest is given up when the stage is full. */
  readonly #gates = new OrderedList<Gate>();

  constructor(counters: HandshakeCounters, hooks: HandshakeStageHooks) {
    this.#counters = counters;
    this.#hooks = hooks;
  }

  /** A connection wants a gate; false: refused (and counted). */
  opened(source: string, counted: boolean): boolean {
    if (!counted) this.#counters.accepted++;
    const h = this.#counters.handshakes;
    if (this.#hooks.gateRate?.(source) === false) {
      this.#refused('rate-limit');
      return false;
    }
    if (this.#hooks.gateSource?.(source, 1) === false) {
      // Counted as the handshake stage being full for this client (failure reasons are a fixed set).
      this.#refused('handshake-limit');
      return false;
    }
    // -x bounds the handshake stage; when it is full, the oldest unfinished handshake is given
    // up for this one (it had the longest to finish), so that idle connections that never send a
    // ClientHello cannot keep real clients out (docs/hardening.md).
    if (h.inProgress >= this.#hooks.global.maxConnections) this.#gates.first()?.fail('evicted', 'given up for a newer connection: the handshake stage was full', true);
    // Out of descriptors counts as the handshake stage being full (the listener's failure reasons
    // are a fixed set shared with workers); the balancer counts and logs it as a resource failure.
    if (h.inProgress >= this.#hooks.global.maxConnections || this.#hooks.gateDescriptor?.(1) === false) {
      this.#hooks.gateSource?.(source, -1);
      this.#refused('handshake-limit');
      return false;
    }
    h.inProgress++;
    return true;
  }

  #refused(reason: GateFailure): void {
    const h = this.#counters.handshakes;
    h.failures[reason] = (h.failures[reason] ?? 0) + 1;
    this.#counters.handshakeFailures++;
  }

  started(gate: Gate): void {
    this.#gates.push(gate);
  }

  failed(reason: GateFailure, detail: string, source: string, gate?: Gate): void {
    const h = this.#counters.handshakes;
    h.inProgress--;
    if (gate !== undefined) this.#gates.delete(gate);
    this.#hooks.gateDescriptor?.(-1);
    this.#hooks.gateSource?.(source, -1);
    this.#counters.handshakeFailures++;
    h.failures[reason] = (h.failures[reason] ?? 0) + 1;
    h.last = `${reason}: ${detail}`;
  }

  /** A gate finished: counted, and its descriptor given back (the session takes its own). */
  passed(facts: ConnectionFacts, gate?: Gate): void {
    const h = this.#counters.handshakes;
    h.inProgress--;
    if (gate !== undefined) this.#gates.delete(gate);
    this.#hooks.gateDescriptor?.(-1);
    h.ok++;
    if (facts.resumed) h.resumed++;
  }
}
