/**
 * Code that only some configurations run, loaded when a configuration first needs it: TLS (a
 * terminating, passthrough or PROXY-header listener, TLS to a group's servers), UDP listeners,
 * HTTP mode, and the health checks. `fulcrum -f -r PORT SERVER` loads none of it, which
 * keeps its memory at rest down (docs/performance.md, issue 10).
 *
 * `loadCodeFor(config)` imports what a configuration needs. It runs where every configuration is
 * made ready before it is used, which is asynchronous already (resolveConfig: at start, in a
 * reload before its apply step; a worker before it applies what its primary sent), so the steps
 * that bind listeners and apply a reload stay synchronous and a reload stays one transaction.
 * Asking for code that was not loaded is an internal error, never a lazy load on a connection.
 */
import type { FulcrumConfig } from '../config/model.ts';
import { FulcrumError } from '../core/errors.ts';
import { listenerMode } from './listener-mode.ts';

export interface TlsCode {
  readonly bunTls: typeof import('../dataplane/bun-tls.ts');
  readonly proxyIn: typeof import('../dataplane/proxy-in.ts');
  readonly material: typeof import('./tls-material.ts');
}

const loaded: {
  tls?: TlsCode;
  udp?: typeof import('./udp/udp-listener.ts');
  http?: typeof import('./http/http-listener.ts');
  health?: HealthCode;
} = {};

/** The health checker and its probes (sockets for each check kind). */
export type HealthCode = Pick<typeof import('../control/health-checker.ts'), 'HealthChecker'> & Pick<typeof import('../dataplane/health-probes.ts'), 'probeRunner'>;

/** Whether `config` needs the TLS code: certificates, ClientHello routing, PROXY headers in, TLS to servers. */
function needsTls(config: FulcrumConfig): boolean {
  return (
    config.listeners.some((l) => (l.tls ?? null) !== null || (l.acceptProxy ?? null) !== null || listenerMode(l) === 'passthrough') ||
    config.groups.some((g) => (g.tls ?? null) !== null)
  );
}

/** Imports the code `config` needs that no earlier configuration loaded. */
export async function loadCodeFor(config: FulcrumConfig): Promise<void> {
  if (loaded.tls === undefined && needsTls(config)) {
    const [bunTls, proxyIn, material] = await Promise.all([import('../dataplane/bun-tls.ts'), import('../dataplane/proxy-in.ts'), import('./tls-material.ts')]);
    loaded.tls = { bunTls, proxyIn, material };
  }
  if (loaded.udp === undefined && config.listeners.some((l) => listenerMode(l) === 'udp')) loaded.udp = await import('./udp/udp-listener.ts');
  if (loaded.http === undefined && config.listeners.some((l) => listenerMode(l) === 'http')) loaded.http = await import('./http/http-listener.ts');
  if (loaded.health === undefined && config.groups.some((g) => (g.check ?? null) !== null || (g.agentCheck ?? null) !== null)) {
    const [{ HealthChecker }, { probeRunner }] = await Promise.all([import('../control/health-checker.ts'), import('../dataplane/health-probes.ts')]);
    loaded.health = { HealthChecker, probeRunner };
  }
}

function notLoaded(what: string): never {
  throw new FulcrumError('E_INTERNAL', `the ${what} code is not loaded: loadCodeFor(config) must run before a configuration that uses it is applied`);
}

export function tlsCode(): TlsCode {
  return loaded.tls ?? notLoaded('TLS');
}

export function udpCode(): typeof import('./udp/udp-listener.ts') {
  return loaded.udp ?? notLoaded('UDP listener');
}

export function httpCode(): typeof import('./http/http-listener.ts') {
  return loaded.http ?? notLoaded('HTTP mode');
}

export function healthCode(): HealthCode {
  return loaded.health ?? notLoaded('health check');
}
