/**
 * pen's daemonising: without -f, the command re-runs itself in the background and exits once that
 * process is serving. The child tells its waiting parent over fd 3: `ready`, or an error with its
 * exit code, which the parent prints and leaves with.
 */
import { finalStartReport, readStartReport, readyReport } from '../app/start-report.ts';

const DAEMON_ENV = 'FULCRUM_DAEMON_CHILD';

/** True in the background process a daemonising parent started. */
export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] !== undefined;
}

/** In a daemonised child, startup messages travel to the waiting parent over fd 3. */
export function tellParent(text: string): boolean {
  if (!isDaemonChild()) return false;
  try {
    process.getBuiltinModule('node:fs').writeSync(3, text);
    return true;
  } catch {
    return false;
  }
}

/** The child is serving: the parent may exit (printing `line` unless empty), and fd 3 is closed. */
export function tellParentReady(line: string): void {
  if (tellParent(readyReport(line))) process.getBuiltinModule('node:fs').closeSync(3);
}

/** The environment of workers: this process's, without what concerns only the daemon's parent. */
export function childEnv(): Record<string, string | undefined> {
  const env = { ...process.env };
  delete env[DAEMON_ENV];
  return env;
}

/**
 * The environment of an upgrade's new process: like a daemon's child, it reports `ready` or its
 * start-up error over fd 3 to the process it replaces (app/upgrade.ts), and never detaches again.
 */
export function successorEnv(): Record<string, string | undefined> {
  return { ...childEnv(), [DAEMON_ENV]: '1' };
}

/**
 * Re-runs this command in the background, with no stdio (so that a caller waiting on our output
 * is not held by the daemon), and exits once it is serving. Startup errors come back over a pipe
 * and are printed here, with the child's exit code. Once it serves, its start line (pid and
 * listeners) is printed on standard output, unless `quiet`.
 */
export async function daemonize(argv: string[], quiet: boolean): Promise<never> {
  const child = process.getBuiltinModule('node:child_process').spawn(process.execPath, [process.argv[1]!, ...argv, '-f'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  let text = '';
  const ok = await new Promise<boolean>((resolve) => {
    const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
    pipe?.on('data', (d: Buffer) => {
      text += d.toString();
      if (readStartReport(text)?.ready === true) resolve(true);
    });
    child.on('exit', () => resolve(false));
  });
  if (!ok) {
    const r = finalStartReport(text);
    const failed = r.ready ? null : r;
    process.stderr.write(failed?.message != null ? `${failed.message}\n` : 'fulcrum: the background process exited during start-up\n');
    process.exit(failed?.code ?? child.exitCode ?? 1);
  }
  const r = finalStartReport(text);
  const line = r.ready ? r.line : '';
  if (!quiet && line !== '') process.stdout.write(`fulcrum: ${line}\n`);
  child.unref();
  process.exit(0);
}
