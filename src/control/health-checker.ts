/**
 * Active health checks and agent checks of every server, scheduled on one timer heap: each due
 * check costs O(log n) and the balancer runs one real timer for the earliest, so a thousand
 * servers cost nothing while they are not due. A server never has more than one check connection
 * open: when its agent check falls due while its health check runs (or the reverse), it waits
 * for that one to finish.
 *
 * Results go through the rise/fall counter (core/health/health-counter.ts). A change of state
 * is applied to the server (healthy, downReason, counters, slow start), logged as one line with
 * its reason, and passed to the group (serve waiting clients, or close connections of a server
 * marked down). A passing check also ends an outlier ejection early. Servers in maintenance are
 * not checked. Time, randomness, timers and the probe are injected, so the schedule is
 * unit-tested with a manual clock and fake probes.
 */
import type { Address } from '../core/address.ts';
import { MAX_TIMER_MS, type Clock, type Random, type TimerHandle } from '../core/clock.ts';
import type { AgentReport } from '../core/health/agent-check.ts';
import { describeCheck, firstCheckDelayMs, nextCheckDelayMs, type CheckSpec } from '../core/health/check-spec.ts';
import type { ProbeFn, Verdict } from '../core/health/conversation.ts';
import { HealthCounter } from '../core/health/health-counter.ts';
import { TimerHeap, type HeapEntry } from '../core/health/timer-heap.ts';
import type { Server } from '../core/servers/server.ts';

/** What the checker needs of a group (GroupRuntime fits). */
export interface CheckedGroup {
  readonly name: string;
  readonly config: { readonly check: CheckSpec | null; readonly agentCheck: CheckSpec | null; readonly slowStartMs: number };
  readonly selector: { allServers(): Iterable<Server> };
  serverChanged(server: Server, up: boolean): void;
}

export interface HealthCheckerDeps {
  clock: Clock;
  random: Random;
  probe: ProbeFn;
  /** One line per state change. */
  log: (message: string) => void;
  /** Details (every failed check), for debug output. */
  debug?: (message: string) => void;
  /** Label of a server in log lines. */
  label: (group: string, server: Server) => string;
}

interface ServerChecks {
  server: Server;
  group: CheckedGroup;
  health: CheckTask | null;
  agent: CheckTask | null;
  /** A check connection is open. */
  busy: boolean;
  /** A check that fell due while busy; runs when the open one ends. */
  waiting: CheckTask | null;
  seen: boolean;
}

interface CheckTask extends HeapEntry {
  readonly rec: ServerChecks;
  readonly spec: CheckSpec;
  readonly key: string;
  readonly isAgent: boolean;
  readonly counter: HealthCounter;
  running: boolean;
  removed: boolean;
}

