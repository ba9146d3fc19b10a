/**
 * The UDP row (issue 12, docs/udp.md "Bench"): a DNS-shaped exchange through Fulcrum -U, pen -U
 * and nginx's stream `udp`, each pinned to the balancer core, and the direct path (the ceiling).
 * The generator is dnsperf (Debian; scripts/ensure-peers.sh --bench) on the load core, with a
 * few clients (sessions) and many queries outstanding; the backend is a small DNS responder in
 * this process (also on the load core) that answers every A query with one address.
 *
 * Figures per peer: datagrams/s (a completed query is two datagrams relayed by the balancer:
 * the query towards the server, the answer back to the client), CPU µs per datagram (utime +
 * stime of the balancer's processes from /proc over the measured window, nginx: master +
 * worker), and memory per session (a fresh process, N sessions from distinct client sockets,
 * each with one answered query, held open: growth of VmRSS / N).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { udp } from 'bun';
import { penCommand, repoRoot, spawnProcess, type RunningProcess } from '../../test/harness/process.ts';
import { waitUdpBound } from '../../test/harness/udp.ts';
import { errorMessage, waitFor } from '../../test/harness/util.ts';
import type { Options } from './options.ts';
import { nginxPreamble, PEERS, type PeerName } from './peers.ts';
import { childrenOf, cpuMicros, pinned, rssKiB, runTool } from './proc.ts';
import type { Row } from './results.ts';

/** Peers with a UDP form, in report order. */
export const UDP_PEERS = ['direct', 'fulcrum', 'pen', 'nginx'] as const satisfies readonly PeerName[];
type UdpPeerName = (typeof UDP_PEERS)[number];

/** dnsperf clients (one socket each: a session on the balancer) and queries kept outstanding. */
export const UDP_CLIENTS = 16;
export const UDP_OUTSTANDING = 256;
/** Sessions a source address opens in the memory figure: within Fulcrum's default per-source limit (64). */
export const SESSIONS_PER_SOURCE = 64;
/** The query every exchange asks (dnsperf's data file). */
const QUERY_LINE = 'bench.example. A\n';
const NGINX = '/usr/sbin/nginx';
const SETTLE_MS = 1_000;

export type Log = (line: string) => void;

export interface UdpContext {
  options: Options;
  /** Core for the balancer, or null when not pinning (the load inherits this process's core). */
  balancerCpu: number | null;
  log: Log;
}

/** A DNS answer to `query`: its header and question, QR + RD + RA, one A record 127.0.0.1. Null if it is no query. */
export function dnsAnswer(query: Uint8Array): Uint8Array | null {
  if (query.length < 17 || (query[2]! & 0x80) !== 0) return null;
  const out = new Uint8Array(query.length + 16);
  out.set(query);
  const v = new DataView(out.buffer);
  v.setUint16(2, 0x8180 | (query[2]! & 0x01) << 8);
  v.setUint16(6, 1); // ANCOUNT
  v.setUint16(8, 0);
  v.setUint16(10, 0);
  // name: pointer to the question (offset 12), type A, class IN, TTL 60, 4 bytes of address
  out.set([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1], query.length);
  return out;
}

export interface DnsperfResult {
  completed: number;
  lost: number;
  seconds: number;
}

/** Reads dnsperf's summary ("Queries completed: N", "Queries lost: N", "Run time (s): S"); null if absent. */
export function parseDnsperf(text: string): DnsperfResult | null {
  const completed = /Queries completed:\s+(\d+)/.exec(text);
  const lost = /Queries lost:\s+(\d+)/.exec(text);
  const seconds = /Run time \(s\):\s+([\d.]+)/.exec(text);
  if (completed === null || seconds === null) return null;
  return { completed: Number(completed[1]), lost: lost === null ? 0 : Number(lost[1]), seconds: Number(seconds[1]) };
}

/** The source address of the i-th memory client: 127.0.1.x, then 127.0.2.x, ..., SESSIONS_PER_SOURCE on each. */
export function sourceAddress(i: number): string {
  const n = Math.floor(i / SESSIONS_PER_SOURCE);
  return `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`;
}

/** The DNS responder: one socket in this process. */
class DnsBackend {
  answered = 0;
  private constructor(readonly socket: udp.Socket<'buffer'>) {}

