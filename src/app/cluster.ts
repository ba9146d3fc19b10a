/**
 * The cluster (docs/cluster.md): with `cluster: { redis: URL }`, the instances that name the same
 * Redis share their client tables, the operator's server states and weights, and the health
 * verdicts. Loaded by start.ts only when the section is there (a dynamic import), so a single
 * machine runs none of it.
 *
 * Local changes are heard through small observer points (the client table's observer, the
 * balancer's onOperatorChange and onServerChanged) and only queued: a timer flushes the queue as
 * one batch (the Redis writes pipelined, one PUBLISH), so the connection path pays one O(1) push.
 * Reads never go to Redis on the connection path either: remote changes arrive by pub/sub and are
 * merged into the local objects under the conflict rule of core/cluster/changes.ts. While Redis
 * is away every change is kept (the latest per item, bounded); when it is back, the shared state
 * is reloaded first and what this instance changed meanwhile is published if still the latest.
 * Every instance says it lives (a heartbeat, core/cluster/liveness.ts); a health verdict of an
 * instance no longer heard of is dropped, and each goes back to its own check's verdict.
 */
import { hostname } from 'node:os';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { ClientTable } from '../core/clients/client-table.ts';
import {
  clientAlive,
  clientChangeApplies,
  clientWorthPublishing,
  clusterKeys,
  decodeBatch,
  decodeChange,
  encodeBatch,
  encodeChange,
  PendingChanges,
  Versions,
  type AdminChange,
  type ClientChange,
  type ClusterChange,
  type HealthChange,
} from '../core/cluster/changes.ts';
import { decodeHeartbeat, encodeHeartbeat, HEARTBEAT_MS, Liveness, verdictStands } from '../core/cluster/liveness.ts';
import type { AdminState, Server } from '../core/servers/server.ts';
import type { ClusterConfig } from '../config/model.ts';
import { RedisLink } from '../dataplane/redis-link.ts';
import type { Balancer } from './balancer.ts';
import { serverKey, serverLabel } from './group-servers.ts';
import type { GroupRuntime } from './runtime.ts';

/** What /metrics reports of the cluster (control/metrics.ts reads it at scrape time). */
export interface ClusterStats {
  readonly up: boolean;
  readonly outages: number;
  readonly published: number;
  readonly received: number;
  readonly pending: number;
}

/** What this instance last shared (or heard) of a server: a local change is one that differs. */
interface Known {
  state: AdminState;
  weight: number;
  up: boolean;
  /** The instance whose health verdict is applied ('' for none heard: this process's own view). */
  by: string;
}

/** Changes kept while Redis is away, at most (the oldest are dropped first). */
const PENDING_LIMIT = 100_000;
/** Keys read per SCAN step and per MGET when loading the shared client tables. */
const LOAD_BATCH = 1000;

