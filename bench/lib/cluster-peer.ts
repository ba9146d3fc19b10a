/**
 * Issue 14's bench question: does sharing state through Redis slow the connection path? Two
 * Fulcrum peers started from the same config file, with client tracking on (the cluster's
 * per-connection work is the tracking table's observer) and a 1 s tracking expiry, so that entries
 * are re-published as often as they would be under real churn: `fulcrum-tracked` alone, and
 * `fulcrum-cluster` with `cluster: { redis }` against a redis-server this peer starts on a free
 * loopback port, pinned to the load's core (Redis is not the balancer under test: it must not take
 * the balancer's core). Compare their `connrate` rows. Opt-in (peers.ts OPT_IN_PEERS):
 * `npm run bench -- --peers fulcrum-tracked,fulcrum-cluster --only connrate`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, spawnProcess } from '../../test/harness/process.ts';
import { freePort } from '../../test/harness/util.ts';
import type { Peer, PeerContext, RunningPeer } from './peers.ts';

function redisServer(): string | null {
  return Bun.which('redis-server') ?? (Bun.file('/usr/bin/redis-server').size > 0 ? '/usr/bin/redis-server' : null);
}

async function startTracked(ctx: PeerContext, cluster: boolean): Promise<RunningPeer> {
  let redis: Awaited<ReturnType<typeof spawnProcess>> | null = null;
  const lines = [
    'global:',
    `  max_connections: ${ctx.maxConnections}`,
    'groups:',
    '  bench:',
    '    tracking: true',
    '    tracking_expiry: 1s',
    '    servers:',
    `      - "${ctx.backend.host}:${ctx.backend.port}"`,
    'listeners:',
    `  - listen: "127.0.0.1:${ctx.port}"`,
    '    group: bench',
  ];
  if (cluster) {
    const port = freePort();
    const redisCmd = [redisServer()!, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const loadCpu = ctx.loadCpu ?? null;
    redis = await spawnProcess(loadCpu === null ? redisCmd : ['taskset', '-c', String(loadCpu), ...redisCmd], { name: 'redis-server', port });
    lines.push(`cluster: {redis: "redis://127.0.0.1:${port}", key_prefix: "bench:", instance: bench}`);
  }
  const cfg = join(ctx.dir, cluster ? 'fulcrum-cluster.yaml' : 'fulcrum-tracked.yaml');
  writeFileSync(cfg, lines.join('\n') + '\n');
  const cmd = [join(repoRoot, 'bin/fulcrum'), '--config', cfg];
  const proc = await spawnProcess(ctx.cpu === null ? cmd : ['taskset', '-c', String(ctx.cpu), ...cmd], { name: cluster ? 'fulcrum-cluster' : 'fulcrum-tracked', port: ctx.port });
  return {
    target: { host: '127.0.0.1', port: ctx.port },
    pids: () => [proc.pid],
    close: async () => {
      await proc.close();
      await redis?.close();
    },
  };
}

export function trackedPeer(fulcrum: Peer, cluster: boolean): Peer {
  return {
    name: cluster ? 'fulcrum-cluster' : 'fulcrum-tracked',
    describe: cluster
      ? 'bin/fulcrum --config: tracking on (1 s expiry) and cluster: {redis} (a local redis-server pinned to the load core)'
      : 'bin/fulcrum --config: tracking on (1 s expiry), no cluster (the baseline of fulcrum-cluster)',
    missing: () => (cluster && redisServer() === null ? 'redis-server is not installed (scripts/ensure-peers.sh)' : null),
    version: () => fulcrum.version(),
    start: (ctx) => startTracked(ctx, cluster),
  };
}
