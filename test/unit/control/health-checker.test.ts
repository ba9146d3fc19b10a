/** The check scheduler with a manual clock (and its timers) and a scripted probe: no sockets. */
import { describe, expect, test } from 'bun:test';
import { formatAddress, type Address } from '../../../src/core/address.ts';
import { seededRandom } from '../../../src/core/clock.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';
import { checkSpec, type CheckSpec } from '../../../src/core/health/check-spec.ts';
import type { Verdict } from '../../../src/core/health/conversation.ts';
import { Server } from '../../../src/core/servers/server.ts';
import { HealthChecker, type CheckedGroup } from '../../../src/control/health-checker.ts';

interface Call {
  target: string;
  spec: CheckSpec;
  done: (v: Verdict) => void;
}

function setup(opts: { n?: number; check?: CheckSpec | null; agent?: CheckSpec | null; slowStartMs?: number } = {}) {
  const clock = new ManualClock(0);
  const calls: Call[] = [];
  const log: string[] = [];
  const servers = Array.from({ length: opts.n ?? 1 }, (_, i) => new Server(i, { address: { kind: 'tcp', host: '10.0.0.1', port: 9000 + i }, maxConnections: 0, hardLimit: 0, weight: 1, priority: 0, acl: 0 }));
  const changes: string[] = [];
  const group: CheckedGroup = {
    name: 'app',
    config: { check: opts.check === undefined ? checkSpec('web', 'tcp', { intervalMs: 100, rise: 2, fall: 3, jitter: 0 }) : opts.check, agentCheck: opts.agent ?? null, slowStartMs: opts.slowStartMs ?? 0 },
    selector: { allServers: () => servers },
    serverChanged: (s, up) => changes.push(`${s.index} ${up ? 'up' : 'down'}`),
  };
  /** What each probe answers, by port; default: pass. */
  const answers = new Map<number, Verdict | 'hang'>();
  const checker = new HealthChecker({
    clock,
    random: seededRandom(1),
    log: (m) => log.push(m),
    label: (g, s) => `${g}/${s.index}`,
    probe: (target: Address, spec, done) => {
      calls.push({ target: formatAddress(target), spec, done });
      const port = target.kind === 'tcp' ? target.port : 0;
      const a = answers.get(port) ?? { passed: true, detail: 'connect succeeded' };
      if (a !== 'hang') done(a);
    },
  });
  checker.sync([group]);
  return { clock, calls, log, servers, group, answers, checker, changes };
}

const refused: Verdict = { passed: false, detail: 'connect failed: ECONNREFUSED' };

