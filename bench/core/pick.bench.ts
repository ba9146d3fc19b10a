/**
 * Micro-benchmark of the balancing algorithms (no network): nanoseconds per first choice for
 * every algorithm in src/core/balancing at 10, 1,000 and 10,000 servers.
 *   bun bench/core/pick.bench.ts [--quick]
 * Servers carry varied weights, priorities and connection counts, so the algorithms that look at
 * every server (pen's do) cannot stop early. Each figure is the median of 5 timed batches after
 * a warm-up; batches are sized to a time budget and capped in count, so the run ends by itself.
 */
import { algorithms, algorithmNames } from '../../src/core/balancing/registry.ts';
import type { PickInput } from '../../src/core/balancing/algorithm.ts';
import { seededRandom } from '../../src/core/clock.ts';
import { Server } from '../../src/core/servers/server.ts';
import { summarize } from '../lib/stats.ts';

const quick = process.argv.includes('--quick');
const SIZES = [10, 1_000, 10_000];
const BATCHES = 5;
const BATCH_NS = (quick ? 20 : 200) * 1e6;
const MAX_PICKS_PER_BATCH = 10_000_000;

function makeServers(n: number): Server[] {
  const random = seededRandom(n);
  return Array.from({ length: n }, (_, i) => {
    const s = new Server(i, {
      address: { kind: 'tcp', host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 80 },
      maxConnections: 0,
      hardLimit: 0,
      weight: 1 + Math.floor(random.next() * 4),
      priority: Math.floor(random.next() * 3),
      acl: 0,
    });
    s.connections = Math.floor(random.next() * 100);
    return s;
  });
}

/** Times `picks` choices with varied client hashes; returns ns per pick. */
function time(pick: (input: PickInput) => number, picks: number): { ns: number; sink: number } {
  const input = { clientHash: 0, nowMs: 1_000_000 };
  let sink = 0;
  const start = Bun.nanoseconds();
  for (let i = 0; i < picks; i++) {
    input.clientHash = Math.imul(i, 0x9e3779b1) >>> 0;
    sink += pick(input);
  }
  return { ns: (Bun.nanoseconds() - start) / picks, sink };
}

function measure(name: (typeof algorithmNames)[number], n: number): number {
  const servers = makeServers(n);
  const balancer = algorithms[name].create(seededRandom(7));
  balancer.serversChanged?.(servers);
  const pick = (input: PickInput): number => balancer.pick(servers, input);
  // Warm up (JIT) and size the batch from a short trial.
  const trial = time(pick, 1_000);
  const picks = Math.max(1_000, Math.min(MAX_PICKS_PER_BATCH, Math.floor(BATCH_NS / Math.max(trial.ns, 1))));
  let sink = trial.sink;
  for (let w = 0; w < 3; w++) sink += time(pick, picks).sink; // let the JIT settle on this algorithm
  const results: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const r = time(pick, picks);
    results.push(r.ns);
    sink += r.sink;
  }
  if (sink === -1) console.log(''); // keeps the picks observable, so none is optimised away
  return summarize(results).median;
}

const header = ['algorithm', ...SIZES.map((n) => `${n.toLocaleString('en-US')} servers`)];
const rows = algorithmNames.map((name) => [name, ...SIZES.map((n) => `${measure(name, n).toFixed(1)} ns`)]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`ns per pick (median of ${BATCHES} batches${quick ? ', --quick' : ''}); Bun ${Bun.version}`);
console.log([line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
