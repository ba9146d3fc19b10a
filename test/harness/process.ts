// Runs Fulcrum (or pen, or any command) as a real child process for end-to-end tests:
// captures its output for failure messages, waits (bounded) until it listens, and kills it by pid.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Subprocess } from 'bun';
import { connect } from './client.ts';
import { DEFAULT_TIMEOUT_MS, TimeoutError, errorMessage, withTimeout } from './util.ts';

/** The repository root (test/harness/../..): Fulcrum is started from here. */
export const repoRoot = resolve(import.meta.dir, '..', '..');

/** Startup is slower than a socket read (a Bun cold start on a busy 2-core box). */
export const PROCESS_READY_TIMEOUT_MS = 15_000;
/** How long close() lets a process exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 3_000;
/** Output lines kept per process (older ones are dropped to bound memory). */
const MAX_LINES = 5_000;

export interface OutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface ProcessOptions {
  /** Name used in messages; defaults to the command's basename. */
  name?: string;
  cwd?: string;
  /** Added to (and overriding) the inherited environment. */
  env?: Record<string, string>;
  /** TCP port(s) to wait for before resolving. For startFulcrum/startPen, inferred from pen-style args when omitted. */
  port?: number | number[];
  /** Host for 'connect' readiness; '127.0.0.1' by default. */
  host?: string;
  /** Unix socket path(s) to wait for (they must exist and be sockets). */
  unix?: string | string[];
  /** Wait for an output line matching this too. */
  readyLine?: RegExp;
  /**
   * How to tell a TCP port is ready. 'listen' (default on Linux): a LISTEN socket on it in /proc/net/tcp*,
   * which needs no probe connection (a probe would be forwarded to a backend and skew counts and round-robin order).
   * 'connect': poll-connect. false: do not wait for ports at all.
   */
  readiness?: 'listen' | 'connect' | false;
  /** Bound for readiness. */
  timeoutMs?: number;
  /** How long close() waits after SIGTERM before SIGKILL; default 3000. */
  killGraceMs?: number;
  /** Mirror the child's output on our stderr (also enabled by HARNESS_VERBOSE=1). */
  verbose?: boolean;
}

export interface RunningProcess extends AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  readonly proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** Exit code (128+signal when killed by a signal, as Bun reports it). */
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  readonly running: boolean;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr interleaved in arrival order. */
  lines(): readonly OutputLine[];
  /** The last lines of output, for failure messages. */
  describe(maxLines?: number): string;
  /** Sends `signal` (SIGTERM by default) to the pid; false if it had already exited. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** Resolves with the first line (stdout or stderr, past or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code; rejects if still running after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<number>;
  /** SIGTERM, then SIGKILL if it has not exited after a grace period; waits for exit. Idempotent. */
  close(): Promise<void>;
}

