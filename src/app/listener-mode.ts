/**
 * What kind of listener a config makes (plain TCP, TLS termination, TLS passthrough, UDP or
 * HTTP): one decision read by the runtime, the binding code and reloads.
 */
import type { ListenerConfig } from '../config/model.ts';

export type ListenerMode = 'plain' | 'terminate' | 'passthrough' | 'udp' | 'http';

export function listenerMode(c: ListenerConfig): ListenerMode {
  if (c.udp !== undefined && c.udp !== null) return 'udp';
  if (c.http !== undefined && c.http !== null) return 'http';
  if (c.tls !== undefined && c.tls !== null) return 'terminate';
  return c.sniRoutes !== undefined && c.sniRoutes.length > 0 ? 'passthrough' : 'plain';
}
