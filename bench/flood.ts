/**
 * The large idle flood of issue 13, run by hand (not in the suite; docs/hardening.md has the figures):
 *   bun bench/flood.ts [IDLE] [TRICKLING] [PEER...]
 * For each peer (fulcrum-pen: pen's command line with its defaults; fulcrum-config: a config
 * file with its defaults; haproxy: mode tcp with HAProxy's defaults, only the timeouts it
 * insists on): an echo backend in this process, then IDLE connections (default 3000) that send
 * nothing and TRICKLING ones (default 3000) that send one byte a second, all from 127.0.0.2;
 * then, two seconds later, a well-behaved client from 127.0.0.3 five times in a row (1 KB
 * echoed). Prints per peer how many of the good clients were served and how fast, and how
 * many flood connections the balancer still held open. Loopback only.
 */
import { spawn, type Subprocess } from 'bun';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [idleText = '3000', trickleText = '3000', ...peerArgs] = process.argv.slice(2);
const IDLE = Number(idleText);
const TRICKLING = Number(trickleText);
const PEERS = peerArgs.length > 0 ? peerArgs : ['fulcrum-pen', 'fulcrum-config', 'haproxy'];
const ROOT = join(import.meta.dir, '..');
const GOOD_TIMEOUT_MS = 15_000;
const IN_FLIGHT = 200;

function freePort(): number {
  const s = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

function echoBackend(): { port: number; stop(): void } {
  const s = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data(sock, d) { sock.write(d); } } });
  return { port: s.port, stop: () => s.stop(true) };
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ port, host: '127.0.0.1' }, () => (c.destroy(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

function startPeer(name: string, port: number, backend: number, dir: string): Subprocess {
  const server = `127.0.0.1:${backend}`;
  switch (name) {
    case 'fulcrum-pen':
      return spawn([join(ROOT, 'bin/fulcrum'), '-f', `127.0.0.1:${port}`, server], { stdout: 'ignore', stderr: 'ignore' });
    case 'fulcrum-config': {
      const cfg = join(dir, 'fulcrum.yaml');
      writeFileSync(cfg, ['groups:', '  app:', `    servers: [${server}]`, 'listeners:', `  - listen: 127.0.0.1:${port}`, '    group: app', ''].join('\n'));
      return spawn([join(ROOT, 'bin/fulcrum'), '--config', cfg], { stdout: 'ignore', stderr: 'ignore' });
    }
    case 'haproxy': {
      const cfg = join(dir, 'haproxy.cfg');
      writeFileSync(cfg, ['defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 1h', '  timeout server 1h', 'frontend fe', `  bind 127.0.0.1:${port}`, '  default_backend be', 'backend be', `  server s1 ${server}`, ''].join('\n'));
      return spawn(['/usr/sbin/haproxy', '-db', '-f', cfg], { stdout: 'ignore', stderr: 'ignore' });
    }
    default:
      throw new Error(`unknown peer ${name}`);
  }
}

/** Opens `n` connections from 127.0.0.2, at most IN_FLIGHT connecting at once. */
async function flood(port: number, n: number, open: Set<net.Socket>): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const c = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      c.on('connect', () => (open.add(c), out.push(c), resolve()));
      c.on('error', () => resolve());
      c.on('close', () => (open.delete(c), resolve()));
    });
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next++ < n) await one();
  }));
  return out;
}

/** A well-behaved client: 1 KB echoed; milliseconds, or null if not served in time. */
function goodClient(port: number): Promise<number | null> {
  const start = performance.now();
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' });
    let got = 0;
    const timer = setTimeout(() => (c.destroy(), resolve(null)), GOOD_TIMEOUT_MS);
    c.on('connect', () => c.write(Buffer.alloc(1024, 7)));
    c.on('data', (d) => {
      got += d.length;
      if (got >= 1024) {
        clearTimeout(timer);
        c.destroy();
        resolve(performance.now() - start);
      }
    });
    c.on('error', () => (clearTimeout(timer), resolve(null)));
    c.on('close', () => (clearTimeout(timer), resolve(got >= 1024 ? performance.now() - start : null)));
  });
}

for (const name of PEERS) {
  const dir = mkdtempSync(join(tmpdir(), 'fulcrum-flood-'));
  const backend = echoBackend();
  const port = freePort();
  const proc = startPeer(name, port, backend.port, dir);
  try {
    await waitPort(port);
    const open = new Set<net.Socket>();
    await flood(port, IDLE, open);
    const trickling = await flood(port, TRICKLING, open);
    const timer = setInterval(() => {
      for (const c of trickling) if (!c.destroyed) c.write('.');
    }, 1000);
    await Bun.sleep(2000);
    const times: (number | null)[] = [];
    for (let i = 0; i < 5; i++) times.push(await goodClient(port));
    clearInterval(timer);
    const served = times.filter((t): t is number => t !== null);
    const ms = served.map((t) => t.toFixed(0)).join(', ');
    console.log(`${name}: good clients served ${served.length}/5 (${ms === '' ? '-' : ms} ms); flood connections still open ${open.size} of ${IDLE + TRICKLING}`);
    for (const c of open) c.destroy();
  } finally {
    proc.kill();
    await proc.exited;
    backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(0);
