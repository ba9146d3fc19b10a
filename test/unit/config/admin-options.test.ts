/** The admin listener, access log and state file options: command line, config file, and both. */
import { describe, expect, test } from 'bun:test';
import { isLoopbackHost, parseAdminAddress } from '../../../src/config/admin-address.ts';
import { applyLongOptions, parsePenArgs, UsageError } from '../../../src/config/pen-args.ts';
import { checkServerPatch, checkServerValue } from '../../../src/config/yaml/admin-api.ts';
import { parseConfigText } from '../../../src/config/yaml/parse.ts';

describe('admin address', () => {
  test('loopback addresses and socket paths are accepted', () => {
    for (const h of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1', 'localhost']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '::ffff:10.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
    expect(parseAdminAddress('127.0.0.1:9900', false)).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9900 });
    expect(parseAdminAddress('[::1]:9900', false)).toEqual({ kind: 'tcp', host: '::1', port: 9900 });
    expect(parseAdminAddress('/run/fulcrum/admin.sock', false)).toEqual({ kind: 'unix', path: '/run/fulcrum/admin.sock' });
    expect(parseAdminAddress('unix:/run/a.sock', false)).toEqual({ kind: 'unix', path: '/run/a.sock' });
  });

  test('other addresses are refused unless allowed, with the way out in the message', () => {
    expect(parseAdminAddress('0.0.0.0:9900', false)).toMatch(/^admin address 0\.0\.0\.0:9900 is not a loopback address.*allow_remote: true/);
    expect(parseAdminAddress('9900', false)).toMatch(/a bare port means every address; write 127\.0\.0\.1:9900/);
    expect(parseAdminAddress('10.0.0.1:9900', true)).toEqual({ kind: 'tcp', host: '10.0.0.1', port: 9900 });
    expect(parseAdminAddress('127.0.0.1:99999', false)).toMatch(/port 99999 is outside 1-65535/);
  });
});

describe('command line', () => {
  const parse = (...argv: string[]) => {
    const p = parsePenArgs(argv);
    applyLongOptions(p.config, p.long);
    return p.config.global;
  };

  test('--admin, --admin-token-file, --access-log, --access-log-format, --state-file', () => {
    const g = parse('--admin', '127.0.0.1:9900', '--admin-token-file=/etc/t', '--access-log', '-', '--access-log-format', 'text', '--state-file', '/var/s.json', '8080', 'a:1');
    expect(g.admin).toEqual({ address: { kind: 'tcp', host: '127.0.0.1', port: 9900 }, tokenFile: '/etc/t', allowRemote: false });
    expect(g.accessLog).toEqual({ path: '-', format: 'text' });
    expect(g.stateFile).toBe('/var/s.json');
    expect(parse('--access-log', '/x.log', '8080', 'a:1').accessLog).toEqual({ path: '/x.log', format: 'json' });
    expect(parse('8080', 'a:1')).toMatchObject({ admin: null, accessLog: null, stateFile: null });
    expect(parse('--admin', '0.0.0.0:9', '--admin-allow-remote', '8080', 'a:1').admin?.allowRemote).toBe(true);
  });

  test('mistakes are usage errors', () => {
    expect(() => parse('--admin', '0.0.0.0:9', '8080', 'a:1')).toThrow(UsageError);
    expect(() => parse('--admin-token-file', '/t', '8080', 'a:1')).toThrow(/--admin-token-file needs --admin/);
    expect(() => parse('--admin-allow-remote', '8080', 'a:1')).toThrow(/needs --admin/);
    expect(() => parse('--access-log-format', 'json', '8080', 'a:1')).toThrow(/needs --access-log/);
    expect(() => parse('--access-log-format', 'xml', '8080', 'a:1')).toThrow(/"xml" is not one of json, text/);
    expect(() => parse('--admin', '', '8080', 'a:1')).toThrow(/--admin needs a value/);
  });

  test('over a config file, the command line wins and fills in', () => {
    const r = parseConfigText(
      'admin:\n  listen: 127.0.0.1:9900\n  token_file: /etc/t\naccess_log:\n  file: /a.log\n  format: text\ngroups:\n  app:\n    servers: [127.0.0.1:1]\nlisteners:\n  - listen: 8080\n    group: app\n',
      'f.yaml',
    );
    if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
    const long = parsePenArgs(['--config', 'f.yaml', '--admin', '[::1]:9901', '--access-log-format', 'json']).long;
    applyLongOptions(r.config, long);
    expect(r.config.global.admin).toEqual({ address: { kind: 'tcp', host: '::1', port: 9901 }, tokenFile: '/etc/t', allowRemote: false });
    expect(r.config.global.accessLog).toEqual({ path: '/a.log', format: 'json' });
  });
});

