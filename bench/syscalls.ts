/**
 * System calls per proxied connection for each peer (bench/lib/syscalls.ts), printed by name:
 *   bun bench/syscalls.ts [--connections N] [peer ...]      (default: 2000; fulcrum naive pen haproxy)
 * Deterministic (counts, not times), so it can run on a busy machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from './lib/backend.ts';
import { PEERS, isPeerName, type PeerName } from './lib/peers.ts';
import { countSyscalls, formatSyscalls, straceMissing } from './lib/syscalls.ts';
import { freePort } from '../test/harness/util.ts';

const args = process.argv.slice(2);
let connections = 2000;
const names: PeerName[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--connections') connections = Number(args[++i]);
  else if (isPeerName(a) && a !== 'direct') names.push(a);
  else throw new Error(`unknown argument '${a}'`);
}
if (names.length === 0) names.push('fulcrum', 'naive', 'pen', 'haproxy');
const why = straceMissing();
if (why !== null) throw new Error(why);

const dir = mkdtempSync(join(tmpdir(), 'fulcrum-syscalls-'));
const backend = new Backend('127.0.0.1');
try {
  for (const name of names) {
    const peer = PEERS[name];
    const missing = peer.missing();
    if (missing !== null) {
      console.log(`${name.padEnd(8)} skipped: ${missing}`);
      continue;
    }
    const port = freePort();
    const running = await peer.start({ port, backend: { host: '127.0.0.1', port: backend.port }, cpu: null, dir, maxConnections: 1000 });
    try {
      const c = await countSyscalls(running.pids(), running.target, connections, dir);
      console.log(`${name.padEnd(8)} ${formatSyscalls(c)}`);
    } finally {
      await running.close();
    }
  }
} finally {
  backend.close();
  rmSync(dir, { recursive: true, force: true });
}
