/**
 * The HTTP listener kind (`mode: http`, docs/http.md): binds a listener whose config has `http`
 * through the runtime's HTTP server (dataplane/http-front.ts), terminating TLS with the
 * listener's certificates when it has `tls`, with an HttpProxy, which becomes the
 * listener's `http` (its pool and counters). Registered in listeners.ts by one line.
 */
import type { Address } from '../../core/address.ts';
import type { ListenHandle } from '../../dataplane/bun-tcp.ts';
import { listenHttpFront } from '../../dataplane/http-front.ts';
import { timerSeconds } from '../../core/http/client-timer.ts';
import { HttpProxy, type HttpHost } from './http-proxy.ts';
import type { LoadedCertificate } from '../tls-material.ts';

/** A listener that can carry an HTTP proxy (app's ListenerRuntime). */
export interface HttpCapable extends HttpHost {
  http: HttpProxy | null;
  readonly global: { readonly idleTimeoutMs: number };
  /** The listener's certificates when it terminates TLS (loaded before binding), else null. */
  readonly tls: { readonly certificates: readonly LoadedCertificate[] } | null;
}

/** The runtime server's TLS entries: the default certificate without a name, then each name's. */
function tlsEntries(certs: readonly LoadedCertificate[]): { cert: string; key: string; serverName?: string }[] {
  const first = certs.find((c) => c.isDefault) ?? certs[0];
  if (first === undefined) return [];
  const out: { cert: string; key: string; serverName?: string }[] = [{ cert: first.certPem, key: first.keyPem }];
  for (const c of certs) for (const n of c.names) out.push({ cert: c.certPem, key: c.keyPem, serverName: n });
  return out;
}

/** Client connections quiet this long are closed when the global idle timeout is off (seconds). */
const CLIENT_IDLE_S = 60;

export function bindHttp(l: HttpCapable, address: Address, options: { reusePort: boolean }): ListenHandle {
  // At least 5 s: a shorter runtime timeout would cut every answer or upload that lasts past its next 4 s sweep.
  const idle = l.global.idleTimeoutMs > 0 ? timerSeconds(l.global.idleTimeoutMs) : CLIENT_IDLE_S;
  const proxy = new HttpProxy(l, idle);
  const handle = listenHttpFront(address, proxy, { reusePort: options.reusePort, maxBodyBytes: l.config.http!.maxBodyBytes, idleTimeoutS: idle, tls: l.tls === null ? null : tlsEntries(l.tls.certificates) });
  l.http = proxy;
  return {
    address,
    port: handle.port,
    stop: () => {
      handle.stop();
      proxy.stop();
      if (l.http === proxy) l.http = null;
    },
  };
}
