/**
 * The balancers under test, each started the same way: listening on one loopback port,
 * forwarding to the bench's backend, confined to one core, configured for the same number of
 * connections and with timeouts long enough never to cut an idle connection during a run.
 * Configuration files are generated into a temporary directory; processes are started and
 * stopped by pid through the test harness (bounded readiness, SIGTERM then SIGKILL).
 *
 * Fulcrum alone can also start with several workers (PeerContext.workers): the `workers`
 * scenario (suite.ts) holds more idle connections than one process has files for.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { penCommand, penPath, repoRoot, spawnProcess, type RunningProcess } from '../../test/harness/process.ts';
import type { Target } from './generator.ts';
import { trackedPeer } from './cluster-peer.ts';
import { childrenOf, pinned } from './proc.ts';
import pkg from '../../package.json' with { type: 'json' };

export const PEER_NAMES = ['direct', 'fulcrum', 'naive', 'naive-raw', 'pen', 'pen-poll', 'haproxy', 'nginx', 'fulcrum-tracked', 'fulcrum-cluster'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

/**
 * Peers run only when named with --peers: the cluster pair answers one question (connrate with
 * and without `cluster:`), and running it in every full bench would nearly double its time.
 */
export const OPT_IN_PEERS: readonly PeerName[] = ['fulcrum-tracked', 'fulcrum-cluster'];

/** Peers with only an HTTP form (bench/lib/http.ts): the TCP and UDP scenarios pass them by. */
export const HTTP_ONLY_PEERS: readonly PeerName[] = ['naive-raw'];

/** The peers of a run without --peers. */
export const DEFAULT_PEERS: readonly PeerName[] = PEER_NAMES.filter((p) => !OPT_IN_PEERS.includes(p));

export function isPeerName(name: string): name is PeerName {
  return (PEER_NAMES as readonly string[]).includes(name);
}

export interface PeerContext {
  /** Port the balancer listens on (127.0.0.1). */
  port: number;
  backend: Target;
  /** The core to pin the balancer to, a CPU list for taskset ('0-1'), or null for no pinning. */
  cpu: number | string | null;
  /** The load's core, for a peer's helpers that are not the balancer under test (a Redis); null: not pinned. */
  loadCpu?: number | null;
  /** Scratch directory for configuration, pid and log files. */
  dir: string;
  /** Simultaneous proxied connections it must accept (idle ones included). */
  maxConnections: number;
  /** Fulcrum only: several worker processes instead of one (absent: one process). */
  workers?: WorkersContext;
}

/**
 * Fulcrum with workers: `count` processes share the ports; they forward round robin to every
 * one of `backends`, and listen on `idlePorts` too, one per idle holder, besides `port` (the
 * load's), so that no loopback destination carries more than PER_DESTINATION (idle.ts) idle
 * connections while new ones are measured.
 */
export interface WorkersContext {
  count: number;
  backends: readonly Target[];
  idlePorts: readonly number[];
}

export interface RunningPeer {
  /** Where the generator connects. */
  readonly target: Target;
  /** Where the idle holders connect, holder k to the k-th; absent: `target`. */
  readonly idleTargets?: readonly Target[];
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

/**
 * The first lines of every nginx config the bench writes: one worker in the foreground, `name`'s
 * pid and error log in `dir`, room for `workerConnections`, and the stream module when asked.
 */
export function nginxPreamble(dir: string, name: string, workerConnections: number, stream: boolean): string[] {
  return [
    ...(stream ? [`load_module ${NGINX_STREAM_MODULE};`] : []),
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `worker_rlimit_nofile ${workerConnections + 64};`,
    `pid ${join(dir, `${name}.pid`)};`,
    `error_log ${join(dir, `${name}-error.log`)} warn;`,
    `events { worker_connections ${workerConnections}; }`,
  ];
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
    if (ctx.workers !== undefined) return startFulcrumWorkers(ctx, ctx.workers);
    const cmd = [join(repoRoot, 'bin/fulcrum'), '-f', '-r', '-x', String(ctx.maxConnections), `127.0.0.1:${ctx.port}`, `${ctx.backend.host}:${ctx.backend.port}`];
    return processPeer(await spawnProcess(pinned(cmd, ctx.cpu), { name: 'fulcrum', port: ctx.port }), ctx.port);
  },
};

