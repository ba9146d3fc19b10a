/**
 * pen's `-W` (server_by_weight): the available server with the lowest connections / weight;
 * weight 0 excludes a server; ties go to the lowest index. pen's manual calls it "weight", but
 * it is weighted least-connections.
 */
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';

class WeightedLeastLoad implements Algorithm {
  pick(servers: readonly Server[], input: PickInput): number {
    let best = -1;
    let bestLoad = Infinity;
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      if (s.weight === 0 || s.isUnavailable(input.nowMs)) continue;
      const weight = s.weight * s.weightScale(input.nowMs);
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

export const weightedLeastLoad: AlgorithmKind = {
  name: 'weight',
  summary: "pen's -W: fewest connections per unit of weight; weight 0 excludes a server",
  hashesClient: false,
  create: () => new WeightedLeastLoad(),
};
