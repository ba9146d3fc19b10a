/**
 * Zero-drop upgrades and restarts (SIGUSR2, `fulcrum upgrade`; docs/operations.md). The running
 * process starts its successor — the same command line, so the code on disk now — handing it
 * every listening socket as an inherited descriptor (Bun cannot pass descriptors over a Unix
 * socket: it has no sendmsg/SCM_RIGHTS, but a spawned child inherits any descriptor listed in its
 * stdio) and a hand-over file with the client tracking tables, totals and operator states. The
 * listening socket is the same kernel object in both processes, so nothing is ever refused and
 * no accept queue is closed: the old process just stops accepting from it once the new one
 * serves, then finishes its established connections within the drain deadline and exits.
 *
 * With workers the primary holds the listening sockets its workers accept on (listeners.ts), so
 * the same hand-off reaches the new primary, which passes them on to its workers; the old
 * workers are then drained (WorkerPool.drain), all on the same accept queue.
 */
import { formatAddress } from '../core/address.ts';
import type { Clock } from '../core/clock.ts';
import { FulcrumError } from '../core/errors.ts';
import type { Balancer } from './balancer.ts';
import { HANDOVER_ENV, UPGRADE_FDS_ENV } from './inherited-sockets.ts';
import { saveState } from './state-file.ts';
import { errorReport, finalStartReport, readStartReport } from './start-report.ts';

/** node:fs/promises, taken on first use: not loaded at rest (docs/performance.md). */
function fsPromises(): typeof import('node:fs/promises') {
  return process.getBuiltinModule('node:fs/promises');
}

/** node:os, taken on first use: not loaded at rest (docs/performance.md). */
function os(): typeof import('node:os') {
  return process.getBuiltinModule('node:os');
}

/** The successor's first inherited listening socket (fd 3 is its ready pipe, as a daemon's). */
const FIRST_FD = 4;

export interface SuccessorOptions {
  /** The command line (this process's). */
  command: string[];
  /** Its environment: with the marker that makes it report `ready` or its error on fd 3. */
  env: Record<string, string | undefined>;
  /** How long it may take to serve. */
  timeoutMs: number;
}

/**
 * Starts the successor with this process's listening sockets and hand-over file; resolves with
 * its pid once it serves, or rejects with the error it reported (then it has exited, and this
 * process goes on serving as before).
 */
export async function startSuccessor(b: Balancer, o: SuccessorOptions): Promise<number> {
  const handover = `${os().tmpdir()}/fulcrum-handover-${process.pid}-${b.clock.now()}.json`;
  await saveState(b, handover, true);
  const fds: number[] = [];
  const names: string[] = [];
  for (const l of b.listeners) {
    const fd = l.handle?.fd;
    if (fd === undefined || fd < 0) continue;
    names.push(`${FIRST_FD + fds.length}=${formatAddress(l.handle!.address)}`);
    fds.push(fd);
  }
  const [file, ...args] = o.command;
  // node:child_process is loaded here, by the one process that upgrades, not by every balancer.
  const child = process.getBuiltinModule('node:child_process').spawn(file!, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe', ...fds],
    env: { ...o.env, [UPGRADE_FDS_ENV]: names.join(','), [HANDOVER_ENV]: handover },
  });
  let text = '';
  try {
    const ready = await new Promise<boolean>((resolve) => {
      const timer = b.clock.setTimeout(() => resolve(false), o.timeoutMs, undefined, true);
      const done = (ok: boolean): void => {
        b.clock.clearTimer(timer);
        resolve(ok);
      };
      const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
      pipe?.on('data', (d: Buffer) => {
        text += d.toString();
        if (readStartReport(text)?.ready === true) done(true);
      });
      child.on('exit', () => done(false));
      child.on('error', (e) => {
        text += errorReport(1, e.message);
        done(false);
      });
    });
    if (!ready) {
      if (child.exitCode === null) child.kill('SIGKILL');
      const r = finalStartReport(text);
      const said = r.ready ? null : r.message;
      throw new FulcrumError('E_UPGRADE', `the new process did not start: ${said ?? (child.exitCode === null ? `not serving after ${o.timeoutMs} ms` : `it exited with code ${child.exitCode}`)}`);
    }
  } finally {
    await fsPromises().unlink(handover).catch(() => undefined);
  }
  child.unref();
  (child.stdio[3] as unknown as { unref?: () => void } | null)?.unref?.();
  return child.pid!;
}

/**
 * Stops accepting (the successor holds the sockets) and waits until every connection has
 * finished, or the deadline; returns how many were still open then (the caller closes them).
 * The wait polls two O(1) gauges every 100 ms.
 */
export async function drainConnections(b: Balancer, deadlineMs: number, clock: Clock = b.clock): Promise<number> {
  for (const l of b.listeners) l.handle?.stop();
  const end = clock.now() + deadlineMs;
  while (b.activeCount + b.waitingCount > 0 && clock.now() < end) {
    await new Promise((r) => clock.setTimeout(r, Math.min(100, Math.max(1, end - clock.now())), undefined, true));
  }
  return b.activeCount + b.waitingCount;
}
