/**
 * The operator's files, read and written safely: config and command files are read in bounded
 * chunks up to a cap (so `--config /dev/urandom` stops at once instead of filling memory), and a
 * failure to open, create or write a file is described in one line that names the file and says
 * how to fix it (no stack trace). `fulcrum check` uses the same checks as a start.
 */
/** node:fs and node:path, taken when a file is first read or checked (not loaded at rest: docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

function dirname(path: string): string {
  return process.getBuiltinModule('node:path').dirname(path);
}
import { FulcrumError } from '../core/errors.ts';

/** The largest config file (--config, `fulcrum check`) or pen command file (-F) read: 4 MiB. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const CHUNK = 64 * 1024;

/**
 * Reads a text file in chunks and stops past `cap` bytes (a device or a runaway file is not read
 * to its end). Throws a FulcrumError (E_CONFIG_INVALID) saying why; the caller names the file.
 */
export function readBoundedText(path: string, what: string, cap = MAX_CONFIG_BYTES): string {
  let fd: number;
  try {
    fd = fs().openSync(path, 'r');
  } catch (e) {
    throw new FulcrumError('E_CONFIG_INVALID', `cannot read the ${what}: ${fileProblem(e, path, 'read')}`, { cause: e });
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = fs().readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      if (total > cap) {
        throw new FulcrumError('E_CONFIG_INVALID', `the ${what} is larger than ${cap / (1024 * 1024)} MiB, the most Fulcrum reads (is it the right file?)`);
      }
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (e) {
    if (e instanceof FulcrumError) throw e;
    throw new FulcrumError('E_CONFIG_INVALID', `cannot read the ${what}: ${fileProblem(e, path, 'read')}`, { cause: e });
  } finally {
    fs().closeSync(fd);
  }
}

/** The system error's code (ENOENT, EACCES, ...), or null. */
function codeOf(e: unknown): string | null {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : null;
}

/**
 * Why a file could not be opened, and the fix, in a few words: "no such directory /x (create it
 * or choose another path)". `use` is what was being done with it.
 */
export function fileProblem(e: unknown, path: string, use: 'read' | 'write', user: string | null = null): string {
  const who = user === null ? 'this process' : `user ${user}`;
  switch (codeOf(e)) {
    case 'ENOENT':
      return use === 'read' ? 'no such file' : `no such directory ${dirname(path)} (create it or choose another path)`;
    case 'EACCES':
    case 'EPERM':
      return use === 'read'
        ? `permission denied (${who} may not read it; fix its permissions)`
        : `permission denied (${who} may not write there; choose a path it may write or change the permissions)`;
    case 'EISDIR':
      return 'it is a directory (give a file path)';
    case 'ENOTDIR':
      return `a part of ${dirname(path)} is not a directory`;
    case 'EROFS':
      return 'the file system is read-only (choose another path)';
    default:
      return (e as Error).message;
  }
}

/** The ids a directory is checked against: -u's user, or null for this process. */
export interface Ids {
  uid: number;
  gid: number;
}

/**
 * Why a file could not be created or appended to at `path` (by `ids`, when given), or null if it
 * can. Nothing is created: the directory (or the existing file) is checked.
 */
export function writeProblem(path: string, ids: Ids | null = null, user: string | null = null): string | null {
  const dir = dirname(path);
  let target = path;
  try {
    const st = fs().statSync(path);
    if (st.isDirectory()) return 'it is a directory (give a file path)';
  } catch {
    target = dir;
    try {
      if (!fs().statSync(dir).isDirectory()) return `${dir} is not a directory`;
    } catch (e) {
      return fileProblem(e, path, 'write', user);
    }
  }
  const denied = (): string => fileProblem({ code: 'EACCES' }, path, 'write', user);
  if (ids === null || ids.uid === 0) {
    try {
      fs().accessSync(target, fs().constants.W_OK);
      return null;
    } catch (e) {
      return fileProblem(e, path, 'write', user);
    }
  }
  const st = fs().statSync(target);
  const mode = st.mode;
  const ok = st.uid === ids.uid ? (mode & 0o200) !== 0 : st.gid === ids.gid ? (mode & 0o020) !== 0 : (mode & 0o002) !== 0;
  return ok ? null : denied();
}

/**
 * Writes a report file (pen's status page) whole or not at all: into a temporary file beside it,
 * then renamed over it, so a reader never sees it empty or half written.
 */
export async function writeFileWhole(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const { rename, writeFile } = process.getBuiltinModule('node:fs/promises');
  await writeFile(tmp, text);
  await rename(tmp, path);
}
