/** What the bench reads from /proc and /sys (Linux): resident memory, CPU time, child processes, CPUs. */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/** Resident memory of a process in KiB (VmRSS), or NaN when it cannot be read. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? NaN : Number(m[1]);
  } catch {
    return NaN;
  }
}

let ticksPerSecond = 0;

/** Clock ticks per second of /proc's CPU times (getconf CLK_TCK; 100 on every common Linux). */
function clockTicks(): number {
  if (ticksPerSecond === 0) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 });
    const n = Number(r.stdout?.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/**
 * CPU time used so far by `pids` (user + system, every thread of each), in microseconds, from
 * /proc/PID/stat; NaN when a process cannot be read. The resolution is one clock tick (10 ms):
 * over a window of a second or more at thousands of requests per second, well under 1 %.
 */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name: state is field 3, utime 14 and stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return NaN;
    }
  }
  return pids.length === 0 ? NaN : (ticks * 1_000_000) / clockTicks();
}

/** `cmd` confined to `cpu` (a core or a taskset CPU list) with taskset; as it is when null. */
export function pinned(cmd: string[], cpu: number | string | null): string[] {
  return cpu === null ? cmd : ['taskset', '-c', String(cpu), ...cmd];
}

/** Direct children of `pid` (nginx's workers under its master), from each process's stat line. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may contain spaces: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** The 1-minute load average: a busy machine makes every figure suspect. */
export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/**
 * Every online CPU as a taskset list ('0-1'): a child started with it floats over all cores
 * instead of inheriting this process's pinning to the load core.
 */
export function onlineCpus(): string {
  try {
    return readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  } catch {
    return `0-${cpus().length - 1}`;
  }
}

/**
 * Runs a load tool that prints a summary when it ends (wrk, dnsperf) for about `seconds`, killed
 * if it overstays by 15 s; resolves to `parse` of what it printed (stdout and stderr), rejects
 * when it printed no summary.
 */
export function runTool<T>(cmd: string, args: readonly string[], seconds: number, parse: (text: string) => T | null): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', () => {
      clearTimeout(timer);
      const r = parse(text);
      if (r === null) reject(new Error(`${cmd} printed no summary: ${text.trim().split('\n').slice(-3).join(' | ')}`));
      else resolve(r);
    });
  });
}
