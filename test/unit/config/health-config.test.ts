/** The YAML and command-line forms of health checks and the server lifecycle settings. */
import { describe, expect, test } from 'bun:test';
import { parsePenArgs, UsageError } from '../../../src/config/pen-args.ts';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';

const LISTENERS = 'listeners:\n  - listen: 8080\n    group: app\n';

function config(text: string) {
  const r = parseConfigText(text + LISTENERS, 'f.yaml');
  if ('errors' in r) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.config;
}

function errors(text: string): string[] {
  const r = parseConfigText(text + LISTENERS, 'f.yaml');
  return 'errors' in r ? r.errors.map(formatIssue) : [];
}

describe('YAML: checks', () => {
  test('named definitions are reused by groups, with every field', () => {
    const c = config(`checks:
  web:
    type: http
    interval: 500ms
    down_interval: 5s
    timeout: 300ms
    rise: 3
    fall: 2
    jitter: 0.2
    port: 8081
    address: 10.0.0.9
    method: HEAD
    path: /healthz
    host: app.example
    expect_status: [200, "3xx"]
    expect_body: "ok|fine"
    tls: {server_name: app.example, verify: true, ca_file: /etc/ca.pem}
groups:
  app:
    check: web
    servers: [127.0.0.1:9001]
  other:
    check: web
    servers: [127.0.0.1:9002]
`);
    const spec = c.groups[0]!.check!;
    expect(spec).toEqual({
      name: 'web',
      kind: 'http',
      intervalMs: 500,
      downIntervalMs: 5000,
      timeoutMs: 300,
      rise: 3,
      fall: 2,
      jitter: 0.2,
      port: 8081,
      address: '10.0.0.9',
      http: { method: 'HEAD', path: '/healthz', host: 'app.example', expectStatus: [[200, 200], [300, 399]], expectBody: 'ok|fine' },
      tls: { serverName: 'app.example', verify: true, caFile: '/etc/ca.pem' },
      script: null,
      agentSend: null,
      udp: null,
      dns: null,
    });
    expect(c.groups[1]!.check).toEqual(spec);
  });

  test('defaults: 2s interval, timeout at most 1s, rise 2, fall 3, 2xx/3xx', () => {
    const c = config(`groups:\n  app:\n    check: {type: http}\n    servers: [127.0.0.1:9001]\n`);
    const spec = c.groups[0]!.check!;
    expect([spec.name, spec.intervalMs, spec.downIntervalMs, spec.timeoutMs, spec.rise, spec.fall, spec.jitter]).toEqual(['app.check', 2000, 2000, 1000, 2, 3, 0.1]);
    expect(spec.http).toEqual({ method: 'GET', path: '/', host: null, expectStatus: [[200, 399]], expectBody: null });
    const fast = config(`groups:\n  app:\n    check: {type: tcp, interval: 100}\n    servers: [127.0.0.1:9001]\n`);
    expect(fast.groups[0]!.check!.timeoutMs).toBe(100);
  });

  test('scripts, agent checks and TLS checks', () => {
    const c = config(`checks:
  redis:
    type: script
    script:
      - send: "PING\\r\\n"
      - expect: "+PONG"
      - send_hex: "0d0a"
      - expect_regex: "^\\\\+"
      - expect_hex: "2b"
  agent:
    type: agent
    port: 9999
    send: "app1\\n"
  tls:
    type: tls
groups:
  app:
    check: redis
    agent_check: agent
    servers: [127.0.0.1:9001]
  t:
    check: tls
    servers: [127.0.0.1:9002]
`);
    const script = c.groups[0]!.check!.script!;
    expect(script.map((s) => s.kind)).toEqual(['send', 'expect', 'send', 'expect', 'expect']);
    expect(script[1]).toEqual({ kind: 'expect', match: { kind: 'string', text: '+PONG' } });
    expect(script[3]).toEqual({ kind: 'expect', match: { kind: 'regex', source: '^\\+' } });
    expect([...(script[2] as { data: Uint8Array }).data]).toEqual([13, 10]);
    expect(c.groups[0]!.agentCheck).toMatchObject({ kind: 'agent', port: 9999, agentSend: 'app1\n' });
    expect(c.groups[1]!.check).toMatchObject({ kind: 'tls', tls: { serverName: null, verify: false, caFile: null } });
  });

  test('mistakes are reported with their place', () => {
    expect(
      errors(`checks:
  web:
    type: htp
    path: health
  s:
    type: script
    script:
      - send: a
        expect: b
  t:
    type: tcp
    path: /x
    expect_status: 700
groups:
  app:
    check: wbe
    agent_check: t
    servers: [127.0.0.1:9001]
`),
    ).toEqual([
      "f.yaml:3:11: checks.web.type: expected one of tcp, http, tls, script, agent, udp, dns, got \"htp\" (did you mean 'http'?)",
      'f.yaml:4:11: checks.web.path: expected a path starting with "/", without spaces, got "health"',
      'f.yaml:8:9: checks.s.script[0]: a step has exactly one of send, send_hex, expect, expect_regex, expect_hex, got send and expect',
      "f.yaml:12:5: checks.t.path: 'path' does not apply to tcp checks (only to http)",
      "f.yaml:13:5: checks.t.expect_status: 'expect_status' does not apply to tcp checks (only to http)",
      'f.yaml:13:20: checks.t.expect_status: expected statuses such as 200, "2xx" or "200-299" (100-599), got 700',
      "f.yaml:16:12: groups.app.check: unknown check 'wbe' (did you mean 'web'?)",
      "f.yaml:17:18: groups.app.agent_check: 't' is a tcp check, not an agent check; use it as check",
    ]);
    expect(errors(`checks:\n  a:\n    type: tcp\n    intervall: 1s\ngroups:\n  app:\n    servers: [127.0.0.1:9001]\n`)).toEqual([
      "f.yaml:4:5: checks.a.intervall: unknown field 'intervall' (did you mean 'interval'?)",
    ]);
    expect(errors(`checks:\n  a:\n    type: script\ngroups:\n  app:\n    servers: [127.0.0.1:9001]\n`)).toEqual([
      'f.yaml:3:11: checks.a.type: a script check needs a script: a list of send/expect steps',
    ]);
  });
});

