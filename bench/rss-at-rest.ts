/**
 * Resident memory at rest (issue 10): VmRSS of `fulcrum -f -r PORT SERVER` after it has sat idle
 * for a while, beside the same figure for an empty Bun process, a Bun process with one listener
 * and the naive proxy (bench/naive-proxy.ts), so that Fulcrum's own share can be told apart from
 * the runtime's. Each is started `--starts` times (default 3) one after another; the median is
 * printed with every value. Nothing is loaded: no CPU benchmark, it can run on a busy machine.
 *   bun bench/rss-at-rest.ts [--starts N] [--idle SECONDS] [--only fulcrum,naive,listener,empty]
 *                            [-- extra fulcrum arguments, placed before the addresses]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Backend } from './lib/backend.ts';
import { summarize } from './lib/stats.ts';
import { repoRoot, spawnProcess } from '../test/harness/process.ts';
import { freePort } from '../test/harness/util.ts';

const KINDS = ['empty', 'listener', 'naive', 'fulcrum'] as const;
type Kind = (typeof KINDS)[number];

const args = process.argv.slice(2);
let starts = 3;
let idleS = 3;
let only: Kind[] = [...KINDS];
let extra: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--starts') starts = Number(args[++i]);
  else if (a === '--idle') idleS = Number(args[++i]);
  else if (a === '--only') only = (args[++i] ?? '').split(',').map((k) => {
    if (!(KINDS as readonly string[]).includes(k)) throw new Error(`unknown kind '${k}' (${KINDS.join(', ')})`);
    return k as Kind;
  });
  else if (a === '--') {
    extra = args.slice(i + 1);
    break;
  } else throw new Error(`unknown argument '${a}'`);
}
if (!(Number.isInteger(starts) && starts > 0) || !(idleS >= 0)) throw new Error('--starts must be a positive integer, --idle a number of seconds');

// Both Bun-only processes listen (or not) and then wait forever; the listener is what any server has.
const EMPTY = 'setInterval(() => {}, 1 << 30);';
const LISTENER = (port: number): string => `Bun.listen({ hostname: '127.0.0.1', port: ${port}, socket: { data() {} } }); setInterval(() => {}, 1 << 30);`;

function command(kind: Kind, port: number, backendPort: number): string[] {
  const server = `127.0.0.1:${backendPort}`;
  switch (kind) {
    case 'empty':
      return [process.execPath, '-e', EMPTY];
    case 'listener':
      return [process.execPath, '-e', LISTENER(port)];
    case 'naive':
      return [process.execPath, join(repoRoot, 'bench/naive-proxy.ts'), String(port), server];
    case 'fulcrum':
      return [join(repoRoot, 'bin/fulcrum'), '-f', '-r', ...extra, `127.0.0.1:${port}`, server];
  }
}

/**
 * VmRSS and its two parts in KiB: anonymous memory (heaps, compiled code) and file pages, nearly
 * all of them the Bun executable's own code and data that this process has touched.
 */
interface Rss {
  total: number;
  anon: number;
  file: number;
}

function rss(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { total: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}

/** One start: ready (listening, or just spawned for the empty process), idle `idleS`, then its memory. */
async function once(kind: Kind, backendPort: number): Promise<Rss> {
  const port = freePort();
  const proc = await spawnProcess(command(kind, port, backendPort), { name: kind, ...(kind === 'empty' ? { readiness: false } : { port }) });
  try {
    await Bun.sleep(idleS * 1000);
    if (!proc.running) throw new Error(`${kind} exited while idle\n${proc.describe()}`);
    return rss(proc.pid);
  } finally {
    await proc.close();
  }
}

const mb = (kib: number): string => (kib / 1024).toFixed(1);
const backend = new Backend('127.0.0.1');
try {
  console.log(`VmRSS after ${idleS} s idle, median of ${starts} starts (MB; anon: heaps and compiled code, file: the executable's pages touched), Bun ${Bun.version}`);
  for (const kind of only) {
    const values: Rss[] = [];
    for (let i = 0; i < starts; i++) values.push(await once(kind, backend.port));
    const label = kind === 'fulcrum' ? `fulcrum -f -r ${[...extra, ''].join(' ')}PORT SERVER` : kind === 'naive' ? 'naive proxy' : kind === 'listener' ? 'Bun, one listener' : 'Bun, empty';
    const median = (k: keyof Rss): string => mb(summarize(values.map((v) => v[k])).median);
    console.log(`${label.padEnd(40)} ${median('total').padStart(6)}  anon ${median('anon').padStart(5)}  file ${median('file').padStart(5)}   (${values.map((v) => mb(v.total)).join(', ')})`);
  }
} finally {
  backend.close();
}
