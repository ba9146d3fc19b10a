/**
 * pen's `-h` (pen_hash): client address modulo the number of servers. Deliberately blind to
 * availability, as in pen: if the hashed server is unavailable the selector fails over to the
 * next index, so a client keeps its server whenever that server is up.
 */
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';

class SourceHash implements Algorithm {
  pick(servers: readonly Server[], input: PickInput): number {
    return servers.length === 0 ? -1 : input.clientHash % servers.length;
  }
}

export const sourceHash: AlgorithmKind = {
  name: 'hash',
  summary: "pen's -h: client address modulo the server count",
  hashesClient: true,
  create: () => new SourceHash(),
};
