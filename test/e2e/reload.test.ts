/**
 * Reloads under traffic (SIGHUP and POST /api/v1/reload, alternately): servers added and removed,
 * weights, algorithm and timeouts changed, a listener added and then moved, a broken config
 * rejected whole while the old one keeps running. Throughout, transfers run continuously and
 * every one is checked end to end by sha256, long-lived connections opened before the first
 * reload carry data across all of them, and the client tracking table and counters carry over.
 * Then: the tracking table saved on stop and loaded on start.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as rawConnect, freePort, Harness, payload, sha256, transfer, waitFor, whoServes, type Backend, type Client } from '../harness/index.ts';
import { api, change, startWithAdmin, tempDir, writeYaml, type AdminFulcrum } from '../helpers/admin.ts';

setDefaultTimeout(180_000);

/** A connection that stays open and sends a chunk now and then, checking the echo at the end. */
class LongLived {
  sent: Buffer[] = [];
  private constructor(readonly client: Client) {}

  static async open(port: number): Promise<LongLived> {
    return new LongLived(await rawConnect(port, { timeoutMs: 15_000 }));
  }

  async step(seed: number): Promise<void> {
    const chunk = payload(16 * 1024 + (seed % 4096), seed);
    this.sent.push(chunk);
    await this.client.write(chunk);
    const back = await this.client.readExactly(chunk.length);
    if (!back.equals(chunk)) throw new Error(`long-lived connection: chunk ${this.sent.length} came back different`);
  }

  /** Half-closes and checks that the whole stream came back, by sha256. */
  async finish(): Promise<void> {
    await this.client.end();
    const rest = await this.client.readAll();
    expect(rest.length).toBe(0);
    await this.client.close();
  }

  get digest(): string {
    return sha256(Buffer.concat(this.sent));
  }
}

