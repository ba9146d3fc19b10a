/**
 * UDP listeners from the config file, end to end with real sockets (docs/udp.md): the
 * amplification cap against a one-small-datagram source, the per-source session limit (the 65th
 * session is refused), ICMP port unreachable blacklisting a server, a reload that keeps the
 * established sessions and their servers, the access log line of a session that ends, and the
 * admin API's listener view. Counters are read from /metrics: a drop counted there is final, so
 * the tests never wait for something not to happen.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { Harness, waitFor } from '../harness/index.ts';
import { freeUdpPort, udpBackend, udpIdentify, UdpClient, waitUdpBound, type UdpBackend } from '../harness/udp.ts';
import { api, startWithAdmin, waitForLogLine, writeYaml, type AdminFulcrum } from '../helpers/admin.ts';

setDefaultTimeout(60_000);

async function metric(base: string, name: string, labelPart = ''): Promise<number> {
  const text = (await api(base, '/metrics')).text;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(labelPart)) return Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return NaN;
}

async function untilMetric(f: AdminFulcrum, name: string, value: number, labelPart = ''): Promise<void> {
  await waitFor(async () => (await metric(f.base, name, labelPart)) === value, { what: `${name}${labelPart} = ${value}`, details: () => '' });
}

describe('UDP listeners', () => {
  const h = new Harness();
  afterAll(() => h.close());

  async function start(servers: UdpBackend[], udp: Record<string, unknown> = {}, group: Record<string, unknown> = {}): Promise<AdminFulcrum & { udpPort: number; config: (extra?: Record<string, unknown>) => Record<string, unknown> }> {
    for (const s of servers) h.add(s);
    const udpPort = await freeUdpPort();
    const config = (extra: Record<string, unknown> = {}) => ({
      access_log: { file: join(dir, 'access.log') },
      groups: { dns: { servers: servers.map((s) => `127.0.0.1:${s.port}`), ...group, ...extra } },
      listeners: [{ listen: `127.0.0.1:${udpPort}`, group: 'dns', protocol: 'udp', udp }],
    });
    const dir = (await import('../helpers/admin.ts')).tempDir(h);
    const f = await startWithAdmin(h, { config: config(), ports: [], dir });
    await waitUdpBound(udpPort);
    return { ...f, udpPort, config };
  }

  test('a small datagram gets at most the cap back; the client sending again opens a new allowance', async () => {
    // 8 answers of 1000 bytes to any datagram: the default cap (max(1232, 3 × 5)) lets one through.
    const burst = await udpBackend(() => Array.from({ length: 8 }, () => Buffer.alloc(1000, 0x61)));
    const f = await start([burst]);
    const c = await UdpClient.open({ localAddress: '127.0.0.7' });
    h.defer(() => c.close());
    c.send('spoof', f.udpPort);
    await untilMetric(f, 'fulcrum_udp_amplification_dropped_datagrams_total', 7);
    expect((await c.replies(1)).length).toBe(1);
    expect(c.got[0]!.from).toBe(`127.0.0.1:${f.udpPort}`); // from the listening address
    c.send('again', f.udpPort);
    await untilMetric(f, 'fulcrum_udp_amplification_dropped_datagrams_total', 14);
    expect((await c.replies(2)).length).toBe(2);
    expect(await metric(f.base, 'fulcrum_udp_bytes_total', 'direction="from_servers"')).toBe(16_000);
  });

  test('the 65th session of one source address is refused; other sources are served', async () => {
    const echo = await udpBackend((d) => [d]);
    const f = await start([echo]);
    const clients: UdpClient[] = [];
    for (let i = 0; i < 65; i++) {
      const c = await UdpClient.open({ localAddress: '127.0.0.8' });
      clients.push(c);
      h.defer(() => c.close());
      c.send(`q${i}`, f.udpPort);
      if (i < 64) await c.replies(1);
    }
    await untilMetric(f, 'fulcrum_udp_source_refused_total', 1);
    expect(clients[64]!.got.length).toBe(0);
    expect(await metric(f.base, 'fulcrum_udp_sessions_active')).toBe(64);
    const other = await UdpClient.open({ localAddress: '127.0.0.9' });
    h.defer(() => other.close());
    other.send('hello', f.udpPort);
    expect(await other.replies(1)).toEqual(['hello']);
    const view = (await api(f.base, '/api/v1/listeners')).body.listeners[0];
    expect(view).toMatchObject({ protocol: 'udp', connections: 65, udp: { sessions: 65, source_refused: 1, max_sessions_per_source: 64 } });
  });

  test('ICMP port unreachable ends the session and blacklists the server; the next datagram goes elsewhere', async () => {
    const live = await udpIdentify('live');
    const gone = await udpIdentify('gone');
    await gone.close(); // its port now answers ICMP port unreachable
    // -r: round robin from index 1: the first session goes to live, the second to the closed port.
    const f = await start([{ ...gone, close: async () => {} }, live], {}, { tracking: false });
    const a = await UdpClient.open({ localAddress: '127.0.0.10' });
    const b = await UdpClient.open({ localAddress: '127.0.0.11' });
    h.defer(() => a.close());
    h.defer(() => b.close());
    a.send('x', f.udpPort);
    expect(await a.replies(1)).toEqual(['live']);
    b.send('x', f.udpPort);
    await untilMetric(f, 'fulcrum_udp_server_unreachable_total', 1);
    b.send('y', f.udpPort);
    expect(await b.replies(1)).toEqual(['live']);
    await waitForLogLine(join(f.dir, 'access.log'), (r) => r.end === 'connect-failed' && r.client === `127.0.0.11:${b.socket.port}`, 'the unreachable session');
  });

  test('a reload keeps established sessions on their servers, with the same upstream socket', async () => {
    const A = await udpIdentify('A');
    const B = await udpIdentify('B');
    const f = await start([A, B], { idle_timeout: '10m' });
    const c = await UdpClient.open({ localAddress: '127.0.0.12' });
    h.defer(() => c.close());
    c.send('1', f.udpPort);
    const [first] = await c.replies(1);
    const backend = first === 'A' ? A : B;
    const upstreamPort = backend.received.at(-1)!.port;
    // The group changes (algorithm, a third server); the listener and its sessions stay.
    const C = await udpIdentify('C');
    h.add(C);
    writeYaml(f.configPath, { ...f.config({ algorithm: 'leastconn', servers: [`127.0.0.1:${A.port}`, `127.0.0.1:${B.port}`, `127.0.0.1:${C.port}`] }), admin: { listen: `127.0.0.1:${f.adminPort}`, token_file: f.tokenFile } });
    f.proc.kill('SIGHUP');
    await f.proc.waitForLine(/SIGHUP: reloaded/, 15_000);
    c.send('2', f.udpPort);
    expect(await c.replies(2)).toEqual([first!, first!]);
    expect(backend.received.at(-1)!.port).toBe(upstreamPort);
    expect(await metric(f.base, 'fulcrum_udp_sessions_created_total')).toBe(1);
  });

  test('an idle session ends with one access log line', async () => {
    const echo = await udpBackend((d) => [d]);
    const f = await start([echo], { idle_timeout: '300ms' });
    const c = await UdpClient.open({ localAddress: '127.0.0.13' });
    h.defer(() => c.close());
    c.send('ping', f.udpPort);
    await c.replies(1);
    const line = await waitForLogLine(join(f.dir, 'access.log'), (r) => r.client === `127.0.0.13:${c.socket.port}`, 'the idle session');
    expect(line).toMatchObject({ end: 'idle-timeout', group: 'dns', bytes_from_client: 4, bytes_to_client: 4, server: `127.0.0.1:${echo.port}` });
  });
});
