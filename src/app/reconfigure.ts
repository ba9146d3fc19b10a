/**
 * Reconfiguration: one config diff, applied in one place. A reload applies a whole new config as
 * one transaction (new listeners bind first, so a bind failure changes nothing; established
 * connections keep the objects they started with; client tables and server counters carry
 * over). The admin API's add, remove and update of a server are diffs of one group's config
 * through the same `applyGroup`.
 */
import type { AclTable } from '../core/acl/acl.ts';
import { formatAddress } from '../core/address.ts';
import type { Clock, Random } from '../core/clock.ts';
import type { Server } from '../core/servers/server.ts';
import { reloadedGlobal, type FulcrumConfig, type GlobalConfig, type GroupConfig, type ListenerConfig, type ServerConfig } from '../config/model.ts';
import type { Diagnostics } from './diagnostics.ts';
import type { Listeners } from './listeners.ts';
import { serverKey } from './group-servers.ts';
import { listenerMode } from './listener-mode.ts';
import type { GroupRuntime, ListenerRuntime } from './runtime.ts';
import type { ServerAdmin } from './server-admin.ts';
import type { GroupTls, PreparedTls } from './tls-material.ts';
import { tlsCode } from './on-demand.ts';
import { FulcrumError } from '../core/errors.ts';

/** What a reconfiguration changes and builds with (the Balancer composes it). */
export interface ReconfigureHost {
  readonly groups: Map<string, GroupRuntime>;
  readonly acls: AclTable;
  readonly clock: Clock;
  readonly random: Random;
  readonly diag: Diagnostics;
  /** The running global settings. */
  global(): GlobalConfig;
  newGroup(gc: GroupConfig): GroupRuntime;
  newListener(lc: ListenerConfig, group: GroupRuntime): ListenerRuntime;
  createServer(index: number, c: ServerConfig, role: Server['role']): Server;
  /** Servers were added or removed outside a reload: checks follow. */
  serversChanged(): void;
  /** A reload has been applied: `after` replaces the global settings `before`. */
  reloaded(before: GlobalConfig, after: GlobalConfig): void;
}

/** The server settings the admin API may change. */
export type ServerPatch = Partial<Pick<ServerConfig, 'maxConnections' | 'hardLimit' | 'weight' | 'priority' | 'acl'>>;

const PATCH_LABELS: [keyof ServerPatch, string][] = [
  ['maxConnections', 'max_connections'],
  ['hardLimit', 'hard_limit'],
  ['weight', 'weight'],
  ['priority', 'priority'],
  ['acl', 'acl'],
];

export class Reconfiguration {
  readonly #h: ReconfigureHost;
  readonly #listeners: Listeners;
  readonly #admin: ServerAdmin;

  constructor(host: ReconfigureHost, listeners: Listeners, admin: ServerAdmin) {
    this.#h = host;
    this.#listeners = listeners;
    this.#admin = admin;
  }

