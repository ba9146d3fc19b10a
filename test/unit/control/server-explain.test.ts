/**
 * A server that is down, drained or ejected says why and since when: the health checker, the
 * selector's ejection and the operator's state keep a short history and the last check, and the
 * views (API, dashboard) explain the state from them. Manual clock, scripted probe, no sockets.
 */
import { describe, expect, test } from 'bun:test';
import { seededRandom } from '../../../src/core/clock.ts';
import { checkSpec } from '../../../src/core/health/check-spec.ts';
import type { Verdict } from '../../../src/core/health/conversation.ts';
import { newSelectionState } from '../../../src/core/selector.ts';
import { STATE_HISTORY_MAX } from '../../../src/core/servers/server.ts';
import { HealthChecker, type CheckedGroup } from '../../../src/control/health-checker.ts';
import { serverView } from '../../../src/control/views.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';
import { selectorFor, servers } from '../core/helpers.ts';

describe('a server explains its state', () => {
  test('down: the failing check and its detail, since the change, with a history entry; up again adds one', () => {
    const clock = new ManualClock(1_000_000);
    const [s] = servers(1);
    let answer: Verdict = { passed: false, detail: 'HTTP 503 (expected 200)' };
    const group: CheckedGroup = {
      name: 'app',
      config: { check: checkSpec('web', 'tcp', { intervalMs: 100, rise: 1, fall: 2, jitter: 0 }), agentCheck: null, slowStartMs: 0 },
      selector: { allServers: () => [s!] },
      serverChanged: () => {},
    };
    const checkedAt: string[] = [];
    const checker = new HealthChecker({
      clock,
      random: seededRandom(1),
      log: () => {},
      label: (g) => g,
      probe: (_t, _spec, done) => {
        checkedAt.push(new Date(clock.now()).toISOString());
        done(answer);
      },
    });
    checker.sync([group]);
    clock.advance(100);
    let v = serverView(group, s!, clock.now());
    expect(v.state).toBe('up');
    expect(v.last_check).toEqual({ passed: false, detail: 'tcp check web: HTTP 503 (expected 200)', at: checkedAt[0]! });
    expect(v.history).toEqual([]);
    clock.advance(100);
    const downAt = checkedAt[1]!;
    expect(checkedAt.length).toBe(2);
    v = serverView(group, s!, clock.now());
    expect(v.state).toBe('down');
    expect(v.why).toBe('tcp check web: HTTP 503 (expected 200)');
    expect(v.since).toBe(downAt);
    expect(v.history).toEqual([{ at: downAt, state: 'down', reason: 'tcp check web failed 2 time(s) in a row, last: HTTP 503 (expected 200)' }]);
    answer = { passed: true, detail: 'connect succeeded' };
    clock.advance(100);
    v = serverView(group, s!, clock.now());
    expect([v.state, v.why]).toEqual(['up', '']);
    expect(v.history.map((h) => h.state)).toEqual(['down', 'up']);
    checker.stop();
  });

  test('ejected: the failure that ejected it, since when, and the history keeps only the last changes', () => {
    const list = servers(2);
    const { selector, clock } = selectorFor(list, 'roundrobin', { blacklistMs: 30_000 });
    const st = newSelectionState('192.0.2.1');
    const first = selector.begin(st)!;
    const at = clock.now();
    selector.connectFailed(st, false);
    clock.advance(1000);
    const v = serverView({ name: 'app' }, first, clock.now());
    expect(v.state).toBe('ejected');
    expect(v.why).toBe('connect failed; ejected 1 time(s) in a row, back in 29 s');
    expect(v.since).toBe(new Date(at).toISOString());
    expect(v.history).toEqual([{ at: new Date(at).toISOString(), state: 'ejected', reason: 'connect failed: ejected for 30000 ms (1 in a row)' }]);
    for (let i = 0; i < STATE_HISTORY_MAX + 3; i++) first.noteChange(clock.now() + i, 'up', `n${i}`);
    const h = serverView({ name: 'app' }, first, clock.now()).history;
    expect(h.length).toBe(STATE_HISTORY_MAX);
    expect(h.at(-1)!.reason).toBe(`n${STATE_HISTORY_MAX + 2}`);
  });

  test('drain and maintenance name who set them; connect latency percentiles come from the histogram', () => {
    const [s] = servers(1);
    s!.admin = 'drain';
    s!.adminReason = 'admin API';
    s!.adminSinceMs = 5000;
    const v = serverView({ name: 'app' }, s!, 6000);
    expect([v.state, v.why, v.since]).toEqual(['drain', 'drain set by admin API', new Date(5000).toISOString()]);
    expect(v.connect_ms).toEqual({ count: 0, p50: null, p90: null, p99: null });
    for (let i = 0; i < 10; i++) s!.connectLatency.record(i < 9 ? 3 : 40);
    const c = serverView({ name: 'app' }, s!, 6000).connect_ms;
    expect(c.count).toBe(10);
    expect(c.p50).toBeGreaterThan(2);
    expect(c.p50).toBeLessThanOrEqual(4);
    expect(c.p99).toBeGreaterThan(32);
    expect(c.p99).toBeLessThanOrEqual(64);
  });
});
