import { describe, expect, test } from 'bun:test';
import { parseAclEntry } from '../../../src/core/acl/acl.ts';
import { newSelectionState } from '../../../src/core/selector.ts';
import { Server } from '../../../src/core/servers/server.ts';
import { connectOnce, selectorFor, servers } from './helpers.ts';

describe('pen default: round robin for new clients, tracking for known ones', () => {
  test('new clients rotate starting after server 0, as pen does; known clients stay', () => {
    const { selector } = selectorFor(servers(3));
    const picks = ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4', '1.1.1.1', '1.1.1.2'].map((c) => connectOnce(selector, c));
    expect(picks).toEqual([1, 2, 0, 1, 1, 2]);
  });

  test('-r (no tracking): the same client rotates', () => {
    const { selector } = selectorFor(servers(3), 'roundrobin', { tracking: false });
    expect([1, 2, 3, 4].map(() => connectOnce(selector, '1.1.1.1'))).toEqual([1, 2, 0, 1]);
  });

  test('tracking expiry (-T): an expired client is new again', () => {
    const { selector, clock } = selectorFor(servers(3), 'roundrobin', {}, 2048, 10_000);
    expect(connectOnce(selector, '9.9.9.9')).toBe(1);
    expect(connectOnce(selector, '8.8.8.8')).toBe(2);
    clock.advance(5_000);
    expect(connectOnce(selector, '9.9.9.9')).toBe(1); // still known (last seen 5 s ago)
    clock.advance(10_001);
    expect(connectOnce(selector, '9.9.9.9')).toBe(0); // expired: round robin continues
  });

  test('LRU eviction (-c): the least recently seen client is forgotten first', () => {
    const { selector } = selectorFor(servers(3), 'roundrobin', {}, 2);
    expect(connectOnce(selector, 'a')).toBe(1);
    expect(connectOnce(selector, 'b')).toBe(2);
    expect(connectOnce(selector, 'a')).toBe(1); // a is now most recent
    expect(connectOnce(selector, 'c')).toBe(0); // evicts b
    expect(connectOnce(selector, 'a')).toBe(1); // a kept
    expect(connectOnce(selector, 'b')).toBe(1); // b forgotten: next in turn
  });
});

describe('pen -h hash', () => {
  test('IPv4: the address as a little-endian integer modulo the server count (pen on x86)', () => {
    const { selector } = selectorFor(servers(3), 'hash', { tracking: false });
    // Measured with pen 0.34.1: 127.0.0.1 -> server 2, .2 -> 0, .3 -> 1.
    expect(connectOnce(selector, '127.0.0.1')).toBe(2);
    expect(connectOnce(selector, '127.0.0.2')).toBe(0);
    expect(connectOnce(selector, '127.0.0.3')).toBe(1);
  });

  test('IPv6: all 16 bytes count (pen uses only the last one)', () => {
    const { selector } = selectorFor(servers(7), 'hash', { tracking: false });
    const got = new Set<number | string | null>();
    for (let i = 0; i < 32; i++) got.add(connectOnce(selector, `2001:db8:${i.toString(16)}::1`));
    expect(got.size).toBeGreaterThan(3); // pen would send all of these to one server
  });

  test('a hashed server that is down fails over to the next index', () => {
    const list = servers(3);
    const { selector, clock } = selectorFor(list, 'hash', { tracking: false });
    list[2]!.blacklistedUntilMs = clock.now() + 1000;
    expect(connectOnce(selector, '127.0.0.1')).toBe(0);
  });
});

describe('pen -W: weighted least connections', () => {
  test('load = connections / weight; weight 0 excluded; ties to the lowest index', () => {
    const list = servers(3, [{ weight: 2 }, { weight: 1 }, { weight: 0 }]);
    const { selector } = selectorFor(list, 'weight', { tracking: false });
    const picks = Array.from({ length: 6 }, (_, i) => connectOnce(selector, `c${i}`, true));
    // loads: a 0/2 b 0/1 -> a; a .5 b 0 -> b; a .5 b 1 -> a; a 1 b 1 -> a; a 1.5 b 1 -> b; a 1.5 b 2 -> a
    expect(picks).toEqual([0, 1, 0, 0, 1, 0]);
  });
});

