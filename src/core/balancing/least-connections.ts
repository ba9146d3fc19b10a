/**
 * Least connections: the available server with the fewest open connections relative to its
 * weight (weight 0 counts as 1 here, unlike pen's -W; slow start and agent
 * percentages scale it). Ties rotate, so that equal servers share
 * new connections instead of the first one taking every tie.
 */
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';

class LeastConnections implements Algorithm {
  #rotor = 0;

  pick(servers: readonly Server[], input: PickInput): number {
    const n = servers.length;
    let best = -1;
    let bestLoad = Infinity;
    const start = this.#rotor++ % Math.max(1, n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const s = servers[i]!;
      if (s.isUnavailable(input.nowMs)) continue;
      const weight = Math.max(1, s.weight) * s.weightScale(input.nowMs);
      if (weight <= 0) continue;
      const load = (s.connections + s.pending) / weight;
      if (load < bestLoad) {
        bestLoad = load;
        best = i;
      }
    }
    return best;
  }
}

export const leastConnections: AlgorithmKind = {
  name: 'leastconn',
  summary: 'fewest open connections per unit of weight; ties rotate',
  hashesClient: false,
  create: () => new LeastConnections(),
};
