import { expect, test } from 'bun:test';
import { controlRootRefusal } from '../../../src/app/command-line.ts';
import { formatReload } from '../../../src/app/reload.ts';
import { CtlUsageError, isErrorReply, parseCtlAddress, parseCtlArgs } from '../../../src/app/control-client.ts';
import { defaultGlobal } from '../../../src/config/model.ts';

test("fulcrum ctl reads addresses as penctl does: '/' = Unix socket, the last ':' starts the port", () => {
  expect(parseCtlAddress('127.0.0.1:10080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 10080 });
  expect(parseCtlAddress('::1:10080')).toEqual({ kind: 'tcp', host: '::1', port: 10080 });
  expect(parseCtlAddress('[::1]:10080')).toEqual({ kind: 'tcp', host: '::1', port: 10080 });
  expect(parseCtlAddress('lbhost:8888')).toEqual({ kind: 'tcp', host: 'lbhost', port: 8888 });
  expect(parseCtlAddress(':8888')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8888 });
  expect(parseCtlAddress('/var/run/pen/ctrl')).toEqual({ kind: 'unix', path: '/var/run/pen/ctrl' });
  expect(() => parseCtlAddress('10080')).toThrow(CtlUsageError);
  expect(() => parseCtlAddress('host:http')).toThrow('not a port number');
  expect(() => parseCtlAddress('host:70000')).toThrow('not a port number');
});

test('fulcrum ctl joins the command words with spaces, as penctl', () => {
  expect(parseCtlArgs(['127.0.0.1:1', 'server', '1', 'weight', '3'])).toEqual({
    address: { kind: 'tcp', host: '127.0.0.1', port: 1 },
    line: 'server 1 weight 3',
    timeoutMs: 10_000,
  });
  expect(parseCtlArgs(['-t', '2.5', '/s', 'servers']).timeoutMs).toBe(2500);
  expect(() => parseCtlArgs(['127.0.0.1:1'])).toThrow(CtlUsageError);
  expect(() => parseCtlArgs(['-t', '0', '127.0.0.1:1', 'servers'])).toThrow(CtlUsageError);
  expect(() => parseCtlArgs(['127.0.0.1:1', 'servers\nexit'])).toThrow('one line');
});

test("error replies: Fulcrum's and pen's", () => {
  expect(isErrorReply('error: unknown command "x"\n')).toBe(true);
  expect(isErrorReply("do_cmd: ignoring command starting with 'x'\n")).toBe(true);
  expect(isErrorReply('Exit is not enabled; restart with -X flag\n')).toBe(true);
  expect(isErrorReply('0 addr 127.0.0.1 port 1 conn 0 max 0 hard 0 weight 0 prio 0 sx 0 rx 0\n')).toBe(false);
  expect(isErrorReply('')).toBe(false);
});

test("pen's root rule: no network control port as root without -u; a Unix socket is allowed", () => {
  const g = (control: string | null, user: string | null) => ({ ...defaultGlobal(), control, user });
  expect(controlRootRefusal(g('10080', null), 0)).toContain('refusing to open the control port 10080 as root');
  expect(controlRootRefusal(g('127.0.0.1:10080', null), 0)).toContain('-u');
  expect(controlRootRefusal(g('127.0.0.1:10080', 'root'), 0)).toBeNull();
  expect(controlRootRefusal(g('127.0.0.1:10080', 'nobody'), 0)).toBeNull();
  expect(controlRootRefusal(g('127.0.0.1:10080', null), 1000)).toBeNull();
  expect(controlRootRefusal(g('/run/fulcrum.ctl', null), 0)).toBeNull();
  expect(controlRootRefusal(g(null, null), 0)).toBeNull();
});

test('the reload reply names the file and each change on its own line', () => {
  expect(formatReload({ file: 'f.yaml', changes: [] }, true)).toBe('reloaded f.yaml (no changes)\n');
  expect(formatReload({ file: 'f.yaml', changes: ['a', 'b'] }, true)).toBe('reloaded f.yaml\na\nb\n');
  expect(formatReload({ file: 'pen.cfg', changes: [] }, false)).toBe('re-read pen.cfg\n');
  expect(formatReload({ file: null, changes: [] }, false)).toContain('no --config or -F');
});
