/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted: a lookup table of a prime
 * size where each server owns a share of slots proportional to its weight. Adding or removing a
 * server moves only about 1/N of the clients, and every balancer instance with the same servers
 * builds the same table, so several machines agree on a client's server without sharing state.
 *
 * The table is built over the configured servers, not over the available ones: a client whose
 * server is down fails over like any other choice and returns when the server is back. pen's
 * weight 0 means "unset", so it counts as 1 here.
 */
import { fnv1aString } from '../ip.ts';
import type { Algorithm, AlgorithmKind, PickInput } from './algorithm.ts';
import type { Server } from '../servers/server.ts';
import { formatAddress } from '../address.ts';

export const MAGLEV_TABLE_SIZE = 65537;

/** murmur3 finaliser: spreads pen's little-endian IPv4 integers over the whole table. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function buildMaglevTable(names: readonly string[], weights: readonly number[], size = MAGLEV_TABLE_SIZE): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const n = names.length;
  if (n === 0) return table;
  const offset = names.map((name) => fnv1aString(name, 0x9747b28c) % size);
  const skip = names.map((name) => (fnv1aString(name, 0x2f6b1e43) % (size - 1)) + 1);
  const next = new Array<number>(n).fill(0);
  const maxWeight = Math.max(...weights);
  const credit = new Array<number>(n).fill(0);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i]! += weights[i]! / maxWeight;
      while (credit[i]! >= 1 && filled < size) {
        credit[i]! -= 1;
        let slot: number;
        do {
          slot = (offset[i]! + next[i]! * skip[i]!) % size;
          next[i]!++;
        } while (table[slot] !== -1);
        table[slot] = i;
        filled++;
      }
    }
  }
  return table;
}

class Maglev implements Algorithm {
  #table: Int32Array = new Int32Array(0);
  #signature = '';

  serversChanged(servers: readonly Server[]): void {
    const names = servers.map((s) => formatAddress(s.address));
    const weights = servers.map((s) => Math.max(1, s.weight));
    const signature = names.map((n, i) => `${n}*${weights[i]}`).join(',');
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#table = buildMaglevTable(names, weights);
  }

  pick(servers: readonly Server[], input: PickInput): number {
    if (servers.length === 0) return -1;
    if (this.#table.length === 0) this.serversChanged(servers);
    return this.#table[mix(input.clientHash) % this.#table.length]!;
  }
}

export const maglev: AlgorithmKind = {
  name: 'maglev',
  summary: 'Maglev consistent hashing of the client address; weights honoured; ~1/N of clients move when a server is added or removed',
  hashesClient: true,
  create: () => new Maglev(),
};
