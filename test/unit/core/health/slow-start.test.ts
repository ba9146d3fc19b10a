import { describe, expect, test } from 'bun:test';
import { SLOW_START_FLOOR, slowStartFactor, slowStartWeight } from '../../../../src/core/health/slow-start.ts';
import { Server } from '../../../../src/core/servers/server.ts';

const server = (weight = 10): Server => new Server(0, { address: { kind: 'tcp', host: '10.0.0.1', port: 80 }, maxConnections: 0, hardLimit: 0, weight, priority: 0, acl: 0 });

describe('slow start', () => {
  test('the share grows linearly from a floor to the full weight', () => {
    expect(slowStartFactor(0, 10_000)).toBe(SLOW_START_FLOOR);
    expect(slowStartFactor(2_500, 10_000)).toBe(0.25);
    expect(slowStartFactor(5_000, 10_000)).toBe(0.5);
    expect(slowStartFactor(10_000, 10_000)).toBe(1);
    expect(slowStartFactor(99_000, 10_000)).toBe(1);
    expect(slowStartWeight(8, 5_000, 10_000)).toBe(4);
  });

  test('no slow start configured: full weight at once', () => {
    expect(slowStartFactor(0, 0)).toBe(1);
    const s = server();
    s.startRamp(1000, 0);
    expect(s.weightScale(1000)).toBe(1);
  });

  test('a server ramps after startRamp, then costs one comparison', () => {
    const s = server();
    s.startRamp(1000, 4000);
    expect(s.weightScale(1000)).toBe(SLOW_START_FLOOR);
    expect(s.weightScale(3000)).toBe(0.5);
    expect(s.weightScale(5000)).toBe(1);
    expect(s.status(3000)).toBe('starting');
    expect(s.status(5000)).toBe('up');
  });

  test('the agent percentage scales the weight, with the ramp', () => {
    const s = server();
    s.agentScale = 0.5;
    expect(s.weightScale(0)).toBe(0.5);
    s.startRamp(0, 1000);
    expect(s.weightScale(500)).toBe(0.25);
  });

  test('round robin admits a ramping server on its share of turns, deterministically', () => {
    const s = server();
    s.startRamp(0, 1000);
    const admitted = (now: number, turns: number): number => Array.from({ length: turns }, () => s.admitsByScale(now)).filter(Boolean).length;
    expect(admitted(250, 100)).toBe(25);
    expect(admitted(1000, 10)).toBe(10);
  });
});

describe('server state', () => {
  test('admin, health and agent fold into one availability flag', () => {
    const s = server();
    expect(s.isUnavailable(0)).toBe(false);
    s.admin = 'drain';
    expect([s.isUnavailable(0), s.status(0)]).toEqual([true, 'drain']);
    s.admin = 'enabled';
    s.healthy = false;
    expect([s.isUnavailable(0), s.status(0)]).toEqual([true, 'down']);
    s.healthy = true;
    s.agent = 'maint';
    expect([s.isUnavailable(0), s.status(0)]).toEqual([true, 'maintenance']);
    s.agent = 'up';
    s.blacklistedUntilMs = 10;
    expect([s.isUnavailable(5), s.status(5)]).toEqual([true, 'ejected']);
    expect([s.isUnavailable(10), s.status(10)]).toEqual([false, 'up']);
  });
});
