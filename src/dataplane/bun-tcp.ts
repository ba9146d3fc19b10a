/**
 * The Bun adapter for proxied plain TCP and Unix-socket connections. The other files that call
 * Bun's socket API are in this folder too: bun-tls.ts (TLS), health-probes.ts (check
 * connections) and control-socket.ts (the control port). Handlers are module-level objects shared
 * by every socket (no closures per connection or per chunk); each socket's `data` is the Side it
 * belongs to, so every event is one property read and one method call away from the session logic.
 */
import type { Socket, SocketHandler, SocketListener, TCPSocketConnectOptions, TCPSocketListenOptions, UnixSocketOptions } from 'bun';
import type { Address } from '../core/address.ts';
import { isResourceFailure } from './resources.ts';
import type { Side } from './session.ts';

export interface AcceptHandler {
  /** A client connected; the handler creates its session and sets socket.data. */
  accept(socket: Socket<Side>): void;
}

/** What the client handlers need to find the acceptor of a new socket. */
interface ListenerData {
  acceptor: AcceptHandler;
}

/** The data path is the same in both directions: the socket's Side does the work. */
const pump = {
  data(socket: Socket<Side>, chunk: Buffer): void {
    socket.data.onData(chunk);
  },
  drain(socket: Socket<Side>): void {
    socket.data.onDrain();
  },
  end(socket: Socket<Side>): void {
    socket.data.onEnd();
  },
  timeout(socket: Socket<Side>): void {
    socket.data.onTimeout();
  },
};

/** Exported for the TLS and passthrough listeners, which reuse them once a session exists. */
export const clientHandlers: SocketHandler<Side> = {
  ...pump,
  open(socket) {
    const listener = socket.listener as (SocketListener<unknown> & { data: ListenerData }) | undefined;
    if (listener === undefined) {
      socket.terminate();
      return;
    }
    // Not paused: the client's first bytes are read while its server connects (session.ts,
    // EARLY_BYTES_MAX); a client that must wait for a slot is paused by admission.
    listener.data.acceptor.accept(socket);
  },
  close(socket, error) {
    socket.data?.onClose(error);
  },
  error(socket, error) {
    socket.data?.onClose(error);
  },
};

export const serverHandlers: SocketHandler<Side> = {
  ...pump,
  open(socket) {
    const side = socket.data;
    side.session.serverConnected(side, socket);
  },
  connectError(socket, error) {
    const side = socket.data;
    side.session.serverConnectFailed(side, error, isResourceFailure(error));
  },
  close(socket, error) {
    const side = socket.data;
    if (side.socket === socket) side.onClose(error);
    else if (side.session.connecting && side === side.session.serverSide) side.session.serverConnectFailed(side, error, isResourceFailure(error));
  },
  error(socket, error) {
    const side = socket.data;
    if (side.socket === socket) side.onClose(error);
  },
};

export interface ListenHandle {
  readonly address: Address;
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Stop accepting; established connections are untouched. */
  stop(): void;
  /** The listening socket's descriptor, which an upgrade hands to the new process (docs/operations.md). */
  readonly fd?: number;
}

export interface ListenOptions {
  /**
   * Share the port with other processes that bind it the same way (SO_REUSEPORT), the kernel
   * spreading connections among them: the workers of one Fulcrum. Without it the port is bound
   * exclusively.
   */
  reusePort?: boolean;
  /**
   * A listening socket inherited from the process this one replaces (an upgrade): it is adopted
   * as it is, with its accept queue, instead of binding a new one.
   */
  fd?: number;
}

/** The listener's descriptor: Bun 1.4 has `fd` on a listener but does not declare it. */
export function listenerFd(l: object): number | undefined {
  const fd = (l as { fd?: unknown }).fd;
  return typeof fd === 'number' ? fd : undefined;
}

/** Bun.listen on an inherited listening descriptor (Bun 1.4 accepts `fd`; its type declares it only for Bun.connect). */
export function listenInherited<T>(address: Address, fd: number, socket: SocketHandler<T>, data: unknown): ListenHandle {
  const l = (Bun.listen as (o: object) => SocketListener<T>)({ fd, allowHalfOpen: true, socket, data });
  return { address, port: address.kind === 'unix' ? 0 : address.port, fd: listenerFd(l), stop: () => l.stop(false) };
}

/**
 * Why a listen failed, in the operator's words: Bun says only "Failed to listen at 0.0.0.0" and
 * keeps the reason in `code`.
 */
export function listenErrorText(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return 'address already in use (another process is listening there; choose another port or stop it)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023)';
    case 'EADDRNOTAVAIL':
      return 'address not available (no interface of this machine has it; check the host part)';
    default:
      return (e as Error).message;
  }
}

export function listenTcp(address: Address, acceptor: AcceptHandler, options: ListenOptions = {}): ListenHandle {
  const data: ListenerData = { acceptor };
  if (options.fd !== undefined) return listenInherited(address, options.fd, clientHandlers, data);
  if (address.kind === 'unix') {
    const l = Bun.listen<Side>({ unix: address.path, allowHalfOpen: true, socket: clientHandlers, data: data as unknown as Side });
    return { address, port: 0, fd: listenerFd(l), stop: () => l.stop(false) };
  }
  const reusePort = options.reusePort === true;
  // Bun 1.4 honours `reusePort` in Bun.listen, but its type declares it only for Bun.connect.
  const listenOptions: TCPSocketListenOptions<Side> & { reusePort: boolean } = {
    hostname: address.host,
    port: address.port,
    allowHalfOpen: true,
    exclusive: !reusePort,
    reusePort,
    socket: clientHandlers,
    data: data as unknown as Side,
  };
  const l = Bun.listen<Side>(listenOptions);
  return { address, port: l.port, fd: listenerFd(l), stop: () => l.stop(false) };
}

/**
 * Bun.connect's options: one object of each kind, reused by every connect. Bun reads them during
 * the call (the address, the handlers, `data`), so a connect changes the address and `data` in
 * place and clears `data` after, so that the object keeps no session alive: one object fewer per
 * connection than a literal.
 */
const tcpConnect: TCPSocketConnectOptions<Side> = { hostname: '', port: 0, allowHalfOpen: true, socket: serverHandlers, data: undefined };
const unixConnect: UnixSocketOptions<Side> = { unix: '', allowHalfOpen: true, socket: serverHandlers, data: undefined };

export function connectTcp(address: Address, side: Side): void {
  if (address.kind === 'unix') {
    unixConnect.unix = address.path;
    connectWith(unixConnect, side);
    return;
  }
  tcpConnect.hostname = address.host;
  tcpConnect.port = address.port;
  connectWith(tcpConnect, side);
}

/** Connects with one of the shared option objects, which holds `side` only during the call. */
function connectWith(options: TCPSocketConnectOptions<Side> | UnixSocketOptions<Side>, side: Side): void {
  options.data = side;
  // The returned promise is left alone: with a connectError handler Bun does not report its
  // rejection, and a .catch() would cost a promise reaction per connection.
  try {
    // Either overload: Bun tells them apart by `unix` or `hostname`.
    void Bun.connect<Side>(options as TCPSocketConnectOptions<Side>);
  } finally {
    options.data = undefined;
  }
}
