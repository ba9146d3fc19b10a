/**
 * TLS termination for a connection whose first bytes were already read: a listener with
 * `accept_proxy` reads the PROXY header and, in the same chunk more often than not, the start of
 * the ClientHello. Bun's native `upgradeTLS` cannot be handed bytes already read, so these
 * connections use node:tls over a small duplex that feeds it the raw socket's bytes (those
 * already read first). This costs more per chunk than native TLS, and only listeners with
 * accept_proxy and tls pay it.
 *
 * `TlsStreamSocket` looks to the gate and the session like any other StreamSocket, and to the
 * gate like a TLS socket (TlsSocketInfo); its events go to `data` (the Gate, then the session's
 * Side), as Bun's handlers do for native sockets. The raw socket's `data` is a `RawFeeder`, which
 * answers the same events the listener's shared handlers deliver.
 */
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { StreamSocket } from './socket.ts';
import type { TlsSocketInfo } from './gate.ts';

/** What TlsStreamSocket sends events to (a Gate or a Side both fit). */
export interface StreamEvents {
  onData(chunk: Uint8Array): void;
  onEnd(): void;
  onClose(error: Error | undefined): void;
  onTimeout(): void;
  onDrain(): void;
}

/** The raw TCP socket under it: Bun's socket fits. */
export type RawSocket = StreamSocket<unknown>;

export interface TlsStreamOptions {
  /** A node:tls SecureContext (chosen by the server name already read from the ClientHello). */
  secureContext: tls.SecureContext;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  /** ALPN protocols in wire format (length-prefixed), as the listener keeps them. */
  alpn: Uint8Array | null;
}

/** The raw socket's side: its bytes go into the duplex; its drains flush what TLS wrote. */
export class RawFeeder implements StreamEvents {
  readonly raw: RawSocket;
  readonly duplex: Duplex;
  tls: TlsStreamSocket | null = null;
  /** The session paused the client: node:tls asking for more must not resume the raw socket. */
  held = false;
  #out: Uint8Array | null = null;
  #outDone: ((e?: Error | null) => void) | null = null;
  #closed = false;

  constructor(raw: RawSocket) {
    this.raw = raw;
    this.duplex = new (process.getBuiltinModule('node:stream').Duplex)({
      read: () => {
        if (!this.held) this.raw.resume();
      },
      write: (chunk: Buffer, _enc, done) => this.#write(chunk, done),
      final: (done) => {
        this.raw.shutdown();
        done();
      },
      destroy: (_e, done) => {
        this.raw.end();
        done(null);
      },
    });
  }

  #write(chunk: Uint8Array, done: (e?: Error | null) => void): void {
    if (this.#closed) {
      done();
      return;
    }
    const n = this.raw.write(chunk);
    if (n < 0 || n === chunk.length) {
      done();
      return;
    }
    // The kernel took part of it: the rest waits for the raw socket's drain.
    this.#out = chunk.subarray(n);
    this.#outDone = done;
  }

  onData(chunk: Uint8Array): void {
    // push() answers false when node:tls has enough buffered: stop reading until it asks again.
    if (!this.duplex.push(Buffer.from(chunk))) this.raw.pause();
  }

  onDrain(): void {
    const out = this.#out;
    if (out === null) return;
    const n = this.raw.write(out);
    if (n >= 0 && n < out.length) {
      this.#out = out.subarray(n);
      return;
    }
    const done = this.#outDone;
    this.#out = null;
    this.#outDone = null;
    done?.();
  }

  onEnd(): void {
    this.duplex.push(null);
  }

  onClose(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    const done = this.#outDone;
    this.#out = null;
    this.#outDone = null;
    done?.();
    this.tls?.rawClosed(error);
  }

  onTimeout(): void {
    this.tls?.data.onTimeout();
  }
}

/** node:tls as a StreamSocket: the gate and the session drive it like Bun's native sockets. */
export class TlsStreamSocket implements StreamSocket<StreamEvents>, TlsSocketInfo {
  data: StreamEvents;
  readonly #feeder: RawFeeder;
  readonly #tls: tls.TLSSocket;
  #secure = false;
  #closed = false;

