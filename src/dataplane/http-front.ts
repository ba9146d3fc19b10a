/**
 * The client-facing side of HTTP mode (docs/http.md): Bun.serve parses requests (keep-alive,
 * pipelining, chunked bodies, 100-continue) and refuses malformed ones with 400, heads over the
 * runtime's limit with 431 and bodies over `maxBodyBytes` with 413, before the handler sees them.
 * The handler gets each request and the peer's address, and may upgrade it to a WebSocket whose
 * events go to a WsClientUser (the runtime terminates WebSocket; it cannot hand the raw
 * connection over for other Upgrade protocols). SO_REUSEPORT for workers; TLS termination by the
 * runtime's server (`tls`), SNI choosing among the certificates.
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

/** Upgrades `req` to a WebSocket for `user`, answering with `headers`; false if it cannot be. */
export type Upgrader = (req: Request, user: WsClientUser, headers: Record<string, string>) => boolean;

export interface HttpFrontHandler {
  /** Answers one request from `clientAddress`:`clientPort`; undefined once it was upgraded. */
  request(req: Request, clientAddress: string, clientPort: number, upgrade: Upgrader): Response | undefined | Promise<Response | undefined>;
  /** The answer when the handler throws (a bug): logged by the caller. */
  failed(e: Error): Response;
}

export interface HttpFrontOptions {
  reusePort: boolean;
  maxBodyBytes: number;
  /** Seconds a client connection may stay quiet (also bounds a client slow to send its head). */
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

export function listenHttpFront(address: Address, h: HttpFrontHandler, o: HttpFrontOptions): ListenHandle {
  if (address.kind !== 'tcp') throw new Error(`an HTTP listener needs a host:port, not the Unix socket ${address.path}`);
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
      const upgrade: Upgrader = (r, user, headers) => srv.upgrade(r, { data: { side: null, user }, headers });
      return h.request(req, ip?.address ?? '', ip?.port ?? 0, upgrade);
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
  return { address, port: server.port ?? address.port, stop: () => void server.stop(true) };
}
