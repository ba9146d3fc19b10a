/**
 * pen -U side by side with fulcrum -U (docs/udp.md): for clients on several loopback addresses
 * and ports, each new client address:port is a session whose server must be the one pen picks:
 * tracking by address and round robin from index 1 by default, the next server per new session
 * with -r. A second round from the same sources must stay where the first went.
 */
import { describe, expect, test } from 'bun:test';
import { penAvailable, useHarness, type Harness } from '../harness/index.ts';
import { freeUdpPort, udpIdentify, udpWhoServes, waitUdpBound } from '../harness/udp.ts';

const h = useHarness();

/** Client sources: (address, port offset); two ports share 127.0.0.1 and 127.0.0.4. */
const clients: [string, number][] = [
  ['127.0.0.1', 0],
  ['127.0.0.1', 1],
  ['127.0.0.2', 2],
  ['127.0.0.3', 3],
  ['127.0.0.4', 4],
  ['127.0.0.4', 5],
  ['127.0.0.5', 6],
];

async function route(hh: Harness, program: 'pen' | 'fulcrum', options: string[], backends: number[], portBase: number): Promise<string[]> {
  const port = await freeUdpPort();
  const args = ['-U', ...options, `127.0.0.1:${port}`, ...backends.map((p) => `127.0.0.1:${p}`)];
  const proc = program === 'pen' ? await hh.startPen(args, { readiness: false }) : await hh.startFulcrum(args, { readiness: false });
  await waitUdpBound(port);
  const seen: string[] = [];
  // Two rounds: the second must find every session (and tracked client) where the first left it.
  for (let round = 0; round < 2; round++) {
    for (const [ip, offset] of clients) seen.push(await udpWhoServes(port, { localAddress: ip, localPort: portBase + offset }));
  }
  await proc.close();
  return seen;
}

describe.skipIf(!penAvailable())('UDP: same server per client as pen 0.34.1 -U', () => {
  for (const [name, options] of [
    ['default: round robin + client tracking', []],
    ['-r: round robin without tracking', ['-r']],
  ] as [string, string[]][]) {
    test(name, async () => {
      const backends: number[] = [];
      for (const n of ['A', 'B', 'C']) {
        const b = await udpIdentify(n);
        h.add(b);
        backends.push(b.port);
      }
      // Fixed source ports below the ephemeral range, from a random base per run.
      const portBase = 10_000 + Math.floor(Math.random() * 400) * 50;
      const pen = await route(h, 'pen', options, backends, portBase);
      const fulcrum = await route(h, 'fulcrum', options, backends, portBase + 20);
      expect(fulcrum).toEqual(pen);
      expect(new Set(pen).size).toBeGreaterThan(1); // the scenario spread clients, and nothing was lost
      expect(pen).not.toContain('-');
    });
  }
});

if (!penAvailable()) test.skip('pen is not installed: UDP comparisons skipped', () => {});
