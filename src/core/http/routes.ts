/**
 * HTTP routing rules of a listener (`routes:` in the config, docs/http.md): each names a Host
 * (exact, case-insensitive, port ignored) and/or a path prefix, and a group; the first rule that
 * matches wins, and a request no rule matches goes to the listener's own group. Pure.
 */
export interface HttpRoute<T> {
  host: string | null;
  pathPrefix: string | null;
  target: T;
}

/** The Host header without its port, lower-case (IPv6 literals keep their brackets). */
export function hostName(host: string | null): string | null {
  if (host === null) return null;
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** The first route matching this Host and path, or null. */
export function matchRoute<T>(routes: readonly HttpRoute<T>[], host: string | null, path: string): HttpRoute<T> | null {
  const name = hostName(host);
  for (const r of routes) {
    if (r.host !== null && r.host.toLowerCase() !== name) continue;
    if (r.pathPrefix !== null && !path.startsWith(r.pathPrefix)) continue;
    return r;
  }
  return null;
}
