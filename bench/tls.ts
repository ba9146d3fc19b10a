/**
 * TLS side by side: full handshakes per second (and resumed ones), and bulk TLS throughput,
 * through Fulcrum (Bun's native TLS), pen 0.34.1 (-E -K, OpenSSL), HAProxy (OpenSSL), and a
 * minimal node:tls proxy on Bun (what Fulcrum would cost on node:tls streams). Everything runs
 * on loopback on this machine, one client at a time, so the numbers compare the balancers with
 * each other rather than measure any of them at their best. Not part of npm test.
 *
 *   bun bench/tls.ts [--seconds 1] [--megabytes 64] [--runs 3] [--hold 400] [--only fulcrum,pen,haproxy,node-tls]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { penCommand } from '../test/harness/process.ts';
import { TestPki } from '../test/helpers/certs.ts';

const root = resolve(import.meta.dir, '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
};
const SECONDS = Number(opt('seconds', '1'));
const MEGABYTES = Number(opt('megabytes', '64'));
const ONLY = opt('only', 'fulcrum,pen,haproxy,node-tls').split(',');
/** Best of N runs: the machine is shared, and interference only ever makes a run slower. */
const RUNS = Number(opt('runs', '3'));
const bun = process.execPath;

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

async function waitListening(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('connect', () => (c.destroy(), r(true)));
      c.on('error', () => r(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`nothing listens on ${port} after ${ms}ms`);
}

const children: ChildProcess[] = [];
const logs: string[] = [];
function start(cmd: string[], name: string): ChildProcess {
  // Output goes to a file: the measurements block this process, and a full pipe would block the child.
  const logPath = join(tmpdir(), `fulcrum-bench-${name}-${process.pid}.log`);
  const fd = openSync(logPath, 'w');
  logs.push(logPath);
  const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', fd, fd], cwd: root });
  closeSync(fd);
  p.on('exit', (code, signal) => {
    if (signal !== null && signal !== 'SIGTERM' && !stopping) console.error(`${name} died of ${signal}`);
    if (code !== 0 && code !== null && !stopping) console.error(`${name} exited with ${code}: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
  });
  children.push(p);
  return p;
}
let stopping = false;
function stop(p: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) return r();
    p.on('exit', () => r());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 3000);
  });
}

/**
 * openssl s_time: sequential handshakes from one client for `SECONDS`. Full handshakes use TLS
 * 1.3. Resumption is measured with TLS 1.2: s_time never reads after the handshake, so it never
 * sees a TLS 1.3 ticket (sent after the handshake), from any of the servers.
 */
function handshakes(port: number, reuse: boolean): { rate: number; reusedShare: number } {
  const r = spawnSync('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, ...(reuse ? ['-reuse', '-tls1_2'] : ['-new']), '-time', String(SECONDS)], {
    encoding: 'utf8',
    timeout: (SECONDS + 20) * 1000,
  });
  const m = /(\d+) connections in ([\d.]+) real seconds/.exec(r.stdout);
  if (m === null) {
    console.error(`s_time gave no result: ${r.stdout.slice(-300)} ${r.stderr.slice(-300)}`);
    return { rate: NaN, reusedShare: NaN };
  }
  // s_time prints "r" for a resumed session and "*" for a new one.
  const marks = /starting\s*\n([r*]+)/.exec(r.stdout)?.[1] ?? '';
  const reused = [...marks].filter((c) => c === 'r').length;
  return { rate: Number(m[1]) / Number(m[2]), reusedShare: marks.length === 0 ? 0 : reused / marks.length };
}

/** Sends MEGABYTES over one TLS connection to the sink behind; MB/s until the sink has counted them all. */
function bulk(port: number): number {
  const r = spawnSync(bun, [join(root, 'bench/tls-helpers/bulk-client.ts'), String(port), String(MEGABYTES)], { encoding: 'utf8', timeout: 120_000 });
  const m = /([\d.]+) MB\/s/.exec(r.stdout);
  if (m === null) {
    console.error(`bulk client failed: ${r.stdout} ${r.stderr}`);
    return NaN;
  }
  return Number(m[1]);
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

const HOLD = Number(opt('hold', '400')); // below pen's default -x 500

/** Memory per established TLS connection: the balancer's RSS before and while HOLD connections are open. */
async function memoryPerConnection(port: number, pid: number): Promise<number> {
  const before = rssKb(pid);
  const client = spawn(bun, [join(root, 'bench/tls-helpers/hold-client.ts'), String(port), String(HOLD)], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.push(client);
  await new Promise<void>((r, reject) => {
    const t = setTimeout(() => reject(new Error('hold client not ready in 60s')), 60_000);
    client.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(t);
        r();
      }
    });
  });
  const during = rssKb(pid);
  client.stdin?.end();
  await stop(client);
  await Bun.sleep(1000); // let the balancer close them before the next measurement
  return ((during - before) * 1024) / HOLD / 1024;
}

async function main(): Promise<void> {
  const pki = new TestPki();
  const leaf = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  const sinkPort = await freePort();
  const sink = start([bun, join(root, 'bench/tls-helpers/sink.ts'), String(sinkPort)], 'sink');
  await waitListening(sinkPort);
  const rows: { name: string; full: number; resumed: number; reusedShare: number; mbps: number; kbPerConn: number }[] = [];
  const dir = pki.dir;

  const systems: Record<string, (port: number) => string[]> = {
    fulcrum: (port) => [bun, 'src/cli/main.ts', '-f', '-E', leaf.cert, '-K', leaf.key, `127.0.0.1:${port}`, `127.0.0.1:${sinkPort}`],
    // Without core dumps and outside the tree: this run made pen dump the core once committed (docs/architecture.md).
    pen: (port) => penCommand(['-f', '-E', leaf.cert, '-K', leaf.key, `127.0.0.1:${port}`, `127.0.0.1:${sinkPort}`]),
    haproxy: (port) => {
      const cfg = join(dir, 'haproxy.cfg');
      writeFileSync(
        cfg,
        [
          'global',
          '  maxconn 1000',
          '  nbthread 1',
          'defaults',
          '  mode tcp',
          '  timeout connect 3s',
          '  timeout client 30s',
          '  timeout server 30s',
          'frontend tls',
          `  bind 127.0.0.1:${port} ssl crt ${leaf.combined}`,
          '  default_backend app',
          'backend app',
          `  server s1 127.0.0.1:${sinkPort}`,
          '',
        ].join('\n'),
      );
      return ['haproxy', '-db', '-f', cfg];
    },
    'node-tls': (port) => [bun, join(root, 'bench/tls-helpers/node-proxy.ts'), String(port), String(sinkPort), leaf.cert, leaf.key],
  };

  for (const name of ONLY) {
    const make = systems[name];
    if (make === undefined) continue;
    if (name !== 'fulcrum' && name !== 'node-tls' && spawnSync('which', [name]).status !== 0) {
      console.error(`${name} is not installed; skipped`);
      continue;
    }
    let port = await freePort();
    let p = start(make(port), name);
    console.error(`${name}: measuring on port ${port}`);
    await waitListening(port);
    await Bun.sleep(300);
    let full = 0;
    let resumed = 0;
    let reusedShare = 0;
    let mbps = 0;
    // A failed run (NaN) is reported on stderr and does not count.
    const best = (a: number, b: number): number => (Number.isNaN(b) ? a : Math.max(a, b));
    for (let i = 0; i < RUNS; i++) {
      full = best(full, handshakes(port, false).rate);
      const r = handshakes(port, true);
      if (r.rate > resumed) {
        resumed = r.rate;
        reusedShare = r.reusedShare;
      }
      mbps = best(mbps, bulk(port));
    }
    await stop(p);
    // Memory in a fresh process, whose heap the runs above have not grown.
    port = await freePort();
    p = start(make(port), name);
    await waitListening(port);
    await Bun.sleep(300);
    const kbPerConn = await memoryPerConnection(port, p.pid!);
    await stop(p);
    rows.push({ name, full, resumed, reusedShare, mbps, kbPerConn });
  }
  stopping = true;
  await stop(sink);
  pki.close();

  const cpu = spawnSync('nproc').stdout?.toString().trim();
  console.log(`\nTLS 1.3, ECDSA P-256, loopback, one client at a time; best of ${RUNS} runs of ${SECONDS}s (handshakes) and ${MEGABYTES} MB (bulk); ${cpu} CPUs (shared)\n`);
  console.log(`| balancer | full handshakes/s (TLS 1.3) | resumed handshakes/s (TLS 1.2) | sessions resumed | bulk MB/s | RSS per open TLS connection (${HOLD} held) |`);
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.full.toFixed(0)} | ${r.resumed.toFixed(0)} | ${(r.reusedShare * 100).toFixed(0)}% | ${r.mbps.toFixed(0)} | ${r.kbPerConn.toFixed(1)} KB |`);
  }
}

try {
  await main();
} finally {
  stopping = true;
  await Promise.all(children.map(stop));
  for (const l of logs) rmSync(l, { force: true });
}
