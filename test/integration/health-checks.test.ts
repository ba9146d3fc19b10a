/**
 * Active checks over real loopback sockets. Each kind is shown detecting each failure mode, and
 * recovering. Detection "within fall × interval" is shown without timing anything: the server
 * goes down on exactly its `fall`-th failed check and comes back on its `rise`-th passed one
 * (the scheduler runs one check per interval; see the unit tests). Every wait has a deadline.
 */
import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import type { Server } from '../../src/core/servers/server.ts';
import { sequence, tally, useHarness, waitFor } from '../harness/index.ts';
import { agent, banner, checksToChange, httpHealth, pong, startYaml, waitForStatus, type InProcessYaml } from '../helpers/health.ts';

const h = useHarness();
const FIXTURES = join(import.meta.dir, '../fixtures/health');

function group(check: string, servers: string[], extra = ''): string {
  return `groups:
  app:
    tracking: false
    blacklist: 0
    check: ${check}
${extra}    servers:
${servers.map((s) => `      - ${s}\n`).join('')}listeners:
  - listen: LISTEN
    group: app
`;
}

/** The server went down on exactly its `fall`-th failed check since it was last up, with the reason shown. */
async function expectDownAfterFall(b: InProcessYaml, s: Server, fall: number, reason: RegExp, nth = 1): Promise<void> {
  expect(await checksToChange(b, s, false, nth)).toBe(fall);
  expect(s.downReason).toMatch(reason);
  expect(b.messages.some((m) => m.includes('is DOWN') && reason.test(m))).toBe(true);
}

/** ... and came back on exactly its `rise`-th passed check. */
async function expectUpAfterRise(b: InProcessYaml, s: Server, rise: number, nth = 1): Promise<void> {
  expect(await checksToChange(b, s, true, nth)).toBe(rise);
  expect(s.downReason).toBe('');
  await waitForStatus(b, s, 'up');
}

describe('tcp check', () => {
  test('a backend that goes away is marked down after `fall` checks and no client is sent to it; back after `rise`', async () => {
    const a = h.identify('a');
    const bBackend = h.identify('b');
    const b = await startYaml(h, group('{type: tcp, interval: 50, timeout: 1000, rise: 2, fall: 2}', [a.address, bBackend.address]));
    const sa = b.server(0);
    await waitFor(() => sa.checksPassed > 0, { what: 'a first passing check' });
    const port = a.port;
    await a.close();
    await expectDownAfterFall(b, sa, 2, /tcp check .*connect failed/);
    const served = sa.totalConnections;
    expect(tally(await sequence(b.port, 10))).toEqual({ b: 10 });
    expect(sa.totalConnections).toBe(served);
    h.identify('a', { port }); // the flapping backend returns on the same port
    await expectUpAfterRise(b, sa, 2);
    expect(tally(await sequence(b.port, 4))).toEqual({ a: 2, b: 2 });
  });
});

describe('http check', () => {
  const check = (more = '') => `{type: http, path: /health, interval: 50, timeout: 300, rise: 2, fall: 2${more}}`;
  /** Traffic goes to identify backends; checks to HTTP endpoints beside them (check_port). */
  async function setup(extra = '', waitForPass = true) {
    const traffic = h.identify('a');
    const other = h.identify('b');
    const health = httpHealth(h, 200);
    const otherHealth = httpHealth(h, 200);
    const b = await startYaml(
      h,
      group(check(extra), [`{address: "${traffic.address}", check_port: ${health.backend.port}}`, `{address: "${other.address}", check_port: ${otherHealth.backend.port}}`]),
    );
    const s = b.server(0);
    if (waitForPass) await waitFor(() => s.checksPassed >= 1, { what: 'a first passing check' });
    return { b, s, health };
  }

  test('answers 500: down with the status as the reason; 200 again: up', async () => {
    const { b, s, health } = await setup();
    health.status = 500;
    await expectDownAfterFall(b, s, 2, /http check .*GET \/health.*HTTP status 500/);
    expect(tally(await sequence(b.port, 6))).toEqual({ b: 6 });
    health.status = 200;
    await expectUpAfterRise(b, s, 2);
  });

  test('answers slowly (beyond the timeout): down with a timeout as the reason', async () => {
    const { b, s, health } = await setup();
    health.delayMs = 1000;
    await expectDownAfterFall(b, s, 2, /timeout after 300 ms, waiting for the answer/);
    health.delayMs = 0;
    await expectUpAfterRise(b, s, 2);
  });

  test('the expected status set and body pattern are honoured', async () => {
    const { b, s, health } = await setup(', expect_status: [204, "3xx"], expect_body: "^ok$"', false);
    // 200 is not in the set: down.
    await expectDownAfterFall(b, s, 2, /HTTP status 200/);
    health.status = 301;
    await expectUpAfterRise(b, s, 2);
    health.body = 'degraded';
    await expectDownAfterFall(b, s, 2, /body "degraded" does not match/, 2);
  });

  test('a backend that hangs on accept, and one that accepts then closes', async () => {
    const hang = h.hold();
    const drop = h.closeAtOnce();
    const healthy = httpHealth(h, 200);
    const b = await startYaml(h, group(check(), [hang.address, drop.address, `{address: "${h.identify('c').address}", check_port: ${healthy.backend.port}}`]));
    await expectDownAfterFall(b, b.server(0), 2, /timeout after 300 ms, waiting for the answer/);
    await expectDownAfterFall(b, b.server(1), 2, /connection closed without a response|connection reset/);
    expect(tally(await sequence(b.port, 4))).toEqual({ c: 4 });
  });
});