  /**
   * Applies a new configuration as one step. The caller has validated and resolved it, so
   * nothing here can fail halfway except binding a new listener, which is done first.
   */
  reload(next: FulcrumConfig): string[] {
    const h = this.#h;
    const binder = this.#listeners;
    const changes: string[] = [];
    // 1. New listeners bind before anything changes, so a bind failure leaves the old config.
    const keepListeners = new Map(binder.list.map((l) => [formatAddress(l.config.address), l]));
    const newListeners: ListenerRuntime[] = [];
    const bound: ListenerRuntime[] = [];
    for (const lc of next.listeners) {
      if (!next.groups.some((g) => g.name === lc.group)) throw new FulcrumError('E_CONFIG_INVALID', `listener ${lc.name} refers to unknown group "${lc.group}"`);
      const problem = binder.problem(lc.address);
      if (problem !== null) throw new FulcrumError('E_CONFIG_INVALID', problem);
      for (const r of lc.sniRoutes ?? []) {
        if (!next.groups.some((g) => g.name === r.group)) throw new FulcrumError('E_CONFIG_INVALID', `listener ${lc.name}: an SNI route refers to unknown group "${r.group}"`);
      }
    }
    // 2. Groups: keep runtime (client table, counters) by name; servers by address. Server TLS
    // settings are read now, so that a bad file fails the reload before anything changes.
    const groupsBefore = new Map(h.groups);
    const staged = new Map<string, GroupRuntime>();
    const stagedTls = new Map<string, GroupTls | null>();
    for (const gc of next.groups) {
      const old = groupsBefore.get(gc.name);
      if (old === undefined) {
        staged.set(gc.name, h.newGroup(gc));
        changes.push(`group ${gc.name} added`);
      } else {
        staged.set(gc.name, old);
        // Re-read even when the settings are the same: the files (a rotated CA) may have changed.
        const tls = gc.tls ?? null;
        if (tls !== null || old.tls !== null) stagedTls.set(gc.name, tls === null ? null : new (tlsCode().material.GroupTls)(tls));
        if (JSON.stringify(tls) !== JSON.stringify(old.tls?.config ?? null)) changes.push(`group ${gc.name} server TLS ${tls === null ? 'off' : 'changed'}`);
      }
    }
    // 3. TLS listeners: certificates are read and checked now (all or nothing for the config).
    const now = new Date(h.clock.now());
    const preparedTls = new Map<ListenerRuntime, PreparedTls>();
    const rebinds: { old: ListenerRuntime; fresh: ListenerRuntime }[] = [];
    const fresh: ListenerRuntime[] = [];
    for (const lc of next.listeners) {
      const key = formatAddress(lc.address);
      const existing = keepListeners.get(key);
      // accept_proxy switched on or off changes the listening handlers too: rebind like a mode change.
      const sameProxy = (lc.acceptProxy ?? null) === null === ((existing?.config.acceptProxy ?? null) === null);
      if (existing !== undefined && listenerMode(lc) === existing.mode && sameProxy) {
        if (existing.tls !== null && lc.tls !== undefined && lc.tls !== null) preparedTls.set(existing, existing.tls.prepare(lc.tls, now, true));
        continue;
      }
      const l = h.newListener(lc, staged.get(lc.group)!);
      binder.loadTls(l);
      if (existing !== undefined) rebinds.push({ old: existing, fresh: l });
      else fresh.push(l);
    }
    // 4. Bind: new addresses first; a listener whose mode changed (plain, TLS, passthrough) is
    // rebound on its address, and put back if that fails.
    const undo = (): void => {
      for (const b of bound) b.handle?.stop();
      for (const { old } of rebinds) {
        if (old.handle === null) {
          try {
            binder.bind(old);
          } catch (e) {
            h.diag.error(`cannot restore listener ${formatAddress(old.config.address)}: ${(e as Error).message}`);
          }
        }
      }
    };
    try {
      for (const l of fresh) {
        binder.bind(l);
        bound.push(l);
        changes.push(`listener ${formatAddress(l.config.address)} added`);
      }
      for (const { old, fresh: l } of rebinds) {
        old.handle?.stop();
        old.handle = null;
        binder.bind(l);
        bound.push(l);
        changes.push(`listener ${formatAddress(l.config.address)} now ${l.mode} (established connections continue)`);
      }
    } catch (e) {
      undo();
      throw e;
    }
    for (const lc of next.listeners) {
      const key = formatAddress(lc.address);
      const rebound = rebinds.find((r) => formatAddress(r.fresh.config.address) === key)?.fresh;
      const l = rebound ?? fresh.find((x) => formatAddress(x.config.address) === key) ?? keepListeners.get(key)!;
      newListeners.push(l);
      keepListeners.delete(key);
    }
    // From here on nothing can fail.
    for (const gc of next.groups) {
      const g = staged.get(gc.name)!;
      if (groupsBefore.has(gc.name)) changes.push(...this.applyGroup(g, gc));
      if (stagedTls.has(gc.name)) g.tls = stagedTls.get(gc.name)!;
    }
    for (const name of groupsBefore.keys()) if (!staged.has(name)) changes.push(`group ${name} removed`);
    h.groups.clear();
    for (const [k, v] of staged) h.groups.set(k, v);
    for (const [key, l] of keepListeners) {
      if (rebinds.some((r) => r.old === l)) continue;
      l.handle?.stop();
      changes.push(`listener ${key} removed (established connections continue)`);
    }
    for (const lc of next.listeners) {
      const l = newListeners.find((x) => formatAddress(x.config.address) === formatAddress(lc.address))!;
      l.configure(lc);
      l.group = staged.get(lc.group)!;
      const prepared = preparedTls.get(l);
      if (prepared !== undefined && lc.tls !== undefined && lc.tls !== null) {
        l.tls?.commit(lc.tls, prepared);
        for (const m of prepared.messages) changes.push(`listener ${lc.name}: ${m}`);
      }
    }
    binder.list = newListeners;
    binder.scheduleTlsChecks();
    h.acls.clearAll();
    for (const { list, entry } of next.acls) h.acls.add(list, entry);
    // What only the command line sets, and what is read at start, survives (StartGlobals).
    const before = h.global();
    if (next.global.workers !== before.workers) changes.push(`workers ${before.workers} -> ${next.global.workers}: takes effect on restart`);
    h.reloaded(before, reloadedGlobal(before, next.global));
    return changes;
  }

