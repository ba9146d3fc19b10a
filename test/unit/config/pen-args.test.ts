import { expect, test } from 'bun:test';
import { parsePenArgs, UsageError } from '../../../src/config/pen-args.ts';

test("pen's defaults", () => {
  const { config } = parsePenArgs(['8080', 'a:1', 'b:2']);
  const g = config.groups[0]!;
  expect(g.algorithm).toBe('roundrobin');
  expect(g.tracking).toBe(true);
  expect(g.clientsMax).toBe(2048);
  expect(g.blacklistMs).toBe(30_000);
  expect(g.connectTimeoutMs).toBe(3_000);
  expect(config.global.maxConnections).toBe(500);
  expect(config.global.foreground).toBe(false);
  expect(config.listeners[0]!.address).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 8080 });
  expect(g.servers.map((s) => s.address)).toEqual([
    { kind: 'tcp', host: 'a', port: 1 },
    { kind: 'tcp', host: 'b', port: 2 },
  ]);
});

test('getopt style: bundled flags, attached values, options after positionals', () => {
  const { config } = parsePenArgs(['-fdr', '-x50', '127.0.0.1:8080', 'a:1', '-b', '5', '-T', '60', '-c', '10']);
  const g = config.groups[0]!;
  expect(config.global.foreground).toBe(true);
  expect(config.global.debug).toBe(1);
  expect(g.tracking).toBe(false);
  expect(config.global.maxConnections).toBe(50);
  expect(g.blacklistMs).toBe(5_000);
  expect(g.trackingMs).toBe(60_000);
  expect(g.clientsMax).toBe(10);
});

test('algorithm flags follow pen: -W weight, -h hash, -N hash without saving, -s stubborn', () => {
  expect(parsePenArgs(['-W', '80', 'a']).config.groups[0]!.algorithm).toBe('weight');
  expect(parsePenArgs(['-h', '80', 'a']).config.groups[0]!.algorithm).toBe('hash');
  expect(parsePenArgs(['-W', '-h', '80', 'a']).config.groups[0]!.algorithm).toBe('weight');
  const n = parsePenArgs(['-N', '80', 'a']).config.groups[0]!;
  expect([n.algorithm, n.tracking, n.saveTracking]).toEqual(['hash', false, false]);
  expect(parsePenArgs(['-s', '80', 'a']).config.groups[0]!.stubborn).toBe(true);
  expect(parsePenArgs(['--algorithm', 'maglev', '80', 'a']).config.groups[0]!.algorithm).toBe('maglev');
  // A prio field alone does not select priority (pen 0.34.1 behaviour).
  expect(parsePenArgs(['80', 'a:1:0:0:0:5']).config.groups[0]!.algorithm).toBe('roundrobin');
});

test('emergency and abuse servers; -o commands; -F file', () => {
  const p = parsePenArgs(['-e', 'em:9', '-B', 'ab', '-o', 'prio', '-O', 'hash', '-F', '/etc/pen.cfg', '80', 'a']);
  expect(p.config.groups[0]!.emergency?.address).toEqual({ kind: 'tcp', host: 'em', port: 9 });
  expect(p.config.groups[0]!.abuse?.address).toEqual({ kind: 'tcp', host: 'ab', port: 80 });
  expect(p.commands).toEqual(['prio', 'hash']);
  expect(p.config.global.commandFile).toBe('/etc/pen.cfg');
});

test('-P and -Q are accepted and noted; -j is refused clearly', () => {
  expect(parsePenArgs(['-P', '-Q', '80', 'a']).notes.length).toBe(2);
  expect(() => parsePenArgs(['-j', '/var/empty', '80', 'a'])).toThrow(/chroot/);
  expect(() => parsePenArgs(['-R', '80', 'a'])).toThrow(/needs the certificate: -E/);
});

