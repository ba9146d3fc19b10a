/** The selector's lifecycle rules: backups, "all full" versus "none up", retries, outlier ejection, slow start. */
import { describe, expect, test } from 'bun:test';
import { newSelectionState } from '../../../src/core/selector.ts';
import { Server } from '../../../src/core/servers/server.ts';
import { connectOnce, selectorFor, servers } from './helpers.ts';

function backups(n: number): Server[] {
  return Array.from({ length: n }, (_, i) => new Server(i, { address: { kind: 'tcp', host: '10.9.0.' + (i + 1), port: 80 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 }, 'backup'));
}

describe('backup servers', () => {
  test('used only when no primary is up, first available in order; primaries take over again when back', () => {
    const list = servers(2);
    const { selector } = selectorFor(list, 'roundrobin', { tracking: false });
    selector.backups = backups(2);
    const which = (): string => {
      const st = newSelectionState('1.2.3.4');
      const s = selector.begin(st);
      if (s === null) return `refused:${st.refusal}`;
      selector.connected(st);
      selector.released(st);
      return s.role === 'backup' ? `b${s.index}` : `s${s.index}`;
    };
    expect([which(), which()].sort()).toEqual(['s0', 's1']);
    list[0]!.healthy = false;
    expect(which()).toBe('s1');
    list[1]!.admin = 'maintenance';
    expect([which(), which()]).toEqual(['b0', 'b0']);
    selector.backups[0]!.healthy = false;
    expect(which()).toBe('b1');
    list[0]!.healthy = true;
    expect([which(), which()]).toEqual(['s0', 's0']);
  });

  test('balanced among backups in turn with backupBalance roundrobin', () => {
    const list = servers(1);
    list[0]!.healthy = false;
    const { selector } = selectorFor(list, 'roundrobin', { tracking: false, backupBalance: 'roundrobin' });
    selector.backups = backups(3);
    const seen = Array.from({ length: 6 }, () => {
      const st = newSelectionState('1.2.3.4');
      const s = selector.begin(st)!;
      selector.abandoned(st);
      return s.index;
    });
    expect(seen).toEqual([0, 1, 2, 0, 1, 2]);
  });

  test('backups come before the emergency server; a client served by a backup is not remembered there', () => {
    const list = servers(1);
    list[0]!.healthy = false;
    const { selector, clients } = selectorFor(list);
    selector.backups = backups(1);
    selector.emergency = new Server(-1, { address: { kind: 'tcp', host: '10.8.0.1', port: 80 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 }, 'emergency');
    expect(connectOnce(selector, '5.5.5.5')).toBe('backup');
    expect(clients.peek('5.5.5.5', 0)?.server).toBe(-1);
    selector.backups[0]!.admin = 'drain';
    expect(connectOnce(selector, '5.5.5.5')).toBe('emergency');
  });

  test('a failed backup connect moves on to the next backup', () => {
    const list = servers(1);
    list[0]!.healthy = false;
    const { selector } = selectorFor(list);
    selector.backups = backups(2);
    const st = newSelectionState('1.1.1.1');
    expect(selector.begin(st)?.index).toBe(0);
    const next = selector.connectFailed(st, false);
    expect([next?.role, next?.index]).toEqual(['backup', 1]);
  });
});

describe('all full versus none up', () => {
  test('every server at its limit: refused as all-full (queueable); none up: no-server', () => {
    const list = servers(2, [{ maxConnections: 1 }, { maxConnections: 1 }]);
    const { selector } = selectorFor(list, 'roundrobin', { tracking: false, queueing: true });
    selector.backups = backups(1);
    connectOnce(selector, 'a', true);
    connectOnce(selector, 'b', true);
    const st = newSelectionState('c');
    expect(selector.begin(st)).toBeNull();
    expect(st.refusal).toBe('all-full');
    // Full primaries are still up: backups are for when none is up.
    list[0]!.healthy = false;
    list[1]!.healthy = false;
    const st2 = newSelectionState('d');
    expect(selector.begin(st2)?.role).toBe('backup');
    selector.backups[0]!.healthy = false;
    const st3 = newSelectionState('e');
    expect(selector.begin(st3)).toBeNull();
    expect(st3.refusal).toBe('no-server');
  });

  test('without a queue, full servers still fall back to the emergency server (pen)', () => {
    const list = servers(1, [{ maxConnections: 1 }]);
    const { selector } = selectorFor(list, 'roundrobin', { tracking: false });
    selector.emergency = new Server(-1, { address: { kind: 'tcp', host: '10.8.0.1', port: 80 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 }, 'emergency');
    connectOnce(selector, 'a', true);
    expect(connectOnce(selector, 'b')).toBe('emergency');
    selector.emergency = null;
    const st = newSelectionState('c');
    expect(selector.begin(st)).toBeNull();
    expect(st.refusal).toBe('all-full');
  });

  test('a queued client begins again without being counted twice', () => {
    const list = servers(1, [{ maxConnections: 1 }]);
    const { selector, clients } = selectorFor(list, 'roundrobin', { queueing: true });
    const first = newSelectionState('a');
    selector.begin(first);
    selector.connected(first);
    const st = newSelectionState('b');
    expect(selector.begin(st)).toBeNull();
    selector.released(first);
    expect(selector.begin(st)?.index).toBe(0);
    expect(st.refusal).toBeNull();
    expect(clients.peek('b', 0)?.connects).toBe(1);
  });
});

describe('retries (redispatch)', () => {
  test('at most `retries` further servers after a failed connect', () => {
    const { selector } = selectorFor(servers(4), 'roundrobin', { retries: 1, blacklistMs: 0 });
    const st = newSelectionState('1.1.1.1');
    expect(selector.begin(st)).not.toBeNull();
    expect(selector.connectFailed(st, false)).not.toBeNull();
    expect(selector.connectFailed(st, true)).toBeNull();
    expect(st.refusal).toBe('no-server');
    expect(st.failedServers).toHaveLength(2);
  });

  test('-1 (pen): every server once', () => {
    const { selector } = selectorFor(servers(3), 'roundrobin', { blacklistMs: 0 });
    const st = newSelectionState('1.1.1.1');
    let s = selector.begin(st);
    let attempts = 0;
    while (s !== null) {
      attempts++;
      s = selector.connectFailed(st, false);
    }
    expect(attempts).toBe(3);
  });
});

describe('outlier detection in the selector', () => {
  test('ejects after N consecutive failures, for a time that doubles up to the bound, and reports it', () => {
    const list = servers(2);
    const { selector, clock } = selectorFor(list, 'roundrobin', { consecutiveFailures: 2, blacklistMs: 1000, maxEjectionMs: 3000 });
    const ejected: string[] = [];
    selector.onEjected = (s, ms, why) => ejected.push(`${s.index} ${ms} ${why}`);
    const failOn = (index: number): void => {
      const st = newSelectionState('9.9.9.9');
      st.initial = index;
      st.server = list[index]!;
      list[index]!.pending++;
      selector.connectFailed(st, false);
    };
    failOn(0);
    expect(list[0]!.isUnavailable(clock.now())).toBe(false);
    failOn(0);
    expect(list[0]!.isUnavailable(clock.now())).toBe(true);
    clock.advance(1000);
    failOn(0);
    failOn(0);
    clock.advance(2000);
    failOn(0);
    failOn(0);
    expect(ejected).toEqual(['0 1000 connect failed', '0 2000 connect failed', '0 3000 connect failed']);
  });

  test('early resets count only when watched, and a normal session ends the streak', () => {
    const list = servers(1);
    const { selector } = selectorFor(list, 'roundrobin', { consecutiveFailures: 2, blacklistMs: 1000, earlyResets: true });
    const session = (early: boolean): void => {
      const st = newSelectionState('1.1.1.1');
      selector.begin(st);
      selector.connected(st);
      selector.serverEnded(st, early);
      selector.released(st);
    };
    session(true);
    session(false);
    session(true);
    expect(list[0]!.blacklistedUntilMs).toBe(0);
    session(true);
    expect(list[0]!.blacklistedUntilMs).toBeGreaterThan(0);
    expect(list[0]!.earlyResets).toBe(3);

    const other = servers(1);
    const plain = selectorFor(other, 'roundrobin', { blacklistMs: 1000 }).selector;
    const st = newSelectionState('1.1.1.1');
    plain.begin(st);
    plain.connected(st);
    plain.serverEnded(st, true);
    plain.released(st);
    expect(other[0]!.earlyResets).toBe(0);
    expect(other[0]!.blacklistedUntilMs).toBe(0);
  });
});

describe('slow start in the algorithms', () => {
  test('least connections sends a ramping server only its share', () => {
    const list = servers(2, [{ weight: 1 }, { weight: 1 }]);
    const { selector, clock } = selectorFor(list, 'leastconn', { tracking: false });
    list[1]!.startRamp(clock.now(), 10_000);
    clock.advance(2_500); // 25% of full weight
    const counts = [0, 0];
    for (let i = 0; i < 100; i++) {
      const st = newSelectionState(`c${i}`);
      const s = selector.begin(st)!;
      selector.connected(st);
      counts[s.index]!++;
    }
    expect(counts[1]).toBe(20); // 25:100 load balance → one in five
  });

  test('round robin skips a ramping server on the turns beyond its share', () => {
    const list = servers(2);
    const { selector, clock } = selectorFor(list, 'roundrobin', { tracking: false });
    list[1]!.startRamp(clock.now(), 1000);
    clock.advance(500);
    const counts = [0, 0];
    for (let i = 0; i < 40; i++) {
      const st = newSelectionState(`c${i}`);
      counts[selector.begin(st)!.index]!++;
      selector.abandoned(st);
    }
    // Half weight against a full one: a third of the clients.
    expect(counts[1]).toBeGreaterThanOrEqual(12);
    expect(counts[1]).toBeLessThanOrEqual(14);
  });
});
