import { expect, test } from 'bun:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultGlobal, defaultGroup, serverConfig } from '../../../src/config/model.ts';
import type { FulcrumConfig } from '../../../src/config/model.ts';
import { loadConfigFile } from '../../../src/app/config-file.ts';
import { parseDuration } from '../../../src/config/yaml/leaves.ts';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';
import type { ConfigIssue } from '../../../src/config/yaml/parse.ts';

const FILE = 'fulcrum.yaml';

function configOf(text: string): FulcrumConfig {
  const r = parseConfigText(text, FILE);
  if ('errors' in r) throw new Error(`unexpected errors:\n${r.errors.map(formatIssue).join('\n')}`);
  return r.config;
}

function issuesOf(text: string): ConfigIssue[] {
  const r = parseConfigText(text, FILE);
  if (!('errors' in r)) throw new Error('expected errors, got a config');
  return r.errors;
}

/** The formatted issues, which carry file, line, column, path and message in one string. */
function errorsOf(text: string): string[] {
  return issuesOf(text).map(formatIssue);
}

/** Lines joined, so that tests can count lines by eye. */
const y = (...lines: string[]): string => `${lines.join('\n')}\n`;

const MINIMAL_TAIL = ['listeners:', '  - listen: 8080', '    group: app'];

const FULL = y(
  'global:',
  '  max_connections: 800',
  '  pending_max: 50',
  '  backlog: 1024',
  '  multi_accept: 10',
  '  idle_timeout: 5m',
  '  tcp_nodelay: true',
  '  tcp_fastclose: both',
  '  control_acl: 2',
  '  log_file: /var/log/fulcrum.log',
  '  pid_file: /run/fulcrum.pid',
  '  status_file: /var/www/status.html',
  '  user: nobody',
  '  debug: 2',
  '  ascii_dumps: true',
  'acls:',
  '  2:',
  '    - deny 10.0.0.1',
  '  1:',
  '    - permit 10.0.0.0 255.0.0.0',
  '    - deny 2001:db8::/32',
  '    - permit 192.168.0.0/16',
  'groups:',
  '  app:',
  '    algorithm: leastconn',
  '    tracking: false',
  '    save_tracking: false',
  '    stubborn: true',
  '    clients_max: 4096',
  '    tracking_expiry: 1h',
  '    blacklist: 250ms',
  '    connect_timeout: 1500',
  '    client_acl: 1',
  '    servers:',
  '      - 127.0.0.1:9001',
  '      - 10.0.0.2:9003:100:120:2:1',
  '      - address: "[::1]:9002"',
  '        max_connections: 100',
  '        hard_limit: 120',
  '        weight: 2',
  '        priority: 3',
  '        acl: 1',
  '      - address: /run/app.sock',
  '      - backend.internal:80',
  '    emergency: 127.0.0.1:9100',
  '    abuse:',
  '      address: 127.0.0.1:9200',
  '      acl: 2',
  '  idle:',
  '    servers: [10.1.0.1:80]',
  'listeners:',
  '  - name: web',
  '    listen: 0.0.0.0:8080',
  '    group: app',
  '  - listen: "[::]:8081"',
  '    group: app',
  '  - listen: 8082',
  '    group: app',
  '  - listen: /run/fulcrum.sock',
  '    group: app',
);

