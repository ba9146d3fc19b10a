/**
 * The balancers under test, each started the same way: listening on one loopback port,
 * forwarding to the bench's backend, confined to one core, configured for the same number of
 * connections and with timeouts long enough never to cut an idle connection during a run.
 * Configuration files are generated into a temporary directory; processes are started and
 * stopped by pid through the test harness (bounded readiness, SIGTERM then SIGKILL).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { penPath, repoRoot, spawnProcess, type RunningProcess } from '../../test/harness/process.ts';
import type { Target } from './generator.ts';
import { childrenOf } from './proc.ts';
import pkg from '../../package.json' with { type: 'json' };

export const PEER_NAMES = ['direct', 'fulcrum', 'pen', 'pen-poll', 'haproxy', 'nginx'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export function isPeerName(name: string): name is PeerName {
  return (PEER_NAMES as readonly string[]).includes(name);
}

export interface PeerContext {
  /** Port the balancer listens on (127.0.0.1). */
  port: number;
  backend: Target;
  /** The core to pin the balancer to, or null for no pinning. */
  cpu: number | null;
  /** Scratch directory for configuration, pid and log files. */
  dir: string;
  /** Simultaneous proxied connections it must accept (idle ones included). */
  maxConnections: number;
}

export interface RunningPeer {
  /** Where the generator connects. */
  readonly target: Target;
  /** The processes whose memory counts (nginx: master and worker); empty for the direct path. */
  pids(): number[];
  close(): Promise<void>;
}

export interface Peer {
  readonly name: PeerName;
  /** How it is run, for the report. */
  readonly describe: string;
  /** Why it cannot run here, or null when it can. */
  missing(): string | null;
  version(): string;
  start(ctx: PeerContext): Promise<RunningPeer>;
}

const HAPROXY = '/usr/sbin/haproxy';
const NGINX = '/usr/sbin/nginx';
const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

function pinned(cmd: string[], cpu: number | null): string[] {
  return cpu === null ? cmd : ['taskset', '-c', String(cpu), ...cmd];
}

/** First line a command prints about its version (stdout or stderr), or 'unknown'. */
function versionOf(cmd: string[], pattern: RegExp): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 5_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  return pattern.exec(text)?.[1] ?? 'unknown';
}

function debianVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', timeout: 5_000 });
  return r.status === 0 && r.stdout !== '' ? r.stdout : 'unknown';
}

/** A single-process peer: its pid is the one that serves. */
function processPeer(proc: RunningProcess, port: number): RunningPeer {
  return { target: { host: '127.0.0.1', port }, pids: () => [proc.pid], close: () => proc.close() };
}

const direct: Peer = {
  name: 'direct',
  describe: 'no balancer: the generator connects straight to the backend (the ceiling)',
  missing: () => null,
  version: () => '-',
  start: async (ctx) => ({ target: ctx.backend, pids: () => [], close: async () => {} }),
};

const fulcrum: Peer = {
  name: 'fulcrum',
  describe: 'bin/fulcrum -f -r -x N (pen command line), one process',
  missing: () => null,
  version: () => {
    const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', timeout: 5_000 });
    return `${pkg.version}${rev.status === 0 ? ` (${rev.stdout.trim()})` : ''} on Bun ${Bun.version}`;
  },
  start: async (ctx) => {
    const cmd = [join(repoRoot, 'bin/fulcrum'), '-f', '-r', '-x', String(ctx.maxConnections), `127.0.0.1:${ctx.port}`, `${ctx.backend.host}:${ctx.backend.port}`];
    return processPeer(await spawnProcess(pinned(cmd, ctx.cpu), { name: 'fulcrum', port: ctx.port }), ctx.port);
  },
};

// HOOK(issue 6, workers): idle connections beyond 9,000 need several Fulcrum workers (each
// proxied connection costs a process 2 of its 20,000 files). When Fulcrum has workers:
// - add a `fulcrum-workers` peer here that starts them (and set this flag, which today makes the
//   report print the row as skipped);
// - let run.ts's open-files check count files per worker instead of per process, and add the
//   steps beyond 9,000 to the ladder for that peer (options.ts);
// - the backend, in the bench's own process, can hold only ~19,000 connections: run several
//   backends (bench/lib/backend.ts takes a port) and list them all on the balancer's command line.
// Holders already split themselves, 9,000 connections per process (idle.ts).
export const FULCRUM_WORKERS_AVAILABLE = false;

