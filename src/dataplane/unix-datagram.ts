/**
 * Sending to a Unix datagram socket: systemd's NOTIFY_SOCKET and syslog's /dev/log are both
 * AF_UNIX/SOCK_DGRAM, and Bun has no such socket (Bun.udpSocket is UDP only, node:dgram dropped
 * 'unix_dgram'). So this calls libc's socket(2) and sendto(2) through bun:ffi, as sd_notify(3)
 * and syslog(3) do in C. The message then comes from this very process (its pid in the
 * credentials), which systemd's NotifyAccess=main requires; a helper binary such as
 * systemd-notify would send as another pid that may be gone before systemd reads it.
 *
 * Every send is MSG_DONTWAIT: when the reader is slow and the queue is full the message is
 * dropped (and counted by the caller), never waited for, so the event loop cannot block here.
 */

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): family (2 bytes) and sun_path (108 bytes). */
const SOCKADDR_UN = 110;

type Libc = ReturnType<typeof openLibc>;
let libc: Libc | null = null;

/** bun:ffi, taken when libc is first needed (not loaded at rest: docs/performance.md). */
function ffi(): typeof import('bun:ffi') {
  return process.getBuiltinModule('bun:ffi') as typeof import('bun:ffi');
}

function openLibc() {
  const { dlopen, FFIType } = ffi();
  return dlopen('libc.so.6', {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

/** The result of one send: sent, dropped because the reader's queue is full, or failed (errno). */
export type SendResult = 'sent' | 'full' | { errno: number };

export interface UnixDatagram {
  /** The address as given (`@name` for the abstract namespace). */
  readonly path: string;
  send(text: string): SendResult;
  close(): void;
}

/**
 * An unconnected datagram socket that sends to `path` (a file system path, or `@name` for
 * Linux's abstract namespace, as NOTIFY_SOCKET writes it). Throws when libc cannot be loaded
 * (not glibc) or the socket cannot be created; a path that does not exist fails at send.
 */
export function openUnixDatagram(path: string): UnixDatagram {
  libc ??= openLibc();
  const c = libc.symbols;
  const { ptr } = ffi();
  const name = Buffer.from(path.startsWith('@') ? '\0' + path.slice(1) : path);
  if (name.length > SOCKADDR_UN - 3) throw new Error(`${path}: a Unix socket path has at most ${SOCKADDR_UN - 3} bytes`);
  const addr = new Uint8Array(SOCKADDR_UN);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  // An abstract name is exactly its bytes; a path carries its terminating NUL.
  const addrLen = 2 + name.length + (path.startsWith('@') ? 0 : 1);
  let fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`cannot create a Unix datagram socket (errno ${errno(libc)})`);
  return {
    path,
    send(text: string): SendResult {
      if (fd < 0) return { errno: 9 }; // EBADF: closed
      const msg = Buffer.from(text);
      const n = c.sendto(fd, ptr(msg), msg.length, MSG_DONTWAIT | MSG_NOSIGNAL, ptr(addr), addrLen);
      if (n >= 0) return 'sent';
      const e = errno(libc!);
      return e === 11 ? 'full' : { errno: e }; // EAGAIN
    },
    close(): void {
      if (fd >= 0) c.close(fd);
      fd = -1;
    },
  };
}

function errno(l: Libc): number {
  const p = l.symbols.__errno_location();
  return p === null ? -1 : ffi().read.i32(p, 0);
}
