/**
 * The client-facing side of HTTP mode (docs/http.md): Bun.serve parses requests (keep-alive,
 * pipelining, chunked bodies, 100-continue) and refuses malformed ones with 400, heads over the
 * runtime's limit with 431 and bodies over `maxBodyBytes` with 413, before the handler sees them.
 * The handler gets each request, the peer's address and the listener's HttpFront, through which
 * it may upgrade the request to a WebSocket whose events go to a WsClientUser (the runtime
 * terminates WebSocket; it cannot hand the raw connection over for other Upgrade protocols) and
 * set the connection's client timer (docs/http.md, "Slow clients"). SO_REUSEPORT for workers;
 * TLS termination by the runtime's server (`tls`), SNI choosing among the certificates.
 *
 * The runtime's client timer, as measured and read in its source (Bun 1.4.5's uWebSockets): a new
 * connection gets a fixed 10 s to complete its first head (`idleTimeout` does not change it); the
 * bytes of a head never reset the timer; each request sets it to `idleTimeout` when its head is
 * complete; body bytes reset it only at 16 KiB/s over the timeout, the end of the body turns it off,
 * and each write of the answer resets it; the value last set stays for the wait for the next
 * request and its head. When it fires the connection is closed without an answer.
 */
import type { Server as BunServer, ServerWebSocket } from 'bun';
import type { Address } from '../core/address.ts';
import type { ListenHandle } from './bun-tcp.ts';

/** A message of a WebSocket: text, or binary bytes (valid only during the call). */
export type WsMessage = string | Uint8Array;

/** The client's side of an upgraded WebSocket, as its user sees it. */
export interface WsClient {
  /** False when the message was dropped (over the backpressure limit: the runtime closes the client). */
  send(m: WsMessage): boolean;
  /** Closes with `code` (null: without a code) and a reason. */
  close(code: number | null, reason: string): void;
}

/** Who hears a client's WebSocket events (the tunnel to a server). */
export interface WsClientUser {
  clientOpen(ws: WsClient): void;
  clientMessage(m: WsMessage): void;
  clientClosed(code: number, reason: string): void;
}

/** What a handler may do to a request's client connection beyond answering it. */
export interface HttpFront {
  /** Upgrades `req` to a WebSocket for `user`, answering with `headers`; false if it cannot be. */
  upgrade(req: Request, user: WsClientUser, headers: Record<string, string>): boolean;
  /**
   * Sets the client timer of `req`'s connection to `seconds` (1 to 255) from now: it closes the
   * connection when it fires, and stays the connection's value (each write of the answer starts it
   * again) until the next request's head is complete. Only while `req` is unanswered or its body
   * is still being written; afterwards it does nothing.
   */
  clientTimeout(req: Request, seconds: number): void;
}

export interface HttpFrontHandler {
  /** Answers one request from `clientAddress`:`clientPort`; undefined once it was upgraded. */
  request(req: Request, clientAddress: string, clientPort: number, front: HttpFront): Response | undefined | Promise<Response | undefined>;
  /** The answer when the handler throws (a bug): logged by the caller. */
  failed(e: Error): Response;
}

export interface HttpFrontOptions {
  reusePort: boolean;
  maxBodyBytes: number;
  /** The runtime's `idleTimeout` (seconds): the client timer of each request once its head is complete, until the handler sets it. */
  idleTimeoutS: number;
  /** TLS termination: the default certificate first, then one entry per other server name; null = plain HTTP. */
  tls: { cert: string; key: string; serverName?: string }[] | null;
}

/** Bytes queued toward a WebSocket client before it is closed (it does not read). */
const WS_BACKPRESSURE_LIMIT = 16 * 1024 * 1024;

class ClientSide implements WsClient {
  constructor(readonly ws: ServerWebSocket<Upgrading>) {}
  send(m: WsMessage): boolean {
    // -1: queued behind backpressure (sent later); 0: dropped.
    return this.ws.send(m) !== 0;
  }
  close(code: number | null, reason: string): void {
    if (code === null) this.ws.close();
    else this.ws.close(code, reason);
  }
}

interface Upgrading {
  side: ClientSide | null;
  user: WsClientUser;
}

class Front implements HttpFront {
  server: BunServer<Upgrading> | null = null;
  upgrade(req: Request, user: WsClientUser, headers: Record<string, string>): boolean {
    return this.server!.upgrade(req, { data: { side: null, user }, headers });
  }
  clientTimeout(req: Request, seconds: number): void {
    this.server!.timeout(req, seconds);
  }
}

export function listenHttpFront(address: Address, h: HttpFrontHandler, o: HttpFrontOptions): ListenHandle {
  if (address.kind !== 'tcp') throw new Error(`an HTTP listener needs a host:port, not the Unix socket ${address.path}`);
  const front = new Front();
  const server: BunServer<Upgrading> = Bun.serve<Upgrading>({
    hostname: address.host === '' ? '0.0.0.0' : address.host,
    port: address.port,
    reusePort: o.reusePort,
    development: false,
    maxRequestBodySize: o.maxBodyBytes,
    idleTimeout: o.idleTimeoutS,
    ...(o.tls === null ? {} : { tls: o.tls }),
    fetch(req, srv) {
      const ip = srv.requestIP(req);
      return h.request(req, ip?.address ?? '', ip?.port ?? 0, front);
    },
    websocket: {
      maxPayloadLength: o.maxBodyBytes,
      backpressureLimit: WS_BACKPRESSURE_LIMIT,
      closeOnBackpressureLimit: true,
      idleTimeout: o.idleTimeoutS,
      open(ws) {
        const u = ws.data;
        const side = new ClientSide(ws);
        u.side = side;
        u.user.clientOpen(side);
      },
      message(ws, m) {
        ws.data.user.clientMessage(m);
      },
      close(ws, code, reason) {
        ws.data.user.clientClosed(code, reason);
      },
    },
    error: (e) => h.failed(e),
  });
  front.server = server;
  return { address, port: server.port ?? address.port, stop: () => void server.stop(true) };
}
