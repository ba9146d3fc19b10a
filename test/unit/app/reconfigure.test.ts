/**
 * Reconfiguration as one diff: the admin API's add, remove and update of a server and a reload
 * all go through the same group diff, which keeps Server objects by address (with their
 * counters), renumbers, and makes the client table follow renumbered servers. No sockets: the
 * balancer is built, not started.
 */
import { expect, test } from 'bun:test';
import { Balancer, type Diagnostics } from '../../../src/app/balancer.ts';
import { parsePenArgs } from '../../../src/config/pen-args.ts';
import { serverConfig } from '../../../src/config/model.ts';
import { ManualClock } from '../../helpers/manual-clock.ts';

const quiet: Diagnostics = { info() {}, error() {}, debug() {} };
const ports = (b: Balancer): number[] => b.defaultGroup.servers.map((s) => (s.address.kind === 'tcp' ? s.address.port : -1));

function make(servers: string[], args: string[] = []): { b: Balancer; clock: ManualClock } {
  const clock = new ManualClock();
  return { b: new Balancer(parsePenArgs([...args, '127.0.0.1:8080', ...servers]).config, quiet, clock), clock };
}

/** A tracked client that returns to server `server`. */
function track(b: Balancer, key: string, server: number, now: number): void {
  const clients = b.defaultGroup.clients;
  clients.remember(clients.touch(key, now), server);
}
const trackedAt = (b: Balancer, key: string, now: number): number | undefined => b.defaultGroup.clients.peek(key, now)?.server;

test('addServer: the new server takes the next index; nobody moves', () => {
  const { b, clock } = make(['127.0.0.1:9001', '127.0.0.1:9002']);
  const first = b.defaultGroup.servers[0]!;
  track(b, '10.0.0.1', 1, clock.now());
  const s = b.addServer(b.defaultGroup, serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 9003 }, { weight: 4 }));
  expect(ports(b)).toEqual([9001, 9002, 9003]);
  expect(s.index).toBe(2);
  expect(s.weight).toBe(4);
  expect(b.defaultGroup.servers[0]).toBe(first);
  expect(trackedAt(b, '10.0.0.1', clock.now())).toBe(1);
  expect(b.defaultGroup.config.servers.map((c) => c.weight)).toEqual([0, 0, 4]);
  expect(() => b.addServer(b.defaultGroup, serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 9003 }))).toThrow('already in group');
});

test('removeServer: later servers move up and their clients follow them', () => {
  const { b, clock } = make(['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']);
  const [a, removed, c] = b.defaultGroup.servers;
  track(b, '10.0.0.1', 0, clock.now());
  track(b, '10.0.0.2', 1, clock.now());
  track(b, '10.0.0.3', 2, clock.now());
  const changes = b.removeServer(b.defaultGroup, removed!);
  expect(changes).toEqual(['server 127.0.0.1:9002 removed from default (its connections continue)']);
  expect(b.defaultGroup.servers).toEqual([a!, c!]);
  expect(c!.index).toBe(1);
  expect(trackedAt(b, '10.0.0.1', clock.now())).toBe(0);
  expect(trackedAt(b, '10.0.0.2', clock.now())).toBe(-1);
  expect(trackedAt(b, '10.0.0.3', clock.now())).toBe(1);
  expect(() => b.removeServer(b.defaultGroup, removed!)).toThrow('is not in group');
});

test('updateServerSettings: a diff of the group config; the Server object and its place stay', () => {
  const { b } = make(['127.0.0.1:9001', '127.0.0.1:9002:10:20']);
  const g = b.defaultGroup;
  const s = g.servers[1]!;
  expect(b.updateServerSettings(g, s, { maxConnections: 10, weight: 3, acl: 2 })).toEqual(['server 127.0.0.1:9002 weight 0 -> 3', 'server 127.0.0.1:9002 acl 0 -> 2']);
  expect(g.servers[1]).toBe(s);
  expect([s.maxConnections, s.hardLimit, s.weight, s.acl]).toEqual([10, 20, 3, 2]);
  expect(g.config.servers[1]).toMatchObject({ maxConnections: 10, hardLimit: 20, weight: 3, acl: 2 });
  expect(b.updateServerSettings(g, s, { weight: 3 })).toEqual([]);
});

test('reload: servers are kept by address, renumbered, and the client table follows', () => {
  const { b, clock } = make(['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']);
  const [s1, , s3] = b.defaultGroup.servers;
  track(b, '10.0.0.1', 2, clock.now());
  track(b, '10.0.0.2', 1, clock.now());
  const changes = b.reload(parsePenArgs(['127.0.0.1:8080', '127.0.0.1:9003', '127.0.0.1:9001']).config);
  expect(changes).toContain('server 127.0.0.1:9002 removed from default (its connections continue)');
  expect(b.defaultGroup.servers).toEqual([s3!, s1!]);
  expect(trackedAt(b, '10.0.0.1', clock.now())).toBe(0);
  expect(trackedAt(b, '10.0.0.2', clock.now())).toBe(-1);
});

test('reload keeps what only a restart changes (StartGlobals) and takes the rest', () => {
  const { b } = make(['127.0.0.1:9001'], ['-x', '50', '-F', '/etc/pen.cmd', '-C', '10000']);
  const next = parsePenArgs(['-x', '60', '127.0.0.1:8080', '127.0.0.1:9001']).config;
  expect(next.global.commandFile).toBeNull();
  b.reload(next);
  expect(b.global.maxConnections).toBe(60);
  expect(b.global.commandFile).toBe('/etc/pen.cmd');
  expect(b.global.control).toBe('10000');
});
