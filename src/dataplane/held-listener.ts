/**
 * A listening socket that this process holds but never accepts on: the primary of --workers
 * owns one per TCP port and every worker inherits it at spawn (docs/workers.md), so all workers
 * share ONE accept queue and a worker that stops or dies leaves what is queued to the others.
 *
 * Bun has no call that makes a listening socket without accepting on it, and no setsockopt: so
 * the socket is made by Bun.listen (its bind and listen, SO_REUSEADDR, IPv6 and all), duplicated
 * with libc's dup(2) through bun:ffi, and the Bun listener is stopped at once, in the same
 * synchronous step, so its event loop never accepts a connection. Bun's stop() is a plain
 * close(2) of its own descriptor: the duplicate keeps the socket, and its queue, listening.
 */
import type { Address } from '../core/address.ts';
import { listenerFd, type ListenHandle } from './bun-tcp.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | null = null;

/** bun:ffi, taken when libc is first needed (not loaded at rest: docs/performance.md). */
function ffi(): typeof import('bun:ffi') {
  return process.getBuiltinModule('bun:ffi') as typeof import('bun:ffi');
}

function openLibc() {
  const { dlopen, FFIType } = ffi();
  return dlopen('libc.so.6', {
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  });
}

/** fcntl(2)'s F_DUPFD_CLOEXEC: a duplicate that no unrelated child inherits by accident. */
const F_DUPFD_CLOEXEC = 1030;

/** Never called: the listener is stopped before its event loop could accept. */
const neverAccept = {
  open(s: { end(): void }): void {
    s.end();
  },
  data(): void {},
};

/**
 * Binds `address` (TCP, exclusively: no other process may join the port with SO_REUSEPORT) and
 * returns a handle on the held descriptor. A bind failure throws Bun's error (with its `code`).
 */
export function holdListeningSocket(address: Address): ListenHandle {
  if (address.kind === 'unix') throw new Error('a held listening socket is a TCP port');
  libc ??= openLibc();
  const l = Bun.listen({ hostname: address.host, port: address.port, exclusive: true, allowHalfOpen: true, socket: neverAccept, data: null });
  const fd = listenerFd(l);
  const held = fd === undefined ? -1 : libc.symbols.fcntl(fd, F_DUPFD_CLOEXEC, 3);
  const port = l.port;
  l.stop(false);
  if (held < 0) throw new Error(`cannot duplicate the listening socket of ${address.host}:${port}`);
  return heldHandle({ ...address, port }, held);
}

/** A handle on a listening descriptor held as it is (inherited from an upgrade, or made above). */
export function heldHandle(address: Address, fd: number): ListenHandle {
  let open = true;
  return {
    address,
    port: address.kind === 'unix' ? 0 : address.port,
    fd,
    stop: () => {
      if (!open) return;
      open = false;
      try {
        fs().closeSync(fd);
      } catch {
        // Already closed: nothing to release.
      }
    },
  };
}
