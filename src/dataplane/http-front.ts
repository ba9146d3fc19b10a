/**
 * The client-facing side of HTTP mode (docs/http.md): Bun.serve parses requests (keep-alive,
 * pipelining, chunked bodies, 100-continue) and refuses malformed ones with 400, heads over the
 * runtime's limit with 431 and bodies over `maxBodyBytes` with 413, before the handler sees them.
 * The handler gets each request and the peer's address. SO_REUSEPORT for workers; TLS
 * termination by the runtime's server (`tls`), SNI choosing among the certificates.
 */
import type { Server as BunServer } from 'bun';
import type { Address } from '../core/address.ts';
import type { ListenHandle } from './bun-tcp.ts';

export interface HttpFrontHandler {
  /** Answers one request from `clientAddress`:`clientPort`. */
  request(req: Request, clientAddress: string, clientPort: number): Response | Promise<Response>;
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

export function listenHttpFront(address: Address, h: HttpFrontHandler, o: HttpFrontOptions): ListenHandle {
  if (address.kind !== 'tcp') throw new Error(`an HTTP listener needs a host:port, not the Unix socket ${address.path}`);
  const server: BunServer<undefined> = Bun.serve({
    hostname: address.host === '' ? '0.0.0.0' : address.host,
    port: address.port,
    reusePort: o.reusePort,
    development: false,
    maxRequestBodySize: o.maxBodyBytes,
    idleTimeout: o.idleTimeoutS,
    ...(o.tls === null ? {} : { tls: o.tls }),
    fetch(req, srv) {
      const ip = srv.requestIP(req);
      return h.request(req, ip?.address ?? '', ip?.port ?? 0);
    },
    error: (e) => h.failed(e),
  });
  return { address, port: server.port ?? address.port, stop: () => void server.stop(true) };
}
