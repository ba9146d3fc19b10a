/**
 * Our own resource exhaustion, told apart from a server's failure. Bun reports a connect that
 * failed because this process is out of file descriptors (EMFILE, ENFILE) as ECONNREFUSED, the
 * same as a server that refuses; so when a connect fails, one probe (open and close /dev/null)
 * asks the kernel whether we can still open a descriptor. It runs only on failed connects, never
 * per chunk. Counting the open descriptors (for the log line) reads /proc/self/fd and is done at
 * most once per log interval by the caller.
 */
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

const RESOURCE_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** True when a failed connect was ours: the error says so, or no descriptor can be opened now. */
export function isResourceFailure(error: Error | undefined): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && RESOURCE_CODES.has(code)) return true;
  try {
    closeSync(openSync('/dev/null', 'r'));
    return false;
  } catch (e) {
    const c = (e as { code?: unknown }).code;
    return typeof c === 'string' && RESOURCE_CODES.has(c);
  }
}

/** Open descriptors and the soft limit, for the "out of file descriptors" line (null if unknown). */
export function descriptorUsage(): { open: number; limit: number | null } | null {
  try {
    const open = readdirSync('/proc/self/fd').length;
    return { open, limit: softNofileLimit() };
  } catch {
    return null;
  }
}

function softNofileLimit(): number | null {
  try {
    const text = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    return m === null || m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    return null;
  }
}
