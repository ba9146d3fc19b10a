/**
 * System calls per proxied connection: `strace -f -c` attached to a running balancer while
 * `connections` short connections pass through it one after another (one 64-byte request, one
 * response, then the backend closes: the connection-rate scenario's shape, without concurrency
 * so the count is exact and independent of the machine's load). The counts are divided by the
 * number of connections; an idle window of the same length is not subtracted (a balancer's timers
 * make a handful of calls per second, well under one per connection at these rates). Event-loop
 * waits (epoll_wait and its variants) are counted apart: how many a connection takes depends on
 * how events happen to batch, not on what the balancer asks of the kernel.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'bun';
import type { Target } from './generator.ts';
import { MODE_CLOSE, RESPONSE_SIZE, request } from './protocol.ts';

export interface SyscallCount {
  /** Calls per connection by name, most frequent first. */
  readonly perConnection: ReadonlyMap<string, number>;
  /** Calls per connection, event-loop waits left out. */
  readonly total: number;
  /** Event-loop waits per connection. */
  readonly waits: number;
  readonly connections: number;
}

/** Whether strace can attach here (installed, and ptrace allowed). */
export function straceMissing(): string | null {
  const r = Bun.spawnSync(['strace', '-V']);
  return r.exitCode === 0 ? null : 'strace is not installed';
}

const REQUEST = request(MODE_CLOSE);

interface OneConn {
  got: number;
  done: () => void;
}

/** One connection: request, response, close; resolves when the balancer closed it. */
function oneConnection(target: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const state: OneConn = { got: 0, done: resolve };
    void Bun.connect<OneConn>({
      hostname: target.host,
      port: target.port,
      data: state,
      socket: {
        open(s: Socket<OneConn>) {
          s.write(REQUEST);
        },
        data(s: Socket<OneConn>, chunk: Buffer) {
          s.data.got += chunk.length;
        },
        close(s: Socket<OneConn>) {
          if (s.data.got < RESPONSE_SIZE) reject(new Error(`short response (${s.data.got} bytes)`));
          else s.data.done();
        },
        connectError(_s: Socket<OneConn>, e: Error) {
          reject(e);
        },
      },
    }).catch(reject);
  });
}

/** Runs `connections` sequential connections through `target` while strace counts `pids`' calls. */
export async function countSyscalls(pids: readonly number[], target: Target, connections: number, dir: string): Promise<SyscallCount> {
  await oneConnection(target); // warm-up: lazy initialisation is not a per-connection cost
  const out = join(dir, `strace-${pids[0]}.txt`);
  const strace = spawn('strace', ['-f', '-c', '-o', out, ...pids.flatMap((p) => ['-p', String(p)])], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => strace.once('exit', () => resolve()));
  await Bun.sleep(300); // attached
  for (let i = 0; i < connections; i++) await oneConnection(target);
  await Bun.sleep(100);
  strace.kill('SIGINT');
  await exited;
  const counts = parseStraceSummary(readFileSync(out, 'utf8'));
  rmSync(out, { force: true });
  const perConnection = new Map([...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / connections] as const));
  let total = 0;
  let waits = 0;
  for (const [name, v] of counts) {
    if (EVENT_WAITS.has(name)) waits += v;
    else total += v;
  }
  return { perConnection, total: total / connections, waits: waits / connections, connections };
}

const EVENT_WAITS = new Set(['epoll_wait', 'epoll_pwait', 'epoll_pwait2']);

/** `strace -c` table → calls by syscall name. */
export function parseStraceSummary(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors,] syscall
    if (f.length < 5 || !/^\d/.test(f[0]!) || f[f.length - 1] === 'total') continue;
    const calls = Number(f[3]);
    if (Number.isFinite(calls)) m.set(f[f.length - 1]!, calls);
  }
  return m;
}

/** "26.5 per connection (+ 4.1 epoll waits): 7 epoll_ctl, 4 setsockopt, ..." */
export function formatSyscalls(c: SyscallCount): string {
  const parts = [...c.perConnection].filter(([k, v]) => v >= 0.05 && !EVENT_WAITS.has(k)).map(([k, v]) => `${round(v)} ${k}`);
  return `${round(c.total)} per connection (+ ${round(c.waits)} epoll waits): ${parts.join(', ')}`;
}

function round(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}