test('a full config maps to the expected FulcrumConfig', () => {
  const expected: FulcrumConfig = {
    global: {
      ...defaultGlobal(),
      maxConnections: 800,
      pendingMax: 50,
      backlog: 1024,
      maxPerSource: 200, // not set: a quarter of max_connections
      multiAccept: 10,
      idleTimeoutMs: 300_000,
      tcpNoDelay: true,
      tcpFastClose: 'both',
      controlAcl: 2,
      logFile: '/var/log/fulcrum.log',
      pidFile: '/run/fulcrum.pid',
      statusFile: '/var/www/status.html',
      user: 'nobody',
      debug: 2,
      asciiDumps: true,
    },
    // Ordered by list number, each list in file order.
    acls: [
      { list: 1, entry: { permit: true, kind: 'ipv4', ip: 0x0a000000, mask: 0xff000000 } },
      { list: 1, entry: { permit: false, kind: 'ipv6', bytes: [0x20, 0x01, 0x0d, 0xb8, ...Array<number>(12).fill(0)], prefixLength: 32 } },
      { list: 1, entry: { permit: true, kind: 'ipv4', ip: 0xc0a80000, mask: 0xffff0000 } },
      { list: 2, entry: { permit: false, kind: 'ipv4', ip: 0x0a000001, mask: 0xffffffff } },
    ],
    groups: [
      {
        ...defaultGroup('app'),
        name: 'app',
        algorithm: 'leastconn',
        tracking: false,
        saveTracking: false,
        stubborn: true,
        hashSourcePort: false,
        sendProxy: 'off',
        clientsMax: 4096,
        trackingMs: 3_600_000,
        blacklistMs: 250,
        connectTimeoutMs: 1500,
        clientAcl: 1,
        servers: [
          serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 9001 }),
          serverConfig({ kind: 'tcp', host: '10.0.0.2', port: 9003 }, { maxConnections: 100, hardLimit: 120, weight: 2, priority: 1 }),
          serverConfig({ kind: 'tcp', host: '::1', port: 9002 }, { maxConnections: 100, hardLimit: 120, weight: 2, priority: 3, acl: 1 }),
          serverConfig({ kind: 'unix', path: '/run/app.sock' }),
          serverConfig({ kind: 'tcp', host: 'backend.internal', port: 80 }, { hostname: 'backend.internal' }),
        ],
        emergency: serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 9100 }),
        abuse: serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 9200 }, { acl: 2 }),
      },
      { ...defaultGroup('idle'), servers: [serverConfig({ kind: 'tcp', host: '10.1.0.1', port: 80 })] },
    ],
    listeners: [
      { name: 'web', address: { kind: 'tcp', host: '0.0.0.0', port: 8080 }, group: 'app' },
      { name: 'listener-2', address: { kind: 'tcp', host: '::', port: 8081 }, group: 'app' },
      { name: 'listener-3', address: { kind: 'tcp', host: '0.0.0.0', port: 8082 }, group: 'app' },
      { name: 'listener-4', address: { kind: 'unix', path: '/run/fulcrum.sock' }, group: 'app' },
    ],
  };
  expect(configOf(FULL)).toStrictEqual(expected);
});

test('missing fields take the defaults from model.ts', () => {
  const config = configOf(y('groups:', '  app:', '    servers: [127.0.0.1:9001]', ...MINIMAL_TAIL));
  expect(config).toStrictEqual({
    // The config file limits connections per client address (pen's command line does not).
    global: { ...defaultGlobal(), maxPerSource: 125 },
    acls: [],
    groups: [{ ...defaultGroup('app'), servers: [serverConfig({ kind: 'tcp', host: '127.0.0.1', port: 9001 })] }],
    listeners: [{ name: 'listener-1', address: { kind: 'tcp', host: '0.0.0.0', port: 8080 }, group: 'app' }],
  });
});

test('empty sections and empty optional values count as absent', () => {
  const config = configOf(y('global:', 'acls:', 'groups:', '  app:', '    servers: [127.0.0.1:9001]', '    emergency:', ...MINIMAL_TAIL));
  expect(config.global).toStrictEqual({ ...defaultGlobal(), maxPerSource: 125 });
  expect(config.acls).toStrictEqual([]);
  expect(config.groups[0]!.emergency).toBeNull();
});

test('host names are kept as written, IP literals get no hostname', () => {
  const config = configOf(y('groups:', '  app:', '    servers:', '      - Backend-1.example.com:80', '      - address: db.local:5432', '      - "[2001:db8::1]:80"', 'listeners:', '  - listen: lb.local:8080', '    group: app'));
  const servers = config.groups[0]!.servers;
  expect(servers[0]).toStrictEqual(serverConfig({ kind: 'tcp', host: 'Backend-1.example.com', port: 80 }, { hostname: 'Backend-1.example.com' }));
  expect(servers[1]).toStrictEqual(serverConfig({ kind: 'tcp', host: 'db.local', port: 5432 }, { hostname: 'db.local' }));
  expect(servers[2]!.hostname).toBeUndefined();
  expect(config.listeners[0]!.address).toStrictEqual({ kind: 'tcp', host: 'lb.local', port: 8080 });
});

