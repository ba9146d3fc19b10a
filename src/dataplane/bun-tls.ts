/**
 * Bun's native TLS (BoringSSL) for Fulcrum: terminating listeners, passthrough listeners that
 * read the ClientHello first, and TLS connections to servers. Like bun-tcp.ts, handlers are
 * module-level objects shared by every socket, and after the gate the very same session logic
 * drives TLS and plain sockets.
 *
 * How termination works (see docs/tls.md for why): the listener is a plain TCP listener; each
 * accepted socket is upgraded to a server-side TLS socket with the listener's *current* secure
 * context. So a certificate reload is a pointer swap for the next connection, with nothing
 * rebound and no connection dropped, and a connection keeps the settings it started with. The
 * SNI callback picks a certificate per server name; several certificates (RSA and ECDSA) can sit
 * in one context. Secure contexts come from node:tls createSecureContext, which builds the same
 * native BoringSSL context Bun's own node:tls server uses; no node:tls streams are involved.
 * node:tls is loaded on the first context built (about 7 MB resident), so a balancer without TLS
 * never loads it.
 */
import type { SecureContextOptions } from 'node:tls';
import type { Socket, SocketHandler, TCPSocketListenOptions } from 'bun';
import type { Address } from '../core/address.ts';
import type { TlsVersion } from '../core/tls-rules.ts';
import { clientHandlers, listenerFd, listenInherited, serverHandlers, type ListenHandle, type ListenOptions } from './bun-tcp.ts';
import { Gate, type ClientAuth, type GateOwner, type TlsSocketInfo } from './gate.ts';
import type { Side } from './session.ts';
import type { StreamSocket } from './socket.ts';
import { FulcrumError } from '../core/errors.ts';

/** A native secure context (opaque outside this file). */
export interface SecureContextHandle {
  readonly native: unknown;
  /** The node:tls SecureContext itself (TLS over a stream, tls-over-stream.ts). */
  readonly node?: unknown;
}

export interface ServerContextOptions {
  /** PEM certificate chains; several (RSA and ECDSA) are offered side by side. */
  certs: string[];
  /** PEM private keys, one per chain. */
  keys: string[];
  /** PEM CA certificates that verify client certificates. */
  ca: string[] | null;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  ciphers: string | null;
  curves: string | null;
  preferServerCiphers: boolean;
  sessionTickets: boolean;
  /** Whether clients are asked for a certificate, and whether one that fails verification ends the handshake. */
  clientAuth: ClientAuth;
}

/** node:tls's createSecureContext, loaded on first use (process.getBuiltinModule is synchronous). */
function createSecureContext(options: SecureContextOptions): import('node:tls').SecureContext {
  return process.getBuiltinModule('node:tls').createSecureContext(options);
}

/** SSL_OP_NO_TICKET */
const NO_TICKET = 0x4000;

/** Builds a server context; throws an Error whose message says what is wrong (bad PEM, key mismatch ...). */
export function createServerContext(o: ServerContextOptions): SecureContextHandle {
  const ctx = createSecureContext({
    cert: o.certs,
    key: o.keys,
    ...(o.ca !== null && o.ca.length > 0 ? { ca: o.ca } : {}),
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ...(o.ciphers !== null ? { ciphers: o.ciphers } : {}),
    ...(o.curves !== null ? { ecdhCurve: o.curves } : {}),
    honorCipherOrder: o.preferServerCiphers,
    ...(o.sessionTickets ? {} : { secureOptions: NO_TICKET }),
    // Bun keeps the verify mode in the native context (node:tls ignores these two here).
    requestCert: o.clientAuth !== 'none',
    rejectUnauthorized: o.clientAuth === 'required',
  } as SecureContextOptions);
  return { native: (ctx as unknown as { context: unknown }).context, node: ctx };
}

export interface ClientContextOptions {
  ca: string[] | null;
  cert: string | null;
  key: string | null;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
  ciphers: string | null;
}

export function createClientContext(o: ClientContextOptions): SecureContextHandle {
  const ctx = createSecureContext({
    ...(o.ca !== null ? { ca: o.ca } : {}),
    ...(o.cert !== null ? { cert: o.cert } : {}),
    ...(o.key !== null ? { key: o.key } : {}),
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ...(o.ciphers !== null ? { ciphers: o.ciphers } : {}),
  });
  return { native: (ctx as unknown as { context: unknown }).context };
}

