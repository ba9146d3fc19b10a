/**
 * The admin API as an operator uses it: who may read and who may change (no token, wrong token,
 * read-only listener), where it may listen, the JSON it answers, the actions, and the precise
 * errors for requests the config file's rules refuse.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, Harness, repoRoot, sequence, tally, waitFor, whoServes, type Backend } from '../harness/index.ts';
import { api, change, startWithAdmin, tempDir, TOKEN, type AdminFulcrum } from '../helpers/admin.ts';

setDefaultTimeout(60_000);

function run(args: string[]): { code: number; stderr: string } {
  const r = Bun.spawnSync([join(repoRoot, 'bin/fulcrum'), ...args], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe', timeout: 30_000 });
  return { code: r.exitCode, stderr: r.stderr.toString() };
}

describe('admin API', () => {
  const h = new Harness();
  let f: AdminFulcrum;
  let a: Backend;
  let b: Backend;
  let web: number;

  beforeAll(async () => {
    a = h.identify('A', { after: 'echo' });
    b = h.identify('B', { after: 'echo' });
    web = freePort();
    f = await startWithAdmin(h, {
      ports: [web],
      config: {
        groups: { app: { tracking: false, servers: [a.address, { address: b.address, weight: 2, max_connections: 100 }] } },
        listeners: [{ name: 'web', listen: `127.0.0.1:${web}`, group: 'app' }],
      },
    });
  });
  afterAll(() => h.close());

  describe('auth', () => {
    const drainA = () => `/api/v1/groups/app/servers/${a.address}/drain`;

    test('reading needs no token', async () => {
      const r = await api(f.base, '/api/v1');
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ version: expect.any(String), pid: f.proc.pid, read_only: false, config_file: f.configPath, reload_source: f.configPath });
      expect((await api(f.base, '/api/v1/servers')).status).toBe(200);
      expect((await api(f.base, '/metrics')).status).toBe(200);
      expect((await api(f.base, '/')).status).toBe(200);
    });

    test('a change without a token is 401 with a Bearer challenge, and changes nothing', async () => {
      const r = await api(f.base, drainA(), { method: 'POST' });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="fulcrum"');
      expect(r.body.error.code).toBe('unauthorized');
      expect((await api(f.base, `/api/v1/groups/app/servers/${a.address}`)).body.admin).toBe('enabled');
    });

    test('a wrong token is 401 invalid_token, whatever its length; another scheme is 401', async () => {
      for (const token of ['nope', TOKEN.slice(0, -1) + 'X', TOKEN + 'X', TOKEN.toUpperCase()]) {
        const r = await api(f.base, drainA(), { method: 'POST', token });
        expect(r.status).toBe(401);
        expect(r.body.error.code).toBe('invalid_token');
        expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
      }
      const basic = await api(f.base, drainA(), { method: 'POST', headers: { authorization: `Basic ${btoa('admin:' + TOKEN)}` } });
      expect(basic.status).toBe(401);
      expect((await api(f.base, `/api/v1/groups/app/servers/${a.address}`)).body.admin).toBe('enabled');
    });

    test('the token is checked before anything else: unknown paths and bad bodies are 401 too', async () => {
      expect((await api(f.base, '/api/v1/nothing-here', { method: 'POST' })).status).toBe(401);
      expect((await api(f.base, '/api/v1/groups/app/servers', { method: 'POST', body: '{bad json' })).status).toBe(401);
      expect((await api(f.base, '/api/v1/reload', { method: 'POST', token: 'wrong' })).status).toBe(401);
    });

    test('the right token changes state (the scheme is case-insensitive)', async () => {
      const r = await api(f.base, drainA(), { method: 'POST', headers: { authorization: `bearer ${TOKEN}` } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ address: a.address, admin: 'drain', state: 'drain' });
      expect((await change(f.base, 'POST', `/api/v1/groups/app/servers/${a.address}/enable`)).body.state).toBe('up');
    });

    test('a Host that is not a loopback name is refused (DNS rebinding)', async () => {
      const r = await api(f.base, '/api/v1', { headers: { host: 'attacker.example:80' } });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('host_not_allowed');
      expect((await api(f.base, '/api/v1', { headers: { host: `localhost:${f.adminPort}` } })).status).toBe(200);
    });

    test('no CORS: answers carry no Access-Control headers', async () => {
      const r = await api(f.base, '/api/v1', { method: 'OPTIONS', headers: { origin: 'http://attacker.example' } });
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect(r.status).toBe(401);
    });
  });

  describe('JSON', () => {
    test('listeners, groups, a group, its servers, a server by index or address', async () => {
      const l = await api(f.base, '/api/v1/listeners');
      expect(l.body.listeners).toEqual([
        { name: 'web', address: `127.0.0.1:${web}`, group: 'app', listening: true, connections: expect.any(Number), total_connections: expect.any(Number), bytes_from_clients: expect.any(Number), bytes_to_clients: expect.any(Number), handshake_failures: 0, tls_handshakes: 0, tls_failures: {}, protocol: 'tcp' },
      ]);
      const g = await api(f.base, '/api/v1/groups/app');
      expect(g.body).toMatchObject({ name: 'app', algorithm: 'roundrobin', tracking: false, listeners: ['web'], clients_max: 2048 });
      expect(g.body.servers.map((s: { address: string }) => s.address)).toEqual([a.address, b.address]);
      expect((await api(f.base, '/api/v1/groups')).body.groups).toHaveLength(1);
      const byIndex = await api(f.base, '/api/v1/groups/app/servers/1');
      const byAddress = await api(f.base, `/api/v1/groups/app/servers/${encodeURIComponent(b.address)}`);
      expect(byIndex.body).toEqual(byAddress.body);
      expect(byIndex.body).toMatchObject({
        group: 'app', index: 1, role: 'regular', address: b.address, state: 'up', admin: 'enabled', healthy: true, blacklisted: false,
        weight: 2, max_connections: 100, hard_limit: 0, priority: 0, acl: 0, connections: 0, pending: 0,
      });
      for (const k of ['total_connections', 'bytes_to_server', 'bytes_from_server', 'connect_failures', 'connect_timeouts']) expect(typeof byIndex.body[k]).toBe('number');
    });

    test('unknown things are 404 with what exists; a wrong method is 405 with Allow', async () => {
      const g = await api(f.base, '/api/v1/groups/nope');
      expect(g.status).toBe(404);
      expect(g.body.error.message).toContain('groups: app');
      const s = await api(f.base, '/api/v1/groups/app/servers/127.0.0.1:1');
      expect(s.status).toBe(404);
      expect(s.body.error.code).toBe('server_not_found');
      expect((await api(f.base, '/api/v1/groups/app/servers/7')).status).toBe(404);
      const m = await change(f.base, 'PUT', '/api/v1/groups/app/servers/0');
      expect(m.status).toBe(405);
      expect(m.headers.get('allow')).toBe('GET, HEAD, PATCH, DELETE');
      expect((await change(f.base, 'POST', '/api/v1/groups/app/servers/0/explode')).status).toBe(404);
    });

    test('connections are paged', async () => {
      const held = [await h.connect(web), await h.connect(web), await h.connect(web)];
      for (const c of held) await c.readLine();
      const all = await api(f.base, '/api/v1/connections');
      expect(all.body.total).toBe(3);
      const page1 = await api(f.base, '/api/v1/connections?limit=2');
      const page2 = await api(f.base, '/api/v1/connections?limit=2&offset=2');
      expect(page1.body).toMatchObject({ total: 3, offset: 0, limit: 2 });
      expect(page1.body.connections).toHaveLength(2);
      expect(page2.body.connections).toHaveLength(1);
      const ids = [...page1.body.connections, ...page2.body.connections].map((c: { id: number }) => c.id);
      expect(new Set(ids).size).toBe(3);
      expect(page2.body.connections[0]).toMatchObject({ listener: 'web', group: 'app', state: 'established', why: 'algorithm', client: expect.stringMatching(/^127\.0\.0\.1:\d+$/), bytes_to_client: 2 });
      const bad = await api(f.base, '/api/v1/connections?limit=0&offset=-1');
      expect(bad.status).toBe(400);
      expect(bad.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['limit', 'offset']);
      for (const c of held) await c.close();
      await waitFor(async () => (await api(f.base, '/api/v1/connections')).body.total === 0, { what: 'the held connections to end' });
    });

    test('the client tracking table is paged', async () => {
      const r = await api(f.base, '/api/v1/groups/app/clients?limit=10');
      expect(r.body).toMatchObject({ group: 'app', total: 1, capacity: 2048, offset: 0, limit: 10 });
      expect(r.body.clients[0]).toMatchObject({ client: '127.0.0.1', connects: expect.any(Number), last_seen: expect.any(String) });
    });
  });

  describe('actions', () => {
    test('drain: new connections avoid the server, established ones continue; enable brings it back', async () => {
      const c = await h.connect(web);
      const first = await c.readLine();
      const srv = first === 'A' ? a : b;
      const other = first === 'A' ? 'B' : 'A';
      const d = await change(f.base, 'POST', `/api/v1/groups/app/servers/${srv.address}/drain`);
      expect(d.body.state).toBe('drain');
      expect(await sequence(web, 4)).toEqual([other, other, other, other]);
      await c.write('still here');
      expect((await c.readExactly(10)).toString()).toBe('still here');
      await c.close();
      const dis = await change(f.base, 'POST', `/api/v1/groups/app/servers/${srv.address}/disable`);
      expect(dis.body).toMatchObject({ admin: 'maintenance', state: 'maintenance' });
      expect((await change(f.base, 'POST', `/api/v1/groups/app/servers/${srv.address}/enable`)).body.state).toBe('up');
      expect(tally(await sequence(web, 4))).toEqual({ A: 2, B: 2 });
    });

    test('settings are checked like the config file, with the field and the rule', async () => {
      const url = `/api/v1/groups/app/servers/${a.address}`;
      const bad = await change(f.base, 'PATCH', url, { weight: 70000, wieght: 2, max_connections: 'lots' });
      expect(bad.status).toBe(422);
      expect(bad.body.error.code).toBe('validation_failed');
      expect(bad.body.error.issues).toEqual(
        expect.arrayContaining([
          { path: 'weight', message: 'expected an integer 0-65535, got 70000' },
          { path: 'wieght', message: "unknown field 'wieght' (did you mean 'weight'?)" },
          { path: 'max_connections', message: 'expected an integer 0 or more, got "lots"' },
        ]),
      );
      expect(bad.body.error.issues).toHaveLength(3);
      expect((await api(f.base, url)).body.weight).toBe(0);
      const notJson = await change(f.base, 'PATCH', url, '{"weight": 3');
      expect(notJson.status).toBe(400);
      expect(notJson.body.error.code).toBe('invalid_json');
      expect((await change(f.base, 'PATCH', url, '')).status).toBe(400);
      expect((await change(f.base, 'PATCH', url, [1])).body.error.issues[0].message).toMatch(/expected a mapping of server settings/);
      const ok = await change(f.base, 'PATCH', url, { weight: 5, priority: 1 });
      expect(ok.status).toBe(200);
      expect(ok.body.changes).toEqual([`server ${a.address} weight 0 -> 5`, `server ${a.address} priority 0 -> 1`]);
      expect(ok.body.server).toMatchObject({ weight: 5, priority: 1 });
      expect((await change(f.base, 'PATCH', url, { weight: 0, priority: 0 })).status).toBe(200);
    });

    test('a body over 1 MiB is answered 413 with the JSON error, declared or chunked, and the API goes on', async () => {
      const url = `${f.base}/api/v1/groups/app/servers/${a.address}`;
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      const expectTooLarge = async (r: Response): Promise<void> => {
        expect(r.status).toBe(413);
        expect(r.headers.get('content-type')).toStartWith('application/json');
        expect(((await r.json()) as { error: { code: string; message: string } }).error).toEqual({ code: 'body_too_large', message: 'the request body is larger than 1048576 bytes' });
      };
      // Content-Length over the limit: refused before the body is read.
      await expectTooLarge(await fetch(url, { method: 'PATCH', headers, body: `{"weight": 1, "x": "${'y'.repeat(2 << 20)}"}` }));
      // Chunked: refused once what arrived grows past the limit.
      let sent = 0;
      const chunk = new TextEncoder().encode(' '.repeat(64 * 1024));
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 4 << 20) return c.close();
          sent += chunk.length;
          c.enqueue(chunk);
        },
      });
      await expectTooLarge(await fetch(url, { method: 'PATCH', headers, body, duplex: 'half' } as RequestInit));
      expect((await api(f.base, `/api/v1/groups/app/servers/${a.address}`)).body.weight).toBe(0);
      expect((await change(f.base, 'PATCH', `/api/v1/groups/app/servers/${a.address}`, { weight: 0 })).status).toBe(200);
    });

    test('add a server (checked, resolved, duplicates refused), then remove it while a connection to it runs', async () => {
      const c3 = h.identify('C', { after: 'echo' });
      const noPort = await change(f.base, 'POST', '/api/v1/groups/app/servers', '"127.0.0.1"');
      expect(noPort.status).toBe(422);
      expect(noPort.body.error.issues).toEqual([{ path: '', message: 'server "127.0.0.1": a port is required (host:port); servers do not inherit a listener\'s port' }]);
      const badWeight = await change(f.base, 'POST', '/api/v1/groups/app/servers', { address: c3.address, weight: 'heavy' });
      expect(badWeight.body.error.issues).toEqual([{ path: 'weight', message: 'expected an integer 0-65535, got "heavy"' }]);
      const unresolvable = await change(f.base, 'POST', '/api/v1/groups/app/servers', { address: 'no-such-host.invalid:80' });
      expect(unresolvable.status).toBe(422);
      expect(unresolvable.body.error.issues[0]).toMatchObject({ path: 'address', message: expect.stringContaining('cannot resolve server host name "no-such-host.invalid"') });
      const dup = await change(f.base, 'POST', '/api/v1/groups/app/servers', JSON.stringify(a.address));
      expect(dup.status).toBe(409);

      const added = await change(f.base, 'POST', '/api/v1/groups/app/servers', { address: c3.address, weight: 1 });
      expect(added.status).toBe(201);
      expect(added.body).toMatchObject({ index: 2, address: c3.address, weight: 1, state: 'up' });
      expect(tally(await sequence(web, 3))).toEqual({ A: 1, B: 1, C: 1 });

      // A connection to C, then C is removed: the connection goes on, new ones never reach C.
      let held = await h.connect(web);
      for (let i = 0; i < 3 && (await held.readLine()) !== 'C'; i++) {
        await held.close();
        held = await h.connect(web);
      }
      const removed = await change(f.base, 'DELETE', `/api/v1/groups/app/servers/${c3.address}`);
      expect(removed.status).toBe(200);
      expect(removed.body.changes).toEqual([`server ${c3.address} removed from app (its connections continue)`]);
      expect(removed.body.servers.map((s: { address: string }) => s.address)).toEqual([a.address, b.address]);
      expect(tally(await sequence(web, 4))).toEqual({ A: 2, B: 2 });
      await held.write('after removal');
      expect((await held.readExactly(13)).toString()).toBe('after removal');
      await held.close();
    });

    test('a backup server can be added, listed and removed by address', async () => {
      const spare = h.identify('S');
      const added = await change(f.base, 'POST', '/api/v1/groups/app/servers', { address: spare.address, backup: true });
      expect(added.status).toBe(201);
      expect(added.body).toMatchObject({ role: 'backup', index: 0, address: spare.address, state: 'up' });
      const listed = await api(f.base, '/api/v1/groups/app/servers');
      expect(listed.body.servers.map((s: { role: string }) => s.role)).toEqual(['regular', 'regular', 'backup']);
      expect(tally(await sequence(web, 4))).toEqual({ A: 2, B: 2 }); // primaries are up: the backup waits
      expect((await api(f.base, `/api/v1/groups/app/servers/${spare.address}`)).body.role).toBe('backup');
      const removed = await change(f.base, 'DELETE', `/api/v1/groups/app/servers/${spare.address}`);
      expect(removed.body.changes).toEqual([`backup ${spare.address} removed from app (its connections continue)`]);
      expect((await api(f.base, '/api/v1/groups/app/servers')).body.servers).toHaveLength(2);
    });

    test('the last server cannot be removed', async () => {
      expect((await change(f.base, 'DELETE', `/api/v1/groups/app/servers/${b.address}`)).status).toBe(200);
      const last = await change(f.base, 'DELETE', `/api/v1/groups/app/servers/${a.address}`);
      expect(last.status).toBe(409);
      expect(last.body.error.message).toBe('a group needs at least one server');
      expect(await whoServes(web)).toBe('A');
      expect((await change(f.base, 'POST', '/api/v1/groups/app/servers', JSON.stringify(b.address))).status).toBe(201);
    });

    test('reload re-reads the config file: a broken one is refused with file positions, a good one applied', async () => {
      const cfg = (await Bun.file(f.configPath).text()).replace(a.address, `${a.address}:0:0:70000`);
      writeFileSync(f.configPath, cfg);
      const bad = await change(f.base, 'POST', '/api/v1/reload');
      expect(bad.status).toBe(422);
      expect(bad.body.error.code).toBe('reload_failed');
      expect(bad.body.error.issues).toEqual([{ file: f.configPath, line: expect.any(Number), column: expect.any(Number), path: 'groups.app.servers[0]', message: `server "${a.address}:0:0:70000": weight 70000 is outside 0-65535` }]);
      writeFileSync(f.configPath, cfg.replace(':0:0:70000', ':0:0:4'));
      const good = await change(f.base, 'POST', '/api/v1/reload');
      expect(good.status).toBe(200);
      expect(good.body.changes).toContain(`server ${a.address} weight 0 -> 4`);
      expect((await api(f.base, '/api/v1')).body.totals.accepted).toBeGreaterThan(0);
    });
  });
});

describe('admin listener from the command line', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('without a token file the API is read-only, and reload has nothing to re-read', async () => {
    const a = h.identify('A');
    const port = freePort();
    const adminPort = freePort();
    await h.startFulcrum(['--admin', `127.0.0.1:${adminPort}`, `127.0.0.1:${port}`, a.address], { port: [port, adminPort] });
    const base = `http://127.0.0.1:${adminPort}`;
    expect((await api(base, '/api/v1')).body.read_only).toBe(true);
    expect((await api(base, '/api/v1/groups/default/servers/0')).body.address).toBe(a.address);
    const r = await api(base, '/api/v1/groups/default/servers/0/drain', { method: 'POST', token: TOKEN });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('read_only');
    expect(await whoServes(port)).toBe('A');
  });

  test('on a Unix socket (mode 0600), with a token', async () => {
    const a = h.identify('A');
    const port = freePort();
    const dir = tempDir(h);
    const sock = join(dir, 'admin.sock');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
    await h.startFulcrum(['--admin', sock, '--admin-token-file', tokenFile, `127.0.0.1:${port}`, a.address], { port, unix: sock });
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const base = 'http://localhost';
    expect((await api(base, '/api/v1/listeners', { unix: sock })).body.listeners[0].address).toBe(`127.0.0.1:${port}`);
    expect((await api(base, '/api/v1/groups/default/servers/0/disable', { method: 'POST', unix: sock })).status).toBe(401);
    const ok = await api(base, '/api/v1/groups/default/servers/0/disable', { method: 'POST', unix: sock, token: TOKEN });
    expect(ok.body.state).toBe('maintenance');
    const c = await h.connect(port);
    expect(await c.closed).toBe('fin'); // no server left
  });

  test('refused at start: a non-loopback address, an address in use, a short or missing token, options without --admin', () => {
    const dir = tempDir(h);
    const busy = h.echo();
    const short = join(dir, 'short');
    writeFileSync(short, 'abc\n');
    const cases: [string[], number, RegExp][] = [
      [['--admin', '0.0.0.0:9', '9', '127.0.0.1:1'], 2, /--admin: admin address 0\.0\.0\.0:9 is not a loopback address/],
      [['--admin', '9', '9', '127.0.0.1:1'], 2, /a bare port means every address; write 127\.0\.0\.1:9/],
      [['--admin', busy.address, `127.0.0.1:${freePort()}`, '127.0.0.1:1'], 1, new RegExp(`cannot listen on ${busy.address} for the admin API`)],
      [['--admin', '127.0.0.1:9', '--admin-token-file', short, '9', '127.0.0.1:1'], 1, /the admin token in .* is too short: use at least 16 characters/],
      [['--admin', '127.0.0.1:9', '--admin-token-file', join(dir, 'missing'), '9', '127.0.0.1:1'], 1, /cannot read the admin token file/],
      [['--admin-token-file', short, '9', '127.0.0.1:1'], 2, /--admin-token-file needs --admin ADDR/],
      [['--access-log-format', 'xml', '9', '127.0.0.1:1'], 2, /--access-log-format: "xml" is not one of json, text/],
    ];
    for (const [args, code, message] of cases) {
      const r = run(['-f', ...args]);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(message);
    }
  });
});
