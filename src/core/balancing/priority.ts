/**
 * pen's priority selection (server_by_prio): the available server with the lowest `prio`
 * value; ties go to the lowest index. Used after pen's `prio` command (`-o prio`) or with
 * `--algorithm prio`; a prio field on the command line alone changes nothing, as in pen 0.34.1.
 */
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';

class Priority implements Algorithm {
  pick(servers: readonly Server[], input: PickInput): number {
    let best = -1;
    let bestPrio = Infinity;
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      if (s.isUnavailable(input.nowMs)) continue;
      if (s.priority < bestPrio) {
        bestPrio = s.priority;
        best = i;
      }
    }
    return best;
  }
}

export const priority: AlgorithmKind = {
  name: 'prio',
  summary: 'the available server with the lowest prio value',
  hashesClient: false,
  create: () => new Priority(),
};