test('durations', () => {
  expect(parseDuration('250ms')).toBe(250);
  expect(parseDuration('3s')).toBe(3_000);
  expect(parseDuration('5m')).toBe(300_000);
  expect(parseDuration('1h')).toBe(3_600_000);
  expect(parseDuration(1500)).toBe(1500);
  expect(parseDuration('1500')).toBe(1500);
  expect(parseDuration(0)).toBe(0);
  expect(parseDuration(2_147_483_647)).toBe(2_147_483_647);
  // Malformed, or beyond the longest timer the runtime can arm (core/duration.ts).
  for (const bad of ['3 sec', '1.5s', '-1s', '', 's', 1.5, -1, true, null, 2_147_483_648, '597h', '99999999999999999999s']) expect(parseDuration(bad)).toBeUndefined();
});

// --- errors: each must carry the line, column and field path ---

test('the example from the brief: a wrong type, with exact position', () => {
  const text = y(
    'groups:', //             1
    '  app:', //              2
    '    algorithm: weight', // 3
    '    blacklist: 30s', //  4
    '    connect_timeout: 3s', // 5
    '    tracking: true', //  6
    '    stubborn: false', // 7
    '    servers:', //        8
    '      - 127.0.0.1:9001', // 9
    '      - address: "[::1]:9002"', // 10
    '        max_connections: 100', // 11
    '        weight: heavy', // 12
    ...MINIMAL_TAIL,
  );
  expect(errorsOf(text)).toEqual(['fulcrum.yaml:12:17: groups.app.servers[1].weight: expected an integer 0-65535, got "heavy"']);
  expect(issuesOf(text)[0]).toStrictEqual({ file: FILE, line: 12, column: 17, path: 'groups.app.servers[1].weight', message: 'expected an integer 0-65535, got "heavy"' });
});

test('YAML syntax errors are reported with their line', () => {
  const errors = issuesOf(y('groups:', '  app:', '    servers: [127.0.0.1:80', 'listeners:', '\t- listen: 80'));
  expect(errors.length).toBeGreaterThanOrEqual(2);
  expect(errors.map((e) => e.line)).toEqual([4, 5]);
  expect(errors.every((e) => e.path === '' && e.file === FILE)).toBe(true);
  expect(errors[1]!.message).toContain('Tabs');
});

test('duplicate keys are syntax errors at the second key', () => {
  expect(issuesOf(y('groups:', '  app:', '    servers: [127.0.0.1:80]', '  app:', '    servers: [127.0.0.1:81]', ...MINIMAL_TAIL))[0]).toMatchObject({ line: 4, column: 3 });
});

test('unknown keys are errors at the key, with a suggestion', () => {
  const errors = errorsOf(y(
    'global:',
    '  maxConnections: 5',
    '  idle_timout: 3s',
    '  frobnicate: 1',
    'groups:',
    '  app:',
    '    servers:',
    '      - address: 127.0.0.1:80',
    '        wieght: 2',
    ...MINIMAL_TAIL,
    '    nmae: x',
  ));
  expect(errors).toEqual([
    "fulcrum.yaml:2:3: global.maxConnections: unknown field 'maxConnections' (did you mean 'max_connections'?)",
    "fulcrum.yaml:3:3: global.idle_timout: unknown field 'idle_timout' (did you mean 'idle_timeout'?)",
    "fulcrum.yaml:4:3: global.frobnicate: unknown field 'frobnicate'",
    "fulcrum.yaml:9:9: groups.app.servers[0].wieght: unknown field 'wieght' (did you mean 'weight'?)",
    "fulcrum.yaml:13:5: listeners[0].nmae: unknown field 'nmae' (did you mean 'name'?)",
  ]);
});

test('config_file is not a field of global', () => {
  expect(errorsOf(y('global:', '  config_file: /etc/fulcrum.yaml', 'groups:', '  app:', '    servers: [127.0.0.1:80]', ...MINIMAL_TAIL))).toEqual([
    "fulcrum.yaml:2:3: global.config_file: unknown field 'config_file'",
  ]);
});

