import { describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { connect, whoServes, useHarness, waitFor, withTimeout, type Harness } from '../harness/index.ts';
import { startInProcess } from '../helpers/in-process.ts';

const h = useHarness();

function three(hh: Harness): string[] {
  return ['A', 'B', 'C'].map((n) => `127.0.0.1:${hh.identify(n, { keepOpen: false }).port}`);
}

async function who(port: number, ip: string): Promise<string> {
  return whoServes(port, { sourceIp: ip }).catch(() => '-');
}

describe('client tracking', () => {
  test('new clients round robin, known clients return (pen default)', async () => {
    const lb = await startInProcess(h, ['LISTEN', ...three(h)]);
    const seq: string[] = [];
    for (const ip of ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.11', '127.0.0.12']) seq.push(await who(lb.port, ip));
    expect(seq).toEqual(['B', 'C', 'A', 'B', 'B', 'C']);
  });

  test('tracking expiry (-T): a client forgotten after T seconds is balanced anew', async () => {
    const lb = await startInProcess(h, ['-T', '1', 'LISTEN', ...three(h)]);
    expect(await who(lb.port, '127.0.0.21')).toBe('B');
    expect(await who(lb.port, '127.0.0.21')).toBe('B');
    await Bun.sleep(2100);
    expect(await who(lb.port, '127.0.0.21')).toBe('C');
  });

  test('LRU eviction (-c): with 2 slots the least recently seen client is forgotten', async () => {
    const lb = await startInProcess(h, ['-c', '2', 'LISTEN', ...three(h)]);
    expect(await who(lb.port, '127.0.0.31')).toBe('B');
    expect(await who(lb.port, '127.0.0.32')).toBe('C');
    expect(await who(lb.port, '127.0.0.31')).toBe('B');
    expect(await who(lb.port, '127.0.0.33')).toBe('A'); // evicts .32
    expect(await who(lb.port, '127.0.0.32')).toBe('B'); // new again
    expect(lb.balancer.defaultGroup.clients.size).toBe(2);
  });

  test('-r: round robin without tracking; -h: hash of the address', async () => {
    const rr = await startInProcess(h, ['-r', 'LISTEN', ...three(h)]);
    expect([await who(rr.port, '127.0.0.1'), await who(rr.port, '127.0.0.1'), await who(rr.port, '127.0.0.1')]).toEqual(['B', 'C', 'A']);
    const hash = await startInProcess(h, ['-h', 'LISTEN', ...three(h)]);
    // pen 0.34.1 on x86: 127.0.0.1 -> C, 127.0.0.2 -> A, 127.0.0.3 -> B
    expect([await who(hash.port, '127.0.0.1'), await who(hash.port, '127.0.0.2'), await who(hash.port, '127.0.0.3')]).toEqual(['C', 'A', 'B']);
  });
});

describe('failure handling', () => {
  test('a refused server is blacklisted for -b seconds, the client served by the next, then it returns', async () => {
    const a = h.identify('A', { keepOpen: false });
    const dead = h.refuse();
    const c = h.identify('C', { keepOpen: false });
    const lb = await startInProcess(h, ['-r', '-b', '1', 'LISTEN', `127.0.0.1:${a.port}`, `127.0.0.1:${dead.port}`, `127.0.0.1:${c.port}`]);
    expect(await who(lb.port, '127.0.0.1')).toBe('C'); // first choice (index 1) refused -> next index
    const server = lb.balancer.defaultGroup.servers[1]!;
    expect(server.connectFailures).toBe(1);
    expect(server.isBlacklisted(Date.now())).toBe(true);
    const during = [await who(lb.port, '127.0.0.1'), await who(lb.port, '127.0.0.1'), await who(lb.port, '127.0.0.1')];
    // Round robin's turn continues from its own last pick (index 1), skipping the blacklisted server.
    expect(during).toEqual(['C', 'A', 'C']);
    expect(server.connectFailures).toBe(1); // not even tried
    await Bun.sleep(1100);
    expect(await who(lb.port, '127.0.0.1')).toBe('A');
    expect(await who(lb.port, '127.0.0.1')).toBe('C'); // its turn again: tried, refused, fails over
    expect(server.connectFailures).toBe(2);
  });

  test('emergency server (-e) only when every server is unavailable', async () => {
    const em = h.identify('E', { keepOpen: false });
    const d1 = h.refuse();
    const d2 = h.refuse();
    const lb = await startInProcess(h, ['-e', `127.0.0.1:${em.port}`, 'LISTEN', `127.0.0.1:${d1.port}`, `127.0.0.1:${d2.port}`]);
    expect(await who(lb.port, '127.0.0.1')).toBe('E');
    const b = h.identify('B', { keepOpen: false });
    await lb.commands.execute(`server 1 address 127.0.0.1 port ${b.port}`);
    await lb.commands.execute('server 1 blacklist 0');
    expect(await who(lb.port, '127.0.0.2')).toBe('B');
  });

  test('stubborn (-s): first choice down means the client is closed, no failover', async () => {
    const dead = h.refuse();
    const c = h.identify('C', { keepOpen: false });
    const lb = await startInProcess(h, ['-s', 'LISTEN', `127.0.0.1:${c.port}`, `127.0.0.1:${dead.port}`]);
    expect(await who(lb.port, '127.0.0.1')).toBe('-');
    expect(lb.balancer.totals.ends['stubborn']).toBe(1);
    expect(c.connections).toBe(0);
  });

  test('connect timeout (-t): a server that never answers the SYN is given up on and the client served elsewhere', async () => {
    // A listener with a full accept queue drops further SYNs, so connects to it hang.
    const py = spawn('python3', ['-c', 'import socket,time,sys\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)\nprint(s.getsockname()[1], flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    h.defer(() => void py.kill());
    const port = Number(await withTimeout(new Promise<string>((r) => py.stdout.once('data', (d: Buffer) => r(d.toString().trim()))), 5000, 'python blackhole to start'));
    // listen(0) queues one connection; once it is queued, further SYNs are dropped.
    const filler = await connect(port, { timeoutMs: 2000 });
    h.defer(() => filler.close());
    const ok = h.identify('OK', { keepOpen: false });
    const lb = await startInProcess(h, ['-r', '-t', '1', 'LISTEN', `127.0.0.1:${ok.port}`, `127.0.0.1:${port}`]);
    expect(await whoServes(lb.port, { timeoutMs: 8000 })).toBe('OK'); // tried the blackhole first (index 1)
    expect(lb.balancer.defaultGroup.servers[1]!.connectTimeouts).toBe(1);
  });
});

describe('ACLs', () => {
  test('client_acl denies: closed, or sent to the abuse server (-B)', async () => {
    const ab = h.identify('ABUSE', { keepOpen: false });
    const servers = three(h);
    const lb = await startInProcess(h, ['-o', 'acl 1 deny 127.0.0.66', '-o', 'client_acl 1', 'LISTEN', ...servers]);
    expect(await who(lb.port, '127.0.0.66')).toBe('-');
    expect(lb.balancer.totals.ends['acl-denied']).toBe(1);
    expect(await who(lb.port, '127.0.0.67')).toBe('B');
    const lb2 = await startInProcess(h, ['-B', `127.0.0.1:${ab.port}`, '-o', 'acl 1 deny 127.0.0.66', '-o', 'client_acl 1', 'LISTEN', ...servers]);
    expect(await who(lb2.port, '127.0.0.66')).toBe('ABUSE');
  });

  test('a server ACL keeps clients it denies away from that server', async () => {
    const lb = await startInProcess(h, ['-r', '-o', 'acl 2 permit 127.0.0.77', '-o', 'server 1 acl 2', 'LISTEN', ...three(h)]);
    // Round robin picks B (index 1) first, but B only admits 127.0.0.77: the walk goes on to C.
    expect(await who(lb.port, '127.0.0.78')).toBe('C');
    expect(await who(lb.port, '127.0.0.78')).toBe('C'); // round robin's own turn: 2
    expect(await who(lb.port, '127.0.0.78')).toBe('A');
    expect(await who(lb.port, '127.0.0.77')).toBe('B');
  });
});

describe('limits', () => {
  test('soft limit for new clients, hard limit for returning ones', async () => {
    const a = h.hold();
    const b = h.identify('B', { keepOpen: true });
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${b.port}:1:2`, `127.0.0.1:${a.port}`]);
    // server 0 (B, max 1 hard 2) is second in round robin: make 127.0.0.41 known on it.
    const first = await h.connect(lb.port, { localAddress: '127.0.0.40' }); // -> index 1 (hold)
    const known = await h.connect(lb.port, { localAddress: '127.0.0.41' }); // -> index 0 (B)
    expect(await known.readLine()).toBe('B');
    const again = await h.connect(lb.port, { localAddress: '127.0.0.41' }); // returning: hard limit 2 admits
    expect(await again.readLine()).toBe('B');
    const fresh = await h.connect(lb.port, { localAddress: '127.0.0.42' }); // new: soft limit 1 reached -> hold
    await waitFor(() => a.connections === 2, { what: 'the new client to go to the other server' });
    expect(b.connections).toBe(2);
    await Promise.all([first, fresh].map((c) => c.close()));
  });

  test('global -x: extra clients wait unread and are served when a slot frees', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-x', '2', 'LISTEN', `127.0.0.1:${echo.port}`]);
    const c1 = await h.connect(lb.port);
    const c2 = await h.connect(lb.port);
    await echo.waitForActive(2);
    const c3 = await h.connect(lb.port);
    await c3.write('waiting');
    await waitFor(() => lb.balancer.waitingCount === 1, { what: 'the third client to wait' });
    expect(echo.connections).toBe(2);
    await c1.close();
    expect((await c3.readExactly(7)).toString()).toBe('waiting');
    expect(echo.connections).toBe(3);
    await c2.close();
    await c3.close();
  });

  test('idle timeout closes quiet connections and counts them', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-o', 'idle_timeout 1', 'LISTEN', `127.0.0.1:${echo.port}`]);
    const c = await h.connect(lb.port, { timeoutMs: 6000 });
    await c.write('ping');
    expect((await c.readExactly(4)).toString()).toBe('ping');
    expect(await c.waitClosed(6000)).toBe('fin');
    expect(lb.balancer.totals.ends['idle-timeout']).toBe(1);
  });
});

describe('the wait queue under -x', () => {
  test('beyond -q waiting clients, new ones are closed and counted (queue-full)', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-x', '1', '-q', '1', 'LISTEN', `127.0.0.1:${echo.port}`]);
    const c1 = await h.connect(lb.port);
    await echo.waitForActive(1);
    const c2 = await h.connect(lb.port); // waits
    await waitFor(() => lb.balancer.waitingCount === 1, { what: 'one client waiting' });
    const c3 = await h.connect(lb.port); // nowhere to wait
    expect(await c3.waitClosed()).toBe('fin');
    expect(lb.balancer.totals.ends['queue-full']).toBe(1);
    await c1.close();
    await c2.write('served');
    expect((await c2.readExactly(6)).toString()).toBe('served');
  });
});

describe('pen commands', () => {
  test('server N address NAME resolves the name when the command runs; bad names are refused', async () => {
    const a = h.identify('A', { keepOpen: false });
    const lb = await startInProcess(h, ['LISTEN', `127.0.0.1:${a.port}`]);
    await lb.commands.execute(`server 0 address localhost port ${a.port}`);
    const addr = lb.balancer.defaultGroup.servers[0]!.address;
    expect(addr.kind === 'tcp' && (addr.host === '127.0.0.1' || addr.host === '::1')).toBe(true);
    await expect(lb.commands.execute('server 0 address no-such-host.invalid')).rejects.toThrow(/cannot resolve/);
    expect(await whoServes(lb.port)).toBe('A');
  });
});

describe('bursts', () => {
  test('800 clients arriving at once are all served with the defaults (none closed as queue-full)', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-x', '5000', 'LISTEN', `127.0.0.1:${echo.port}`]);
    const clients = await Promise.all(Array.from({ length: 800 }, () => connect(lb.port, { timeoutMs: 20_000 })));
    try {
      await Promise.all(clients.map((c, i) => c.write(`hello ${i}\n`)));
      const lines = await Promise.all(clients.map((c) => c.readLine(20_000)));
      expect(lines.every((l, i) => l === `hello ${i}`)).toBe(true);
      expect(lb.balancer.totals.ends['queue-full'] ?? 0).toBe(0);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
