/**
 * Cookie stickiness as HAProxy's `cookie NAME insert indirect nocache` (docs/http.md). The cookie
 * value names a server without revealing it: an HMAC-SHA256 of the group, the server's address
 * and a per-process secret, cut to 16 bytes of hex, so it cannot be guessed or forged and says
 * nothing of the address. A value is looked up in a table the owner fills with the current
 * servers (rebuilt when they change, never per request). The cookie is taken out of the Cookie
 * header before the request goes on (indirect); a response that sets it also gets
 * `Cache-Control: private` so shared caches do not hand it to other clients (nocache). Pure.
 */

/** node:crypto's HMAC; the module is taken when a table is first filled, not at import (docs/performance.md). */
function createHmac(algorithm: string, key: Uint8Array): import('node:crypto').Hmac {
  return process.getBuiltinModule('node:crypto').createHmac(algorithm, key);
}

/** Values to servers of one group (by value), and each server's value. */
export class StickyTable<S> {
  readonly #byValue = new Map<string, S>();
  readonly #byServer = new Map<S, string>();
  readonly #secret: Uint8Array;
  readonly #group: string;

  constructor(secret: Uint8Array, group: string) {
    this.#secret = secret;
    this.#group = group;
  }

  /** Replaces the table with these servers, each known by its address text. */
  set(servers: Iterable<[S, string]>): void {
    this.#byValue.clear();
    this.#byServer.clear();
    for (const [s, address] of servers) {
      const v = createHmac('sha256', this.#secret).update(`${this.#group}\n${address}`).digest('hex').slice(0, 32);
      this.#byValue.set(v, s);
      this.#byServer.set(s, v);
    }
  }

  serverOf(value: string): S | null {
    return this.#byValue.get(value) ?? null;
  }

  valueOf(server: S): string | null {
    return this.#byServer.get(server) ?? null;
  }
}

/**
 * Finds cookie `name` in a Cookie header value; returns its value and the header without it
 * (null when nothing else is left). Other cookies keep their order and text.
 */
export function takeCookie(header: string | null, name: string): { value: string | null; rest: string | null } {
  if (header === null) return { value: null, rest: null };
  let value: string | null = null;
  const kept: string[] = [];
  for (const part of header.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim() === name) {
      value ??= p.slice(eq + 1).trim();
      continue;
    }
    kept.push(p);
  }
  return { value, rest: kept.length === 0 ? null : kept.join('; ') };
}

/** The Set-Cookie field that sticks a client to the server of `value`. */
export function stickyCookie(name: string, value: string): string {
  return `${name}=${value}; Path=/; HttpOnly`;
}
