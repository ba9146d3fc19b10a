/**
 * PROXY protocol in: the stage before everything else on a listener with `accept_proxy`. The
 * balancer in front (a cloud network balancer, HAProxy, another Fulcrum) opens each connection
 * with a v1 or v2 header naming the real client; Fulcrum reads it, and from then on the real
 * address is what tracking, hashing, ACLs, the logs and `send_proxy` see.
 *
 * A header lets its sender claim any address, so only trusted sources may send one: a
 * connection from anywhere else is closed before a byte is read. A missing, malformed or
 * partial header, or one that takes longer than the deadline, closes the connection too; each
 * failure is counted by reason on the listener. After the header the listener's own stage runs
 * as it would have: a session (plain), the ClientHello pre-read (passthrough) or the TLS
 * handshake (termination, through tls-over-stream.ts since bytes after the header may already
 * have been read).
 *
 * Like a Gate, a ProxyGate answers the events the listener's shared handlers deliver, and
 * replaces itself as socket.data when it hands the connection on.
 */
import type { Socket, SocketHandler } from 'bun';
import type tls from 'node:tls';
import type { Address } from '../core/address.ts';
import { clampTimerMs, type TimerHandle } from '../core/clock.ts';
import { decodeProxyHeader, type ProxiedAddresses } from '../protocol/proxy-protocol.ts';
import { DEFAULT_MAX_HELLO_BYTES, parseClientHello } from '../protocol/tls-client-hello.ts';
import { clientHandlers, type ListenHandle, type ListenOptions } from './bun-tcp.ts';
import { listenWith, type GatedAcceptor } from './bun-tls.ts';
import { concat } from './bytes.ts';
import { Gate } from './gate.ts';
import type { Side } from './session.ts';
import type { StreamSocket } from './socket.ts';
import { RawFeeder, TlsStreamSocket } from './tls-over-stream.ts';

/** Why a connection never got past its PROXY header (counted per listener). */
export type ProxyFailure = 'untrusted' | 'bad-header' | 'timeout' | 'client-closed' | 'client-reset' | 'handshake-limit';

export const PROXY_FAILURES: readonly ProxyFailure[] = ['untrusted', 'bad-header', 'timeout', 'client-closed', 'client-reset', 'handshake-limit'];

/** The listener side of a listener with accept_proxy. */
export interface ProxyAcceptor extends GatedAcceptor {
  /** What runs after the header: the listener's mode. */
  readonly proxyNext: 'plain' | 'terminate' | 'passthrough';
  readonly proxyTimeoutMs: number;
  /** A connection arrived; false: its source may not send a header (the acceptor counts it). */
  proxyOpened(remoteAddress: string): boolean;
  proxyFailed(reason: ProxyFailure, detail: string): void;
  /** A header was read; `origin` is null for LOCAL/UNKNOWN headers (the socket's own address stands). */
  proxyPassed(origin: ProxiedAddresses | null, version: 1 | 2): void;
  /** Plain listeners: start a session for the real client with the bytes read after the header. */
  acceptProxied(socket: StreamSocket<unknown>, origin: ProxiedAddresses | null, initial: Uint8Array | null): void;
}

export class ProxyGate {
  socket: StreamSocket<unknown>;
  readonly owner: ProxyAcceptor;
  #buffer: Uint8Array | null = null;
  #timer: TimerHandle | null = null;
  /** Termination only: the header is read, the ClientHello is being collected for its server name. */
  #origin: ProxiedAddresses | null | undefined = undefined;
  done = false;

  constructor(socket: StreamSocket<unknown>, owner: ProxyAcceptor) {
    this.socket = socket;
    this.owner = owner;
    const ms = owner.proxyTimeoutMs;
    if (ms > 0) this.#timer = owner.clock.setTimeout(onProxyTimeout, clampTimerMs(ms), this);
  }

  onData(chunk: Uint8Array): void {
    if (this.done) return;
    const buf = this.#buffer === null ? new Uint8Array(chunk) : concat(this.#buffer, chunk);
    this.#buffer = buf;
    if (this.#origin !== undefined) {
      this.#helloRead(buf);
      return;
    }
    const r = decodeProxyHeader(buf);
    if (r.kind === 'need-more') return;
    if (r.kind === 'invalid') {
      this.fail('bad-header', r.reason, true);
      return;
    }
    const h = r.header;
    const origin = h.family === 'tcp4' || h.family === 'tcp6' ? h : null;
    this.owner.proxyPassed(origin, r.version);
    const rest = buf.length > r.length ? buf.subarray(r.length) : null;
    this.#buffer = rest;
    this.#next(origin, rest);
  }

