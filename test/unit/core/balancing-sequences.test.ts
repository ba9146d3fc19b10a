/**
 * Which server each new client gets, as exact sequences for small cases, beside the property
 * tests in balancing.test.ts: a row reads as a worked example of an algorithm (through the whole
 * selector, as a connection would go), and a change to an algorithm shows as a changed sequence.
 */
import { describe, expect, test } from 'bun:test';
import type { AlgorithmName } from '../../../src/core/balancing/registry.ts';
import { connectOnce, selectorFor, servers } from './helpers.ts';

interface Row {
  algorithm: AlgorithmName;
  /** One entry per server (default 1). */
  weights?: number[];
  priorities?: number[];
  /** Per server: at most this many connections (0 = no limit). */
  max?: number[];
  /** Servers blacklisted for the whole run. */
  down?: number[];
  /** Connections stay open (load builds up) instead of ending before the next client. */
  hold?: boolean;
  /** Client addresses, in order; default: a new address per client. */
  clients?: string[];
  /** Server index chosen for each client; null when refused. */
  expect: (number | null)[];
  why: string;
}

const rows: Row[] = [
  { algorithm: 'roundrobin', weights: [1, 1, 1], expect: [1, 2, 0, 1, 2, 0], why: 'in turn, starting after server 0 (pen starts after the last one chosen)' },
  { algorithm: 'roundrobin', weights: [3, 1], expect: [1, 0, 1, 0], why: 'weights do not matter to round robin' },
  { algorithm: 'roundrobin', weights: [1, 1, 1], down: [1], expect: [2, 0, 2, 0], why: 'a blacklisted server is skipped' },
  { algorithm: 'roundrobin', weights: [1, 1, 1], max: [0, 1, 0], hold: true, expect: [1, 2, 0, 2, 2, 0], why: 'a full server’s turn goes to the next one (the turn still passes it)' },
  { algorithm: 'weight', weights: [3, 1], hold: true, expect: [0, 1, 0, 0, 0, 1, 0, 0], why: 'fewest connections per weight; ties to the lowest index' },
  { algorithm: 'weight', weights: [1, 2, 1], hold: true, expect: [0, 1, 2, 1, 0, 1, 2, 1], why: 'a weight-2 server takes every other connection' },
  { algorithm: 'weight', weights: [3, 1], expect: [0, 0, 0, 0], why: 'short connections: every tie goes to the first server, as in pen' },
  { algorithm: 'weight', weights: [0, 1], hold: true, expect: [1, 1, 1], why: 'weight 0 excludes a server' },
  { algorithm: 'prio', priorities: [2, 0, 1], expect: [1, 1, 1], why: 'the lowest prio value' },
  { algorithm: 'prio', priorities: [2, 0, 1], down: [1], expect: [2, 2, 2], why: 'the lowest prio among the available' },
  { algorithm: 'prio', priorities: [2, 0, 0], expect: [1, 1], why: 'ties to the lowest index' },
  { algorithm: 'hash', weights: [1, 1, 1], clients: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.1'], expect: [2, 0, 1, 2, 2], why: 'pen: the IPv4 address as a little-endian integer, modulo 3' },
  { algorithm: 'hash', weights: [1, 1], clients: ['192.168.1.10', '192.168.1.11', '193.168.1.10'], expect: [0, 0, 1], why: 'little-endian: modulo 2 only the first byte counts' },
  { algorithm: 'hash', weights: [1, 1, 1], down: [2], clients: ['10.0.0.1', '10.0.0.2'], expect: [0, 0], why: 'the hashed server is down: the next index' },
  { algorithm: 'leastconn', weights: [1, 1, 1], hold: true, expect: [0, 1, 2, 0, 1, 2], why: 'fewest connections, ties rotate' },
  { algorithm: 'leastconn', weights: [1, 1, 1], expect: [0, 1, 2, 0], why: 'short connections: ties still rotate' },
  { algorithm: 'leastconn', weights: [2, 1], hold: true, expect: [0, 1, 0, 1, 0, 0], why: 'per unit of weight' },
  { algorithm: 'leastconn', weights: [0, 1], hold: true, expect: [0, 1, 0, 1], why: 'weight 0 counts as 1 (unlike weight)' },
];

const NOW = 1_000_000;

describe('balancing sequences: the server each new client gets', () => {
  test.each(rows.map((r) => [`${r.algorithm} ${JSON.stringify({ ...r, algorithm: undefined, expect: undefined, why: undefined })}: ${r.why}`, r] as const))('%s', (_name, row) => {
    const n = Math.max(row.weights?.length ?? 0, row.priorities?.length ?? 0, row.max?.length ?? 0);
    const list = servers(
      n,
      Array.from({ length: n }, (_, i) => ({ weight: row.weights?.[i] ?? 1, priority: row.priorities?.[i] ?? 0, maxConnections: row.max?.[i] ?? 0 })),
    );
    const { selector, clock } = selectorFor(list, row.algorithm);
    clock.advance(NOW - clock.now());
    for (const i of row.down ?? []) list[i]!.blacklistedUntilMs = NOW + 60_000;
    const chosen = row.expect.map((_, k) => connectOnce(selector, row.clients?.[k] ?? `198.51.100.${k + 1}`, row.hold === true));
    expect(chosen).toEqual(row.expect);
  });
});
