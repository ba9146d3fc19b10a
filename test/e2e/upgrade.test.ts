/**
 * Upgrades that drop nothing (docs/operations.md, "Upgrades and restarts"): 50 concurrent short
 * connections in a loop and three long paced transfers checked by sha256 run through Fulcrum
 * while `fulcrum upgrade -p PIDFILE` replaces it several times in a row — one process (the
 * listening socket handed to the new process as an inherited descriptor) and with --workers 2
 * (the new workers' SO_REUSEPORT sockets next to the old ones, then the old workers drained).
 * Zero refused, zero reset, zero truncated (with workers: resets counted, see upgradeLoop); the
 * counts are printed. Each old process must exit
 * once drained, and the new one must really be new (another pid each time).
 *
 * A breakage shows: without the hand-off, connections in the gap are refused; without the drain,
 * the long transfers are truncated; without the pid-file update, `fulcrum upgrade` fails.
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

/**
 * `resetsAllowed`: with --workers the old workers' SO_REUSEPORT sockets close, and the kernel
 * resets what was still in their accept queues (bench/upgrade.ts measured 4 in 3 upgrades):
 * there the test holds refused, truncated and the long transfers to zero and prints the resets.
 */
async function upgradeLoop(extra: string[], upgrades: number, resetsAllowed = false): Promise<void> {
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
    process.stdout.write(`upgrade loop (${upgrades} upgrades${extra.length > 0 ? `, ${extra.join(' ')}` : ''}): ${formatCounts(counts)}\n`);
    // Every replaced process drains and exits; the last one is stopped here.
    const last = pids.at(-1)!;
    await waitFor(() => pids.slice(0, -1).every((p) => !alive(p)), { timeoutMs: 40_000, what: 'the replaced processes to exit' }).finally(() => {
      if (alive(last)) process.kill(last, 'SIGTERM');
    });
    await waitFor(() => !alive(last), { timeoutMs: 15_000, what: 'the last process to stop' });
    if (resetsAllowed) {
      expect({ ...counts.short, ok: 0, reset: 0 }).toEqual({ ok: 0, refused: 0, reset: 0, truncated: 0, timeout: 0, error: 0 });
      expect({ ...counts.long, ok: 0 }).toEqual({ ok: 0, refused: 0, reset: 0, truncated: 0, timeout: 0, error: 0 });
    } else {
      expect(counts.failures).toEqual([]);
    }
    expect(counts.short.ok).toBeGreaterThan(upgrades * 200);
    expect(counts.long.ok).toBeGreaterThanOrEqual(3);
  }
}

describe('upgrades under load', () => {
  test('one process, 5 upgrades: nothing refused, reset or truncated', () => upgradeLoop([], 5));
  test('--workers 2, 3 restarts of the whole instance: nothing refused or truncated, resets counted', () => upgradeLoop(['--workers', '2'], 3, true));
});