describe('config file sections', () => {
  const base = 'groups:\n  app:\n    servers: [127.0.0.1:9001]\nlisteners:\n  - listen: 8080\n    group: app\n';

  test('admin, access_log and global.state_file', () => {
    const r = parseConfigText(base + 'admin:\n  listen: /run/admin.sock\naccess_log:\n  file: "-"\nglobal:\n  state_file: /var/s.json\n', 'f.yaml');
    if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
    expect(r.config.global.admin).toEqual({ address: { kind: 'unix', path: '/run/admin.sock' }, tokenFile: null, allowRemote: false });
    expect(r.config.global.accessLog).toEqual({ path: '-', format: 'json' });
    expect(r.config.global.stateFile).toBe('/var/s.json');
    const off = parseConfigText(base, 'f.yaml');
    expect('config' in off && [off.config.global.admin, off.config.global.accessLog, off.config.global.stateFile]).toEqual([null, null, null]);
  });

  test('every mistake with its place', () => {
    const r = parseConfigText(base + 'admin:\n  listen: 0.0.0.0:9900\n  tokn_file: /t\naccess_log:\n  format: xml\n', 'f.yaml');
    if (!('errors' in r)) throw new Error('expected errors');
    expect(r.errors.map((e) => [e.line, e.path, e.message])).toEqual([
      [8, 'admin.listen', expect.stringMatching(/^admin address 0\.0\.0\.0:9900 is not a loopback address/)],
      [9, 'admin.tokn_file', "unknown field 'tokn_file' (did you mean 'token_file'?)"],
      [10, 'access_log.file', 'missing; expected a file path, or "-" for standard output'],
      [11, 'access_log.format', 'expected one of json, text, got "xml"'],
    ]);
    const remote = parseConfigText(base + 'admin:\n  listen: 0.0.0.0:9900\n  allow_remote: true\n', 'f.yaml');
    expect('config' in remote && remote.config.global.admin?.allowRemote).toBe(true);
  });
});

describe('admin API checks reuse the config rules', () => {
  test('a server, short or long form', () => {
    expect(checkServerValue('127.0.0.1:9001:10:20:3')).toEqual({ value: { address: { kind: 'tcp', host: '127.0.0.1', port: 9001 }, maxConnections: 10, hardLimit: 20, weight: 3, priority: 0, acl: 0 } });
    expect(checkServerValue({ address: 'db.internal:5432', acl: 2 })).toMatchObject({ value: { hostname: 'db.internal', acl: 2 } });
    expect(checkServerValue({ address: '127.0.0.1:1', acl: 10 })).toEqual({ issues: [{ path: 'acl', message: 'expected an ACL number 0-9, got 10' }] });
    expect(checkServerValue({ adress: '127.0.0.1:1' })).toEqual({
      issues: expect.arrayContaining([{ path: 'adress', message: "unknown field 'adress' (did you mean 'address'?)" }]),
    });
    expect(checkServerValue(42)).toMatchObject({ issues: [{ path: '', message: expect.stringMatching(/^expected a server/) }] });
  });

  test('settings of a server', () => {
    expect(checkServerPatch({ weight: 3, hard_limit: 5 })).toEqual({ value: { weight: 3, hard_limit: 5 } });
    expect(checkServerPatch({ address: '127.0.0.1:2' })).toEqual({ issues: [{ path: 'address', message: "unknown field 'address'" }] });
    expect(checkServerPatch({ priority: 1.5 })).toEqual({ issues: [{ path: 'priority', message: 'expected an integer 0-65535, got 1.5' }] });
  });
});
