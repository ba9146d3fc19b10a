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
  /** Keep each client connected until the end, so that connection counts build up (-W). */
  holdOpen?: boolean;
}

const sources = (ids: number[]): string[] => ids.map((i) => `127.0.0.${i}`);

const scenarios: Scenario[] = [
  { name: 'default: round robin + client tracking', options: [], clients: sources([1, 2, 3, 4, 1, 2, 5, 3, 6, 1]) },
  { name: '-r: round robin without tracking', options: ['-r'], clients: sources([1, 1, 1, 2, 2, 3, 1]) },
  { name: '-h: hash of the client address', options: ['-h'], clients: sources([1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 200, 1]) },
  { name: '-h -r: hash, no tracking', options: ['-h', '-r'], clients: sources([9, 8, 7, 6, 5, 4, 3, 2]) },
  { name: 'prio (via -o prio)', options: ['-o', 'prio'], serverFields: [':0:0:0:5', ':0:0:0:7', ':0:0:0:1'], clients: sources([1, 2, 3, 1]) },
  { name: 'a prio field alone changes nothing', options: [], serverFields: [':0:0:0:5', ':0:0:0:7', ':0:0:0:1'], clients: sources([1, 2, 3, 1]) },
  { name: '-W: weighted least connections, weight 0 excluded', options: ['-W'], serverFields: [':0:0:2', ':0:0:1', ':0:0:0'], clients: sources([1, 2, 3, 4, 5, 6, 7]), holdOpen: true },
  { name: 'client ACL denies one address', options: ['-o', 'acl 1 deny 127.0.0.3', '-o', 'client_acl 1'], clients: sources([1, 2, 3, 4, 3]) },
];

let lastPort = 0;

async function route(hh: Harness, program: 'pen' | 'fulcrum', s: Scenario, backends: number[], portBase: number, avoidPort = 0): Promise<string[]> {
  let port = freePort();
  while (port === avoidPort) port = freePort();
  const servers = backends.map((p, i) => `127.0.0.1:${p}${s.serverFields?.[i] ?? ''}`);
  const args = [...s.options, `127.0.0.1:${port}`, ...servers];
  const proc = program === 'pen' ? await hh.startPen(args) : await hh.startFulcrum(args);
  const seen: string[] = [];
  // Fixed source ports too: with -h -r pen mixes the client's port into the hash.
  const held: { close(): Promise<void> }[] = [];
  for (const [i, ip] of s.clients.entries()) {
    // Held connections still own their source port during the other program's run: offset it.
    const portOffset = s.holdOpen === true && program === 'fulcrum' ? 25 : 0;
    const opts = { localAddress: ip, localPort: portBase + portOffset + i, timeoutMs: 3000 };
    if (s.holdOpen === true) {
      const c = await hh.connect(port, opts);
      held.push(c);
      seen.push(await c.readLine().catch(() => '-'));
    } else {
      seen.push(await whoServes(port, opts).catch(() => '-'));
    }
  }
  for (const c of held) await c.close();
  await proc.close();
  lastPort = port;
  return seen;
}

describe.skipIf(!penAvailable())('same routing as pen 0.34.1', () => {
  for (const s of scenarios) {
    test(s.name, async () => {
      const backends = ['A', 'B', 'C'].map((n) => h.identify(n, { keepOpen: s.holdOpen === true }).port);
      // Pinned source ports (the same for both programs: -h -r hashes them), below Linux's
      // ephemeral range (32768+) where listeners and pen's own server connections take theirs,
      // and from a random base so that no 4-tuple of an earlier run, still in TIME_WAIT, returns.
      const portBase = 10_000 + Math.floor(Math.random() * 400) * 50;
      const penRoute = await route(h, 'pen', s, backends, portBase);
      const fulcrumRoute = await route(h, 'fulcrum', s, backends, portBase, lastPort);
      expect(fulcrumRoute).toEqual(penRoute);
      expect(penRoute.some((x) => x !== '-')).toBe(true); // the scenario exercised something
    });
  }
});

// Reported as skipped only when it really is: with pen installed this placeholder does not exist.
if (!penAvailable()) test.skip('pen is not installed: comparisons skipped (scripts/ensure-peers.sh installs it as root)', () => {});
