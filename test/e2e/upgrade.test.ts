/**
 * Upgrades that drop nothing (docs/operations.md, "Upgrades and restarts"): 50 concurrent short
 * connections in a loop and three long paced transfers checked by sha256 run through Fulcrum
 * while `fulcrum upgrade -p PIDFILE` replaces it several times in a row — one process (the
 * listening socket handed to the new process as an inherited descriptor), and with --workers 2
 * both for whole restarts (the primary's held sockets pass to the new primary, which passes them
 * to its workers) and for rolling restarts of the workers (SIGTTIN: one at a time, inside one
 * primary, all on the one accept queue the primary holds). Zero refused, zero reset, zero
 * truncated; the counts are printed. Each old process must exit once drained, and the new one
 * must really be new (another pid each time).
 *
 * A breakage shows: without the hand-off, connections in the gap are refused; without the drain,
 * the long transfers are truncated; without the pid-file update, `fulcrum upgrade` fails; with a
 * listening socket per worker (SO_REUSEPORT), closing an old worker's resets its queue.
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatCounts, UpgradeLoad } from '../../bench/lib/upgrade-load.ts';
import { bunPath, freePort, spawnProcess, useHarness, waitFor } from '../harness/index.ts';
import { tempDir } from '../helpers/admin.ts';

setDefaultTimeout(180_000);
const h = useHarness();

function pidIn(path: string): number {
  return Number(readFileSync(path, 'utf8').trim());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The worker processes of `pid` (its children). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGTTIN to the primary, then wait until every worker was replaced and the old ones exited. */
async function rollingRestart(primary: number, workers: number): Promise<void> {
  const old = childrenOf(primary);
  expect(old.length).toBe(workers);
  process.kill(primary, 'SIGTTIN');
  await waitFor(
    () => {
      const now = childrenOf(primary);
      return now.length === workers && now.every((p) => !old.includes(p)) && old.every((p) => !alive(p));
    },
    { timeoutMs: 60_000, what: 'the workers to be replaced one at a time' },
  );
}

/** `rolling`: restart the workers (SIGTTIN) instead of the whole instance (`fulcrum upgrade`). */
async function upgradeLoop(extra: string[], upgrades: number, rolling = false): Promise<void> {
  const backend = h.echo();
  const port = freePort();
  const pidFile = join(tempDir(h), 'fulcrum.pid');
  await h.startFulcrum(['-p', pidFile, ...extra, String(port), backend.address], { port, env: { FULCRUM_DRAIN_TIMEOUT: '30' } });
  await waitFor(() => alive(pidIn(pidFile)), { timeoutMs: 10_000, what: 'the pid file' });
  const pids = [pidIn(pidFile)];
  const load = new UpgradeLoad({ port, concurrency: 50, longs: 3, longBytes: 16 << 20, longPaceMs: 10, timeoutMs: 60_000 });
  try {
    for (let i = 0; i < upgrades; i++) {
      // Let the load run on the current process first, so every upgrade happens under load.
      const before = load.finished;
      await waitFor(() => load.finished >= before + 200, { timeoutMs: 20_000, what: `200 connections before upgrade ${i + 1}` });
      if (rolling) {
        await rollingRestart(pidIn(pidFile), 2);
        continue;
      }
      const up = await spawnProcess([bunPath(), 'src/cli/main.ts', 'upgrade', '-p', pidFile], { name: 'fulcrum upgrade' });
      expect(await up.waitForExit(40_000)).toBe(0);
      const pid = pidIn(pidFile);
      expect(pids).not.toContain(pid);
      pids.push(pid);
    }
    const after = load.finished;
    await waitFor(() => load.finished >= after + 200, { timeoutMs: 20_000, what: '200 connections after the last upgrade' });
  } finally {
    const counts = await load.stop();
    process.stdout.write(`upgrade loop (${upgrades} ${rolling ? 'rolling worker restarts' : 'upgrades'}${extra.length > 0 ? `, ${extra.join(' ')}` : ''}): ${formatCounts(counts)}\n`);
    // Every replaced process drains and exits; the last one is stopped here.
    const last = pids.at(-1)!;
    await waitFor(() => pids.slice(0, -1).every((p) => !alive(p)), { timeoutMs: 40_000, what: 'the replaced processes to exit' }).finally(() => {
      if (alive(last)) process.kill(last, 'SIGTERM');
    });
    await waitFor(() => !alive(last), { timeoutMs: 15_000, what: 'the last process to stop' });
    expect(counts.failures).toEqual([]);
    expect(counts.short.ok).toBeGreaterThan(upgrades * 200);
    expect(counts.long.ok).toBeGreaterThanOrEqual(3);
  }
}

describe('upgrades under load', () => {
  test('one process, 5 upgrades: nothing refused, reset or truncated', () => upgradeLoop([], 5));
  test('--workers 2, 3 restarts of the whole instance: nothing refused, reset or truncated', () => upgradeLoop(['--workers', '2'], 3));
  test('--workers 2, 3 rolling restarts of the workers (SIGTTIN): nothing refused, reset or truncated', () => upgradeLoop(['--workers', '2'], 3, true));
});
