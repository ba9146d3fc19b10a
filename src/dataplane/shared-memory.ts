/**
 * Memory shared by the worker processes of one Fulcrum: files mapped with Bun.mmap, which maps
 * MAP_SHARED, so a write by one process is seen by the others at once and Atomics work across
 * processes on an Int32Array over the mapping. What lives where is src/core/workers/layout.ts.
 *
 * Files live in /dev/shm (memory, not disk) when it exists, named after the primary's pid, and
 * are created at their final size (ftruncate: sparse, zero-filled) before anyone maps them:
 * a mapped file must never shrink (Bun crashes on access past the end of a truncated mapping).
 * The primary removes them when it stops; a mapping stays valid after its file is unlinked.
 */
import { FulcrumError } from '../core/errors.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

/** node:os, taken on first use: not loaded at rest (docs/performance.md). */
function os(): typeof import('node:os') {
  return process.getBuiltinModule('node:os');
}

/** node:path, taken on first use: not loaded at rest (docs/performance.md). */
function pathModule(): typeof import('node:path') {
  return process.getBuiltinModule('node:path');
}

export interface MappedBlock {
  readonly path: string;
  readonly byteLength: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}

/** /dev/shm if it is a writable directory, else the temporary directory. */
export function sharedMemoryDir(): string {
  try {
    if (fs().statSync('/dev/shm').isDirectory()) {
      fs().accessSync('/dev/shm', fs().constants.W_OK);
      return '/dev/shm';
    }
  } catch {
    // no /dev/shm here
  }
  return os().tmpdir();
}

function view(path: string, mapped: Uint8Array, byteLength: number): MappedBlock {
  if (mapped.byteLength < byteLength) throw new FulcrumError('E_SHARED_MEMORY', `${path} maps ${mapped.byteLength} bytes, expected ${byteLength}`);
  if (mapped.byteOffset % 8 !== 0) throw new FulcrumError('E_SHARED_MEMORY', `${path} is not mapped at an 8-byte boundary`);
  return {
    path,
    byteLength,
    i32: new Int32Array(mapped.buffer, mapped.byteOffset, byteLength >> 2),
    f64: new Float64Array(mapped.buffer, mapped.byteOffset, byteLength >> 3),
  };
}

/** Creates a zero-filled file of `byteLength` bytes (which must not exist yet) and maps it. */
export function createBlock(path: string, byteLength: number): MappedBlock {
  const size = Math.max(8, (byteLength + 7) & ~7);
  const fd = fs().openSync(path, 'wx', 0o600);
  try {
    fs().ftruncateSync(fd, size);
  } finally {
    fs().closeSync(fd);
  }
  return view(path, Bun.mmap(path, { shared: true }), size);
}

/** Maps a block another process created. */
export function openBlock(path: string, byteLength: number): MappedBlock {
  const size = Math.max(8, (byteLength + 7) & ~7);
  return view(path, Bun.mmap(path, { shared: true }), size);
}

/** Hands the files to the user the processes will run as (-u), so that replacement workers can map them. */
export function chownBlocks(paths: readonly string[], uid: number, gid: number): void {
  for (const p of paths) fs().chownSync(p, uid, gid);
}

/** Removes the files whose names start with `prefix` in `dir`; returns how many. */
export function removeBlocks(dir: string, prefix: string): number {
  let n = 0;
  let names: string[];
  try {
    names = fs().readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    try {
      fs().unlinkSync(pathModule().join(dir, name));
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}

/** Whether a process with this pid runs (a lock holder that died is recognised by this). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
