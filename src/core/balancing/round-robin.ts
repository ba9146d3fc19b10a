/**
 * pen's round robin (server_by_roundrobin): start after the last server chosen and take the
 * next one that is available; -1 after a full turn. A server in slow start, or whose agent
 * reported a reduced weight, is taken on only that share of the turns that land on it.
 */
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';

class RoundRobin implements Algorithm {
  #last = 0;

  pick(servers: readonly Server[], input: PickInput): number {
    const n = servers.length;
    if (n === 0) return -1;
    let i = this.#last % n;
    for (let step = 0; step < n; step++) {
      i = (i + 1) % n;
      const s = servers[i]!;
      if (!s.isUnavailable(input.nowMs) && s.admitsByScale(input.nowMs)) return (this.#last = i);
    }
    return -1;
  }
}

export const roundRobin: AlgorithmKind = {
  name: 'roundrobin',
  summary: 'each new client goes to the next available server in turn (pen default)',
  hashesClient: false,
  create: () => new RoundRobin(),
};