describe('tls check', () => {
  function tlsServer(): { port: number } {
    const l = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      tls: { cert: Bun.file(join(FIXTURES, 'localhost.crt')), key: Bun.file(join(FIXTURES, 'localhost.key')) },
      socket: { data() {}, open() {} },
    });
    h.defer(() => l.stop(true));
    return { port: l.port };
  }

  test('a TLS server passes; a plain TCP server fails the handshake; verification rejects an untrusted certificate', async () => {
    const tls = tlsServer();
    const plain = h.hold();
    const b = await startYaml(
      h,
      `checks:
  tls: {type: tls, interval: 50, timeout: 1000, rise: 1, fall: 2}
  strict: {type: tls, interval: 50, timeout: 1000, rise: 1, fall: 2, tls: {server_name: localhost, verify: true}}
  trusting: {type: tls, interval: 50, timeout: 1000, rise: 1, fall: 2, tls: {server_name: localhost, verify: true, ca_file: ${join(FIXTURES, 'localhost.crt')}}}
groups:
  app:
    check: tls
    servers: [127.0.0.1:${tls.port}, ${plain.address}]
  strict:
    check: strict
    servers: [127.0.0.1:${tls.port}]
  trusting:
    check: trusting
    servers: [127.0.0.1:${tls.port}]
listeners:
  - listen: LISTEN
    group: app
`,
    );
    await waitFor(() => b.server(0).checksPassed >= 2, { what: 'TLS checks to pass', details: () => b.server(0).downReason });
    expect(b.server(0).status(b.balancer.clock.now())).toBe('up');
    await expectDownAfterFall(b, b.server(1), 2, /TLS handshake failed|timeout after 1000 ms, in the TLS handshake/);
    await expectDownAfterFall(b, b.server(0, 'strict'), 2, /TLS certificate not trusted/);
    await waitFor(() => b.server(0, 'trusting').checksPassed >= 2, { what: 'checks with the CA file to pass', details: () => b.server(0, 'trusting').downReason });
    expect(b.server(0, 'trusting').healthy).toBe(true);
  });
});

describe('send/expect script', () => {
  test('a Redis-like PING passes; a wrong answer and a wrong banner fail with what was said', async () => {
    const good = pong(h);
    const bad = pong(h, '-ERR loading\r\n');
    const smtpBad = banner(h, '554 go away\r\n');
    const smtpGood = banner(h, '220 mail.example ESMTP\r\n');
    const b = await startYaml(
      h,
      `checks:
  redis:
    type: script
    interval: 50
    timeout: 300
    fall: 2
    rise: 1
    script:
      - send: "PING\\r\\n"
      - expect: "+PONG"
  smtp:
    type: script
    interval: 50
    timeout: 300
    fall: 2
    rise: 1
    script:
      - expect_regex: "^220 "
groups:
  app:
    check: redis
    servers: [${good.address}, ${bad.address}]
  mail:
    check: smtp
    servers: [${smtpGood.address}, ${smtpBad.address}]
listeners:
  - listen: LISTEN
    group: app
`,
    );
    await expectDownAfterFall(b, b.server(1), 2, /step 2: expected "\+PONG", got "-ERR loading\\r\\n"/);
    await expectDownAfterFall(b, b.server(1, 'mail'), 2, /step 1: expected \/\^220 \/, got "554 go away\\r\\n"/);
    expect(b.server(0).healthy).toBe(true);
    expect(b.server(0, 'mail').healthy).toBe(true);
    expect(b.server(0).checksPassed).toBeGreaterThan(0);
  });
});

describe('agent check', () => {
  test('the server reports drain, a weight, down and up, and Fulcrum follows', async () => {
    const a = h.identify('a');
    const bk = h.identify('b');
    const ag = agent(h, 'up');
    const other = agent(h, 'up');
    const b = await startYaml(
      h,
      `groups:
  app:
    tracking: false
    agent_check: {type: agent, interval: 50, timeout: 300}
    servers:
      - {address: "${a.address}", check_port: ${ag.backend.port}}
      - {address: "${bk.address}", check_port: ${other.backend.port}}
listeners:
  - listen: LISTEN
    group: app
`,
    );
    const s = b.server(0);
    ag.reply = 'drain';
    await waitForStatus(b, s, 'drain');
    expect(tally(await sequence(b.port, 4))).toEqual({ b: 4 });
    ag.reply = 'up 50%';
    await waitForStatus(b, s, 'up');
    await waitFor(() => s.agentScale === 0.5, { what: 'the agent weight' });
    ag.reply = 'down #maintenance window';
    await waitForStatus(b, s, 'down');
    expect(s.downReason).toBe('agent reports down: maintenance window');
    ag.reply = 'ready';
    await waitForStatus(b, s, 'up');
    expect(b.messages.filter((m) => m.includes('agent reports'))).toEqual([
      'group app server 0 (' + a.address + '): agent reports drain (was up)',
      'group app server 0 (' + a.address + '): agent reports up (was drain)',
      'group app server 0 (' + a.address + '): agent reports down: maintenance window (was up)',
      'group app server 0 (' + a.address + '): agent reports up (was down)',
    ]);
  });
});