describe('prio', () => {
  test('the available server with the lowest prio value', () => {
    const list = servers(3, [{ priority: 5 }, { priority: 7 }, { priority: 1 }]);
    const { selector, clock } = selectorFor(list, 'prio', { tracking: false });
    expect(connectOnce(selector, 'a')).toBe(2);
    list[2]!.blacklistedUntilMs = clock.now() + 1000;
    expect(connectOnce(selector, 'a')).toBe(0);
  });
});

describe('limits', () => {
  test('soft limit: a full server takes no new clients; hard limit admits returning ones', () => {
    const { selector: s2 } = selectorFor(servers(1, [{ maxConnections: 1, hardLimit: 2 }]));
    expect(connectOnce(s2, 'x', true)).toBe(0); // x holds the only soft slot
    expect(connectOnce(s2, 'y')).toBe(null); // new client: soft limit reached
    expect(connectOnce(s2, 'x', true)).toBe(0); // returning client: up to hard limit 2
    expect(connectOnce(s2, 'x')).toBe(null); // hard limit reached
  });

  test('hard limit 0 means the soft limit applies to everyone (pen)', () => {
    const { selector } = selectorFor(servers(1, [{ maxConnections: 1 }]));
    expect(connectOnce(selector, 'x', true)).toBe(0);
    expect(connectOnce(selector, 'x')).toBe(null);
  });

  test('a full first choice fails over to the next server', () => {
    const list = servers(3, [{}, { maxConnections: 1 }, {}]);
    const { selector } = selectorFor(list, 'roundrobin', { tracking: false });
    expect(connectOnce(selector, 'a', true)).toBe(1);
    expect(connectOnce(selector, 'b', true)).toBe(2);
    expect(connectOnce(selector, 'c', true)).toBe(0);
    expect(connectOnce(selector, 'd', true)).toBe(2); // rr picks 1 (full) -> walk to 2
  });
});