/** Spec identity across reloads (new objects, same content: keep the task and its counter). */
function specKey(spec: CheckSpec): string {
  return JSON.stringify(spec, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

export class HealthChecker {
  readonly #deps: HealthCheckerDeps;
  readonly #heap = new TimerHeap<CheckTask>();
  readonly #records = new Map<Server, ServerChecks>();
  #timer: TimerHandle | null = null;
  #timerDue = Infinity;
  #stopped = false;
  /** Probes started, for the bench and tests. */
  probesStarted = 0;

  constructor(deps: HealthCheckerDeps) {
    this.#deps = deps;
  }

  /** Checks scheduled (tasks in the heap or running). */
  get taskCount(): number {
    let n = 0;
    for (const r of this.#records.values()) n += (r.health !== null ? 1 : 0) + (r.agent !== null ? 1 : 0);
    return n;
  }

  /**
   * Makes the checks match the groups' configs: adds checks for new servers or definitions, keeps
   * unchanged ones (with their counters), removes the rest. A server that loses its check is
   * considered up again. Walks all servers: called at start and on reconfiguration only.
   */
  sync(groups: Iterable<CheckedGroup>): void {
    for (const r of this.#records.values()) r.seen = false;
    const now = this.#deps.clock.now();
    for (const group of groups) {
      for (const server of group.selector.allServers()) {
        if (server.role === 'abuse') continue;
        let rec = this.#records.get(server);
        if (rec === undefined) {
          rec = { server, group, health: null, agent: null, busy: false, waiting: null, seen: true };
          this.#records.set(server, rec);
        }
        rec.group = group;
        rec.seen = true;
        rec.health = this.#syncTask(rec, rec.health, group.config.check, false, now);
        rec.agent = this.#syncTask(rec, rec.agent, group.config.agentCheck, true, now);
      }
    }
    for (const [server, rec] of this.#records) {
      if (rec.seen) continue;
      this.#drop(rec.health);
      this.#drop(rec.agent);
      this.#records.delete(server);
    }
    this.#arm();
  }

  #syncTask(rec: ServerChecks, task: CheckTask | null, spec: CheckSpec | null, isAgent: boolean, now: number): CheckTask | null {
    const key = spec === null ? '' : specKey(spec);
    if (task !== null && task.key === key) return task;
    this.#drop(task);
    const s = rec.server;
    if (spec === null) {
      // No check any more: what it observed no longer holds.
      if (isAgent) {
        s.agent = 'up';
        s.agentScale = 1;
      } else if (!s.healthy) {
        s.healthy = true;
        s.downReason = '';
      }
      return null;
    }
    const t: CheckTask = {
      rec,
      spec,
      key,
      isAgent,
      counter: new HealthCounter(spec.rise, spec.fall, s.healthy),
      running: false,
      removed: false,
      dueMs: 0,
      heapIndex: -1,
    };
    this.#heap.schedule(t, now + firstCheckDelayMs(spec, this.#deps.random.next()));
    return t;
  }

  #drop(task: CheckTask | null): void {
    if (task === null) return;
    task.removed = true;
    this.#heap.remove(task);
    if (task.rec.waiting === task) task.rec.waiting = null;
  }

  /** Replaces a group's check (control plane); takes effect at once. */
  setCheck(group: CheckedGroup & { config: { check: CheckSpec | null } }, spec: CheckSpec | null, allGroups: Iterable<CheckedGroup>): void {
    (group.config as { check: CheckSpec | null }).check = spec;
    this.sync(allGroups);
  }

  /**
   * What this process's own health check says of `server` (its rise/fall state, which another
   * instance's verdict does not change), or null when it has no check.
   */
  ownVerdict(server: Server): boolean | null {
    return this.#records.get(server)?.health?.counter.healthy ?? null;
  }

  stop(): void {
    this.#stopped = true;
    this.#deps.clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#heap.clear();
  }

  #arm(): void {
    if (this.#stopped) return;
    const next = this.#heap.peek();
    if (next === undefined) return;
    if (this.#timer !== null) {
      if (this.#timerDue <= next.dueMs) return;
      this.#deps.clock.clearTimer(this.#timer);
    }
    this.#timerDue = next.dueMs;
    // A check due beyond what a timer can wait is reached in steps: an early tick finds nothing due and re-arms.
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, next.dueMs - this.#deps.clock.now()));
    this.#timer = this.#deps.clock.setTimeout((c) => c.#tick(), wait, this);
  }

  #tick(): void {
    this.#timer = null;
    this.#timerDue = Infinity;
    if (this.#stopped) return;
    const now = this.#deps.clock.now();
    for (let t = this.#heap.popDue(now); t !== undefined; t = this.#heap.popDue(now)) this.#due(t, now);
    this.#arm();
  }

  #due(t: CheckTask, now: number): void {
    const rec = t.rec;
    if (rec.server.admin === 'maintenance') {
      // Not checked while in maintenance; look again later.
      this.#heap.schedule(t, now + nextCheckDelayMs(t.spec, rec.server.healthy, this.#deps.random.next()));
      return;
    }
    if (rec.busy) {
      rec.waiting = t;
      return;
    }
    this.#start(t);
  }

  #start(t: CheckTask): void {
    const rec = t.rec;
    rec.busy = true;
    t.running = true;
    this.probesStarted++;
    this.#deps.probe(this.#target(rec.server, t.spec), t.spec, (v) => this.#done(t, v));
  }

  #target(s: Server, spec: CheckSpec): Address {
    const a = s.address;
    const port = s.checkPort ?? spec.port;
    const host = s.checkAddress ?? spec.address;
    if (a.kind === 'unix') return host !== null && port !== null ? { kind: 'tcp', host, port } : a;
    return { kind: 'tcp', host: host ?? a.host, port: port ?? a.port };
  }

  #done(t: CheckTask, v: Verdict): void {
    const rec = t.rec;
    t.running = false;
    rec.busy = false;
    if (this.#stopped) return;
    const now = this.#deps.clock.now();
    if (!t.removed) {
      if (t.isAgent) this.#agentResult(rec, v);
      else this.#healthResult(t, v, now);
      this.#heap.schedule(t, now + nextCheckDelayMs(t.spec, rec.server.healthy, this.#deps.random.next()));
    }
    const w = rec.waiting;
    rec.waiting = null;
    if (w !== null && !w.removed) this.#start(w);
    this.#arm();
  }

  #healthResult(t: CheckTask, v: Verdict, now: number): void {
    const s = t.rec.server;
    const label = this.#deps.label(t.rec.group.name, s);
    const what = describeCheck(t.spec);
    if (s.admin === 'maintenance') return; // went into maintenance while the check ran
    s.lastCheckMs = now;
    s.lastCheckPassed = v.passed;
    s.lastCheckDetail = `${what}: ${v.detail}`;
    if (v.passed) s.checksPassed++;
    else {
      s.checksFailed++;
      this.#deps.debug?.(`${label}: ${what} failed: ${v.detail}`);
    }
    const change = t.counter.observe(v.passed);
    if (v.passed && s.blacklistedUntilMs > now) {
      // An ejected server returns as soon as a check shows it works.
      s.blacklistedUntilMs = 0;
      s.startRamp(now, t.rec.group.config.slowStartMs);
      s.noteChange(now, 'up', `returns from ejection: ${what} passed (${v.detail})`, false);
      this.#deps.log(`${label} returns from ejection: ${what} passed (${v.detail})`);
    }
    if (change !== 'changed') {
      if (!v.passed && !s.healthy) s.downReason = `${what}: ${v.detail}`;
      return;
    }
    s.noteChange(now, v.passed ? 'up' : 'down', v.passed ? `${what} passed ${t.spec.rise} time(s) in a row (${v.detail})` : `${what} failed ${t.spec.fall} time(s) in a row, last: ${v.detail}`);
    if (v.passed) {
      s.healthy = true;
      s.downReason = '';
      s.upTransitions++;
      s.startRamp(now, t.rec.group.config.slowStartMs);
      this.#deps.log(`${label} is UP: ${what} passed ${t.spec.rise} time(s) in a row (${v.detail})`);
      t.rec.group.serverChanged(s, true);
    } else {
      s.healthy = false;
      s.downReason = `${what}: ${v.detail}`;
      s.downTransitions++;
      s.rampEndMs = 0;
      this.#deps.log(`${label} is DOWN: ${what} failed ${t.spec.fall} time(s) in a row, last: ${v.detail}`);
      t.rec.group.serverChanged(s, false);
    }
  }

  #agentResult(rec: ServerChecks, v: Verdict): void {
    const s = rec.server;
    const label = this.#deps.label(rec.group.name, s);
    const report: AgentReport | undefined = v.agent;
    if (!v.passed || report === undefined) {
      // An agent that cannot be reached changes nothing: reachability is the health check's job.
      this.#deps.debug?.(`${label}: agent check failed: ${v.detail}`);
      return;
    }
    if (report.weightPercent !== null) {
      const scale = report.weightPercent / 100;
      if (scale !== s.agentScale) {
        this.#deps.log(`${label}: agent sets weight to ${report.weightPercent}%`);
        s.agentScale = scale;
      }
    }
    if (report.state !== null && report.state !== s.agent) {
      const before = s.agent;
      const wasOut = s.isOut;
      s.agent = report.state;
      const why = report.reason === '' ? '' : `: ${report.reason}`;
      s.noteChange(this.#deps.clock.now(), `agent ${report.state}`, `agent reports ${report.state}${why} (was ${before})`);
      if (report.state === 'down') {
        s.downTransitions++;
        s.downReason = `agent reports down${why}`;
      } else if (before === 'down' && s.healthy) {
        s.downReason = '';
        s.upTransitions++;
      }
      this.#deps.log(`${label}: agent reports ${report.state}${why} (was ${before})`);
      if (wasOut && !s.isOut) {
        s.startRamp(this.#deps.clock.now(), rec.group.config.slowStartMs);
        rec.group.serverChanged(s, true);
      } else if (report.state === 'down') {
        rec.group.serverChanged(s, false);
      }
    }
  }
}