// Safety net: if a test run dies mid-way, still kill every child we spawned, by pid.
const livePids = new Set<number>();
process.on('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

type LineWaiter = (line: OutputLine) => void;

class Child implements RunningProcess {
  private readonly output: OutputLine[] = [];
  private readonly lineWaiters = new Set<LineWaiter>();
  private readonly done: Promise<void>;
  private closing: Promise<void> | undefined;
  readonly exited: Promise<number>;

  constructor(
    readonly name: string,
    readonly proc: Subprocess<'ignore', 'pipe', 'pipe'>,
    private readonly verbose: boolean,
    private readonly killGraceMs: number,
  ) {
    livePids.add(proc.pid);
    const pumps = [this.pump(proc.stdout, 'stdout'), this.pump(proc.stderr, 'stderr')];
    this.exited = proc.exited.then((code) => {
      livePids.delete(proc.pid);
      return code;
    });
    this.exited.catch(() => {});
    // Output is complete only once both pipes hit EOF.
    this.done = Promise.all(pumps).then(() => undefined);
  }

  get pid(): number { return this.proc.pid; }
  get exitCode(): number | null { return this.proc.exitCode; }
  get signalCode(): string | null { return this.proc.signalCode === null ? null : String(this.proc.signalCode); }
  get running(): boolean { return this.proc.exitCode === null && this.proc.signalCode === null; }

  stdout(): string { return this.text('stdout'); }
  stderr(): string { return this.text('stderr'); }
  lines(): readonly OutputLine[] { return this.output; }

  describe(maxLines = 40): string {
    const state = this.running ? 'running' : `exited with ${this.signalCode ?? `code ${this.exitCode}`}`;
    const tail = this.output.slice(-maxLines).map((l) => `  [${l.stream}] ${l.text}`).join('\n');
    return `--- ${this.name} (pid ${this.pid}, ${state}) output, last ${maxLines} lines ---\n${tail || '  (no output)'}`;
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (!this.running) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  waitForLine(pattern: RegExp, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const seen = this.output.find((l) => pattern.test(l.text));
    if (seen) return Promise.resolve(seen.text);
    return new Promise<string>((resolvePromise, reject) => {
      const finish = (err: Error | undefined, text?: string): void => {
        this.lineWaiters.delete(waiter);
        clearTimeout(timer);
        if (err) reject(err);
        else resolvePromise(text ?? '');
      };
      const waiter: LineWaiter = (line) => {
        if (pattern.test(line.text)) finish(undefined, line.text);
      };
      const timer = setTimeout(
        () => finish(new TimeoutError(`timed out after ${timeoutMs}ms waiting for ${this.name} to print ${pattern}\n${this.describe()}`)),
        timeoutMs,
      );
      this.lineWaiters.add(waiter);
      // A process that exited cannot print the line any more: fail now with its output.
      void this.done.then(() => {
        if (this.lineWaiters.has(waiter)) finish(new Error(`${this.name} ended its output without printing ${pattern}\n${this.describe()}`));
      });
    });
  }

  waitForExit(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    return withTimeout(this.exited, timeoutMs, `${this.name} (pid ${this.pid}) to exit`).catch((err: unknown) => {
      throw new TimeoutError(`${errorMessage(err)}\n${this.describe()}`);
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.running) {
        this.kill('SIGTERM');
        const exitedInTime = await withTimeout(this.exited, this.killGraceMs, 'exit').then(() => true, () => false);
        if (!exitedInTime) {
          this.kill('SIGKILL');
          await this.waitForExit(DEFAULT_TIMEOUT_MS);
        }
      }
      // Let the pipes drain so the captured output is complete (a grandchild holding them must not hang us).
      await withTimeout(this.done, DEFAULT_TIMEOUT_MS, `${this.name} output pipes to close`).catch(() => {});
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private text(stream: OutputLine['stream']): string {
    return this.output.filter((l) => l.stream === stream).map((l) => `${l.text}\n`).join('');
  }

  private async pump(stream: ReadableStream<Uint8Array>, name: OutputLine['stream']): Promise<void> {
    const decoder = new TextDecoder();
    let partial = '';
    const emit = (text: string): void => {
      const line = { stream: name, text };
      this.output.push(line);
      if (this.output.length > MAX_LINES) this.output.shift();
      if (this.verbose) process.stderr.write(`[${this.name} ${name}] ${text}\n`);
      for (const waiter of [...this.lineWaiters]) waiter(line);
    };
    try {
      for await (const chunk of stream) {
        partial += decoder.decode(chunk, { stream: true });
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        for (const part of parts) emit(part.replace(/\r$/, ''));
      }
    } catch {
      // The pipe broke because the child died; what we have is all there is.
    }
    partial += decoder.decode();
    if (partial) emit(partial);
  }
}

/** Spawns `cmd` (no shell) and waits until it is ready as `opts` describes. Rejects (after killing it) if it exits or times out first. */
export async function spawnProcess(cmd: string[], opts: ProcessOptions = {}): Promise<RunningProcess> {
  const [file] = cmd;
  if (file === undefined) throw new Error('spawnProcess: empty command');
  const name = opts.name ?? file.split('/').pop() ?? file;
  const proc = Bun.spawn({
    cmd,
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const child = new Child(name, proc, opts.verbose ?? process.env.HARNESS_VERBOSE === '1', opts.killGraceMs ?? KILL_GRACE_MS);
  try {
    await waitReady(child, opts);
  } catch (err) {
    await child.close();
    throw err;
  }
  return child;
}

async function waitReady(child: Child, opts: ProcessOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? PROCESS_READY_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  const ports = opts.readiness === false ? [] : [opts.port ?? []].flat();
  const paths = [opts.unix ?? []].flat();
  const mode = opts.readiness || (existsSync('/proc/net/tcp') ? 'listen' : 'connect');
  const host = opts.host ?? '127.0.0.1';

  const checks: Array<{ what: string; ready: () => boolean | Promise<boolean> }> = [
    ...ports.map((port) => ({
      what: mode === 'listen' ? `a listening socket on port ${port}` : `${host}:${port} to accept connections`,
      ready: mode === 'listen' ? () => isListening(port) : () => canConnect(host, port),
    })),
    ...paths.map((path) => ({ what: `Unix socket ${path}`, ready: () => isSocket(path) })),
  ];
  let lineSeen = opts.readyLine === undefined;
  const lineWait = opts.readyLine
    ? child.waitForLine(opts.readyLine, timeoutMs).then(() => { lineSeen = true; })
    : Promise.resolve();
  lineWait.catch(() => {});

  const pending = new Set(checks);
  for (;;) {
    if (!child.running) {
      await child.close();
      throw new Error(`${child.name} exited (${child.signalCode ?? `code ${child.exitCode}`}) before it was ready; waiting for ${describeWaits(pending, opts.readyLine, lineSeen)}\n${child.describe()}`);
    }
    for (const check of [...pending]) if (await check.ready()) pending.delete(check);
    if (pending.size === 0 && lineSeen) return;
    if (performance.now() >= deadline) {
      throw new TimeoutError(`timed out after ${timeoutMs}ms waiting for ${child.name} to be ready: ${describeWaits(pending, opts.readyLine, lineSeen)}\n${child.describe()}`);
    }
    await Bun.sleep(25);
  }
}

function describeWaits(pending: Set<{ what: string }>, readyLine: RegExp | undefined, lineSeen: boolean): string {
  const waits = [...pending].map((c) => c.what);
  if (readyLine && !lineSeen) waits.push(`a line matching ${readyLine}`);
  return waits.join(', ') || 'nothing';
}

/** True when some socket is in LISTEN state on `port` (IPv4 or IPv6), per /proc/net/tcp{,6}. */
export function isListening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/);
      if (fields[3] === '0A' && fields[1]?.endsWith(`:${hexPort}`)) return true;
    }
  }
  return false;
}

async function canConnect(host: string, port: number): Promise<boolean> {
  try {
    const client = await connect({ host, port }, { timeoutMs: 1_000 });
    await client.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * True when a Unix socket at `path` is listening. The file appears at bind(), before listen():
 * a connect in between is refused, so where /proc/net/unix exists its listening flag
 * (__SO_ACCEPTCON, 00010000) is what counts.
 */
function isSocket(path: string): boolean {
  try {
    if (!statSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return true;
  }
  for (const row of table.split('\n')) {
    const fields = row.trim().split(/\s+/);
    if (fields[7] === path && fields[3] === '00010000') return true;
  }
  return false;
}

/** Path to the bun binary: ours when running under bun, else the project's. */
export function bunPath(): string {
  return process.versions.bun ? process.execPath : resolve(repoRoot, 'node_modules/.bin/bun');
}

// pen's options that take an argument (from its getopt string); the first other word is the listen address.
const PEN_OPTIONS_WITH_ARG = new Set(['-B', '-C', '-T', '-O', '-b', '-c', '-e', '-j', '-F', '-l', '-t', '-u', '-p', '-x', '-w', '-o', '-E', '-K', '-G', '-A', '-L', '-S']);

/**
 * The TCP port a pen-style command line listens on (`[host:]port` after the options), or undefined
 * when it cannot tell (e.g. an option unknown to pen that takes an argument: pass `port` explicitly then).
 */
export function listenPortFromArgs(args: readonly string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') return parsePort(args[i + 1]);
    if (arg.startsWith('-') && arg.length > 1) {
      if (PEN_OPTIONS_WITH_ARG.has(arg)) i++;
      continue;
    }
    return parsePort(arg);
  }
  return undefined;
}

function parsePort(listen: string | undefined): number | undefined {
  const match = listen === undefined ? null : /(?:^|:)(\d+)$/.exec(listen);
  return match?.[1] ? Number(match[1]) : undefined;
}

export interface PenStyleOptions extends ProcessOptions {
  /** Add -f (stay in foreground) when missing, so the pid we hold is the server; default true. */
  foreground?: boolean;
}

function penStyle(args: readonly string[], opts: PenStyleOptions): { args: string[]; opts: ProcessOptions } {
  const withF = opts.foreground === false || args.includes('-f') ? [...args] : ['-f', ...args];
  const port = opts.port ?? (opts.unix === undefined ? listenPortFromArgs(withF) : undefined);
  return { args: withF, opts: port === undefined ? opts : { ...opts, port } };
}

export interface FulcrumOptions extends PenStyleOptions {
  /** Script to run instead of src/cli/main.ts (relative to the repo root), e.g. a test fixture. */
  entry?: string;
}

/** Starts `bun src/cli/main.ts -f ...args` from the repo root and waits until it listens. */
export function startFulcrum(args: readonly string[], opts: FulcrumOptions = {}): Promise<RunningProcess> {
  const entry = opts.entry ?? 'src/cli/main.ts';
  const pen = penStyle(args, opts);
  return spawnProcess([bunPath(), entry, ...pen.args], { name: 'fulcrum', ...pen.opts });
}

/** Path of the system pen binary, if installed. */
export function penPath(): string | undefined {
  if (existsSync('/usr/bin/pen')) return '/usr/bin/pen';
  return Bun.which('pen') ?? undefined;
}

/** Whether pen is installed; pen-based tests use `test.skipIf(!penAvailable())`. */
export function penAvailable(): boolean {
  return penPath() !== undefined;
}

/**
 * The command that runs the system pen with `args` and cannot leave a core file in the tree: core
 * dumps off, and its working directory a temporary one. pen 0.34.1 aborts with more TLS clients than
 * its -x (docs/architecture.md, Decisions), and the kernel's default core_pattern writes `core` into
 * the working directory; a 36 MB one was once committed. Every test and bench that starts pen uses
 * this, so pen's file arguments must be absolute paths. `exec` keeps pen's pid the one we hold.
 */
export function penCommand(args: readonly string[]): string[] {
  const path = penPath();
  if (path === undefined) throw new Error('pen is not installed (apt-get install pen); guard pen tests with penAvailable()');
  // One fixed directory, kept: bun test does not always run exit handlers, and a directory per run would pile up.
  const dir = join(tmpdir(), `fulcrum-pen-${process.getuid?.() ?? 0}`);
  mkdirSync(dir, { recursive: true });
  return ['/bin/sh', '-c', 'ulimit -c 0 && cd "$0" && exec "$@"', dir, path, ...args];
}

/** Starts the system pen with -f (through penCommand) and waits until it listens. */
export function startPen(args: readonly string[], opts: PenStyleOptions = {}): Promise<RunningProcess> {
  const pen = penStyle(args, opts);
  return spawnProcess(penCommand(pen.args), { name: 'pen', ...pen.opts });
}

/** Whether `pid` is alive (signal 0 probe). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)\s*/, '').startsWith('Z');
  } catch {
    return false;
  }
}
