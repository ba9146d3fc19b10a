/** The machine a run came from, printed with every result: figures mean nothing without it. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release, totalmem } from 'node:os';
import { loadAverage } from './proc.ts';

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  kernel: string;
  memoryGiB: number;
  bun: string;
  /** Files one process may open (ulimit -n). */
  openFiles: number;
  loadAverage: number;
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function openFilesLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: 5_000 });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) ? n : Infinity; // 'unlimited'
}

export function describeMachine(): Machine {
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpuModel(),
    kernel: release(),
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    bun: Bun.version,
    openFiles: openFilesLimit(),
    loadAverage: loadAverage(),
  };
}

export function machineLines(m: Machine): string[] {
  return [
    `date        ${m.date}`,
    `machine     ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}`,
    `runtime     Bun ${m.bun}; open files per process ${m.openFiles}`,
    `load        ${m.loadAverage.toFixed(2)} (1-minute load average at the start)`,
  ];
}
