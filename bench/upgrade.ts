/**
 * The upgrade loop side by side (docs/operations.md): 50 concurrent short connections and long
 * sha256-checked transfers (bench/lib/upgrade-load.ts) through a balancer upgraded N times in a
 * row, counting refused, reset and truncated connections, for
 *   - fulcrum: `fulcrum upgrade` (listening socket inherited by the new process);
 *   - fulcrum --workers 2: the whole instance upgraded; the primary's held sockets pass to the new
 *     primary and its workers (one accept queue), the old workers drained;
 *   - fulcrum-rolling: --workers 2, the workers replaced one at a time (SIGTTIN) on the same sockets;
 *   - haproxy -sf: the new haproxy binds its own sockets, the old one finishes (a gap: SO_REUSEPORT);
 *   - haproxy -sf -x: the same with `expose-fd listeners` (the sockets passed over its stats socket).
 *
 *   bun bench/upgrade.ts [UPGRADES=20] [peers: fulcrum,fulcrum-workers,fulcrum-rolling,haproxy,haproxy-x]
 * Every wait is bounded; each upgrade waits for 200 connections to finish first.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatCounts, UpgradeLoad } from './lib/upgrade-load.ts';

const HAPROXY = '/usr/sbin/haproxy';
const root = resolve(import.meta.dir, '..');
const upgrades = Number(process.argv[2] ?? 20);
const peers = (process.argv[3] ?? 'fulcrum,fulcrum-workers,fulcrum-rolling,haproxy,haproxy-x').split(',');
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-upgrade-bench-'));

const echo = Bun.listen<undefined>({
  hostname: '127.0.0.1',
  port: 0,
  allowHalfOpen: true,
  socket: {
    data(s, d) {
      s.write(d);
    },
    end(s) {
      s.end();
    },
  },
});

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  for (const end = Date.now() + ms; !pred(); await Bun.sleep(20)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };
const freePort = (): number => { const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } }); const p = l.port; l.stop(true); return p; };

interface Subject { start(): Promise<void>; upgrade(): Promise<void>; stop(): Promise<void> }

/** The primary's children (its workers). */
function childrenOf(pid: number): number[] {
  try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
}

function fulcrum(port: number, extra: string[], rolling = false): Subject {
  const pidFile = join(dir, `fulcrum-${port}.pid`);
  const bun = process.execPath;
  return {
    async start() {
      Bun.spawn([bun, 'src/cli/main.ts', '-f', '-p', pidFile, ...extra, String(port), `127.0.0.1:${echo.port}`], { cwd: root, stdout: 'ignore', stderr: 'ignore' });
      await until(() => { try { return alive(Number(readFileSync(pidFile, 'utf8'))); } catch { return false; } }, 15_000, 'fulcrum to start');
    },
    async upgrade() {
      if (rolling) {
        const primary = Number(readFileSync(pidFile, 'utf8'));
        const old = childrenOf(primary);
        process.kill(primary, 'SIGTTIN');
        await until(() => { const now = childrenOf(primary); return now.length === old.length && now.every((p) => !old.includes(p)) && old.every((p) => !alive(p)); }, 60_000, 'the workers to be replaced');
        return;
      }
      const up = Bun.spawn([bun, 'src/cli/main.ts', 'upgrade', '-p', pidFile], { cwd: root, stdout: 'ignore', stderr: 'inherit' });
      if ((await up.exited) !== 0) throw new Error('fulcrum upgrade failed');
    },
    async stop() { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM'); },
  };
}

function haproxy(port: number, exposeFd: boolean): Subject {
  const cfg = join(dir, `haproxy-${port}.cfg`);
  const sock = join(dir, `haproxy-${port}.sock`);
  writeFileSync(cfg, [
    'global', '  maxconn 4096', `  stats socket ${sock} mode 600 level admin${exposeFd ? ' expose-fd listeners' : ''}`,
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s',
    'frontend f', `  bind 127.0.0.1:${port}`, '  default_backend b',
    'backend b', `  server s1 127.0.0.1:${echo.port}`, '',
  ].join('\n'));
  let procs: ReturnType<typeof Bun.spawn>[] = [];
  const launch = (extra: string[]): ReturnType<typeof Bun.spawn> => Bun.spawn([HAPROXY, '-db', '-f', cfg, ...extra], { stdout: 'ignore', stderr: 'ignore' });
  const listening = async (): Promise<void> => until(() => readFileSync('/proc/net/tcp', 'utf8').includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`), 10_000, 'haproxy to listen');
  return {
    async start() { procs.push(launch([])); await listening(); await until(() => existsSync(sock), 5_000, 'the stats socket'); },
    async upgrade() {
      const old = procs.at(-1)!;
      const next = launch([...(exposeFd ? ['-x', sock] : []), '-sf', String(old.pid)]);
      procs.push(next);
      await Promise.race([old.exited, Bun.sleep(30_000)]);
      procs = procs.filter((p) => p.exitCode === null);
    },
    async stop() { for (const p of procs) p.kill('SIGTERM'); await Promise.all(procs.map((p) => Promise.race([p.exited, Bun.sleep(5_000)]))); },
  };
}

const results: string[] = [];
for (const peer of peers) {
  const port = freePort();
  const s = peer === 'fulcrum' ? fulcrum(port, []) : peer === 'fulcrum-workers' ? fulcrum(port, ['--workers', '2']) : peer === 'fulcrum-rolling' ? fulcrum(port, ['--workers', '2'], true) : peer === 'haproxy' ? haproxy(port, false) : haproxy(port, true);
  await s.start();
  const load = new UpgradeLoad({ port, concurrency: 50, longs: 3, longBytes: 16 << 20, longPaceMs: 10, timeoutMs: 60_000 });
  try {
    for (let i = 0; i < upgrades; i++) {
      const before = load.finished;
      await until(() => load.finished >= before + 200, 20_000, `200 connections before upgrade ${i + 1}`);
      await s.upgrade();
    }
  } finally {
    const c = await load.stop();
    await s.stop();
    results.push(`${peer.padEnd(16)} ${upgrades} upgrades: ${formatCounts(c)}`);
    process.stdout.write(results.at(-1)! + '\n');
  }
}
echo.stop(true);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