test('wrong types name what was expected', () => {
  const errors = errorsOf(y(
    'global:',
    '  tcp_nodelay: yes',
    '  tcp_fastclose: bothh',
    '  max_connections: 0',
    '  log_file: 3',
    'groups:',
    '  app:',
    '    algorithm: roundrobn',
    '    clients_max: 1.5',
    '    client_acl: 10',
    '    servers: 127.0.0.1:80',
    ...MINIMAL_TAIL,
  ));
  expect(errors).toEqual([
    'fulcrum.yaml:2:16: global.tcp_nodelay: expected true or false, got "yes"',
    `fulcrum.yaml:3:18: global.tcp_fastclose: expected one of off, up, down, both, got "bothh" (did you mean 'both'?)`,
    'fulcrum.yaml:4:20: global.max_connections: expected an integer 1 or more, got 0',
    'fulcrum.yaml:5:13: global.log_file: expected a file path, got 3',
    `fulcrum.yaml:8:16: groups.app.algorithm: expected one of roundrobin, weight, prio, hash, leastconn, p2c, maglev, got "roundrobn" (did you mean 'roundrobin'?)`,
    'fulcrum.yaml:9:18: groups.app.clients_max: expected an integer 1 or more, got 1.5',
    'fulcrum.yaml:10:17: groups.app.client_acl: expected an ACL number 0-9, got 10',
    'fulcrum.yaml:11:14: groups.app.servers: expected a list of servers, got "127.0.0.1:80"',
  ]);
});

test('bad durations', () => {
  const errors = errorsOf(y('global:', '  idle_timeout: 5 minutes', 'groups:', '  app:', '    blacklist: -3s', '    tracking_expiry: 30d', '    connect_timeout: 9999h', '    servers: [127.0.0.1:80]', ...MINIMAL_TAIL));
  expect(errors).toEqual([
    'fulcrum.yaml:2:17: global.idle_timeout: expected a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds up to 2147483647 ms (about 24.8 days), got "5 minutes"',
    'fulcrum.yaml:5:16: groups.app.blacklist: expected a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds up to 2147483647 ms (about 24.8 days), got "-3s"',
    'fulcrum.yaml:6:22: groups.app.tracking_expiry: expected a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds up to 2147483647 ms (about 24.8 days), got "30d"',
    'fulcrum.yaml:7:22: groups.app.connect_timeout: expected a duration up to 2147483647 ms (about 24.8 days), got "9999h"',
  ]);
});

test('bad server and listener addresses', () => {
  const errors = issuesOf(y(
    'groups:',
    '  app:',
    '    servers:',
    '      - 127.0.0.1',
    '      - 999.1.1.1:80',
    '      - "[::zz]:80"',
    '      - 127.0.0.1:99999',
    '      - 10.0.0.1:80:x',
    '      - address: 10.0.0.1:80:5',
    '      - 10.0.0.1:80:0:0:70000',
    '      - 5',
    '      - weight: 2',
    '    emergency: "bad host!:80"',
    'listeners:',
    '  - listen: nope',
    '    group: app',
    '  - listen: 0.0.0.0:70000',
    '    group: app',
  ));
  expect(errors.map((e) => [e.line, e.column, e.path])).toEqual([
    [4, 9, 'groups.app.servers[0]'],
    [5, 9, 'groups.app.servers[1]'],
    [6, 9, 'groups.app.servers[2]'],
    [7, 9, 'groups.app.servers[3]'],
    [8, 9, 'groups.app.servers[4]'],
    [9, 18, 'groups.app.servers[5].address'],
    [10, 9, 'groups.app.servers[6]'],
    [11, 9, 'groups.app.servers[7]'],
    [12, 9, 'groups.app.servers[8].address'],
    [13, 16, 'groups.app.emergency'],
    [15, 13, 'listeners[0].listen'],
    [17, 13, 'listeners[1].listen'],
  ]);
  const messages = errors.map((e) => e.message);
  expect(messages[0]).toContain('a port is required');
  expect(messages[1]).toContain('"999.1.1.1" is not a valid IPv4 address');
  expect(messages[2]).toContain('"::zz" is not a valid IPv6 address');
  expect(messages[3]).toContain('port 99999 is outside 1-65535');
  expect(messages[4]).toContain('maxc "x" is not a non-negative integer');
  expect(messages[5]).toContain('as fields, not in the address');
  expect(messages[6]).toContain('weight 70000 is outside 0-65535');
  expect(messages[7]).toMatch(/^expected a server: .*, got 5$/);
  expect(messages[8]).toMatch(/^missing; expected a server address/);
  expect(messages[9]).toContain('"bad host!" is neither an IP address nor a host name');
  expect(messages[10]).toContain('"nope" is not a port number');
  expect(messages[11]).toContain('port 70000 is outside 1-65535');
});

