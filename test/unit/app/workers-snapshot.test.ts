/**
 * The configuration the primary sends its workers (src/app/workers/protocol.ts): what pen
 * commands changed on the primary must survive the trip, so that a worker built from the
 * snapshot (or reloaded with it) routes as the primary would.
 */
import { expect, test } from 'bun:test';
import { Balancer, type Diagnostics } from '../../../src/app/balancer.ts';
import { PenCommands } from '../../../src/app/pen-commands.ts';
import { snapshotConfig, snapshotKey } from '../../../src/app/workers/protocol.ts';
import { parsePenArgs } from '../../../src/config/pen-args.ts';

const quiet: Diagnostics = { info: () => undefined, error: () => undefined, debug: () => undefined };

test('pen commands on the primary reach a balancer built from the snapshot', async () => {
  const parsed = parsePenArgs(['-f', '-x', '50', '-T', '30', '127.0.0.1:8000', '127.0.0.1:9001', '127.0.0.1:9002:10']);
  const b = new Balancer(parsed.config, quiet);
  const commands = new PenCommands(b);
  for (const c of ['server 1 max 5 hard 7 weight 3', 'acl 2 deny 10.0.0.0 255.0.0.0', 'client_acl 2', 'hash', 'blacklist 9', 'server 0 state drain', 'conn_max 80']) {
    await commands.execute(c);
  }
  const snap = snapshotConfig(b);
  const g = snap.groups[0]!;
  expect(g.algorithm).toBe('hash');
  expect(g.blacklistMs).toBe(9000);
  expect(g.clientAcl).toBe(2);
  expect(g.servers.map((s) => [s.maxConnections, s.hardLimit, s.weight, s.state])).toEqual([
    [0, 0, 0, 'drain'],
    [5, 7, 3, 'enabled'],
  ]);
  expect(snap.acls.map((a) => a.list)).toEqual([2]);
  expect(snap.global.maxConnections).toBe(80);
  const copy = new Balancer(structuredClone(snap), quiet);
  expect(snapshotKey(snapshotConfig(copy))).toBe(snapshotKey(snap));
  // Unchanged: the same text, so nothing is sent.
  expect(snapshotKey(snapshotConfig(b))).toBe(snapshotKey(snap));
  await commands.execute('server 1 weight 4');
  expect(snapshotKey(snapshotConfig(b))).not.toBe(snapshotKey(snap));
});

test('--workers and global.workers: a number or auto', () => {
  expect(parsePenArgs(['--workers', '4', '8000', '127.0.0.1:9001']).config.global.workers).toBe(4);
  expect(parsePenArgs(['--workers=auto', '8000', '127.0.0.1:9001']).config.global.workers).toBe('auto');
  expect(parsePenArgs(['8000', '127.0.0.1:9001']).config.global.workers).toBe(1);
  expect(() => parsePenArgs(['--workers', '0', '8000', '127.0.0.1:9001'])).toThrow(/--workers: "0" is not a number of processes/);
  expect(() => parsePenArgs(['--workers', 'many', '8000', '127.0.0.1:9001'])).toThrow(/or auto/);
});
