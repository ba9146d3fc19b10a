/**
 * The client side of `fulcrum upgrade` (a light module: no balancer): asks a running Fulcrum to replace itself with the code on disk, without
 * dropping a connection (docs/operations.md). It sends SIGUSR2 to the pid in the pid file (or the
 * pid given) and waits until the pid file names the new process, so a script knows that the new
 * code serves; the old process drains in the background. Exit codes: 0 upgraded, 1 the new
 * process did not take over (the old one goes on serving; its log says why), 2 usage.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../dataplane/system-clock.ts';

const USAGE = 'usage: fulcrum upgrade -p PIDFILE [--timeout SECONDS] | fulcrum upgrade PID\n';

function readPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function usage(text: string): number {
  process.stderr.write(text);
  return 2;
}

export async function upgradeCommand(argv: string[], clock: Clock = systemClock): Promise<number> {
  let pidFile: string | null = null;
  let pid: number | null = null;
  let timeoutS = 35;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-p' || a === '--pid-file') pidFile = argv[++i] ?? null;
    else if (a === '--timeout') timeoutS = Number(argv[++i]);
    else if (/^\d+$/.test(a)) pid = Number(a);
    else return usage(`fulcrum upgrade: unknown argument ${a}\n${USAGE}`);
  }
  if (pidFile !== null) pid = readPid(pidFile);
  if (pid === null || !(timeoutS > 0)) return usage(pidFile !== null ? `fulcrum upgrade: no pid in ${pidFile}\n` : USAGE);
  try {
    process.kill(pid, 'SIGUSR2');
  } catch (e) {
    process.stderr.write(`fulcrum upgrade: cannot signal pid ${pid}: ${(e as Error).message}\n`);
    return 1;
  }
  if (pidFile === null) {
    process.stdout.write(`fulcrum upgrade: SIGUSR2 sent to pid ${pid}\n`);
    return 0;
  }
  // Bounded: the new process has 30 s to serve, then the old one gives up on it.
  for (let waited = 0; waited < timeoutS * 1000; waited += 50) {
    const now = readPid(pidFile);
    if (now !== null && now !== pid && alive(now)) {
      process.stdout.write(`fulcrum upgrade: pid ${now} serves; pid ${pid} drains its connections and exits\n`);
      return 0;
    }
    if (!alive(pid)) break;
    await new Promise((r) => clock.setTimeout(r, 50, undefined, true));
  }
  process.stderr.write(`fulcrum upgrade: pid ${pid} was not replaced (see its log for why)\n`);
  return 1;
}