/** ALPN protocol names in TLS wire format (length-prefixed), as Bun's options take them. */
export function encodeAlpn(protocols: readonly string[]): Uint8Array | null {
  if (protocols.length === 0) return null;
  const parts: number[] = [];
  for (const p of protocols) {
    const bytes = Buffer.from(p, 'latin1');
    if (bytes.length === 0 || bytes.length > 255) throw new FulcrumError('E_TLS_CONFIG', `ALPN protocol "${p}" must be 1-255 bytes`);
    parts.push(bytes.length, ...bytes);
  }
  return new Uint8Array(parts);
}

/** What a terminating listener offers a new connection; replaced as a whole on reload. */
export interface TlsServerSettings {
  /** The context for clients without a server name or with one no certificate names. */
  readonly context: SecureContextHandle;
  /** The context for a server name (normalized), if a certificate names it. */
  contextFor(serverName: string): SecureContextHandle | undefined;
  readonly clientAuth: ClientAuth;
  readonly alpn: Uint8Array | null;
  readonly handshakeTimeoutMs: number;
}

/** The listener side of a TLS or passthrough listener. */
export interface GatedAcceptor extends GateOwner {
  /**
   * false: refuse this connection now (e.g. too many handshakes in progress, or too many from
   * `source`, the client's address: the real one after a PROXY header); it is counted.
   * `counted`: the connection was already counted as accepted (after a PROXY header).
   */
  gateOpened(source: string, counted?: boolean): boolean;
  /** Termination: the settings for a new connection. Passthrough: null. */
  tlsSettings(): TlsServerSettings | null;
  /** Passthrough: how long the ClientHello may take. */
  readonly prereadTimeoutMs: number;
}

interface GatedListenerData {
  acceptor: GatedAcceptor;
}

/** A TLS connection's gate also remembers the settings it started with, for the SNI callback. */
class TlsGate extends Gate {
  settings: TlsServerSettings;
  constructor(socket: StreamSocket<unknown>, owner: GateOwner, settings: TlsServerSettings) {
    super(socket, owner, settings.handshakeTimeoutMs, settings.clientAuth);
    this.settings = settings;
  }
}

function listenerAcceptor(socket: Socket<unknown>): GatedAcceptor | null {
  const listener = socket.listener as { data?: GatedListenerData } | undefined;
  return listener?.data?.acceptor ?? null;
}

function ignore(): void {}

/**
 * The TLS side of a terminated connection. Until the handshake is done socket.data is the
 * TlsGate; afterwards it is the session's Side, and these are exactly the plain handlers.
 */
const tlsHandlers = {
  ...clientHandlers,
  open: ignore,
  handshake(socket: Socket<Gate | Side>, success: boolean, error: Error | null) {
    const d = socket.data;
    if (d instanceof Gate) d.onHandshake(socket as unknown as TlsSocketInfo, success, error);
  },
  // Bun's hook for the SNI name (the node:tls server uses it too): return the context to use.
  serverName(data: unknown, name: string) {
    if (!(data instanceof TlsGate) || typeof name !== 'string' || name === '') return undefined;
    const n = name.toLowerCase();
    return data.settings.contextFor(n.endsWith('.') ? n.slice(0, -1) : n)?.native;
  },
} as unknown as SocketHandler<Side>;

/** The raw TCP side of a terminated connection: it only carries the encrypted bytes. */
const rawTlsHandlers: SocketHandler<unknown> = {
  open(raw) {
    const acceptor = listenerAcceptor(raw);
    if (acceptor === null) {
      raw.terminate();
      return;
    }
    const settings = acceptor.tlsSettings();
    if (settings === null || !acceptor.gateOpened(raw.remoteAddress)) {
      raw.end();
      return;
    }
    const gate = new TlsGate(raw as unknown as StreamSocket<unknown>, acceptor, settings);
    const tls = {
      secureContext: settings.context.native,
      requestCert: settings.clientAuth !== 'none',
      rejectUnauthorized: settings.clientAuth === 'required',
      ...(settings.alpn !== null ? { ALPNProtocols: settings.alpn } : {}),
    };
    try {
      const [, tlsSocket] = (raw as unknown as { upgradeTLS(o: unknown): [unknown, StreamSocket<unknown>] }).upgradeTLS({
        tls,
        isServer: true,
        socket: tlsHandlers,
        data: gate,
      });
      gate.socket = tlsSocket;
    } catch (e) {
      gate.fail('handshake-failed', (e as Error).message, true);
    }
  },
  // No `data` handler: the encrypted bytes go to the TLS socket only, and are not also copied
  // into a JS buffer for a callback that would ignore them (Bun wants data or drain).
  drain: ignore,
  end: ignore,
  close: ignore,
  error: ignore,
  timeout: ignore,
};

