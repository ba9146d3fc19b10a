/**
 * The server lifecycle over real loopback sockets: drain without cutting a connection, slow
 * start, backups taking over and handing back, the queue for "all full", connection age under a
 * drain budget, closing connections of a server marked down, outlier ejection, retries, and the
 * operator's ways to set a state. Every wait has a deadline.
 */
import { describe, expect, test } from 'bun:test';
import { PenCommands } from '../../src/app/pen-commands.ts';
import { parseConfigText } from '../../src/config/yaml/parse.ts';
import type { Client } from '../harness/index.ts';
import { payload, pendingAfter, sequence, sha256, tally, useHarness, waitFor } from '../harness/index.ts';
import { httpHealth, startYaml, waitForStatus } from '../helpers/health.ts';

const h = useHarness();

function yaml(group: string, servers: string[]): string {
  return `groups:
  app:
${group
  .trim()
  .split('\n')
  .map((l) => '    ' + l)
  .join('\n')}
    servers:
${servers.map((s) => `      - ${s}\n`).join('')}listeners:
  - listen: LISTEN
    group: app
`;
}

/** Connects and waits until the balancer has connected it to a server (an echo round trip). */
async function connected(port: number): Promise<Client> {
  const c = await h.connect(port);
  await c.write('ping');
  expect((await c.readExactly(4)).toString()).toBe('ping');
  return c;
}

describe('drain', () => {
  test('a drained server takes no new clients while an established transfer finishes byte-exact', async () => {
    const a = h.echo();
    const bb = h.echo();
    const b = await startYaml(h, yaml('tracking: false', [a.address, bb.address]));
    const data = payload(4 << 20, 11);
    const c = await h.connect(b.port);
    await c.write(data.subarray(0, 1 << 20));
    await waitFor(() => b.server(0).connections + b.server(1).connections === 1, { what: 'the transfer to be connected' });
    const busy = b.server(0).connections === 1 ? 0 : 1;
    const drained = b.server(busy);
    const other = b.server(1 - busy);
    b.balancer.setServerState('app', busy, 'drain', 'maintenance at 3am');
    expect(b.messages).toContain(`group app server ${busy} (${drained.address.kind === 'tcp' ? `127.0.0.1:${drained.address.port}` : ''}): enabled -> drain (maintenance at 3am)`);
    // New clients go elsewhere while the transfer goes on.
    const before = other.totalConnections;
    for (let i = 0; i < 5; i++) (await connected(b.port)).destroy();
    expect(other.totalConnections - before).toBe(5);
    expect(drained.totalConnections).toBe(1);
    expect(drained.status(Date.now())).toBe('drain');
    await c.write(data.subarray(1 << 20));
    await c.end();
    const back = await c.readAll(15_000);
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
    expect(b.balancer.totals.ends['closed-by-operator']).toBeUndefined();
    await waitFor(() => drained.connections === 0, { what: 'the drained server to have no connections' });
    b.balancer.setServerState('app', busy, 'enabled');
    const after = drained.totalConnections;
    for (let i = 0; i < 4; i++) (await connected(b.port)).destroy();
    expect(drained.totalConnections - after).toBe(2);
  }, 20_000);

  test("pen's server command and a config reload can drain a server too", async () => {
    const a = h.identify('a');
    const bb = h.identify('b');
    const text = yaml('tracking: false', [a.address, bb.address]);
    const b = await startYaml(h, text);
    await new PenCommands(b.balancer).execute('server 0 state drain');
    expect(b.server(0).admin).toBe('drain');
    expect(tally(await sequence(b.port, 4))).toEqual({ b: 4 });
    await new PenCommands(b.balancer).execute('server 0 state enabled');
    expect(tally(await sequence(b.port, 4))).toEqual({ a: 2, b: 2 });
    const port = b.balancer.listeners[0]!.config.address;
    const next = parseConfigText(
      yaml('tracking: false', [`{address: "${a.address}", state: maintenance}`, bb.address]).replace('LISTEN', port.kind === 'tcp' ? `127.0.0.1:${port.port}` : ''),
      'reload.yaml',
    );
    if ('errors' in next) throw new Error('bad reload config');
    b.balancer.reload(next.config);
    expect(b.server(0).admin).toBe('maintenance');
    expect(b.messages.some((m) => m.endsWith('enabled -> maintenance (config reload)'))).toBe(true);
    expect(tally(await sequence(b.port, 3))).toEqual({ b: 3 });
  });
});