/** "redis://127.0.0.1:6379" without user, password or database, for log lines. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'redis';
  }
}

export class Cluster implements ClusterStats {
  readonly instance: string;
  readonly #b: Balancer;
  readonly #clock: Clock;
  readonly #keys: ReturnType<typeof clusterKeys>;
  readonly #link: RedisLink;
  readonly #where: string;
  readonly #versions = new Versions();
  readonly #pending = new PendingChanges(PENDING_LIMIT);
  readonly #known = new WeakMap<Server, Known>();
  readonly #live = new Liveness();
  #beatTimer: TimerHandle | null = null;
  #outbox: ClusterChange[] = [];
  #flushTimer: TimerHandle | null = null;
  /** Applying a remote change: the observers it triggers must not publish it back. */
  #applying = false;
  #firstSync: (() => void) | null = null;
  outages = 0;
  published = 0;
  received = 0;

  constructor(balancer: Balancer, config: ClusterConfig, clock: Clock) {
    this.#b = balancer;
    this.#clock = clock;
    this.instance = config.instance ?? `${hostname()}-${process.pid}`;
    this.#keys = clusterKeys(config.keyPrefix);
    this.#where = redacted(config.redis);
    this.#link = new RedisLink(config.redis, this.#keys.channel, clock, {
      up: () => void this.#resync(),
      down: (why) => this.#down(why),
      message: (text) => this.#received(text),
    });
  }

  get up(): boolean {
    return this.#link.isUp;
  }
  get pending(): number {
    return this.#pending.size + this.#outbox.length;
  }

  /**
   * Observes the balancer and connects. Resolves once the shared state is loaded, or Redis was
   * found unreachable, or after `waitMs`: a new instance serves with the cluster's state when it
   * can, and never waits on a Redis that is down.
   */
  start(waitMs: number): Promise<void> {
    this.attach();
    this.#b.onOperatorChange.push(() => this.#operatorChanged());
    this.#b.onServerChanged.push((g, s) => this.#healthChanged(g, s));
    const ready = new Promise<void>((resolve) => {
      const timer = this.#clock.setTimeout((r) => r(), waitMs, resolve);
      this.#firstSync = () => {
        this.#clock.clearTimer(timer);
        this.#firstSync = null;
        resolve();
      };
    });
    this.#link.start();
    this.#beatTimer = this.#clock.setInterval(() => this.#beat(), HEARTBEAT_MS);
    return ready;
  }

  /** Observes every group's client table and learns new servers (at start and after a reload). */
  attach(): void {
    for (const g of this.#b.groups.values()) {
      if (g.clients instanceof ClientTable && g.clients.observer === null) {
        g.clients.observer = {
          remembered: (entry, server, previous) => {
            if (this.#applying || !clientWorthPublishing(server !== previous, entry.sharedMs ?? 0, entry.lastSeenMs, g.config.trackingMs)) return;
            const s = g.servers[server];
            if (s === undefined) return;
            entry.sharedMs = entry.lastSeenMs;
            this.#queue({ kind: 'client', group: g.name, client: entry.key, server: serverKey(s), ts: entry.lastSeenMs, from: this.instance });
          },
          forgotten: (key) => {
            if (!this.#applying) this.#queue({ kind: 'client', group: g.name, client: key, server: '', ts: this.#clock.now(), from: this.instance });
          },
        };
      }
      for (const s of g.selector.allServers()) this.#knownOf(s);
    }
  }

  stop(): void {
    this.#clock.clearTimer(this.#flushTimer);
    this.#flushTimer = null;
    this.#clock.clearTimer(this.#beatTimer);
    this.#beatTimer = null;
    this.#link.stop();
  }

  #knownOf(s: Server): Known {
    let k = this.#known.get(s);
    if (k === undefined) this.#known.set(s, (k = { state: s.admin, weight: s.weight, up: s.healthy, by: '' }));
    return k;
  }

  // -------------------------------------------------------------------------------------------
  // Local changes → Redis

  /** The operator changed something: publish each server whose state or weight differs from the shared one. */
  #operatorChanged(): void {
    if (this.#applying) return;
    const now = this.#clock.now();
    for (const g of this.#b.groups.values()) {
      for (const s of g.selector.allServers()) {
        if (s.role !== 'regular' && s.role !== 'backup') continue;
        const known = this.#known.get(s);
        if (known === undefined) {
          this.#knownOf(s); // a new server: nothing to tell yet
          continue;
        }
        if (known.state === s.admin && known.weight === s.weight) continue;
        known.state = s.admin;
        known.weight = s.weight;
        this.#queue({ kind: 'admin', group: g.name, server: serverKey(s), state: s.admin, weight: s.weight, ts: now, from: this.instance });
      }
    }
  }

  /** A server went up or down here; a change of its health verdict is shared (agent reports are not). */
  #healthChanged(g: GroupRuntime, s: Server): void {
    if (this.#applying) return;
    const known = this.#knownOf(s);
    if (known.up === s.healthy) return;
    known.up = s.healthy;
    known.by = this.instance;
    this.#queue({ kind: 'health', group: g.name, server: serverKey(s), up: s.healthy, reason: s.downReason, ts: this.#clock.now(), from: this.instance });
  }

  #queue(c: ClusterChange): void {
    if (c.kind !== 'client') this.#versions.accept(c);
    if (!this.#link.isUp) {
      this.#pending.add(c);
      return;
    }
    this.#outbox.push(c);
    this.#flushTimer ??= this.#clock.setTimeout((cl) => cl.#flush(), 0, this);
  }

  /** Writes the queued changes (pipelined by the client) and publishes them as one message. */
  #flush(): void {
    this.#flushTimer = null;
    const batch = this.#outbox;
    this.#outbox = [];
    if (batch.length === 0) return;
    const keep = (c: ClusterChange) => (): void => this.#pending.add(c);
    for (const c of batch) this.#store(c).catch(keep(c));
    this.#link.command('PUBLISH', [this.#keys.channel, encodeBatch(batch)]).then(
      () => (this.published += batch.length),
      () => batch.forEach((c) => this.#pending.add(c)),
    );
  }

  #store(c: ClusterChange): Promise<unknown> {
    const k = this.#keys;
    if (c.kind === 'admin') return this.#link.command('HSET', [k.admin(c.group), c.server, encodeChange(c)]);
    if (c.kind === 'health') return this.#link.command('HSET', [k.health(c.group), c.server, encodeChange(c)]);
    const key = k.client(c.group, c.client);
    if (c.server === '') return this.#link.command('DEL', [key]);
    const expiryMs = this.#b.groups.get(c.group)?.config.trackingMs ?? 0;
    return this.#link.command('SET', expiryMs > 0 ? [key, encodeChange(c), 'PX', String(expiryMs)] : [key, encodeChange(c)]);
  }

  // -------------------------------------------------------------------------------------------
  // Redis → local state

  #received(text: string): void {
    const now = this.#clock.now();
    const alive = decodeHeartbeat(text);
    if (alive !== null) {
      this.#live.heard(alive, now);
      return;
    }
    for (const c of decodeBatch(text)) {
      if (c.from === this.instance) continue;
      this.#live.heard(c.from, now);
      this.received++;
      this.#apply(c);
    }
  }

  #apply(c: ClusterChange): void {
    const g = this.#b.groups.get(c.group);
    if (g === undefined) return;
    this.#applying = true;
    try {
      if (c.kind === 'client') this.#applyClient(g, c);
      else if (c.kind === 'admin') this.#applyAdmin(g, c);
      else this.#applyHealth(g, c);
    } finally {
      this.#applying = false;
    }
  }

  #applyClient(g: GroupRuntime, c: ClientChange): void {
    const table = g.clients;
    if (c.server === '') {
      table.forget(c.client);
      return;
    }
    const now = this.#clock.now();
    if (!clientAlive(c.ts, now, g.config.trackingMs)) return;
    const index = g.servers.findIndex((s) => serverKey(s) === c.server);
    if (index < 0) return; // not one of this instance's servers
    const entry = table.peek(c.client, now);
    if (!clientChangeApplies(c.ts, entry?.lastSeenMs)) return;
    if (entry === undefined) {
      table.restore(c.client, index, c.ts);
      const restored = table.peek(c.client, now);
      if (restored !== undefined) restored.sharedMs = c.ts;
      return;
    }
    entry.server = index;
    entry.lastSeenMs = c.ts;
    entry.sharedMs = c.ts;
  }

  #serverAt(g: GroupRuntime, address: string): Server | undefined {
    return g.servers.find((s) => serverKey(s) === address) ?? g.selector.backups.find((s) => serverKey(s) === address);
  }

  #applyAdmin(g: GroupRuntime, c: AdminChange): void {
    const s = this.#serverAt(g, c.server);
    if (s === undefined || !this.#versions.accept(c)) return;
    const known = this.#knownOf(s);
    known.state = c.state;
    known.weight = c.weight;
    if (s.weight !== c.weight) this.#b.updateServerSettings(g, s, { weight: c.weight });
    if (s.admin !== c.state) this.#b.setServerAdmin(g, s, c.state, `cluster: set by ${c.from}`);
  }

  #applyHealth(g: GroupRuntime, c: HealthChange): void {
    const s = this.#serverAt(g, c.server);
    if (s === undefined || !this.#versions.accept(c)) return;
    const known = this.#knownOf(s);
    known.up = c.up;
    known.by = c.from;
    this.#setHealth(g, s, c.up, `${c.reason} (seen by ${c.from})`, `cluster: ${c.from}`);
  }

  #setHealth(g: GroupRuntime, s: Server, up: boolean, reason: string, note: string): void {
    if (s.healthy === up) return;
    const now = this.#clock.now();
    s.lastChangeMs = now;
    s.healthy = up;
    if (up) {
      s.downReason = '';
      s.upTransitions++;
      s.startRamp(now, g.config.slowStartMs);
    } else {
      s.downReason = reason;
      s.downTransitions++;
      s.rampEndMs = 0;
    }
    this.#b.logEvent(`${serverLabel(g.name, s)} is ${up ? 'UP' : 'DOWN'}: ${up ? 'found up' : s.downReason} (${note})`);
    g.serverChanged(s, up);
  }

  // -------------------------------------------------------------------------------------------
  // Liveness: a verdict does not outlive its instance

  /** Says this instance lives, then drops the verdicts of instances no longer heard of. Not while Redis is away: nobody can be heard then. */
  #beat(): void {
    if (!this.#link.isUp) return;
    const fail = (): void => undefined; // the link reports outages
    this.#link.command('SET', [this.#keys.alive(this.instance), '1', 'PX', String(this.#live.leaseMs)]).catch(fail);
    this.#link.command('PUBLISH', [this.#keys.channel, encodeHeartbeat(this.instance)]).catch(fail);
    const now = this.#clock.now();
    for (const gone of this.#live.expired(now)) this.#b.diag.info(`cluster: instance ${gone} not heard of for ${this.#live.leaseMs} ms: its health verdicts are dropped`);
    for (const g of this.#b.groups.values()) {
      for (const s of g.selector.allServers()) {
        const known = this.#known.get(s);
        if (known === undefined || known.by === '' || verdictStands(known.by, this.instance, this.#live, now)) continue;
        const by = known.by;
        const own = this.#b.health?.ownVerdict(s) ?? true;
        known.by = '';
        known.up = own;
        this.#setHealth(g, s, own, "own health check: down", `cluster: the verdict of ${by} dropped, ${by} is gone`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Outage and resync

  #down(why: string): void {
    this.outages++;
    for (const c of this.#outbox) this.#pending.add(c);
    this.#outbox = [];
    this.#b.diag.error(`cluster: Redis at ${this.#where} is unreachable (${why}); serving from the local state, changes kept for the resync`);
    this.#firstSync?.();
  }

  /** Connected (again): load the shared state, then publish what changed here meanwhile and is still the latest. */
  async #resync(): Promise<void> {
    this.#live.renewAll(this.#clock.now());
    let loaded = 0;
    try {
      for (const g of this.#b.groups.values()) loaded += await this.#load(g);
    } catch (e) {
      // The link failed meanwhile: it reports the outage and the next connect resyncs.
      this.#b.diag.debug(1, `cluster: loading the shared state failed: ${(e as Error).message}`);
      this.#firstSync?.();
      return;
    }
    const mine = this.#pending.take().filter((c) => this.#stillMine(c));
    for (const c of mine) this.#outbox.push(c);
    this.#flush();
    const again = this.outages > 0 ? 'reachable again' : 'connected';
    this.#b.diag.info(`cluster: Redis at ${this.#where} ${again} as instance ${this.instance}: ${loaded} shared item(s) loaded, ${mine.length} local change(s) published`);
    this.#firstSync?.();
  }

  #stillMine(c: ClusterChange): boolean {
    if (c.kind !== 'client') return this.#versions.isCurrent(c);
    if (c.server === '') return true;
    // Still going to the same server (it may have come back since: its entry is newer, same answer).
    const g = this.#b.groups.get(c.group);
    const entry = g?.clients.peek(c.client, this.#clock.now());
    const s = entry === undefined ? undefined : g?.servers[entry.server];
    return s !== undefined && serverKey(s) === c.server;
  }

  /**
   * Is a stored health verdict applied at load? Another instance's only while its `alive:` key
   * exists; this instance's own (from before a restart under the same name) never: its own check
   * decides, and the stored one is replaced by that check's verdict, or removed without a check.
   */
  async #verdictLoads(g: GroupRuntime, c: HealthChange): Promise<boolean> {
    const now = this.#clock.now();
    if (c.from !== this.instance) {
      if ((await this.#link.command('EXISTS', [this.#keys.alive(c.from)])) === 1) this.#live.heard(c.from, now);
      return verdictStands(c.from, this.instance, this.#live, now);
    }
    const s = this.#serverAt(g, c.server);
    const own = s === undefined ? null : (this.#b.health?.ownVerdict(s) ?? null);
    if (own === null) await this.#link.command('HDEL', [this.#keys.health(g.name), c.server]);
    else if (own !== c.up) this.#queue({ kind: 'health', group: g.name, server: c.server, up: own, reason: s?.downReason ?? '', ts: now, from: this.instance });
    return false;
  }

  /** Applies one group's shared operator states, health verdicts and clients; returns how many were read. */
  async #load(g: GroupRuntime): Promise<number> {
    let n = 0;
    for (const hash of [this.#keys.admin(g.name), this.#keys.health(g.name)]) {
      const all = (await this.#link.command('HGETALL', [hash])) as Record<string, string> | null;
      for (const v of Object.values(all ?? {})) {
        const c = decodeChange(v);
        if (c === null || c.kind === 'client' || c.group !== g.name) continue;
        if (c.kind === 'health' && !(await this.#verdictLoads(g, c))) continue;
        n++;
        this.#apply(c);
      }
    }
    let cursor = '0';
    do {
      const [next, keys] = (await this.#link.command('SCAN', [cursor, 'MATCH', this.#keys.clientPattern(g.name), 'COUNT', String(LOAD_BATCH)])) as [string, string[]];
      cursor = next;
      if (keys.length === 0) continue;
      const values = (await this.#link.command('MGET', keys)) as (string | null)[];
      for (const v of values) {
        const c = v === null ? null : decodeChange(v);
        if (c !== null && c.kind === 'client' && c.group === g.name) {
          n++;
          this.#apply(c);
        }
      }
    } while (cursor !== '0');
    return n;
  }
}
