// Small building blocks shared by the harness: bounded waits, ports, payloads, digests.
// Every wait here has a deadline and fails with a message that says what was awaited,
// so a broken feature shows up as a readable failure instead of a hung test run.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Default bound for one wait (a read, a connect, a close). Generous: the CI machine is shared. */
export const DEFAULT_TIMEOUT_MS = 5_000;

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Human description of the awaited condition, used in the timeout message. */
  what?: string;
  /** Extra context appended to the timeout message (e.g. a process's output). */
  details?: () => string;
}

/**
 * Polls `predicate` until it returns a truthy value, which is returned.
 * Throws a TimeoutError naming `what` (and the predicate's last error, if it threw) on timeout.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) break;
    await Bun.sleep(Math.min(intervalMs, Math.max(1, deadline - performance.now())));
  }
  let message = `timed out after ${timeoutMs}ms waiting for ${opts.what ?? 'condition'}`;
  if (lastError !== undefined) message += `; last error: ${errorMessage(lastError)}`;
  const details = opts.details?.();
  if (details) message += `\n${details}`;
  throw new TimeoutError(message);
}

/** Rejects with a TimeoutError naming `what` if `promise` has not settled within `timeoutMs`. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${timeoutMs}ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * True when `promise` is still unsettled after `ms`. For negative checks ("the write stays blocked"):
 * a correct system keeps it pending forever, so slowness can never turn this into a false failure.
 */
export async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const PENDING = Symbol('pending');
  const settled = promise.then(() => undefined, () => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    settled,
    new Promise<typeof PENDING>((resolve) => { timer = setTimeout(() => resolve(PENDING), ms); }),
  ]);
  clearTimeout(timer);
  return result === PENDING;
}

/** A TCP port that was free a moment ago (bound to port 0, then released). */
export function freePort(host = '127.0.0.1'): number {
  const listener = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** Formats `host:port` the way pen's command line expects, bracketing IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

let seedCounter = 0x9e3779b9;
/** A fresh seed per call: concurrent transfers must carry different bytes, or a cross-wired stream would still verify. */
export function nextSeed(): number {
  seedCounter = (seedCounter + 0x6d2b79f5) >>> 0;
  return seedCounter;
}

/** N deterministic pseudo-random bytes (xorshift32), reproducible from `seed`. */
export function payload(bytes: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= bytes; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  for (; i < bytes; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Index of the first byte where `a` and `b` differ, or -1 when equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Short printable preview of bytes for error messages. */
export function preview(data: Uint8Array, max = 64): string {
  const text = Buffer.from(data.subarray(0, max)).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return data.length > max ? `${JSON.stringify(text)}… (${data.length} bytes)` : JSON.stringify(text);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh Unix socket path in a private temp dir (short: sun_path is limited to 108 bytes). */
export function tempSocketPath(name = 'sock'): string {
  const dir = mkdtempSync(join(tmpdir(), 'fulcrum-'));
  tempDirs.add(dir);
  return join(dir, `${name}.sock`);
}

/** Removes a path made by tempSocketPath (and its private dir). Safe to call twice. */
export function removeTempSocketPath(path: string): void {
  const dir = path.slice(0, path.lastIndexOf('/'));
  if (tempDirs.delete(dir)) rmSync(dir, { recursive: true, force: true });
  else rmSync(path, { force: true });
}