describe('failure handling', () => {
  test('a failed connect blacklists the server for -b and the client tries the next server', () => {
    const list = servers(3);
    const { selector, clock } = selectorFor(list, 'roundrobin', { tracking: false, blacklistMs: 30_000 });
    const st = newSelectionState('a');
    expect(selector.begin(st)!.index).toBe(1);
    const next = selector.connectFailed(st, false);
    expect(next!.index).toBe(2);
    expect(st.failedServers).toEqual([list[1]!]);
    selector.connected(st);
    expect(list[1]!.isBlacklisted(clock.now())).toBe(true);
    expect(list[1]!.connectFailures).toBe(1);
    // While blacklisted, round robin skips it (its turn continues from its own last pick, 1, as
    // in pen, where failover does not move round robin's position).
    expect([1, 2, 3].map((i) => connectOnce(selector, `c${i}`))).toEqual([2, 0, 2]);
    clock.advance(30_001);
    expect([connectOnce(selector, 'y'), connectOnce(selector, 'z')]).toEqual([0, 1]); // back in rotation
  });

  test('stubborn (-s): no failover from the first choice', () => {
    const list = servers(2);
    const { selector, clock } = selectorFor(list, 'roundrobin', { stubborn: true });
    const st = newSelectionState('a');
    expect(selector.begin(st)!.index).toBe(1);
    expect(selector.connectFailed(st, true)).toBe(null);
    expect(st.refusal).toBe('stubborn');
    // The known client's server is blacklisted now: stubborn refuses instead of walking.
    const st2 = newSelectionState('a');
    selector.clients.touch('a', clock.now()).server = 1;
    expect(selector.begin(st2)).toBe(null);
  });

  test('the emergency server is used only when every regular server is unavailable', () => {
    const list = servers(2);
    const { selector, clock } = selectorFor(list, 'roundrobin', { tracking: false });
    selector.emergency = new Server(-1, { address: { kind: 'tcp', host: '10.9.9.9', port: 80 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 }, 'emergency');
    expect(connectOnce(selector, 'a')).toBe(1);
    list[0]!.blacklistedUntilMs = clock.now() + 1000;
    expect(connectOnce(selector, 'a')).toBe(1);
    list[1]!.blacklistedUntilMs = clock.now() + 1000;
    expect(connectOnce(selector, 'a')).toBe('emergency');
    const st = newSelectionState('b');
    expect(selector.begin(st)!.role).toBe('emergency');
    expect(st.reason).toBe('emergency');
    expect(selector.connectFailed(st, false)).toBe(null); // no failover from the emergency server
  });

  test('no server at all: refused with no-server', () => {
    const list = servers(2);
    const { selector, clock } = selectorFor(list);
    for (const s of list) s.blacklistedUntilMs = clock.now() + 1000;
    const st = newSelectionState('a');
    expect(selector.begin(st)).toBe(null);
    expect(st.refusal).toBe('no-server');
  });
});

describe('ACLs', () => {
  test('client_acl denies -> abuse server, or refusal without one', () => {
    const { selector, acls } = selectorFor(servers(2));
    acls.add(0, parseAclEntry(false, ['10.0.0.0', '255.0.0.0']));
    expect(connectOnce(selector, '10.1.2.3')).toBe(null);
    expect(connectOnce(selector, '192.168.1.1')).toBe(1); // no match -> opposite of last (deny) = permit
    selector.abuse = new Server(-2, { address: { kind: 'tcp', host: '10.9.9.8', port: 80 }, maxConnections: 0, hardLimit: 0, weight: 0, priority: 0, acl: 0 }, 'abuse');
    expect(connectOnce(selector, '10.1.2.3')).toBe('abuse');
  });

  test('per-server ACL: a server whose ACL denies the client is skipped', () => {
    const list = servers(2);
    const { selector, acls } = selectorFor(list, 'roundrobin', { tracking: false, clientAcl: 9 });
    list[1]!.acl = 3;
    acls.add(3, parseAclEntry(true, ['192.168.0.0', '255.255.0.0']));
    expect(connectOnce(selector, '10.0.0.1')).toBe(0); // rr picks 1, whose ACL denies 10/8 -> walk to 0
    expect(connectOnce(selector, '192.168.7.7')).toBe(0); // rr's turn is 0 now
    expect(connectOnce(selector, '192.168.7.7')).toBe(1); // 1 permits 192.168/16
  });
});

describe('bookkeeping', () => {
  test('pending and connection counts return to zero', () => {
    const list = servers(2);
    const { selector } = selectorFor(list);
    const st = newSelectionState('a');
    selector.begin(st);
    expect(list[1]!.pending).toBe(1);
    selector.connected(st);
    expect(list[1]!.pending).toBe(0);
    expect(list[1]!.connections).toBe(1);
    selector.released(st);
    expect(list[1]!.connections).toBe(0);
    const st2 = newSelectionState('b');
    const s = selector.begin(st2)!;
    selector.abandoned(st2);
    expect(s.pending).toBe(0);
  });

  test('-N: hash without saving the choice in the client table', () => {
    const { selector, clients } = selectorFor(servers(3), 'hash', { tracking: false, saveTracking: false });
    connectOnce(selector, '127.0.0.1');
    expect(clients.peek('127.0.0.1', Number.MAX_SAFE_INTEGER - 1)?.server ?? -1).toBe(-1);
  });
});

describe('pen -h -r: the source port is mixed into the hash', () => {
  test('hash = (address as pen reads it XOR port in network order) modulo the server count', () => {
    const { selector } = selectorFor(servers(3), 'hash', { tracking: false, hashSourcePort: true });
    const pick = (port: number): number => {
      const st = newSelectionState('127.0.0.9', port);
      const s = selector.begin(st)!;
      selector.abandoned(st);
      return s.index;
    };
    // 127.0.0.9 read little-endian = 0x0900007f; port 0x1234 in network order reads as 0x3412.
    for (const port of [0x1234, 40000, 51515, 1]) {
      const swapped = ((port & 0xff) << 8) | (port >>> 8);
      expect(pick(port)).toBe(((0x0900007f ^ swapped) >>> 0) % 3);
    }
  });
});
