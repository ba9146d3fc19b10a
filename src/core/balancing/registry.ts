/** Every balancing algorithm by its config keyword. Adding one = one file + one line here. */
import type { AlgorithmKind } from './algorithm.ts';
import { leastConnections } from './least-connections.ts';
import { maglev } from './maglev.ts';
import { priority } from './priority.ts';
import { roundRobin } from './round-robin.ts';
import { sourceHash } from './source-hash.ts';
import { twoChoices } from './two-choices.ts';
import { weightedLeastLoad } from './weighted-least-load.ts';

export const algorithms = {
  roundrobin: roundRobin,
  weight: weightedLeastLoad,
  prio: priority,
  hash: sourceHash,
  leastconn: leastConnections,
  p2c: twoChoices,
  maglev,
} as const satisfies Record<string, AlgorithmKind>;

export type AlgorithmName = keyof typeof algorithms;

export const algorithmNames = Object.keys(algorithms) as AlgorithmName[];

export function isAlgorithmName(name: string): name is AlgorithmName {
  return Object.hasOwn(algorithms, name);
}
