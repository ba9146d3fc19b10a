/**
 * A listener's HTTP mode settings in the config file (`mode: http`, docs/http.md): the schema of
 * its fields (routes, trusted_proxies, pool, response_timeout, header_timeout, max_body_size, max_head_size, error_pages), the build into
 * HttpListenerConfig with the defaults, and the checks across fields (what an HTTP listener
 * cannot have yet, and routes naming known groups).
 */
import { z } from 'zod';
import { parseEntry } from '../../core/trusted-sources.ts';
import { HTTP_DEFAULTS, type HttpListenerConfig } from '../model.ts';
import { checkedText, durationField, int, mapping, MAX_INT, oneOf } from './leaves.ts';
import { didYouMean, expecting, type Found } from './messages.ts';

export const httpRouteShape = {
  host: z.string({ error: expecting('a host name') }).min(1, { error: expecting('a host name') }).optional(),
  path_prefix: z.string({ error: expecting("a path prefix starting with '/'") }).startsWith('/', { error: expecting("a path prefix starting with '/'") }).optional(),
  group: z.string({ error: expecting('the name of a group') }),
};

export const httpPoolShape = {
  max_per_server: int(1, MAX_INT).optional(),
  idle_timeout: durationField({ minMs: 1 }).optional(),
};

function trustedProblem(text: string): string | undefined {
  const r = parseEntry(text);
  return typeof r === 'string' ? r : undefined;
}

export const httpListenerFields = {
  mode: oneOf(['tcp', 'http']).optional(),
  routes: z.array(mapping('a mapping with host, path_prefix and group', httpRouteShape), { error: expecting('a list of routes') }).optional(),
  trusted_proxies: z.array(checkedText('an IP address or CIDR block', trustedProblem), { error: expecting('a list of addresses or CIDR blocks') }).optional(),
  pool: mapping('a mapping with max_per_server and idle_timeout', httpPoolShape).optional(),
  response_timeout: durationField({ minMs: 1 }).optional(),
  header_timeout: durationField({ minMs: 1, maxMs: 3_600_000 }).optional(),
  max_body_size: int(0, MAX_INT, 'a number of bytes').optional(),
  // At least a request line and a few fields; at most what one client may make the proxy hold.
  max_head_size: int(1024, 1024 * 1024, 'a number of bytes').optional(),
  error_pages: z
    .record(z.string().regex(/^[45][0-9]{2}$/, { error: expecting('an HTTP error status (400 to 599)') }), z.string({ error: expecting('the path of a file') }).min(1, { error: expecting('the path of a file') }), {
      error: expecting('a mapping of statuses to files, e.g. {502: /etc/fulcrum/502.html}'),
    })
    .optional(),
};

/** The fields that only an HTTP listener has. */
const HTTP_ONLY = ['routes', 'trusted_proxies', 'pool', 'response_timeout', 'header_timeout', 'max_body_size', 'max_head_size', 'error_pages'] as const;

interface ParsedHttp {
  mode?: 'tcp' | 'http' | undefined;
  routes?: { host?: string | undefined; path_prefix?: string | undefined; group: string }[] | undefined;
  trusted_proxies?: string[] | undefined;
  pool?: { max_per_server?: number | undefined; idle_timeout?: number | undefined } | undefined;
  response_timeout?: number | undefined;
  header_timeout?: number | undefined;
  max_body_size?: number | undefined;
  max_head_size?: number | undefined;
  error_pages?: Record<string, string> | undefined;
}

/** The listener's HTTP settings, or undefined for a byte-forwarding listener. */
export function buildHttp(l: ParsedHttp): HttpListenerConfig | undefined {
  if (l.mode !== 'http') return undefined;
  return {
    routes: (l.routes ?? []).map((r) => ({ host: r.host ?? null, pathPrefix: r.path_prefix ?? null, group: r.group })),
    trustedProxies: l.trusted_proxies ?? [],
    pool: { maxPerServer: l.pool?.max_per_server ?? HTTP_DEFAULTS.maxPerServer, idleTimeoutMs: l.pool?.idle_timeout ?? HTTP_DEFAULTS.idleTimeoutMs },
    responseTimeoutMs: l.response_timeout ?? HTTP_DEFAULTS.responseTimeoutMs,
    headerTimeoutMs: l.header_timeout ?? HTTP_DEFAULTS.headerTimeoutMs,
    maxBodyBytes: l.max_body_size ?? HTTP_DEFAULTS.maxBodyBytes,
    maxHeadBytes: l.max_head_size ?? HTTP_DEFAULTS.maxHeadBytes,
    ...(l.error_pages === undefined ? {} : { errorPages: l.error_pages }),
  };
}

const NOT_YET = ['sni_routes', 'preread_timeout', 'protocol'] as const;

/** HTTP fields without `mode: http`, what an HTTP listener cannot have yet, and route groups. */
export function checkHttpListener(l: Record<string, unknown>, i: number, groups: string[]): Found[] {
  const out: Found[] = [];
  if (l.mode !== 'http') {
    for (const k of HTTP_ONLY) if (l[k] !== undefined) out.push({ path: ['listeners', i, k], message: `'${k}' is an HTTP setting: it needs 'mode: http' on the listener`, atKey: true });
    return out;
  }
  for (const k of NOT_YET) {
    if (l[k] !== undefined) out.push({ path: ['listeners', i, k], message: `'${k}' is not supported with 'mode: http' yet (docs/http.md): an HTTP listener is HTTP/1.1 over TCP or TLS`, atKey: true });
  }
  if (typeof l.listen === 'string' && l.listen.includes('/')) out.push({ path: ['listeners', i, 'listen'], message: 'an HTTP listener needs [host:]port, not a Unix socket path (not supported yet)' });
  if (Array.isArray(l.routes)) {
    l.routes.forEach((r: unknown, j) => {
      if (typeof r !== 'object' || r === null) return;
      const route = r as Record<string, unknown>;
      if (typeof route.group === 'string' && !groups.includes(route.group)) {
        out.push({ path: ['listeners', i, 'routes', j, 'group'], message: `unknown group '${route.group}'${didYouMean(route.group, groups) || ` (defined: ${groups.join(', ')})`}` });
      }
      if (route.host === undefined && route.path_prefix === undefined) {
        out.push({ path: ['listeners', i, 'routes', j], message: 'a route needs host, path_prefix or both (a route matching everything would hide the listener group)' });
      }
    });
  }
  return out;
}

/** A cookie name (an HTTP token). */
export const cookieName = z.string({ error: expecting('a cookie name (letters, digits, - and _)') }).regex(/^[A-Za-z0-9_-]{1,64}$/, { error: expecting('a cookie name (letters, digits, - and _)') });


