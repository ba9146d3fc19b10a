/**
 * HTTP mode's own answers (docs/http.md, "Errors"): a listener's `error_pages` serve the file as
 * the body of that status, and without one the default body names the status and the reason.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, freePort, Harness } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';

setDefaultTimeout(60_000);

describe('HTTP mode error answers', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('error_pages: the file is the body of that status; other statuses get the default body', async () => {
    const dir = tempDir(h);
    const page = join(dir, '502.html');
    writeFileSync(page, '<h1>We are sorry</h1>\n');
    // Nothing listens on the server's port: every request gets 502 (after one retry).
    const dead = freePort();
    const port = freePort();
    const path = join(dir, 'fulcrum.yaml');
    writeYaml(path, {
      groups: { web: { servers: [`127.0.0.1:${dead}`], blacklist: 0 } },
      listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http', error_pages: { 502: page, 504: join(dir, 'missing.html') } }],
    });
    await h.startFulcrum(['--config', path], { port: [port] });
    const r = await fetch(`http://127.0.0.1:${port}/`);
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await r.text()).toBe('<h1>We are sorry</h1>\n');
    // Two Host headers: Fulcrum's 400, with the default body.
    const c = await connect(port);
    h.defer(() => c.close());
    await c.write('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
    const bad = (await c.readAll()).toString();
    expect(bad).toStartWith('HTTP/1.1 400 ');
    expect(bad).toEndWith('\r\n\r\n400 Bad Request: two Host fields\n');
  });
});
