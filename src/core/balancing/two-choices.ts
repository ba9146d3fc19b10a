/**
 * Power of two random choices: sample two distinct available servers at random and take the
 * less loaded (connections / weight). Nearly as good as least connections, without herding all
 * new connections onto one momentarily idle server when several balancers share servers.
 */
import type { Random } from '../clock.ts';
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';

class TwoChoices implements Algorithm {
  readonly #random: Random;
  constructor(random: Random) {
    this.#random = random;
  }

  #draw(servers: readonly Server[], nowMs: number, except: number): number {
    const n = servers.length;
    // A few random probes, then a linear fallback so that mostly-down pools still answer.
    for (let tries = 0; tries < 4; tries++) {
      const i = Math.floor(this.#random.next() * n);
      if (i !== except && !servers[i]!.isUnavailable(nowMs)) return i;
    }
    const start = Math.floor(this.#random.next() * n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (i !== except && !servers[i]!.isUnavailable(nowMs)) return i;
    }
    return -1;
  }

  pick(servers: readonly Server[], input: PickInput): number {
    if (servers.length === 0) return -1;
    const a = this.#draw(servers, input.nowMs, -1);
    if (a === -1) return -1;
    const b = this.#draw(servers, input.nowMs, a);
    if (b === -1) return a;
    const sa = servers[a]!;
    const sb = servers[b]!;
    const la = (sa.connections + sa.pending) / (Math.max(1, sa.weight) * sa.weightScale(input.nowMs));
    const lb = (sb.connections + sb.pending) / (Math.max(1, sb.weight) * sb.weightScale(input.nowMs));
    return lb < la ? b : a;
  }
}

export const twoChoices: AlgorithmKind = {
  name: 'p2c',
  summary: 'power of two random choices by connections per unit of weight',
  hashesClient: false,
  create: (random) => new TwoChoices(random),
};