function penPeer(name: 'pen' | 'pen-poll'): Peer {
  const poll = name === 'pen-poll';
  return {
    name,
    describe: poll ? 'pen -f -r -P -x N: poll(), its pollfd array rebuilt every loop' : 'pen -f -r -x N: epoll',
    missing: () => (penPath() === undefined ? 'pen is not installed (scripts/ensure-peers.sh)' : null),
    version: () => debianVersion('pen'),
    start: async (ctx) => {
      const cmd = [penPath() ?? 'pen', '-f', '-r', ...(poll ? ['-P'] : []), '-x', String(ctx.maxConnections), `127.0.0.1:${ctx.port}`, `${ctx.backend.host}:${ctx.backend.port}`];
      return processPeer(await spawnProcess(pinned(cmd, ctx.cpu), { name, port: ctx.port }), ctx.port);
    },
  };
}

const haproxy: Peer = {
  name: 'haproxy',
  describe: 'haproxy -db: mode tcp, nbthread 1, maxconn N',
  missing: () => (existsSync(HAPROXY) ? null : 'haproxy is not installed (scripts/ensure-peers.sh)'),
  version: () => versionOf([HAPROXY, '-v'], /HAProxy version (\S+)/),
  start: async (ctx) => {
    const cfg = join(ctx.dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  nbthread 1',
        `  maxconn ${ctx.maxConnections}`,
        'defaults',
        '  mode tcp',
        `  maxconn ${ctx.maxConnections}`,
        '  timeout connect 5s',
        '  timeout client 1h',
        '  timeout server 1h',
        'frontend fe',
        `  bind 127.0.0.1:${ctx.port}`,
        '  default_backend be',
        'backend be',
        '  balance roundrobin',
        `  server s1 ${ctx.backend.host}:${ctx.backend.port}`,
        '',
      ].join('\n'),
    );
    return processPeer(await spawnProcess(pinned([HAPROXY, '-db', '-f', cfg], ctx.cpu), { name: 'haproxy', port: ctx.port }), ctx.port);
  },
};

const nginx: Peer = {
  name: 'nginx',
  describe: 'nginx stream module: worker_processes 1, proxy_pass; memory = master + worker',
  missing: () =>
    !existsSync(NGINX) ? 'nginx is not installed (scripts/ensure-peers.sh --bench)' : !existsSync(NGINX_STREAM_MODULE) ? 'nginx has no stream module (libnginx-mod-stream; scripts/ensure-peers.sh --bench)' : null,
  version: () => versionOf([NGINX, '-v'], /nginx version: nginx\/(\S+)/),
  start: async (ctx) => {
    const cfg = join(ctx.dir, 'nginx.conf');
    // Each proxied connection is two of nginx's connections; the listener is one more.
    const workerConnections = 2 * ctx.maxConnections + 64;
    writeFileSync(
      cfg,
      [
        `load_module ${NGINX_STREAM_MODULE};`,
        'daemon off;',
        'master_process on;',
        'worker_processes 1;',
        `worker_rlimit_nofile ${workerConnections + 64};`,
        `pid ${join(ctx.dir, 'nginx.pid')};`,
        `error_log ${join(ctx.dir, 'nginx-error.log')} warn;`,
        `events { worker_connections ${workerConnections}; }`,
        'stream {',
        `  upstream be { server ${ctx.backend.host}:${ctx.backend.port}; }`,
        '  server {',
        `    listen 127.0.0.1:${ctx.port};`,
        '    proxy_pass be;',
        '    proxy_connect_timeout 5s;',
        '    proxy_timeout 1h;',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const proc = await spawnProcess(pinned([NGINX, '-p', ctx.dir, '-e', join(ctx.dir, 'nginx-error.log'), '-c', cfg], ctx.cpu), { name: 'nginx', port: ctx.port });
    return {
      target: { host: '127.0.0.1', port: ctx.port },
      pids: () => [proc.pid, ...childrenOf(proc.pid)],
      close: () => proc.close(),
    };
  },
};

export const PEERS: Record<PeerName, Peer> = {
  direct,
  fulcrum,
  pen: penPeer('pen'),
  'pen-poll': penPeer('pen-poll'),
  haproxy,
  nginx,
};
