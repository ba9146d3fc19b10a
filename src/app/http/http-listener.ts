/**
 * The HTTP listener kind (`mode: http`, docs/http.md): the listener's socket is bound as a TCP
 * listener's is (dataplane/bun-tcp.ts), or a TLS terminating one's (dataplane/bun-tls.ts, with
 * the listener's certificates, SNI and reloads), after a PROXY header with `accept_proxy`
 * (dataplane/proxy-in.ts); each accepted connection becomes an HTTP
 * client connection of the listener's HttpProxy (the balancer's accept hands it over), which
 * becomes the listener's `http` (its pool and counters). Registered in listeners.ts by one line.
 */
import type { Address } from '../../core/address.ts';
import { listenTcp, type AcceptHandler, type ListenHandle, type ListenOptions } from '../../dataplane/bun-tcp.ts';
import { listenTls, type GatedAcceptor } from '../../dataplane/bun-tls.ts';
import { listenProxied, type ProxyAcceptor } from '../../dataplane/proxy-in.ts';
import { HttpProxy, type HttpHost } from './http-proxy.ts';

/** A listener that can carry an HTTP proxy (app's ListenerRuntime). */
export interface HttpCapable extends HttpHost, AcceptHandler, GatedAcceptor, ProxyAcceptor {
  http: HttpProxy | null;
  readonly global: { readonly idleTimeoutMs: number };
}

/** A client's time to send more of a body, or to take an answer, when the global idle timeout is off. */
const CLIENT_IDLE_MS = 60_000;

export function bindHttp(l: HttpCapable, address: Address, options: ListenOptions): ListenHandle {
  const proxy = new HttpProxy(l, l.global.idleTimeoutMs > 0 ? l.global.idleTimeoutMs : CLIENT_IDLE_MS);
  // A PROXY header first (accept_proxy): read by the same stage as on a TCP listener, then TLS or not.
  const proxied = (l.config.acceptProxy ?? null) !== null;
  const handle = proxied ? listenProxied(address, l, options) : l.config.tls != null ? listenTls(address, l, options) : listenTcp(address, l, options);
  l.http = proxy;
  return {
    address,
    port: handle.port,
    ...(handle.fd === undefined ? {} : { fd: handle.fd }),
    stop: () => {
      handle.stop();
      proxy.stop();
      if (l.http === proxy) l.http = null;
    },
  };
}