describe('reload under traffic', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('SIGHUP and API reloads under load: every transfer intact, established connections untouched, tables and counters kept', async () => {
    const [A, B, C, D] = [h.echo(), h.echo(), h.echo(), h.echo()];
    const web = freePort();
    const sticky = freePort();
    const extra1 = freePort();
    const extra2 = freePort();
    const listeners = (more: { name: string; listen: string; group: string }[] = []) => [
      { name: 'web', listen: `127.0.0.1:${web}`, group: 'app' },
      { name: 'sticky', listen: `127.0.0.1:${sticky}`, group: 'sticky' },
      ...more,
    ];
    const config = (app: Record<string, unknown>, more: { name: string; listen: string; group: string }[] = []) => ({
      groups: {
        app: { tracking: false, ...app },
        sticky: { servers: [A.address, B.address, C.address] },
      },
      listeners: listeners(more),
    });
    const f: AdminFulcrum = await startWithAdmin(h, { ports: [web, sticky], config: config({ servers: [A.address, B.address] }) });
    const write = (c: Record<string, unknown>) => writeYaml(f.configPath, { ...c, admin: { listen: `127.0.0.1:${f.adminPort}`, token_file: f.tokenFile } });

    // Traffic: three workers on `web`, one on `sticky`, until told to stop.
    let stop = false;
    let transfers = 0;
    let stickyTransfers = 0;
    const failures: string[] = [];
    const worker = async (port: number, id: number, sticky: boolean): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const bytes = 1 + ((i * 7919 + id * 104729) % (192 * 1024));
        try {
          await transfer(port, bytes);
          transfers++;
          if (sticky) stickyTransfers++;
        } catch (e) {
          failures.push(`worker ${id} transfer ${i} (${bytes} bytes): ${(e as Error).message}`);
          if (failures.length > 20) return;
        }
      }
    };
    const workers = [worker(web, 1, false), worker(web, 2, false), worker(web, 3, false), worker(sticky, 4, true)];
    const long = await Promise.all([LongLived.open(web), LongLived.open(web), LongLived.open(sticky)]);
    let seed = 1;
    const stepLong = async () => {
      for (const l of long) await l.step(seed++);
    };
    await stepLong();
    /** Lets traffic run: at least `n` more transfers complete. */
    const moreTraffic = async (n = 8) => {
      const target = transfers + n;
      await waitFor(() => transfers >= target || failures.length > 0, { timeoutMs: 30_000, what: `${n} more transfers` });
      await stepLong();
    };
    const serverTotal = async (s: Backend): Promise<number> => (await api(f.base, `/api/v1/groups/sticky/servers/${s.address}`)).body.total_connections;
    const hup = async (expectLine: RegExp) => {
      f.proc.kill('SIGHUP');
      await f.proc.waitForLine(expectLine, 15_000);
    };
    const addresses = async (): Promise<string[]> => (await api(f.base, '/api/v1/groups/app/servers')).body.servers.map((s: { address: string }) => s.address);

    await moreTraffic();
    const stickyBefore = (await api(f.base, '/api/v1/groups/sticky/clients')).body.clients[0];
    expect(stickyBefore.client).toBe('127.0.0.1');
    const totalsBefore = await Promise.all([A, B, C].map(serverTotal));

    // 1. API: add C.
    write(config({ servers: [A.address, B.address, C.address] }));
    let r = await change(f.base, 'POST', '/api/v1/reload');
    expect(r.status).toBe(200);
    expect(r.body.changes).toEqual([`server ${C.address} added to app`]);
    await moreTraffic();

    // 2. SIGHUP: weights, algorithm and timeouts change.
    write(config({ algorithm: 'leastconn', connect_timeout: '2s', blacklist: '10s', servers: [{ address: A.address, weight: 5 }, B.address, { address: C.address, weight: 1 }] }));
    await hup(/SIGHUP: reloaded .*weight 0 -> 5.*algorithm leastconn/);
    expect((await api(f.base, '/api/v1/groups/app')).body).toMatchObject({ algorithm: 'leastconn', connect_timeout_ms: 2000, blacklist_ms: 10_000 });
    await moreTraffic();

    // 3. API: remove A, add D, add a listener.
    const extra = [{ name: 'extra', listen: `127.0.0.1:${extra1}`, group: 'app' }];
    write(config({ servers: [B.address, C.address, D.address] }, extra));
    r = await change(f.base, 'POST', '/api/v1/reload');
    expect(r.status).toBe(200);
    expect(r.body.changes).toEqual(expect.arrayContaining([`listener 127.0.0.1:${extra1} added`, `server ${D.address} added to app`, `server ${A.address} removed from app (its connections continue)`]));
    expect(await addresses()).toEqual([B.address, C.address, D.address]);
    await transfer(extra1, 50_000);
    await moreTraffic();

    // 4. A broken config is rejected whole, by the API and by SIGHUP; the running one stays.
    const good = readFileSync(f.configPath, 'utf8');
    const broken = good.replace(D.address, `${D.address.replace(/:\d+$/, '')}:99999`).replace('group: sticky', 'group: stiky');
    Bun.write(f.configPath, broken);
    await waitFor(() => readFileSync(f.configPath, 'utf8') === broken, { what: 'the broken config on disk' });
    r = await change(f.base, 'POST', '/api/v1/reload');
    expect(r.status).toBe(422);
    const issues = r.body.error.issues as { path: string; message: string; line: number }[];
    expect(issues.map((i) => i.path).sort()).toEqual(['groups.app.servers[2]', 'listeners[1].group']);
    expect(issues.find((i) => i.path === 'listeners[1].group')!.message).toBe("unknown group 'stiky' (did you mean 'sticky'?)");
    expect(issues.every((i) => i.line > 0)).toBe(true);
    await hup(/SIGHUP: reload failed, keeping the running configuration/);
    await f.proc.waitForLine(/fulcrum\.yaml:\d+:\d+: listeners\[1\]\.group: unknown group 'stiky'/, 5_000);
    expect(await addresses()).toEqual([B.address, C.address, D.address]);
    await transfer(extra1, 10_000);
    await moreTraffic();

    // 5. SIGHUP: the extra listener moves to another port.
    write(config({ servers: [B.address, C.address, D.address] }, [{ name: 'extra', listen: `127.0.0.1:${extra2}`, group: 'app' }]));
    await hup(new RegExp(`SIGHUP: reloaded .*listener 127\\.0\\.0\\.1:${extra2} added.*listener 127\\.0\\.0\\.1:${extra1} removed`));
    await transfer(extra2, 50_000);
    expect(await rawConnect(extra1, { timeoutMs: 5_000 }).then(() => 'connected', (e: Error) => e.message)).toMatch(/ECONNREFUSED|refused/i);
    await moreTraffic();

    // 6. API: back to A and B.
    write(config({ servers: [A.address, B.address] }));
    r = await change(f.base, 'POST', '/api/v1/reload');
    expect(r.status).toBe(200);
    expect(await addresses()).toEqual([A.address, B.address]);
    await moreTraffic();

    stop = true;
    await Promise.all(workers);
    for (const l of long) await l.finish();
    expect(failures).toEqual([]);
    expect(transfers).toBeGreaterThanOrEqual(40);

    // The sticky group's table was never reset: one entry, every connection counted, same server.
    const stickyAfter = (await api(f.base, '/api/v1/groups/sticky/clients')).body.clients;
    expect(stickyAfter).toHaveLength(1);
    expect(stickyAfter[0]).toMatchObject({ client: '127.0.0.1', server: stickyBefore.server });
    expect(stickyAfter[0].connects).toBe(stickyTransfers + 1); // + the long-lived connection
    // Counters carried over (they only grow).
    const totalsAfter = await Promise.all([A, B, C].map(serverTotal));
    totalsAfter.forEach((t, i) => expect(t).toBeGreaterThanOrEqual(totalsBefore[i]!));
    const status = (await api(f.base, '/api/v1')).body;
    expect(status.totals.ends['client-reset'] ?? 0).toBe(0);
    expect(status.totals.ends['server-reset'] ?? 0).toBe(0);
    const metrics = (await api(f.base, '/metrics')).text;
    expect(metrics).toContain('fulcrum_config_reloads_total{result="success"} 5');
    expect(metrics).toContain('fulcrum_config_reloads_total{result="failure"} 2');
  });
});