  #next(origin: ProxiedAddresses | null, rest: Uint8Array | null): void {
    const o = this.owner;
    if (o.proxyNext === 'plain') {
      this.#finish();
      this.socket.pause(); // nothing more is read until a server is connected
      o.acceptProxied(this.socket, origin, rest);
      return;
    }
    if (o.proxyNext === 'passthrough') {
      this.#finish();
      const source = origin?.sourceAddress ?? this.socket.remoteAddress ?? '';
      if (!o.gateOpened(source, true)) {
        this.socket.end();
        return;
      }
      const gate = new Gate(this.socket, o, o.prereadTimeoutMs, null);
      gate.origin = origin;
      gate.source = source; // the per-source count is the real client's
      this.socket.data = gate;
      if (rest !== null) gate.onData(rest);
      return;
    }
    // Termination: collect the ClientHello first, for the server name that picks the certificate.
    this.#origin = origin;
    if (rest !== null) this.#helloRead(rest);
  }

  #helloRead(buf: Uint8Array): void {
    const r = parseClientHello(buf, DEFAULT_MAX_HELLO_BYTES);
    if (r.kind === 'need-more') return;
    // Not a ClientHello: the TLS handshake will fail on it and say why, as on any TLS listener.
    this.#startTls(r.kind === 'parsed' ? r.hello.serverName : null, buf);
  }

  #startTls(serverName: string | null, bytes: Uint8Array): void {
    const o = this.owner;
    const origin = this.#origin ?? null;
    this.#finish();
    const settings = o.tlsSettings();
    const source = origin?.sourceAddress ?? this.socket.remoteAddress ?? '';
    if (settings === null || !o.gateOpened(source, true)) {
      this.socket.end();
      return;
    }
    const ctx = (serverName !== null ? settings.contextFor(serverName) : undefined) ?? settings.context;
    const feeder = new RawFeeder(this.socket);
    this.socket.data = feeder;
    let gate: Gate | null = null;
    const stream = new TlsStreamSocket(
      feeder,
      feeder,
      {
        secureContext: ctx.node as tls.SecureContext,
        requestCert: settings.clientAuth !== 'none',
        rejectUnauthorized: settings.clientAuth === 'required',
        alpn: settings.alpn,
      },
      (ok, error) => gate?.onHandshake(stream, ok, error),
    );
    gate = new Gate(stream, o, settings.handshakeTimeoutMs, settings.clientAuth);
    gate.origin = origin;
    gate.source = source; // the per-source count is the real client's
    stream.data = gate;
    feeder.onData(bytes);
  }

  onEnd(): void {
    if (!this.done) this.fail('client-closed', 'the client closed before its PROXY header was complete', false);
  }

  onClose(error: Error | undefined): void {
    if (this.done) return;
    this.fail(error === undefined ? 'client-closed' : 'client-reset', error?.message ?? 'closed before the PROXY header was complete', false);
  }

  onTimeout(): void {
    // Only the gate's own timer is used; the socket's idle timer is not armed before a session.
  }

  onDrain(): void {}

  timedOut(): void {
    this.#timer = null;
    if (!this.done) this.fail('timeout', 'no complete PROXY header (and ClientHello, with TLS) in time', true);
  }

  fail(reason: ProxyFailure, detail: string, closeSocket: boolean): void {
    if (this.done) return;
    this.#finish();
    if (closeSocket) this.socket.end();
    this.owner.proxyFailed(reason, detail);
  }

  #finish(): void {
    this.done = true;
    this.#buffer = null;
    if (this.#timer !== null) {
      this.owner.clock.clearTimer(this.#timer);
      this.#timer = null;
    }
  }
}

function onProxyTimeout(gate: ProxyGate): void {
  gate.timedOut();
}

/** socket.data of a refused connection: its last events go nowhere. */
const REFUSED = { onData: (): void => undefined, onEnd: (): void => undefined, onClose: (): void => undefined, onTimeout: (): void => undefined, onDrain: (): void => undefined } as unknown as ProxyGate;

function proxyAcceptor(socket: Socket<unknown>): ProxyAcceptor | null {
  const listener = socket.listener as { data?: { acceptor: ProxyAcceptor } } | undefined;
  return listener?.data?.acceptor ?? null;
}

/** Every event goes to socket.data: the ProxyGate, then a Gate, a RawFeeder or a session's Side. */
const proxyHandlers: SocketHandler<ProxyGate | Side> = {
  ...(clientHandlers as SocketHandler<ProxyGate | Side>),
  open(socket) {
    const acceptor = proxyAcceptor(socket as Socket<unknown>);
    if (acceptor === null) {
      socket.terminate();
      return;
    }
    if (!acceptor.proxyOpened(socket.remoteAddress)) {
      socket.data = REFUSED; // an untrusted source: nothing it sends is read
      socket.end();
      return;
    }
    socket.data = new ProxyGate(socket as unknown as StreamSocket<unknown>, acceptor);
  },
};

/** A listener whose connections start with a PROXY header, then run the acceptor's own stage. */
export function listenProxied(address: Address, acceptor: ProxyAcceptor, options: ListenOptions = {}): ListenHandle {
  return listenWith(address, acceptor, proxyHandlers as SocketHandler<never>, options);
}
