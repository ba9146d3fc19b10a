/**
 * The same scenario through the real pen 0.34.1 and through Fulcrum: the routing must match.
 * Clients use distinct source addresses on 127.0.0.0/8, since pen tracks and hashes by address.
 */
import { describe, expect, test } from 'bun:test';
import { freePort, penAvailable, useHarness, whoServes, type Harness } from '../harness/index.ts';

const h = useHarness();

interface Scenario {
  name: string;
  options: string[];
  /** Server specs after host:port, e.g. ':0:0:2' for a weight; one per server. */
  serverFields?: string[];
  /** Source addresses of successive clients. */
  clients: string[];
}

const sources = (ids: number[]): string[] => ids.map((i) => `127.0.0.${i}`);

const scenarios: Scenario[] = [
  { name: 'default: round robin + client tracking', options: [], clients: sources([1, 2, 3, 4, 1, 2, 5, 3, 6, 1]) },
  { name: '-r: round robin without tracking', options: ['-r'], clients: sources([1, 1, 1, 2, 2, 3, 1]) },
  { name: '-h: hash of the client address', options: ['-h'], clients: sources([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 200, 1]) },
  { name: '-h -r: hash, no tracking', options: ['-h', '-r'], clients: sources([9, 8, 7, 6, 5, 4, 3, 2]) },
  { name: 'prio (via -o prio)', options: ['-o', 'prio'], serverFields: [':0:0:0:5', ':0:0:0:7', ':0:0:0:1'], clients: sources([1, 2, 3, 1]) },
  { name: 'a prio field alone changes nothing', options: [], serverFields: [':0:0:0:5', ':0:0:0:7', ':0:0:0:1'], clients: sources([1, 2, 3, 1]) },
  { name: '-W with short connections: lowest index among equal loads', options: ['-W', '-r'], serverFields: [':0:0:2', ':0:0:1', ':0:0:0'], clients: sources([1, 2, 3, 1]) },
  { name: 'client ACL denies one address', options: ['-o', 'acl 1 deny 127.0.0.3', '-o', 'client_acl 1'], clients: sources([1, 2, 3, 4, 3]) },
];

const scenarioIndex = (s: Scenario): number => scenarios.indexOf(s);

async function route(hh: Harness, program: 'pen' | 'fulcrum', s: Scenario, backends: number[]): Promise<string[]> {
  const port = freePort();
  const servers = backends.map((p, i) => `127.0.0.1:${p}${s.serverFields?.[i] ?? ''}`);
  const args = [...s.options, `127.0.0.1:${port}`, ...servers];
  const proc = program === 'pen' ? await hh.startPen(args) : await hh.startFulcrum(args);
  const seen: string[] = [];
  // Fixed source ports too: with -h -r pen mixes the client's port into the hash.
  for (const [i, ip] of s.clients.entries()) {
    seen.push(await whoServes(port, { sourceIp: ip, localPort: 42000 + scenarioIndex(s) * 50 + i, timeoutMs: 3000 }).catch(() => '-'));
  }
  await proc.close();
  return seen;
}

describe.skipIf(!penAvailable())('same routing as pen 0.34.1', () => {
  for (const s of scenarios) {
    test(s.name, async () => {
      const backends = ['A', 'B', 'C'].map((n) => h.identify(n, { keepOpen: false }).port);
      const penRoute = await route(h, 'pen', s, backends);
      const fulcrumRoute = await route(h, 'fulcrum', s, backends);
      expect(fulcrumRoute).toEqual(penRoute);
      expect(penRoute.some((x) => x !== '-')).toBe(true); // the scenario exercised something
    });
  }
});

test.skipIf(penAvailable())('pen is not installed: comparisons skipped (scripts/ensure-peers.sh installs it as root)', () => {});