describe('tracking table across a restart', () => {
  const h = new Harness();
  afterAll(() => h.close());

  test('saved on stop, loaded on start; entries of servers that are gone are dropped', async () => {
    const [A, B, C] = [h.identify('A'), h.identify('B'), h.identify('C')];
    const dir = tempDir(h);
    const stateFile = join(dir, 'clients.json');
    const web = freePort();
    const config = (servers: string[]) => ({
      global: { state_file: stateFile },
      groups: { app: { servers } },
      listeners: [{ name: 'web', listen: `127.0.0.1:${web}`, group: 'app' }],
    });
    let f = await startWithAdmin(h, { dir, ports: [web], config: config([A.address, B.address, C.address]) });
    const first = await whoServes(web);
    expect(await whoServes(web)).toBe(first); // tracked
    f.proc.kill('SIGTERM');
    expect(await f.proc.waitForExit(10_000)).toBe(0);
    const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
    const byName: Record<string, Backend> = { A, B, C };
    expect(saved).toMatchObject({ version: 1, groups: { app: [{ client: '127.0.0.1', server: byName[first]!.address }] } });

    // Restart with the servers in another order: the client still returns to its server.
    f = await startWithAdmin(h, { dir, ports: [web], config: config([C.address, B.address, A.address]) });
    const clients = (await api(f.base, '/api/v1/groups/app/clients')).body.clients;
    expect(clients).toEqual([expect.objectContaining({ client: '127.0.0.1', server: byName[first]!.address })]);
    expect(await whoServes(web)).toBe(first);
    f.proc.kill('SIGTERM');
    expect(await f.proc.waitForExit(10_000)).toBe(0);

    // Restart without that server: the entry is dropped, the client is placed afresh.
    const others = [A, B, C].filter((s) => s !== byName[first]).map((s) => s.address);
    f = await startWithAdmin(h, { dir, ports: [web], config: config(others) });
    expect((await api(f.base, '/api/v1/groups/app/clients')).body.total).toBe(0);
    expect(await whoServes(web)).not.toBe(first);
  });
});
