/**
 * What issue 3 is done for, as an operator does it: describe health checks for a group in the
 * config file, watch a server go down and come back with the reason shown (log and SIGUSR1
 * stats), and drain a server for maintenance without cutting an established connection. Also
 * pen's command line with --check.
 */
import { describe, expect, setDefaultTimeout, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, payload, sha256, useHarness, waitFor } from '../harness/index.ts';
import { httpHealth } from '../helpers/health.ts';

setDefaultTimeout(30_000);
const h = useHarness();
const dir = mkdtempSync(join(tmpdir(), 'fulcrum-health-'));

describe('an operator with a config file', () => {
  test('sees a server go down and up with the reason, and drains it without cutting a connection', async () => {
    const a = h.echo();
    const b = h.echo();
    const healthA = httpHealth(h, 200);
    const healthB = httpHealth(h, 200);
    const port = freePort();
    const file = join(dir, 'fulcrum.yaml');
    const config = (stateA: string, stateB = 'enabled'): string => `
checks:
  web:
    type: http
    path: /health
    interval: 100ms
    timeout: 500ms
    rise: 2
    fall: 2
groups:
  app:
    check: web
    tracking: false
    servers:
      - {address: "127.0.0.1:${a.port}", check_port: ${healthA.backend.port}, state: ${stateA}}
      - {address: "127.0.0.1:${b.port}", check_port: ${healthB.backend.port}, state: ${stateB}}
listeners:
  - listen: 127.0.0.1:${port}
    group: app
`;
    writeFileSync(file, config('enabled'));
    const p = await h.startFulcrum(['--config', file], { port });

    healthA.status = 503;
    await p.waitForLine(/group app server 0 \(127\.0\.0\.1:\d+\) is DOWN: http check web \(GET \/health\) failed 2 time\(s\) in a row, last: HTTP status 503/, 10_000);
    p.kill('SIGUSR1');
    await p.waitForLine(/app server 0 127\.0\.0\.1:\d+: down \(http check web \(GET \/health\): HTTP status 503\)/, 5000);
    healthA.status = 200;
    await p.waitForLine(/server 0 .* is UP: http check web \(GET \/health\) passed 2 time\(s\) in a row/, 10_000);

    // A long transfer, then drain the server it went to by editing the file and reloading.
    const data = payload(2 << 20, 5);
    const client = await h.connect(port);
    await client.write(data.subarray(0, 1 << 16));
    await waitFor(() => a.active + b.active === 1, { what: 'the transfer to reach a server' });
    const busy = a.active === 1 ? 0 : 1;
    const [drained, other] = busy === 0 ? [a, b] : [b, a];
    writeFileSync(file, config(busy === 0 ? 'drain' : 'enabled', busy === 0 ? 'enabled' : 'drain'));
    p.kill('SIGHUP');
    await p.waitForLine(new RegExp(`server ${busy} .*: enabled -> drain \\(config reload\\)`), 5000);
    const before = [drained.connections, other.connections] as const;
    for (let i = 0; i < 3; i++) {
      const c = await h.connect(port);
      await c.write('x');
      expect((await c.readExactly(1)).toString()).toBe('x');
      c.destroy();
    }
    expect([drained.connections, other.connections]).toEqual([before[0], before[1] + 3]);
    await client.write(data.subarray(1 << 16));
    await client.end();
    const back = await client.readAll(15_000);
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
  });
});

describe("pen's command line", () => {
  test('--check http:/path:200 with --check-interval, --rise and --fall', async () => {
    const health = httpHealth(h, 200);
    const port = freePort();
    // The check goes to the server's own port, so point the server at the HTTP endpoint.
    const p = await h.startFulcrum(['--check', 'http:/status:200', '--check-interval', '100', '--check-timeout', '2000', '--rise', '1', '--fall', '1', String(port), `127.0.0.1:${health.backend.port}`], { port });
    health.status = 204;
    await p.waitForLine(/is DOWN: http check cli \(GET \/status\) failed 1 time\(s\) in a row, last: HTTP status 204/, 10_000);
    health.status = 200;
    await p.waitForLine(/is UP: http check cli \(GET \/status\) passed 1 time\(s\) in a row/, 10_000);
  });
});