describe('slow start', () => {
  test('a server back from down ramps up: it gets a small share of new clients at first, all of its share later', async () => {
    const a = h.echo();
    const bb = h.echo();
    const b = await startYaml(
      h,
      yaml(
        `algorithm: leastconn
tracking: false
slow_start: 2s
check: {type: tcp, interval: 50, timeout: 1000, rise: 1, fall: 1}`,
        [a.address, bb.address],
      ),
    );
    const sa = b.server(0);
    const port = a.port;
    await a.close();
    await waitForStatus(b, sa, 'down');
    h.echo({ port });
    await waitForStatus(b, sa, 'starting');
    const held: Client[] = [];
    for (let i = 0; i < 20; i++) held.push(await connected(b.port));
    // At a few percent of its weight, least connections gives it far less than half.
    expect(sa.connections).toBeLessThan(6);
    expect(sa.weightScale(Date.now())).toBeLessThan(1);
    for (const c of held) c.destroy();
    await waitFor(() => sa.connections === 0 && b.server(1).connections === 0, { what: 'connections to end' });
    await waitForStatus(b, sa, 'up', 10_000);
    for (let i = 0; i < 20; i++) held.push(await connected(b.port));
    expect(sa.connections).toBe(10);
  }, 20_000);
});

describe('backups', () => {
  test('take over when no primary is up, and hand back when one returns', async () => {
    const a = h.identify('a');
    const c = h.identify('c');
    const b = await startYaml(
      h,
      yaml(
        `tracking: false
check: {type: tcp, interval: 50, timeout: 1000, rise: 1, fall: 1}`,
        [a.address, `{address: "${c.address}", backup: true}`],
      ),
    );
    expect(tally(await sequence(b.port, 3))).toEqual({ a: 3 });
    const port = a.port;
    await a.close();
    await waitForStatus(b, b.server(0), 'down');
    expect(tally(await sequence(b.port, 3))).toEqual({ c: 3 });
    h.identify('a', { port });
    await waitForStatus(b, b.server(0), 'up');
    expect(tally(await sequence(b.port, 3))).toEqual({ a: 3 });
    expect(b.backup(0).totalConnections).toBe(3);
  });
});

describe('queue', () => {
  test('clients wait in order while every server is full, are served as slots free, and the bound refuses cleanly', async () => {
    const a = h.echo();
    const b = await startYaml(h, yaml('queue: {max: 2, timeout: 10s}', [`{address: "${a.address}", max_connections: 1}`]));
    const g = b.group();
    const first = await connected(b.port);
    const second = await h.connect(b.port);
    await waitFor(() => g.queueLength === 1, { what: 'the second client to queue' });
    const third = await h.connect(b.port);
    await waitFor(() => g.queueLength === 2, { what: 'the third client to queue' });
    const fourth = await h.connect(b.port);
    expect(await fourth.waitClosed(5000)).toBe('fin');
    expect(g.stats.queueFull).toBe(1);
    await second.write('2nd');
    await third.write('3rd');
    // Nothing is served while the slot is taken.
    const answer = second.readExactly(3, 5000);
    expect(await pendingAfter(answer, 200)).toBe(true);
    first.destroy();
    expect((await answer).toString()).toBe('2nd');
    expect(g.queueLength).toBe(1);
    second.destroy();
    expect((await third.readExactly(3)).toString()).toBe('3rd');
    expect([g.queueLength, g.stats.queued, g.stats.queueServed]).toEqual([0, 2, 2]);
  });

  test('a client whose queue time is up is closed cleanly and counted', async () => {
    const a = h.echo();
    const b = await startYaml(h, yaml('queue: {max: 5, timeout: 300ms}', [`{address: "${a.address}", max_connections: 1}`]));
    const first = await connected(b.port);
    const waiting = await h.connect(b.port);
    expect(await waiting.waitClosed(5000)).toBe('fin');
    expect(b.group().stats.queueTimeouts).toBe(1);
    await waitFor(() => b.balancer.totals.ends['queue-timeout'] === 1, { what: 'the queue-timeout ending to be counted' });
    // The held client was not disturbed.
    await first.write('ok');
    expect((await first.readExactly(2)).toString()).toBe('ok');
  });

  test('without a queue, a client finding every server full is refused at once (all-full)', async () => {
    const a = h.echo();
    const b = await startYaml(h, yaml('tracking: false', [`{address: "${a.address}", max_connections: 1}`]));
    await connected(b.port);
    const refused = await h.connect(b.port);
    expect(await refused.waitClosed(5000)).toBe('fin');
    await waitFor(() => b.balancer.totals.ends['all-full'] === 1, { what: 'the all-full ending' });
  });
});

