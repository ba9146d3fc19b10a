/**
 * A loopback port where connects hang (for connect timeouts): a socket made with libc directly
 * (Bun's listeners ignore the backlog and accept at once), listening with a backlog of 0 and
 * never accepting. One connection fills its accept queue; after that the kernel drops every SYN,
 * so a connect neither succeeds nor fails until the caller gives up. Linux only.
 */
import { dlopen, FFIType, ptr } from 'bun:ffi';
import net from 'node:net';
import { waitFor } from '../harness/index.ts';

const AF_INET = 2;
const SOCK_STREAM = 1;

let libc: ReturnType<typeof open> | null = null;
function open() {
  return dlopen('libc.so.6', {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
}

export interface Blackhole {
  port: number;
  address: string;
  close(): Promise<void>;
}

export async function blackhole(): Promise<Blackhole> {
  libc ??= open();
  const c = libc.symbols;
  const fd = c.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw new Error('blackhole: socket() failed');
  const addr = new Uint8Array(16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, AF_INET, true);
  addr.set([127, 0, 0, 1], 4);
  if (c.bind(fd, ptr(addr), 16) !== 0 || c.listen(fd, 0) !== 0) {
    c.close(fd);
    throw new Error('blackhole: bind() or listen() failed');
  }
  const len = new Uint32Array([16]);
  c.getsockname(fd, ptr(addr), ptr(len));
  const port = view.getUint16(2, false);
  // Fill the accept queue: this connection completes (the kernel accepts it for us) and stays.
  const filler = net.connect({ host: '127.0.0.1', port });
  filler.on('error', () => {});
  let connected = false;
  filler.once('connect', () => (connected = true));
  await waitFor(() => connected, { what: 'the connection that fills the blackhole\'s accept queue' });
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: async () => {
      filler.destroy();
      c.close(fd);
    },
  };
}
