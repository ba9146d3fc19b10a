/**
 * What the primary and its workers say to each other over Bun's IPC channel (structured clone,
 * so a configuration travels whole), and the configuration snapshot the primary sends.
 *
 * The primary is the only place the configuration changes (SIGHUP, the control port, pen
 * commands); after each change it sends every worker the whole running configuration, with each
 * server's shared-memory slot written into it, and the worker applies it as a reload
 * (Balancer.reload: servers are kept by address, so a worker's connections are untouched). A
 * worker started later gets the same snapshot, so it never replays history.
 */
import { ACL_COUNT } from '../../core/acl/acl.ts';
import { SharedServer } from '../../core/servers/shared-server.ts';
import type { Server } from '../../core/servers/server.ts';
import type { FulcrumConfig, GroupConfig, ServerConfig } from '../../config/model.ts';
import type { Balancer } from '../balancer.ts';
import type { SharedDirectory } from './shared-state.ts';

/** Environment of a worker process: its number, and where the shared memory is. */
export { WORKER_COUNT_ENV, WORKER_ENV, WORKER_EPOCH_ENV, WORKER_SHM_ENV } from './environment.ts';

export type ToWorker =
  /** The running configuration (at start, and after every change). */
  | { t: 'config'; seq: number; config: FulcrumConfig; directory: SharedDirectory }
  /** A server went up or down: serve the group's queue, or close its connections (on_server_down). */
  | { t: 'server'; group: string; slot: number; up: boolean }
  /** SIGHUP and reloads: reopen the log files (rotation) and re-read TLS certificate files. */
  | { t: 'reopen' }
  /** An upgrade replaced this worker: stop accepting, let connections finish within `ms`, exit. */
  | { t: 'drain'; ms: number };

export type FromWorker =
  /** Started; send the configuration. */
  | { t: 'hello' }
  /** Serving (listeners bound). */
  | { t: 'ready' }
  | { t: 'applied'; seq: number; changes: string[] }
  /** A configuration could not be applied (seq 0: the worker could not start and exits). */
  | { t: 'failed'; seq: number; error: string }
  /** Drained (before exiting): how many connections the deadline closed. */
  | { t: 'drained'; left: number };

function serverSnapshot(s: Server, backup: boolean): ServerConfig {
  const c: ServerConfig = {
    address: s.address,
    maxConnections: s.maxConnections,
    hardLimit: s.hardLimit,
    weight: s.weight,
    priority: s.priority,
    acl: s.acl,
    state: s.admin,
  };
  if (s.hostname !== undefined) c.hostname = s.hostname;
  if (backup) c.backup = true;
  if (s.checkPort !== null) c.checkPort = s.checkPort;
  if (s.checkAddress !== null) c.checkAddress = s.checkAddress;
  if (s instanceof SharedServer) c.sharedSlot = s.slot;
  return c;
}

/**
 * The primary's running configuration as a FulcrumConfig, with what pen commands changed on
 * servers, ACLs and settings, and every server's slot. O(servers + ACL entries).
 */
export function snapshotConfig(b: Balancer): FulcrumConfig {
  const acls: FulcrumConfig['acls'] = [];
  for (let list = 0; list < ACL_COUNT; list++) for (const entry of b.acls.entries(list)) acls.push({ list, entry });
  const groups: GroupConfig[] = [...b.groups.values()].map((g) => {
    const sel = g.selector;
    return {
      ...g.config,
      servers: [...sel.servers.map((s) => serverSnapshot(s, false)), ...sel.backups.map((s) => serverSnapshot(s, true))],
      emergency: sel.emergency === null ? null : serverSnapshot(sel.emergency, false),
      abuse: sel.abuse === null ? null : serverSnapshot(sel.abuse, false),
    };
  });
  return { global: { ...b.global }, acls, groups, listeners: b.listeners.map((l) => ({ ...l.config })) };
}

/** A comparable text of a snapshot, to send only what changed. */
export function snapshotKey(c: FulcrumConfig): string {
  return JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v instanceof RegExp ? v.toString() : v));
}