describe('long-lived connections', () => {
  test('connections older than max_connection_age close gracefully, at most drain_budget per second', async () => {
    const a = h.echo();
    const b = await startYaml(h, yaml('max_connection_age: 200ms\ndrain_budget: 5', [a.address]));
    const clients: Client[] = [];
    for (let i = 0; i < 10; i++) clients.push(await connected(b.port));
    const closedAt: number[] = [];
    await Promise.all(
      clients.map(async (c) => {
        expect(await c.waitClosed(10_000)).toBe('fin');
        closedAt.push(performance.now());
      }),
    );
    closedAt.sort((x, y) => x - y);
    // A burst of 5, then 5 more at 5 per second: spread over at least ~1 s (a lower bound only).
    expect(closedAt[9]! - closedAt[0]!).toBeGreaterThan(700);
    expect(b.group().stats.maxAgeClosed).toBe(10);
    expect(b.balancer.totals.ends['max-age']).toBe(10);
  }, 20_000);

  test('on_server_down: close ends the connections of a server marked down', async () => {
    const a = h.echo();
    const health = httpHealth(h, 200);
    const b = await startYaml(
      h,
      yaml(`on_server_down: close\ncheck: {type: http, interval: 50, timeout: 1000, rise: 1, fall: 1}`, [`{address: "${a.address}", check_port: ${health.backend.port}}`]),
    );
    const c = await connected(b.port);
    health.status = 503;
    expect(await c.waitClosed(5000)).toBe('fin');
    expect(b.group().stats.closedOnDown).toBe(1);
    expect(b.messages.some((m) => m.includes('closed 1 connection(s) of the server marked down'))).toBe(true);
  });
});

describe('passive health and retries', () => {
  test('a server that accepts and closes at once is ejected after N early resets, then avoided', async () => {
    const drop = h.closeAtOnce();
    const good = h.identify('good');
    const b = await startYaml(
      h,
      yaml('tracking: false\nblacklist: 5s\noutlier: {consecutive_failures: 2, max_ejection: 1m}', [drop.address, good.address]),
    );
    await waitFor(
      async () => {
        const c = await h.connect(b.port);
        await c.waitClosed(5000);
        return b.server(0).status(Date.now()) === 'ejected';
      },
      { what: 'the dropping server to be ejected', timeoutMs: 10_000 },
    );
    expect(b.server(0).earlyResets).toBe(2);
    expect(b.messages.some((m) => m.includes('ejected for 5000 ms: reset before the first byte'))).toBe(true);
    expect(tally(await sequence(b.port, 4))).toEqual({ good: 4 });
  }, 20_000);

  test('a failed connect is retried on at most `retries` other servers', async () => {
    const r1 = h.refuse();
    const r2 = h.refuse();
    const c = h.identify('c');
    const servers = [`{address: "${r1.address}", priority: 0}`, `{address: "${r2.address}", priority: 1}`, `{address: "${c.address}", priority: 2}`];
    const one = await startYaml(h, yaml('algorithm: prio\nblacklist: 0\nretries: 1', servers));
    const client = await h.connect(one.port);
    expect(await client.waitClosed(5000)).toBe('fin');
    await waitFor(() => one.balancer.totals.ends['connect-failed'] === 1, { what: 'the connect-failed ending' });
    const two = await startYaml(h, yaml('algorithm: prio\nblacklist: 0\nretries: 2', servers));
    expect(await sequence(two.port, 1)).toEqual(['c']);
  });
});
