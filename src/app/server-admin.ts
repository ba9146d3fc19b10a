/**
 * An operator's actions on a server (pen's `server N ...`, the admin API, a reload that changes
 * a server's `state` in the file): drain, maintenance, back in rotation, each logged with its
 * reason. With workers the operator state lives in shared memory and is the primary's to set.
 */
import type { Clock } from '../core/clock.ts';
import type { AdminState, Server } from '../core/servers/server.ts';
import { serverKey, serverLabel } from './group-servers.ts';
import type { GroupRuntime } from './runtime.ts';
import { FulcrumError } from '../core/errors.ts';

export class ServerAdmin {
  readonly #groups: ReadonlyMap<string, GroupRuntime>;
  readonly #clock: Clock;
  readonly #log: (message: string) => void;
  /** False in a worker: it hears of state changes from the primary and makes none. */
  readonly #ownsState: boolean;
  /** Told after every change applied (a cluster shares it, app/cluster.ts). */
  onApplied: (() => void) | null = null;

  constructor(groups: ReadonlyMap<string, GroupRuntime>, clock: Clock, log: (message: string) => void, ownsState: boolean) {
    this.#groups = groups;
    this.#clock = clock;
    this.#log = log;
    this.#ownsState = ownsState;
  }

  /** A primary server by index, or a primary or backup server by address (as formatted by formatAddress). */
  findServer(group: GroupRuntime, id: string): Server | undefined {
    if (/^\d+$/.test(id)) return group.servers[Number(id)];
    return group.servers.find((s) => serverKey(s) === id) ?? group.selector.backups.find((s) => serverKey(s) === id);
  }

  /**
   * Sets a server's operator state (drain, maintenance, enabled), logged with its reason.
   * `index` numbers the group's primaries; backups are addressed with `backup: true`.
   */
  setServerState(groupName: string, index: number, state: AdminState, reason = 'operator', backup = false): void {
    const g = this.#groups.get(groupName);
    if (g === undefined) throw new FulcrumError('E_NOT_FOUND', `no group "${groupName}"`);
    const s = (backup ? g.selector.backups : g.selector.servers)[index];
    if (s === undefined) throw new FulcrumError('E_NOT_FOUND', `group ${groupName} has no ${backup ? 'backup' : 'server'} ${index}`);
    this.apply(g, s, state, reason);
  }

  /** Draining keeps established connections; returning to rotation starts slow start. */
  apply(g: GroupRuntime, s: Server, state: AdminState, reason: string): void {
    if (s.admin === state || !this.#ownsState) return;
    const before = s.admin;
    const wasOut = s.isOut;
    s.admin = state;
    const now = this.#clock.now();
    s.adminReason = reason;
    s.adminSinceMs = now;
    s.noteChange(now, state, `${before} -> ${state} by ${reason}`);
    this.#log(`${serverLabel(g.name, s)}: ${before} -> ${state} (${reason})`);
    if (wasOut && !s.isOut) {
      s.startRamp(now, g.config.slowStartMs);
      g.serverChanged(s, true);
    }
    this.onApplied?.();
  }
}