test('-U makes the listener UDP with pen\'s limits; a UDP listener refuses -E, Unix paths and --workers', () => {
  const p = parsePenArgs(['-U', '-r', '127.0.0.1:53', '10.0.0.1:53', '10.0.0.2:53']);
  expect(p.config.listeners[0]!.udp).toMatchObject({ idleTimeoutMs: null, maxSessions: null, maxPerSource: 64, returnFactor: 3, returnFloorBytes: 1232, unansweredSessions: 0 });
  expect(p.config.groups[0]!.tracking).toBe(false);
  expect(parsePenArgs(['80', 'a']).config.listeners[0]!.udp).toBeUndefined();
  expect(() => parsePenArgs(['-U', '--workers', '2', '53', 'a'])).toThrow(/-U with --workers: .*SO_REUSEPORT/);
  expect(() => parsePenArgs(['-U', '-E', 'c.pem', '53', 'a'])).toThrow(/-U with -E/);
  expect(() => parsePenArgs(['-U', '/tmp/s.sock', 'a:53'])).toThrow(/UDP listener needs a \[host:\]port/);
});

test('mistakes are usage errors with a reason', () => {
  expect(() => parsePenArgs([])).toThrow(/missing the listen address/);
  expect(() => parsePenArgs(['80'])).toThrow(/no servers/);
  expect(() => parsePenArgs(['-x', 'many', '80', 'a'])).toThrow(/not an integer/);
  expect(() => parsePenArgs(['-k', '80', 'a'])).toThrow(/not a known option/);
  expect(() => parsePenArgs(['80', 'a:http:x'])).toThrow(/maxc/);
  expect(() => parsePenArgs(['--algorithm', 'magic', '80', 'a'])).toThrow(/maglev/);
  expect(() => parsePenArgs(['--config', 'x.yaml', '80', 'a'])).toThrow(/either/);
});

test('-C and -X are accepted; a bad -C address is a usage error', () => {
  const { config } = parsePenArgs(['-C', '127.0.0.1:10080', '-X', '8080', 'a:1']);
  expect(config.global.control).toBe('127.0.0.1:10080');
  expect(config.global.controlExit).toBe(true);
  expect(config.listeners[0]!.spec).toBe('8080');
  expect(parsePenArgs(['-C/run/f.ctl', '8080', 'a:1']).config.global.control).toBe('/run/f.ctl');
  expect(parsePenArgs(['8080', 'a:1']).config.global.control).toBeNull();
  expect(() => parsePenArgs(['-C', 'host:port', '8080', 'a:1'])).toThrow(UsageError);
});

test('time options follow the one duration rule: -t 3000000 would overflow the runtime timer and is refused', () => {
  // Beyond ~24.8 days the runtime's timer fires at once: every client would get an empty close.
  expect(() => parsePenArgs(['-t', '3000000', '80', 'a'])).toThrow(new UsageError('-t: expected a duration from 1 to 2147483 s (about 24.8 days), got 3000000 s'));
  expect(() => parsePenArgs(['-t', '0', '80', 'a'])).toThrow(/-t: expected a duration from 1 to 2147483 s/);
  expect(() => parsePenArgs(['-b', '2147484', '80', 'a'])).toThrow(/^-b: expected a duration up to 2147483 s/);
  expect(() => parsePenArgs(['-T99999999999', '80', 'a'])).toThrow(/^-T: expected a duration up to 2147483 s/);
  expect(() => parsePenArgs(['-b', '-1', '80', 'a'])).toThrow(/^-b: expected a whole number of seconds/);
  expect(() => parsePenArgs(['--check', 'tcp', '--check-interval', '2147483648', '80', 'a'])).toThrow(/^--check-interval: expected a duration from 1 to 2147483647 ms/);
  const g = parsePenArgs(['-t', '2147483', '-b', '0', '-T', '2147483', '80', 'a']).config.groups[0]!;
  expect([g.connectTimeoutMs, g.blacklistMs, g.trackingMs]).toEqual([2_147_483_000, 0, 2_147_483_000]);
});

test('-H sets X-Forwarded-For on the listener (bundled too); not with -U', () => {
  expect(parsePenArgs(['-fH', '80', 'a']).config.listeners[0]!.forwardedFor).toBe(true);
  expect(parsePenArgs(['80', 'a']).config.listeners[0]!.forwardedFor).toBeUndefined();
  expect(() => parsePenArgs(['-H', '-U', '80', 'a'])).toThrow(/-U with -H/);
});