  constructor(feeder: RawFeeder, data: StreamEvents, o: TlsStreamOptions, onHandshake: (ok: boolean, error: Error | null) => void) {
    this.#feeder = feeder;
    this.data = data;
    feeder.tls = this;
    // node:tls is loaded here, on the first such connection, not when this module is.
    const t = new (process.getBuiltinModule('node:tls').TLSSocket)(feeder.duplex as unknown as import('node:net').Socket, {
      isServer: true,
      secureContext: o.secureContext,
      requestCert: o.requestCert,
      rejectUnauthorized: o.rejectUnauthorized,
      ...(o.alpn !== null ? { ALPNProtocols: o.alpn } : {}),
      allowHalfOpen: true,
    } as tls.TLSSocketOptions);
    this.#tls = t;
    t.on('secure', () => {
      this.#secure = true;
      onHandshake(true, null);
    });
    t.on('data', (chunk: Buffer) => this.data.onData(chunk));
    t.on('end', () => this.data.onEnd());
    t.on('drain', () => this.data.onDrain());
    t.on('error', (e: Error) => {
      if (!this.#secure) onHandshake(false, e);
      else this.#close(e);
    });
    t.on('close', () => this.#close(undefined));
  }

  /** The raw socket closed under TLS. */
  rawClosed(error: Error | undefined): void {
    if (!this.#tls.destroyed) this.#tls.destroy();
    this.#close(error);
  }

  #close(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.data.onClose(error);
  }

  write(chunk: Uint8Array): number {
    if (this.#closed || this.#tls.destroyed) return -1;
    // Backpressure as the session expects it: accept nothing while node:tls waits for a drain.
    if (this.#tls.writableNeedDrain) return 0;
    this.#tls.write(chunk);
    return chunk.length;
  }

  shutdown(): void {
    this.#tls.end();
  }

  end(): void {
    this.#tls.end();
  }

  terminate(): void {
    this.#tls.destroy();
    this.#feeder.raw.terminate();
  }

  pause(): void {
    this.#feeder.held = true;
    this.#tls.pause();
    this.#feeder.raw.pause();
  }

  resume(): void {
    this.#feeder.held = false;
    this.#tls.resume();
    this.#feeder.raw.resume();
  }

  setNoDelay(noDelay?: boolean): boolean {
    return this.#feeder.raw.setNoDelay(noDelay);
  }

  timeout(seconds: number): void {
    this.#feeder.raw.timeout(seconds);
  }

  get remoteAddress(): string {
    return this.#feeder.raw.remoteAddress;
  }

  get remotePort(): number {
    return this.#feeder.raw.remotePort;
  }

  get localAddress(): string {
    return this.#feeder.raw.localAddress;
  }

  get localPort(): number {
    return this.#feeder.raw.localPort;
  }

  // TlsSocketInfo, for the gate once the handshake is done

  getServername(): string | undefined {
    const n = (this.#tls as unknown as { servername?: string | false }).servername;
    return typeof n === 'string' ? n : undefined;
  }

  get alpnProtocol(): string | false | null {
    return this.#tls.alpnProtocol ?? null;
  }

  get authorized(): boolean {
    return this.#tls.authorized;
  }

  getPeerCertificate(): { subject?: Record<string, string | string[]>; fingerprint256?: string } | null | undefined {
    const c = this.#tls.getPeerCertificate();
    return c === null || c === undefined || Object.keys(c).length === 0 ? null : (c as unknown as { subject?: Record<string, string | string[]>; fingerprint256?: string });
  }

  getTLSVersion(): string | null {
    return this.#tls.getProtocol() ?? null;
  }

  getCipher(): { name?: string } | null {
    return this.#tls.getCipher() ?? null;
  }

  isSessionReused(): boolean {
    return this.#tls.isSessionReused();
  }
}