  /**
   * Applies a group's new config to its running servers: servers are kept by role and address
   * with their counters and observed health, new ones made, removed ones dropped (their
   * connections continue), and the client table follows renumbered primaries. Returns what
   * changed. O(servers), plus O(clients) when a primary moved.
   */
  applyGroup(g: GroupRuntime, gc: GroupConfig): string[] {
    const h = this.#h;
    const changes: string[] = [];
    const roleKey = (backup: boolean, key: string): string => `${backup ? 'backup' : 'server'} ${key}`;
    const byKey = new Map<string, Server>();
    for (const s of g.servers) byKey.set(roleKey(false, serverKey(s)), s);
    for (const s of g.selector.backups) byKey.set(roleKey(true, serverKey(s)), s);
    const oldConfigs = new Map(g.config.servers.map((c) => [roleKey(c.backup === true, serverKey(c)), c]));
    const servers: Server[] = [];
    const backups: Server[] = [];
    const remap = new Map<number, number>();
    for (const sc of gc.servers) {
      const backup = sc.backup === true;
      const list = backup ? backups : servers;
      const i = list.length;
      const key = roleKey(backup, serverKey(sc));
      const old = byKey.get(key);
      if (old !== undefined) {
        byKey.delete(key);
        if (!backup) remap.set(old.index, i);
        list.push(updateServer(old, i, sc, changes));
        // The file's state applies when it changed in the file (an operator's runtime drain survives a reload otherwise).
        const was = oldConfigs.get(key)?.state ?? 'enabled';
        const now = sc.state ?? 'enabled';
        if (now !== was) this.#admin.apply(g, old, now, 'config reload');
      } else {
        list.push(h.createServer(i, sc, backup ? 'backup' : 'regular'));
        changes.push(`${key} added to ${gc.name}`);
      }
    }
    for (const key of byKey.keys()) changes.push(`${key} removed from ${gc.name} (its connections continue)`);
    // The client table follows renumbered primaries (O(clients)); skipped when nobody moved.
    let renumbered = [...byKey.keys()].some((k) => k.startsWith('server '));
    for (const [from, to] of remap) if (from !== to) renumbered = true;
    if (renumbered) g.clients.remapServers((s) => remap.get(s) ?? -1);
    const sel = g.selector;
    sel.servers = servers;
    sel.backups = backups;
    const sameOrNew = (old: Server | null, c: ServerConfig, role: Server['role']): Server => {
      if (old !== null && serverKey(old) === serverKey(c)) return updateServer(old, old.index, c, []);
      return h.createServer(role === 'emergency' ? -1 : -2, c, role);
    };
    sel.emergency = gc.emergency === null ? null : sameOrNew(sel.emergency, gc.emergency, 'emergency');
    sel.abuse = gc.abuse === null ? null : sameOrNew(sel.abuse, gc.abuse, 'abuse');
    const algorithmChanged = g.config.algorithm !== gc.algorithm;
    g.config = cloneGroupConfig(gc);
    g.syncSettings();
    if (algorithmChanged) {
      g.setAlgorithm(gc.algorithm, h.random);
      changes.push(`group ${gc.name} algorithm ${gc.algorithm}`);
    } else {
      sel.serversChanged();
    }
    return changes;
  }

  /**
   * Adds a server to a group (it gets the next index of its list; nobody is renumbered, so the
   * client table is not walked), then health checks pick it up. O(servers).
   */
  addServer(group: GroupRuntime, sc: ServerConfig): Server {
    const key = serverKey(sc);
    const backup = sc.backup === true;
    const list = backup ? group.selector.backups : group.servers;
    if (list.some((s) => serverKey(s) === key)) throw new FulcrumError('E_CONFLICT', `${backup ? 'backup' : 'server'} ${key} is already in group ${group.name}`);
    this.applyGroup(group, { ...group.config, servers: [...currentServerConfigs(group), { ...sc }] });
    this.#h.serversChanged();
    group.serveQueue();
    return (backup ? group.selector.backups : group.servers).find((s) => serverKey(s) === key)!;
  }

