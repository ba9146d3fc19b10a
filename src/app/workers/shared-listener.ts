/**
 * A listener's counters in shared memory (docs/workers.md): the failure reasons a gate counts,
 * and the accessors that put a ListenerRuntime's counters on this worker's slots (worker) or
 * make them sums over the workers (primary). Used by SharedState.bindListener.
 */
import type { GateFailure } from '../../dataplane/gate.ts';
import { LISTENER_COUNTERS, type listenerLayout } from '../../core/workers/layout.ts';

/** Why a TLS or passthrough connection never got past its gate, in a fixed order (one counter each). */
export const GATE_FAILURES = [
  'timeout',
  'client-closed',
  'client-reset',
  'handshake-limit',
  'not-tls',
  'sslv2',
  'hello-too-large',
  'malformed-hello',
  'protocol-version',
  'no-shared-cipher',
  'no-client-cert',
  'bad-client-cert',
  'no-alpn-match',
  'unknown-ca',
  'handshake-failed',
  'shutdown',
  'evicted',
  'rate-limit',
] as const satisfies readonly GateFailure[];
// A reason added to GateFailure but not above fails to compile here.
const _allGateFailures: readonly (typeof GATE_FAILURES)[number][] = [] as GateFailure[];
void _allGateFailures;

/** A listener's counters, as ListenerRuntime has them. */
export interface ListenerCounters {
  accepted: number;
  active: number;
  bytesFromClients: number;
  bytesToClients: number;
  handshakeFailures: number;
  handshakes: { ok: number; resumed: number; inProgress: number; failures: Record<string, number> };
}

/** Where each shared listener counter is on the ListenerRuntime. */
const LISTENER_FIELDS: Record<(typeof LISTENER_COUNTERS)[number], [sub: 'handshakes' | null, field: string]> = {
  accepted: [null, 'accepted'],
  active: [null, 'active'],
  bytesFromClients: [null, 'bytesFromClients'],
  bytesToClients: [null, 'bytesToClients'],
  handshakeFailures: [null, 'handshakeFailures'],
  handshakesOk: ['handshakes', 'ok'],
  handshakesResumed: ['handshakes', 'resumed'],
  handshakesInProgress: ['handshakes', 'inProgress'],
};

/** An accessor property in place of a plain counter field. */
export const defineCounter = (o: object, name: string, get: () => number, set: (v: number) => void): void => {
  Object.defineProperty(o, name, { get, set, enumerable: true, configurable: true });
};

/** Makes `counters` read and write the listener block `f64` (laid out by `L`) as `w` (-1: the primary). */
export function shareListenerCounters(f64: Float64Array, L: ReturnType<typeof listenerLayout>, w: number, workers: number, counters: ListenerCounters): void {
  const sum = (index: (worker: number) => number): number => {
    let n = 0;
    for (let x = 0; x < workers; x++) n += f64[index(x)]!;
    return n;
  };
  LISTENER_COUNTERS.forEach((name, c) => {
    const [sub, field] = LISTENER_FIELDS[name];
    const target = sub === null ? counters : counters[sub];
    if (w >= 0) {
      const at = L.counter(w, c);
      defineCounter(target, field, () => f64[at]!, (v) => (f64[at] = v));
    } else {
      defineCounter(target, field, () => sum((x) => L.counter(x, c)), () => {});
    }
  });
  if (w >= 0) {
    const failures: Record<string, number> = {};
    GATE_FAILURES.forEach((r, i) => {
      const at = L.failure(w, i);
      defineCounter(failures, r, () => f64[at]!, (v) => (f64[at] = v));
    });
    counters.handshakes.failures = failures;
  } else {
    Object.defineProperty(counters.handshakes, 'failures', {
      enumerable: true,
      configurable: true,
      get: () => {
        const out: Record<string, number> = {};
        GATE_FAILURES.forEach((r, i) => {
          const n = sum((x) => L.failure(x, i));
          if (n > 0) out[r] = n;
        });
        return out;
      },
      set: () => {},
    });
  }
}