/**
 * Fulcrum with workers, from a config file (pen's command line has one listener): the same
 * settings as `-f -r -x N`, several listeners and servers, and debug level 1 only for the
 * primary's "N workers ready" line (level 1 logs nothing per connection).
 */
async function startFulcrumWorkers(ctx: PeerContext, w: WorkersContext): Promise<RunningPeer> {
  const cfg = join(ctx.dir, 'fulcrum-workers.yaml');
  writeFileSync(
    cfg,
    [
      'global:',
      `  max_connections: ${ctx.maxConnections}`,
      `  workers: ${w.count}`,
      // Every connection of the bench comes from one address: the per-source limit would cap it.
      '  max_connections_per_source: 0',
      '  debug: 1',
      'groups:',
      '  bench:',
      '    tracking: false',
      '    servers:',
      ...w.backends.map((b) => `      - "${b.host}:${b.port}"`),
      'listeners:',
      ...[ctx.port, ...w.idlePorts].flatMap((port) => [`  - listen: "127.0.0.1:${port}"`, '    group: bench']),
      '',
    ].join('\n'),
  );
  // The primary stops its workers in up to 10 s and then removes its shared memory: let it.
  const proc = await spawnProcess(pinned([join(repoRoot, 'bin/fulcrum'), '--config', cfg], ctx.cpu), {
    name: 'fulcrum',
    port: [ctx.port, ...w.idlePorts],
    readyLine: / workers ready /,
    timeoutMs: 30_000,
    killGraceMs: 15_000,
  });
  return {
    target: { host: '127.0.0.1', port: ctx.port },
    idleTargets: w.idlePorts.map((port) => ({ host: '127.0.0.1', port })),
    // The primary forwards nothing; its memory counts with the workers' all the same.
    pids: () => [proc.pid, ...childrenOf(proc.pid)],
    close: () => proc.close(),
  };
}

/** The reference row: a ~100-line proxy on Bun.listen/Bun.connect (bench/naive-proxy.ts). */
const naive: Peer = {
  name: 'naive',
  describe: 'bench/naive-proxy.ts: Bun.listen + Bun.connect, pause/resume, shutdown; nothing else (the runtime\'s floor)',
  missing: () => null,
  version: () => `Bun ${Bun.version}`,
  start: async (ctx) => {
    const cmd = [process.execPath, join(repoRoot, 'bench/naive-proxy.ts'), String(ctx.port), `${ctx.backend.host}:${ctx.backend.port}`];
    return processPeer(await spawnProcess(pinned(cmd, ctx.cpu), { name: 'naive', port: ctx.port }), ctx.port);
  },
};

/** HTTP only: the naive HTTP proxy with its client side on raw sockets (bench/naive-http-raw.ts). */
const naiveRaw: Peer = {
  name: 'naive-raw',
  describe: 'bench/naive-http-raw.ts: HTTP only — the naive HTTP proxy with Bun.listen and a head splitter toward clients instead of Bun.serve',
  missing: () => null,
  version: () => `Bun ${Bun.version}`,
  start: () => Promise.reject(new Error('naive-raw has only an HTTP form')),
};

function penPeer(name: 'pen' | 'pen-poll'): Peer {
  const poll = name === 'pen-poll';
  return {
    name,
    describe: poll ? 'pen -f -r -P -x N: poll(), its pollfd array rebuilt every loop' : 'pen -f -r -x N: epoll',
    missing: () => (penPath() === undefined ? 'pen is not installed (scripts/ensure-peers.sh)' : null),
    version: () => debianVersion('pen'),
    start: async (ctx) => {
      // penCommand: no core dump, working directory in /tmp (pen 0.34.1 can crash; see docs/architecture.md).
      const cmd = penCommand(['-f', '-r', ...(poll ? ['-P'] : []), '-x', String(ctx.maxConnections), `127.0.0.1:${ctx.port}`, `${ctx.backend.host}:${ctx.backend.port}`]);
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
        ...nginxPreamble(ctx.dir, 'nginx', workerConnections, true),
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
  naive,
  'naive-raw': naiveRaw,
  pen: penPeer('pen'),
  'pen-poll': penPeer('pen-poll'),
  haproxy,
  nginx,
  // Issue 14: the connection rate with the cluster beside the same config without it.
  'fulcrum-tracked': trackedPeer(fulcrum, false),
  'fulcrum-cluster': trackedPeer(fulcrum, true),
};