  /**
   * Removes a server from its group: later servers move up one index and the client table
   * follows them (O(servers + clients), like a reload). Its established connections continue.
   */
  removeServer(group: GroupRuntime, server: Server): string[] {
    const all = [...group.servers, ...group.selector.backups];
    if (!all.includes(server)) throw new FulcrumError('E_NOT_FOUND', `server ${serverKey(server)} is not in group ${group.name}`);
    if (server.role === 'regular' && group.servers.length === 1) throw new FulcrumError('E_CONFLICT', 'a group needs at least one server');
    const configs = currentServerConfigs(group).filter((_, i) => all[i] !== server);
    const changes = this.applyGroup(group, { ...group.config, servers: configs });
    this.#h.serversChanged();
    return changes;
  }

  /** Changes limits, weight, priority or ACL of a server; returns what changed. O(servers). */
  updateServerSettings(group: GroupRuntime, server: Server, patch: ServerPatch): string[] {
    const key = serverKey(server);
    const changes: string[] = [];
    for (const [k, label] of PATCH_LABELS) {
      const v = patch[k];
      if (v !== undefined && v !== server[k]) changes.push(`server ${key} ${label} ${server[k]} -> ${v}`);
    }
    if (changes.length === 0) {
      // Nothing to apply; the group's config still takes in what pen commands changed directly.
      const backup = server.role === 'backup';
      const gc = group.config.servers.find((c) => serverKey(c) === key && (c.backup === true) === backup);
      if (gc !== undefined) Object.assign(gc, serverConfigOf(server, gc));
      return changes;
    }
    const at = [...group.servers, ...group.selector.backups].indexOf(server);
    if (at < 0) throw new FulcrumError('E_NOT_FOUND', `server ${key} is not in group ${group.name}`);
    const configs = currentServerConfigs(group);
    const patched: ServerConfig = { ...configs[at]! };
    for (const [k] of PATCH_LABELS) if (patch[k] !== undefined) patched[k] = patch[k];
    configs[at] = patched;
    // A raised limit may let waiting clients in: applyGroup serves the queue.
    this.applyGroup(group, { ...group.config, servers: configs });
    return changes;
  }
}

/** The group's servers (primaries, then backups) as configs, keeping each one's file-only fields. */
function currentServerConfigs(group: GroupRuntime): ServerConfig[] {
  const byKey = new Map(group.config.servers.map((c) => [`${c.backup === true} ${serverKey(c)}`, c]));
  return [...group.servers, ...group.selector.backups].map((s) => serverConfigOf(s, byKey.get(`${s.role === 'backup'} ${serverKey(s)}`)));
}

function updateServer(s: Server, index: number, c: ServerConfig, changes: string[]): Server {
  if (s.weight !== c.weight) changes.push(`server ${serverKey(c)} weight ${s.weight} -> ${c.weight}`);
  s.index = index;
  s.applySettings(c);
  s.checkPort = c.checkPort ?? null;
  s.checkAddress = c.checkAddress ?? null;
  return s;
}

/**
 * The settings of a running server as a ServerConfig (pen commands change Server objects
 * directly), keeping what only the config knows (its file `state`) from `old`.
 */
export function serverConfigOf(s: Server, old?: ServerConfig): ServerConfig {
  const c: ServerConfig = { ...old, address: s.address, maxConnections: s.maxConnections, hardLimit: s.hardLimit, weight: s.weight, priority: s.priority, acl: s.acl };
  if (s.hostname !== undefined) c.hostname = s.hostname;
  if (s.role === 'backup') c.backup = true;
  if (s.checkPort !== null) c.checkPort = s.checkPort;
  if (s.checkAddress !== null) c.checkAddress = s.checkAddress;
  return c;
}

/** A group config whose server entries the group may change without touching the caller's. */
export function cloneGroupConfig(g: GroupConfig): GroupConfig {
  return { ...g, servers: g.servers.map((s) => ({ ...s })) };
}