describe('YAML: lifecycle settings', () => {
  test('group and server fields', () => {
    const c = config(`groups:
  app:
    slow_start: 30s
    retries: 2
    queue: {max: 100, timeout: 5s}
    max_connection_age: 1h
    max_connection_age_jitter: 0.25
    drain_budget: 10
    on_server_down: close
    backup_balance: roundrobin
    outlier: {consecutive_failures: 5, max_ejection: 5m}
    blacklist: 10s
    servers:
      - 127.0.0.1:9001
      - address: 127.0.0.1:9002
        backup: true
        check_port: 8081
        check_address: 10.0.0.5
        state: drain
`);
    const g = c.groups[0]!;
    expect([g.slowStartMs, g.retries, g.queueMax, g.queueTimeoutMs, g.maxConnectionAgeMs, g.maxConnectionAgeJitter, g.drainBudget, g.onServerDown, g.backupBalance]).toEqual([
      30_000, 2, 100, 5000, 3_600_000, 0.25, 10, 'close', 'roundrobin',
    ]);
    expect(g.outlier).toEqual({ consecutiveFailures: 5, maxEjectionMs: 300_000, earlyResets: true });
    expect(g.blacklistMs).toBe(10_000);
    expect(g.servers[1]).toMatchObject({ backup: true, checkPort: 8081, checkAddress: '10.0.0.5', state: 'drain' });
  });

  test("defaults keep pen's behaviour", () => {
    const g = config(`groups:\n  app:\n    servers: [127.0.0.1:9001]\n`).groups[0]!;
    expect([g.check, g.agentCheck, g.slowStartMs, g.retries, g.queueMax, g.maxConnectionAgeMs, g.drainBudget, g.onServerDown, g.backupBalance]).toEqual([
      null, null, 0, -1, 0, 0, 0, 'keep', 'first',
    ]);
    expect(g.outlier).toEqual({ consecutiveFailures: 1, maxEjectionMs: 0, earlyResets: false });
  });

  test('bad values', () => {
    expect(errors(`groups:\n  app:\n    queue: {max: 0}\n    on_server_down: kill\n    servers:\n      - address: 127.0.0.1:1\n        state: drained\n`)).toEqual([
      'f.yaml:3:5: groups.app.queue.timeout: missing; expected a duration such as "250ms", "3s", "5m", "1h", or whole milliseconds up to 2147483647 ms (about 24.8 days)',
      'f.yaml:3:18: groups.app.queue.max: expected an integer 1 or more, got 0',
      'f.yaml:4:21: groups.app.on_server_down: expected one of keep, close, got "kill"',
      "f.yaml:7:16: groups.app.servers[0].state: expected one of enabled, drain, maintenance, got \"drained\" (did you mean 'drain'?)",
    ]);
  });
});

describe('command line: --check', () => {
  const check = (...args: string[]) => parsePenArgs([...args, '8080', '127.0.0.1:9001']).config.groups[0]!.check;

  test('tcp, tls, http:/path and http:/path:status with timing', () => {
    expect(check('--check', 'tcp')).toMatchObject({ kind: 'tcp', intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 });
    expect(check('--check=tls')).toMatchObject({ kind: 'tls', tls: { verify: false } });
    expect(check('--check', 'http:/health')!.http).toEqual({ method: 'GET', path: '/health', host: null, expectStatus: [[200, 399]], expectBody: null });
    expect(check('--check', 'http:/h:200', '--check-interval', '100', '--rise', '1', '--fall', '2', '--check-timeout', '50')).toMatchObject({
      intervalMs: 100,
      timeoutMs: 50,
      rise: 1,
      fall: 2,
      http: { path: '/h', expectStatus: [[200, 200]] },
    });
    expect(check('--check', 'http:/h:2xx,304')!.http!.expectStatus).toEqual([[200, 299], [304, 304]]);
    expect(check()).toBeNull();
  });

  test('mistakes are usage errors', () => {
    expect(() => check('--check', 'smtp')).toThrow(UsageError);
    expect(() => check('--check', 'http:/h:999')).toThrow('is not a status');
    expect(() => check('--rise', '2')).toThrow('need --check KIND');
    expect(() => check('--check', 'tcp', '--check-interval', 'x')).toThrow('--check-interval: expected a whole number of milliseconds from 1 to 2147483647 ms (about 24.8 days), got "x"');
    expect(() => check('--check', 'tcp', '--check-timeout', '2147483648')).toThrow('--check-timeout: expected a duration from 1 to 2147483647 ms (about 24.8 days), got 2147483648 ms');
  });
});
