/**
 * Our own resource exhaustion, told apart from a server's failure. Bun reports a connect that
 * failed because this process is out of file descriptors (EMFILE, ENFILE) as ECONNREFUSED, the
 * same as a server that refuses; so when a connect fails, one probe (open and close /dev/null)
 * asks the kernel whether we can still open a descriptor. It runs only on failed connects, never
 * per chunk. Counting the open descriptors (for the log line) is done at most once per log
 * interval by the caller.
 *
 * At start (the descriptor budget) none of it may cost memory for good: node:fs alone is ≈2 MB
 * resident, and even the runtime's own directory scanner and asynchronous file reader leave
 * ≈0.5 MB each of its code behind (docs/performance.md, issue 10). So the open descriptors are
 * the size of /proc/self/fd (one stat: Linux 6.2 and later report the count there; older kernels
 * say 0, and the directory is then scanned), and the open-files limit is read once before the
 * listeners bind through the module loader, which every start has already used. The /dev/null
 * probe takes node:fs on the first failed connect (process.getBuiltinModule: synchronous, a few
 * milliseconds once).
 */
import { isDigit } from '../core/digits.ts';

const RESOURCE_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** True when a failed connect was ours: the error says so, or no descriptor can be opened now. */
export function isResourceFailure(error: Error | undefined): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && RESOURCE_CODES.has(code)) return true;
  try {
    const fs = process.getBuiltinModule('node:fs');
    fs.closeSync(fs.openSync('/dev/null', 'r'));
    return false;
  } catch (e) {
    const c = (e as { code?: unknown }).code;
    return typeof c === 'string' && RESOURCE_CODES.has(c);
  }
}

/** Open descriptors and the soft limit, for the "out of file descriptors" line (null if unknown). */
export function descriptorUsage(): { open: number; limit: number | null } | null {
  try {
    return { open: openDescriptors(), limit: softNofileLimit() };
  } catch {
    return null;
  }
}

function openDescriptors(): number {
  const counted = Bun.file('/proc/self/fd').size;
  if (counted > 0) return counted;
  let open = 0;
  for (const _ of new Bun.Glob('*').scanSync({ cwd: '/proc/self/fd', onlyFiles: false, dot: true })) open++;
  return open;
}

const LIMITS = '/proc/self/limits';
/** The soft open-files limit (null: unlimited or unknown); undefined until read. */
let nofileLimit: number | null | undefined;

/**
 * Reads the soft open-files limit, once, before the listeners bind (start, a worker's start);
 * the runtime raised it to the hard limit at its own start, and Fulcrum never changes it.
 */
export async function readDescriptorLimit(): Promise<void> {
  try {
    // `with { type: 'text' }`: the file's text as a module's default export, read by the loader.
    const path: string = LIMITS;
    const text = ((await import(path, { with: { type: 'text' } })) as { default: string }).default;
    nofileLimit = parseNofileLimit(text);
  } catch {
    nofileLimit = null;
  }
}

/** The limit read before; read now (synchronously, node:fs) by a balancer started without it (tests). */
function softNofileLimit(): number | null {
  if (nofileLimit === undefined) {
    try {
      nofileLimit = parseNofileLimit(process.getBuiltinModule('node:fs').readFileSync(LIMITS, 'utf8'));
    } catch {
      nofileLimit = null;
    }
  }
  return nofileLimit;
}

/** The soft limit in /proc/self/limits' `Max open files` line (/^Max open files\s+(\d+|unlimited)/m, by hand: core/digits.ts). */
function parseNofileLimit(text: string): number | null {
  const name = 'Max open files';
  const line = text.split('\n').find((l) => l.startsWith(name));
  if (line === undefined) return null;
  const value = line.slice(name.length).trimStart();
  if (value.length === line.length - name.length) return null;
  let digits = 0;
  while (digits < value.length && isDigit(value.charCodeAt(digits))) digits++;
  return digits === 0 ? null : Number(value.slice(0, digits));
}
