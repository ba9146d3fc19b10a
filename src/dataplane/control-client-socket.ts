/**
 * The client side of the control line protocol (control-socket.ts serves it): `fulcrum ctl` and
 * the tests connect over TCP or a Unix socket, send one command line, and read the reply until
 * the server closes, bounded by a timeout.
 */
import type { Socket, SocketHandler } from 'bun';
import type { Address } from '../core/address.ts';
import { clampTimerMs, type Clock, type TimerHandle } from '../core/clock.ts';
import { systemClock } from './system-clock.ts';

const encoder = new TextEncoder();

interface ClientState {
  line: Uint8Array;
  chunks: Uint8Array[];
  done: boolean;
  resolve(text: string): void;
  reject(e: Error): void;
}

const decoder = new TextDecoder();

const clientHandlers: SocketHandler<ClientState> = {
  open(socket) {
    const st = socket.data;
    const n = socket.write(st.line);
    st.line = n < 0 ? new Uint8Array(0) : st.line.subarray(Math.max(0, n));
  },
  drain(socket) {
    const st = socket.data;
    if (st.line.length === 0) return;
    const n = socket.write(st.line);
    st.line = n < 0 ? new Uint8Array(0) : st.line.subarray(Math.max(0, n));
  },
  data(socket, chunk) {
    socket.data.chunks.push(new Uint8Array(chunk));
  },
  end(socket) {
    socket.end();
  },
  close(socket, error) {
    const st = socket.data;
    if (st.done) return;
    st.done = true;
    const text = decoder.decode(Buffer.concat(st.chunks));
    if (error !== undefined && text === '') st.reject(error);
    else st.resolve(text);
  },
  connectError(socket, error) {
    const st = socket.data;
    if (st.done) return;
    st.done = true;
    st.reject(error);
  },
  error(socket, error) {
    const st = socket.data;
    if (st.done) return;
    st.done = true;
    st.reject(error);
  },
};

/**
 * Sends `line` (a newline is added) and resolves with everything the server sends until it
 * closes. Rejects when the connection fails or nothing has ended within `timeoutMs`.
 */
export async function requestLine(address: Address, line: string, timeoutMs: number, clock: Clock = systemClock): Promise<string> {
  let timer: TimerHandle | null = null;
  let socket: Socket<ClientState> | null = null;
  const reply = new Promise<string>((resolve, reject) => {
    const st: ClientState = { line: encoder.encode(line + '\n'), chunks: [], done: false, resolve, reject };
    timer = clock.setTimeout(() => {
      if (st.done) return;
      st.done = true;
      socket?.terminate();
      reject(new Error(`no reply within ${timeoutMs} ms`));
    }, clampTimerMs(timeoutMs), undefined, true); // the caller is waiting for this answer
    const connecting =
      address.kind === 'unix'
        ? Bun.connect<ClientState>({ unix: address.path, allowHalfOpen: true, socket: clientHandlers, data: st })
        : Bun.connect<ClientState>({ hostname: address.host, port: address.port, allowHalfOpen: true, socket: clientHandlers, data: st });
    connecting.then(
      (s) => {
        socket = s;
        if (st.done) s.terminate(); // timed out while connecting
      },
      (e: Error) => {
        if (st.done) return;
        st.done = true;
        reject(e);
      },
    );
  });
  try {
    return await reply;
  } finally {
    clock.clearTimer(timer);
  }
}
