/**
 * A clean goodbye to a client that is refused before its session read anything (ACL denial, no
 * server, queue full ...). Closing a socket whose receive queue still holds unread bytes makes
 * the kernel send a reset instead of a FIN, and so does data the client sends after our FIN
 * reaches a closed socket; pen closes such clients cleanly, and docs/termination-codes.md
 * promises a FIN. So the socket sends its FIN, then reads and discards until the client's own FIN
 * (or a short bound, LINGER_SECONDS) and only then closes. The session is already finished and
 * its slot free: a lingering socket holds a descriptor, nothing else.
 *
 * A Linger answers the same events as a session's Side, so the shared socket handlers drive it
 * once it is the socket's `data`.
 */
import type { StreamSocket } from './socket.ts';

/** How long (s) a refused client may take to send its FIN; the runtime's timers tick every ~4 s. */
export const LINGER_SECONDS = 2;

let lingering = 0;

/** Sockets lingering now (each holds a descriptor): the balancer's descriptor budget counts them. */
export function lingeringSockets(): number {
  return lingering;
}

export class Linger {
  readonly socket: StreamSocket<unknown>;

  constructor(socket: StreamSocket<unknown>) {
    this.socket = socket;
  }

  /** FIN now, then wait (reading) for the client's. */
  static start(socket: StreamSocket<unknown>): void {
    const l = new Linger(socket);
    lingering++;
    socket.data = l;
    socket.shutdown();
    socket.timeout(LINGER_SECONDS);
    socket.resume();
  }

  onData(): void {
    // discarded: the client was refused
  }
  onDrain(): void {}
  onEnd(): void {
    this.socket.end();
  }
  #closed = false;
  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    lingering--;
  }
  onTimeout(): void {
    this.socket.end();
  }
}
