/**
 * The open connections of each server of a group, so that a server marked down can have its
 * connections closed (on_server_down: close) without a scan of all connections, and reports can
 * count them. Each server's list is linked through its sessions (byServerPrev, byServerNext):
 * a connect and an end are O(1) and allocate nothing; the one object per server is kept while
 * the server is in the group, even when it has no connection.
 */
import type { Server } from '../core/servers/server.ts';
import type { Session } from '../dataplane/session.ts';

/** One server's connections: the newest first. */
class Connections {
  first: Session | null = null;
  size = 0;
}

export class ServerConnections {
  readonly #lists = new Map<Server, Connections>();

  /** `session` connected to `server`. */
  add(server: Server, session: Session): void {
    let list = this.#lists.get(server);
    if (list === undefined) this.#lists.set(server, (list = new Connections()));
    const first = list.first;
    session.byServerPrev = null;
    session.byServerNext = first;
    if (first !== null) first.byServerPrev = session;
    list.first = session;
    list.size++;
  }

  /**
   * `session` of `server` ended (the server it was added with: a session's server does not change
   * once it is connected); nothing if it is not listed (it never connected). Returns the
   * connections the server has left, or -1 when the session was not listed.
   */
  remove(server: Server, session: Session): number {
    const list = this.#lists.get(server);
    if (list === undefined) return -1;
    const prev = session.byServerPrev;
    if (prev === null && list.first !== session) return -1;
    const next = session.byServerNext;
    if (prev === null) list.first = next;
    else prev.byServerNext = next;
    if (next !== null) next.byServerPrev = prev;
    session.byServerPrev = null;
    session.byServerNext = null;
    return --list.size;
  }

  /** Forgets a server's (empty) list: the server left the group. */
  forget(server: Server): void {
    this.#lists.delete(server);
  }

  count(server: Server): number {
    return this.#lists.get(server)?.size ?? 0;
  }

  /** A copy of a server's connections (for closing them: closing takes them out of the list). */
  of(server: Server): Session[] {
    const out: Session[] = [];
    for (let s = this.#lists.get(server)?.first ?? null; s !== null; s = s.byServerNext) out.push(s);
    return out;
  }
}
