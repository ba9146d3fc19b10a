/**
 * An HTTP listener on Bun.serve, for the admin API: binds a TCP port or a Unix socket (mode 0600,
 * a stale socket file of a previous run replaced, removed again on stop) and hands each request
 * to the caller. The control plane declares what it needs of it and app passes this in, so that
 * only src/dataplane/ touches the runtime's socket APIs.
 */
import type { Server as BunServer } from 'bun';
import type { Address } from '../core/address.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

export interface HttpListenOptions {
  address: Address;
  /** Answers one request; `noTimeout` lifts the idle timeout of a long-lived answer (a feed). */
  fetch(req: Request, noTimeout: (req: Request) => void): Response | Promise<Response>;
  /** The answer when `fetch` throws. */
  error(e: Error): Response;
  /**
   * A request that declares a longer body (Content-Length) gets `tooLarge` without reaching
   * `fetch`; a chunked body is the reader's to bound. The runtime's own limit is not used: it
   * closes the connection without an answer (or answers an empty 413), where the API answers JSON.
   */
  maxRequestBodySize: number;
  tooLarge(): Response;
  /** Seconds a TCP connection may stay quiet (Unix sockets keep the runtime's default). */
  idleTimeoutS: number;
}

export interface HttpListener {
  /** The bound TCP port (useful with port 0); 0 on a Unix socket. */
  readonly port: number;
  /** Stops listening, closing open connections, and removes the Unix socket file. */
  stop(): Promise<void>;
}

/** Binds and serves; throws if it cannot bind. */
export function listenHttp(o: HttpListenOptions): HttpListener {
  const a = o.address;
  const common = {
    fetch: (req: Request, server: BunServer<undefined>) => {
      const declared = req.headers.get('content-length');
      if (declared !== null && Number(declared) > o.maxRequestBodySize) return o.tooLarge();
      return o.fetch(req, (r) => server.timeout(r, 0));
    },
    error: o.error,
    development: false,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  };
  let server: BunServer<undefined>;
  if (a.kind === 'unix') {
    removeStaleSocket(a.path);
    server = Bun.serve({ ...common, unix: a.path });
    fs().chmodSync(a.path, 0o600);
  } else {
    server = Bun.serve({ ...common, hostname: a.host, port: a.port, idleTimeout: o.idleTimeoutS });
  }
  return {
    port: a.kind === 'unix' ? 0 : (server.port ?? a.port),
    stop: async () => {
      await server.stop(true);
      if (a.kind !== 'unix') return;
      try {
        fs().unlinkSync(a.path);
      } catch {
        // gone already
      }
    },
  };
}

/** A socket file left by a previous run would make the bind fail; anything else is left alone. */
function removeStaleSocket(path: string): void {
  try {
    if (fs().lstatSync(path).isSocket()) fs().unlinkSync(path);
  } catch {
    // does not exist
  }
}