test('bad ACL rules are reported at the rule, with AclError messages', () => {
  const errors = errorsOf(y(
    'acls:',
    '  1:',
    '    - permit 10.0.0.0 255.0.0.0',
    '    - permit 10.0.0.300',
    '    - allow 10.0.0.0/8',
    '    - deny 2001:db8::/200',
    '    - permit 10.0.0.0 255.0.0.0 extra',
    '    - permit country NL',
    '    - 42',
    '  12: []',
    'groups:',
    '  app:',
    '    servers: [127.0.0.1:80]',
    ...MINIMAL_TAIL,
  ));
  expect(errors).toEqual([
    'fulcrum.yaml:4:7: acls.1[1]: rule "permit 10.0.0.300": "10.0.0.300" is not an IPv4 address',
    'fulcrum.yaml:5:7: acls.1[2]: rule "allow 10.0.0.0/8" must start with permit or deny',
    'fulcrum.yaml:6:7: acls.1[3]: rule "deny 2001:db8::/200": IPv6 prefix length "200" must be 0-128',
    'fulcrum.yaml:7:7: acls.1[4]: rule "permit 10.0.0.0 255.0.0.0 extra": unexpected "extra" after the address',
    'fulcrum.yaml:8:7: acls.1[5]: rule "permit country NL": country ACLs need a GeoIP database, which Fulcrum does not ship; use address ranges',
    'fulcrum.yaml:9:7: acls.1[6]: expected an ACL rule such as "permit 10.0.0.0 255.0.0.0", got 42',
    'fulcrum.yaml:10:3: acls.12: ACL numbers are 0-9, got "12"',
  ]);
});

test('a listener naming an unknown group is an error at its group line', () => {
  const base = ['groups:', '  app:', '    servers: [127.0.0.1:80]', '  db:', '    servers: [127.0.0.1:81]', 'listeners:', '  - listen: 8080', '    group: app', '  - listen: 8081'];
  expect(errorsOf(y(...base, '    group: ap'))).toEqual(["fulcrum.yaml:10:12: listeners[1].group: unknown group 'ap' (did you mean 'app'?)"]);
  expect(errorsOf(y(...base, '    group: cache'))).toEqual(["fulcrum.yaml:10:12: listeners[1].group: unknown group 'cache' (defined: app, db)"]);
  expect(errorsOf(y('listeners:', '  - listen: 8080', '    group: app'))).toEqual(["fulcrum.yaml:3:12: listeners[0].group: unknown group 'app' (no groups are defined)"]);
});

test('a group that no listener uses is fine', () => {
  expect(configOf(y('groups:', '  app:', '    servers: [127.0.0.1:80]', '  spare:', '    servers: [127.0.0.1:81]', ...MINIMAL_TAIL)).groups.map((g) => g.name)).toEqual(['app', 'spare']);
});

test('duplicate listener addresses and names', () => {
  const errors = errorsOf(y(
    'groups:',
    '  app:',
    '    servers: [127.0.0.1:80]',
    'listeners:',
    '  - listen: 8080',
    '    group: app',
    '  - listen: 0.0.0.0:8080',
    '    group: app',
    '  - name: listener-1',
    '    listen: 8081',
    '    group: app',
    '  - name: a',
    '    listen: /run/x.sock',
    '    group: app',
    '  - name: b',
    '    listen: unix:/run/x.sock',
    '    group: app',
  ));
  expect(errors).toEqual([
    'fulcrum.yaml:7:13: listeners[1].listen: 0.0.0.0:8080 is already the address of listeners[0]',
    "fulcrum.yaml:9:11: listeners[2].name: listener name 'listener-1' is already used by listeners[0]",
    'fulcrum.yaml:16:13: listeners[4].listen: /run/x.sock is already the address of listeners[3]',
  ]);
});