  static async open(): Promise<DnsBackend> {
    let self: DnsBackend | null = null;
    const socket = await Bun.udpSocket({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        data(s, d, port, address) {
          const a = dnsAnswer(d);
          if (a === null || self === null) return;
          self.answered++;
          s.send(a, port, address);
        },
      },
    });
    self = new DnsBackend(socket);
    return self;
  }

  get port(): number {
    return this.socket.port;
  }
  close(): void {
    this.socket.close();
  }
}

interface RunningUdpPeer {
  port: number;
  pids(): number[];
  close(): Promise<void>;
}


/** `hold`: sessions live until the run ends (the memory figure); else nginx ends each after its answer, as for DNS. */
async function startUdpPeer(name: UdpPeerName, backendPort: number, cpu: number | null, dir: string, maxSessions: number, hold: boolean): Promise<RunningUdpPeer> {
  if (name === 'direct') return { port: backendPort, pids: () => [], close: async () => {} };
  const port = await freeUdpPortHere();
  const backend = `127.0.0.1:${backendPort}`;
  const listen = `127.0.0.1:${port}`;
  let proc: RunningProcess;
  if (name === 'fulcrum') {
    proc = await spawnProcess(pinned([join(repoRoot, 'bin/fulcrum'), '-f', '-U', '-r', '-x', String(maxSessions), listen, backend], cpu), { name, readiness: false });
  } else if (name === 'pen') {
    proc = await spawnProcess(pinned(penCommand(['-f', '-U', '-r', '-x', String(maxSessions), listen, backend]), cpu), { name, readiness: false });
  } else {
    const cfg = join(dir, 'nginx-udp.conf');
    const workerConnections = 2 * maxSessions + 64;
    writeFileSync(
      cfg,
      [
        ...nginxPreamble(dir, 'nginx-udp', workerConnections, true),
        'stream {',
        `  upstream be { server ${backend}; }`,
        '  server {',
        `    listen ${listen} udp;`,
        '    proxy_pass be;',
        '    proxy_timeout 1h;',
        ...(hold ? [] : ['    proxy_responses 1;']),
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    proc = await spawnProcess(pinned([NGINX, '-p', dir, '-e', join(dir, 'nginx-udp-error.log'), '-c', cfg], cpu), { name, readiness: false });
  }
  try {
    await waitUdpBound(port, 15_000);
  } catch (err) {
    await proc.close();
    throw err;
  }
  return { port, pids: () => (name === 'nginx' ? [proc.pid, ...childrenOf(proc.pid)] : [proc.pid]), close: () => proc.close() };
}

async function freeUdpPortHere(): Promise<number> {
  const s = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
  const port = s.port;
  s.close();
  return port;
}

/** Runs dnsperf against `port` for `ms` (bounded) and reads its summary. */
function dnsperf(port: number, ms: number, dataFile: string): Promise<DnsperfResult> {
  const seconds = Math.max(1, Math.round(ms / 1000));
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', dataFile, '-c', String(UDP_CLIENTS), '-q', String(UDP_OUTSTANDING), '-T', '1', '-l', String(seconds), '-t', '2'];
  return runTool('dnsperf', args, seconds, parseDnsperf);
}

/** Opens `n` sessions (one socket and one answered query each) through `port`; returns them and how many were answered. */
async function openSessions(port: number, n: number): Promise<{ sockets: udp.Socket<'buffer'>[]; answered: () => number }> {
  let answered = 0;
  const sockets: udp.Socket<'buffer'>[] = [];
  const query = Buffer.from('abcd010000010000000000000562656e6368076578616d706c650000010001', 'hex');
  for (let i = 0; i < n; i++) {
    const s = await Bun.udpSocket({ hostname: sourceAddress(i), port: 0, socket: {
        data: () => {
          answered++;
        },
      },
    });
    sockets.push(s);
    s.send(query, port, '127.0.0.1');
    if (i % 64 === 63) await Bun.sleep(1); // let the answers in: no burst beyond the buffers
  }
  return { sockets, answered: () => answered };
}

function dnsperfMissing(): string | null {
  return spawnSync('dnsperf', ['-h'], { timeout: 5_000 }).error === undefined ? null : 'dnsperf is not installed (scripts/ensure-peers.sh --bench)';
}

/** Why a peer cannot run the UDP row here, or null. */
function missing(name: UdpPeerName): string | null {
  return dnsperfMissing() ?? PEERS[name].missing();
}

/** The UDP row for every selected peer that has a UDP form. */
export async function runUdp(ctx: UdpContext, dir: string): Promise<Row[]> {
  const o = ctx.options;
  const rows: Row[] = [];
  const add = (peer: PeerName, metric: Row['metric'], values: number[], errors = 0, note = '', streams = UDP_CLIENTS): void => {
    rows.push({ peer, scenario: 'udp', idle: 0, streams, metric, values, errors, note });
  };
  const dataFile = join(dir, 'dnsperf-queries.txt');
  writeFileSync(dataFile, QUERY_LINE);
  const backend = await DnsBackend.open();
  try {
    for (const name of UDP_PEERS.filter((p) => o.peers.includes(p))) {
      const why = missing(name);
      if (why !== null) {
        ctx.log(`[${name}] udp skipped: ${why}`);
        add(name, 'dgram_per_s', [], 0, `skipped: ${why}`);
        continue;
      }
      try {
        await throughput(name, backend, ctx, dir, dataFile, add);
        if (name !== 'direct') await memory(name, backend, ctx, dir, add);
      } catch (err) {
        ctx.log(`[${name}] udp failed: ${errorMessage(err)}`);
        add(name, 'dgram_per_s', [], 0, `failed: ${errorMessage(err).split('\n')[0]}`);
      }
    }
  } finally {
    backend.close();
  }
  return rows;
}

type Add = (peer: PeerName, metric: Row['metric'], values: number[], errors?: number, note?: string, streams?: number) => void;

async function throughput(name: UdpPeerName, backend: DnsBackend, ctx: UdpContext, dir: string, dataFile: string, add: Add): Promise<void> {
  const o = ctx.options;
  const peer = await startUdpPeer(name, backend.port, ctx.balancerCpu, dir, UDP_CLIENTS + 1000, false);
  const rates: number[] = [];
  const cpu: number[] = [];
  let lost = 0;
  try {
    if (o.warmupMs > 0) await dnsperf(peer.port, o.warmupMs, dataFile);
    for (let r = 0; r < o.repeats; r++) {
      const before = cpuMicros(peer.pids());
      const res = await dnsperf(peer.port, o.durationMs, dataFile);
      const used = cpuMicros(peer.pids()) - before;
      const datagrams = 2 * res.completed;
      rates.push(datagrams / res.seconds);
      if (name !== 'direct') cpu.push(datagrams > 0 ? used / datagrams : NaN);
      lost += res.lost;
      ctx.log(`[${name}] udp: ${Math.round(datagrams / res.seconds).toLocaleString('en-US')} datagrams/s${name !== 'direct' ? `, ${(used / datagrams).toFixed(2)} µs CPU each` : ''}, ${res.lost} lost`);
    }
  } finally {
    await peer.close();
  }
  add(name, 'dgram_per_s', rates, lost, lost > 0 ? `${lost} queries lost (unanswered within dnsperf's 2 s)` : '');
  if (name !== 'direct') add(name, 'cpu_us_per_dgram', cpu);
}

async function memory(name: UdpPeerName, backend: DnsBackend, ctx: UdpContext, dir: string, add: Add): Promise<void> {
  const n = ctx.options.udpSessions;
  const peer = await startUdpPeer(name, backend.port, ctx.balancerCpu, dir, n + 100, true);
  let sockets: udp.Socket<'buffer'>[] = [];
  try {
    await Bun.sleep(SETTLE_MS);
    const base = peer.pids().reduce((s, pid) => s + rssKiB(pid), 0);
    const open = await openSessions(peer.port, n);
    sockets = open.sockets;
    await waitFor(() => open.answered() >= n, { timeoutMs: 30_000, what: `${n} answered sessions through ${name}` }).catch(() => undefined);
    const answered = open.answered();
    await Bun.sleep(SETTLE_MS);
    const after = peer.pids().reduce((s, pid) => s + rssKiB(pid), 0);
    add(name, 'rss_base_kib', [base], 0, '', n);
    add(name, 'bytes_per_session', [((after - base) * 1024) / n], n - answered, answered < n ? `${n - answered} of ${n} sessions unanswered` : '', n);
  } finally {
    for (const s of sockets) s.close();
    await peer.close();
  }
}