/** Passthrough: the client socket reads its ClientHello into the gate, then becomes a session's. */
const prereadHandlers: SocketHandler<Gate | Side> = {
  ...(clientHandlers as SocketHandler<Gate | Side>),
  open(socket) {
    const acceptor = listenerAcceptor(socket as Socket<unknown>);
    if (acceptor === null) {
      socket.terminate();
      return;
    }
    if (!acceptor.gateOpened(socket.remoteAddress)) {
      socket.end();
      return;
    }
    socket.data = new Gate(socket as unknown as StreamSocket<unknown>, acceptor, acceptor.prereadTimeoutMs, null);
  },
};

/** Binds `address` with the given handlers; the acceptor is the listener's data. */
export function listenWith(address: Address, acceptor: GatedAcceptor, handlers: SocketHandler<never>, options: ListenOptions): ListenHandle {
  const data: GatedListenerData = { acceptor };
  if (options.fd !== undefined) return listenInherited(address, options.fd, handlers, data);
  if (address.kind === 'unix') {
    const l = Bun.listen<never>({ unix: address.path, allowHalfOpen: true, socket: handlers, data: data as never });
    return { address, port: 0, fd: listenerFd(l), stop: () => l.stop(false) };
  }
  const reusePort = options.reusePort === true;
  // Bun 1.4 honours `reusePort` in Bun.listen, but its type declares it only for Bun.connect.
  const listenOptions: TCPSocketListenOptions<never> & { reusePort: boolean } = {
    hostname: address.host,
    port: address.port,
    allowHalfOpen: true,
    exclusive: !reusePort,
    reusePort,
    socket: handlers,
    data: data as never,
  };
  const l = Bun.listen<never>(listenOptions);
  return { address, port: l.port, fd: listenerFd(l), stop: () => l.stop(false) };
}

/** A listener that terminates TLS with the acceptor's current settings. */
export function listenTls(address: Address, acceptor: GatedAcceptor, options: ListenOptions = {}): ListenHandle {
  return listenWith(address, acceptor, rawTlsHandlers as SocketHandler<never>, options);
}

/** A listener that reads each ClientHello, then forwards the untouched stream. */
export function listenPreread(address: Address, acceptor: GatedAcceptor, options: ListenOptions = {}): ListenHandle {
  return listenWith(address, acceptor, prereadHandlers as SocketHandler<never>, options);
}

// ---------------------------------------------------------------------------------------------
// TLS to servers

/** How to reach the servers of a group over TLS. */
export interface TlsClientSettings {
  readonly context: SecureContextHandle;
  /** SNI to send and name to verify (null: no SNI; the address is verified). */
  readonly serverName: string | null;
  /** Accept any certificate (lab use). */
  readonly insecure: boolean;
  readonly alpn: Uint8Array | null;
}

/** Servers over TLS: the session sees the socket only once the handshake has verified the server. */
const serverTlsHandlers = {
  ...serverHandlers,
  open: ignore,
  handshake(socket: Socket<Side>, success: boolean, error: Error | null) {
    const side = socket.data;
    if (success) {
      side.session.serverConnected(side, socket);
      return;
    }
    socket.terminate();
    side.session.serverConnectFailed(side, new Error(`TLS: ${error?.message ?? 'the server certificate did not verify'}`));
  },
} as SocketHandler<Side>;

/** `insecure: true`: any certificate is accepted (lab use). */
const serverTlsInsecureHandlers = {
  ...serverHandlers,
  open: ignore,
  handshake(socket: Socket<Side>) {
    const side = socket.data;
    side.session.serverConnected(side, socket);
  },
} as SocketHandler<Side>;

export function connectTls(address: Address, side: Side, settings: TlsClientSettings): void {
  const handlers = settings.insecure ? serverTlsInsecureHandlers : serverTlsHandlers;
  const tls = {
    secureContext: settings.context.native,
    rejectUnauthorized: !settings.insecure,
    ...(settings.serverName !== null ? { serverName: settings.serverName } : {}),
    ...(settings.alpn !== null ? { ALPNProtocols: settings.alpn } : {}),
  } as unknown as Bun.TLSOptions;
  const p =
    address.kind === 'unix'
      ? Bun.connect<Side>({ unix: address.path, allowHalfOpen: true, tls, socket: handlers, data: side })
      : Bun.connect<Side>({ hostname: address.host, port: address.port, allowHalfOpen: true, tls, socket: handlers, data: side });
  p.catch(ignore);
}