test('each group needs servers and the file needs listeners', () => {
  expect(errorsOf(y('groups:', '  app:', '    servers: []', '  db:', '    algorithm: hash', ...MINIMAL_TAIL))).toEqual([
    'fulcrum.yaml:3:5: groups.app.servers: a group needs at least one server',
    'fulcrum.yaml:4:3: groups.db.servers: missing; expected a list of servers',
  ]);
  expect(errorsOf(y('groups:', '  app:', '    servers: [127.0.0.1:80]', 'listeners: []'))).toEqual(['fulcrum.yaml:4:1: listeners: at least one listener is needed']);
  expect(errorsOf(y('groups:', '  app:', '    servers: [127.0.0.1:80]'))).toEqual(['fulcrum.yaml:1:1: listeners: missing; expected a list of listeners']);
  expect(errorsOf(y('groups:', '  app:', '    servers: [127.0.0.1:80]', 'listeners:', '  - group: app'))).toEqual([
    'fulcrum.yaml:5:5: listeners[0].listen: missing; expected a listen address: [host:]port, [ipv6]:port or a Unix socket path',
  ]);
});

test('empty files and non-mappings', () => {
  expect(errorsOf('')).toEqual(['fulcrum.yaml:1:1: the file is empty; expected a mapping with global, acls, groups and listeners']);
  expect(errorsOf('# only a comment\n')).toHaveLength(1);
  expect(errorsOf('hello\n')).toEqual(['fulcrum.yaml:1:1: expected a mapping with global, acls, groups and listeners, got "hello"']);
  expect(errorsOf('a: 1\n---\nb: 2\n')).toEqual(['fulcrum.yaml:2:1: a config file holds one YAML document; remove the extra "---"']);
});

test('all errors are reported together, in file order', () => {
  const errors = issuesOf(y(
    'global:',
    '  backlog: many', // 2
    'acls:',
    '  0:',
    '    - permit nowhere', // 5
    'groups:',
    '  app:',
    '    blacklist: soon', // 8
    '    servers:',
    '      - 127.0.0.1:80',
    '      - address: 127.0.0.1:81',
    '        wieght: 1', // 12
    '  empty:',
    '    servers: []', // 14
    'listeners:',
    '  - listen: 8080',
    '    group: nope', // 17
    '  - listen: 8080', // 18
    '    group: app',
  ));
  expect(errors.map((e) => `${e.line}:${e.column} ${e.path}`)).toEqual([
    '2:12 global.backlog',
    '5:7 acls.0[0]',
    '8:16 groups.app.blacklist',
    '12:9 groups.app.servers[1].wieght',
    '14:5 groups.empty.servers',
    '17:12 listeners[0].group',
    '18:13 listeners[1].listen',
  ]);
});

test('formatIssue', () => {
  expect(formatIssue({ file: 'a.yaml', line: 3, column: 5, path: 'global.debug', message: 'bad' })).toBe('a.yaml:3:5: global.debug: bad');
  expect(formatIssue({ file: 'a.yaml', line: 3, column: 5, path: '', message: 'syntax' })).toBe('a.yaml:3:5: syntax');
  expect(formatIssue({ file: 'a.yaml', line: 0, column: 0, path: '', message: 'unreadable' })).toBe('a.yaml: unreadable');
});

test('loadConfigFile reads the file and labels issues with its path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fulcrum-config-'));
  try {
    const good = join(dir, 'good.yaml');
    await writeFile(good, y('groups:', '  app:', '    servers: [127.0.0.1:80]', ...MINIMAL_TAIL));
    const r = await loadConfigFile(good);
    expect('config' in r && r.config.groups[0]!.name).toBe('app');

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, y('groups:', '  app:', '    servers: []', ...MINIMAL_TAIL));
    expect(await loadConfigFile(bad)).toEqual({ errors: [{ file: bad, line: 3, column: 5, path: 'groups.app.servers', message: 'a group needs at least one server' }] });

    const missing = await loadConfigFile(join(dir, 'missing.yaml'));
    expect('errors' in missing && missing.errors[0]).toMatchObject({ file: join(dir, 'missing.yaml'), line: 0, path: '' });
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('every YAML example in docs/config.md is a valid config', async () => {
  const doc = await Bun.file(join(import.meta.dir, '../../../docs/config.md')).text();
  const examples = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(examples.length).toBeGreaterThanOrEqual(2);
  for (const example of examples) configOf(example);
  const full = configOf(examples[0]!);
  expect(full.groups.map((g) => g.name)).toEqual(['app', 'static']);
  expect(full.listeners.map((l) => l.name)).toEqual(['web', 'listener-2', 'listener-3']);
  expect(full.groups[0]!.servers.find((s) => s.hostname !== undefined)?.hostname).toBe('backend.internal');
});