describe('health checker', () => {
  test('a failing server goes down after fall × interval, with the reason logged and kept; back after rise × interval', () => {
    const t = setup();
    const s = t.servers[0]!;
    t.clock.advance(100); // first check somewhere in the first interval
    expect(t.calls.length).toBe(1);
    t.answers.set(9000, refused);
    t.clock.advance(200);
    expect(s.healthy).toBe(true);
    t.clock.advance(100);
    expect(s.healthy).toBe(false);
    expect(s.downReason).toBe('tcp check web: connect failed: ECONNREFUSED');
    expect(t.log).toEqual(['app/0 is DOWN: tcp check web failed 3 time(s) in a row, last: connect failed: ECONNREFUSED']);
    expect([s.downTransitions, s.checksFailed, t.changes]).toEqual([1, 3, ['0 down']]);
    t.answers.delete(9000);
    t.clock.advance(100);
    expect(s.healthy).toBe(false);
    t.clock.advance(100);
    expect(s.healthy).toBe(true);
    expect(s.downReason).toBe('');
    expect(t.log[1]).toBe('app/0 is UP: tcp check web passed 2 time(s) in a row (connect succeeded)');
    expect(t.changes).toEqual(['0 down', '0 up']);
  });

  test('a down server is checked at the down interval', () => {
    const t = setup({ check: checkSpec('web', 'tcp', { intervalMs: 100, downIntervalMs: 1000, fall: 1, rise: 1, jitter: 0 }) });
    t.answers.set(9000, refused);
    t.clock.advance(100);
    expect(t.servers[0]!.healthy).toBe(false);
    // Down: one check per 1000 ms window (it would be ten at the up interval).
    for (let i = 0; i < 3; i++) {
      const before = t.calls.length;
      t.clock.advance(1000);
      expect(t.calls.length).toBe(before + 1);
    }
  });

  test('a check that hangs is not started again while it runs; one connection per server', () => {
    const t = setup({ agent: checkSpec('agent', 'agent', { intervalMs: 100, port: 7000, jitter: 0 }) });
    t.answers.set(9000, 'hang');
    t.clock.advance(1000);
    // The health probe hangs (the real probe's timeout would end it); the agent waits behind it.
    const to = (target: string): Call[] => t.calls.filter((c) => c.target === target);
    expect(to('10.0.0.1:9000')).toHaveLength(1);
    const agentCalls = to('10.0.0.1:7000').length;
    expect(agentCalls).toBeLessThanOrEqual(1); // only if it came first
    to('10.0.0.1:9000')[0]!.done(refused);
    expect(to('10.0.0.1:7000')).toHaveLength(agentCalls + 1);
  });

  test('servers in maintenance are not checked', () => {
    const t = setup();
    t.servers[0]!.admin = 'maintenance';
    t.clock.advance(1000);
    expect(t.calls.length).toBe(0);
    t.servers[0]!.admin = 'enabled';
    t.clock.advance(200);
    expect(t.calls.length).toBeGreaterThan(0);
  });

  test('check_port / check_address send the check elsewhere than traffic', () => {
    const t = setup();
    t.servers[0]!.checkPort = 8081;
    t.servers[0]!.checkAddress = '10.0.0.99';
    t.clock.advance(100);
    expect(t.calls[0]!.target).toBe('10.0.0.99:8081');
  });

  test('a passing check ends an outlier ejection early and starts slow start', () => {
    const t = setup({ slowStartMs: 1000 });
    const s = t.servers[0]!;
    s.blacklistedUntilMs = 60_000;
    t.clock.advance(100);
    expect(s.blacklistedUntilMs).toBe(0);
    expect(s.status(t.clock.now())).toBe('starting');
    expect(t.log[0]).toStartWith('app/0 returns from ejection: tcp check web passed');
  });

  test('a thousand servers: each checked once per interval, first checks spread over the interval', () => {
    const t = setup({ n: 1000, check: checkSpec('web', 'tcp', { intervalMs: 100, jitter: 0.1 }) });
    t.clock.advance(50);
    const half = t.calls.length;
    expect(half).toBeGreaterThan(350);
    expect(half).toBeLessThan(650);
    t.clock.advance(50);
    // Every server once, and the few whose first check came in the first few ms a second time.
    expect(t.calls.length).toBeGreaterThanOrEqual(1000);
    expect(t.calls.length).toBeLessThan(1100);
    expect(new Set(t.calls.map((c) => c.target)).size).toBe(1000);
    t.clock.advance(1000);
    expect(t.calls.length).toBeGreaterThan(9500);
    expect(t.calls.length).toBeLessThan(11_500);
    expect(t.clock.pending).toBe(1); // one real timer for all of them
  });

  test('sync keeps unchanged checks, and a server that loses its check is up again', () => {
    const t = setup({ check: checkSpec('web', 'tcp', { intervalMs: 100, fall: 1, jitter: 0 }) });
    t.answers.set(9000, refused);
    t.clock.advance(100);
    expect(t.servers[0]!.healthy).toBe(false);
    t.checker.sync([t.group]);
    expect(t.checker.taskCount).toBe(1);
    (t.group.config as { check: CheckSpec | null }).check = null;
    t.checker.sync([t.group]);
    expect(t.checker.taskCount).toBe(0);
    expect(t.servers[0]!.healthy).toBe(true);
  });

  test('agent reports drain, weight, down and up; an unreachable agent changes nothing', () => {
    const t = setup({ check: null, agent: checkSpec('agent', 'agent', { intervalMs: 100, jitter: 0 }) });
    const s = t.servers[0]!;
    const say = (text: string, state: 'up' | 'drain' | 'maint' | 'down' | null, pct: number | null = null, reason = ''): void => {
      t.answers.set(9000, { passed: true, detail: `agent says ${text}`, agent: { state, weightPercent: pct, reason } });
      t.clock.advance(100);
    };
    say('drain', 'drain');
    expect([s.status(t.clock.now()), s.isUnavailable(t.clock.now())]).toEqual(['drain', true]);
    say('up 50%', 'up', 50);
    expect([s.status(t.clock.now()), s.agentScale]).toEqual(['up', 0.5]);
    say('down #disk full', 'down', null, 'disk full');
    expect([s.status(t.clock.now()), s.downReason]).toEqual(['down', 'agent reports down: disk full']);
    t.answers.set(9000, refused);
    t.clock.advance(300);
    expect(s.status(t.clock.now())).toBe('down');
    say('up', 'up');
    expect(s.status(t.clock.now())).toBe('up');
    expect(t.log).toEqual([
      'app/0: agent reports drain (was up)',
      'app/0: agent sets weight to 50%',
      'app/0: agent reports up (was drain)',
      'app/0: agent reports down: disk full (was up)',
      'app/0: agent reports up (was down)',
    ]);
    expect(t.changes).toEqual(['0 up', '0 down', '0 up']);
  });

  test('stop cancels everything', () => {
    const t = setup({ n: 10 });
    t.checker.stop();
    t.clock.advance(1000);
    expect(t.calls.length).toBe(0);
  });
});
