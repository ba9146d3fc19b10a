/** The bench's command line: presets (full, --quick) and overrides, validated up front. */
import { DEFAULT_PEERS, HTTP_ONLY_PEERS, OPT_IN_PEERS, PEER_NAMES, isPeerName, type PeerName } from './peers.ts';

export const SCENARIOS = ['keepalive', 'connrate', 'idle', 'bulk', 'memory', 'workers', 'udp', 'http'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Worker processes of the `workers` scenario (`fulcrum --workers N`): two, one per core of the reference machine. */
export const FULCRUM_WORKERS = 2;

export interface Options {
  quick: boolean;
  peers: PeerName[];
  only: Set<ScenarioName>;
  repeats: number;
  warmupMs: number;
  durationMs: number;
  /** Idle connections held for the scaling ladder, ascending, starting at 0. */
  ladder: number[];
  /** Idle connections for the memory scenario. */
  memoryIdle: number;
  /** Idle connections held for the `workers` scenario (Fulcrum with FULCRUM_WORKERS workers), ascending, from 0. */
  workersLadder: number[];
  /** Persistent connections (keep-alive) and connection loops (connection rate). */
  connections: number;
  bulkStreams: number[];
  /** UDP sessions held for the UDP row's memory figure. */
  udpSessions: number;
  /** Mostly idle client keep-alive connections of the HTTP row's pooling figure. */
  httpClients: number;
  /** Pin the balancer to balancerCpu and the load (this process, holders) to loadCpu. */
  pin: boolean;
  balancerCpu: number;
  loadCpu: number;
  install: boolean;
  outDir: string;
  /** Also write docs/performance-data.csv and docs/scaling.svg (for the full run on a quiet machine). */
  publish: boolean;
}

export const USAGE = `usage: npm run bench [-- options]

  --quick              smoke form: 1 repeat of 1 s per measurement, idle ladders 0,1000
  --only LIST          scenarios: ${SCENARIOS.join(',')} (default: all)
                       keepalive/connrate run with no idle connections; idle runs both at every
                       step of the ladder; workers runs both under fulcrum --workers ${FULCRUM_WORKERS} (not
                       pinned) at every step of its own ladder (Fulcrum only); udp runs a
                       DNS-shaped exchange (dnsperf) through direct, fulcrum, pen and nginx -U/udp;
                       http runs wrk and mostly idle clients through direct, fulcrum (mode: http),
                       haproxy (mode http) and nginx (proxy_pass), keep-alive on both sides
  --peers LIST         ${PEER_NAMES.join(',')}
                       (default: all but ${OPT_IN_PEERS.join(',')}: the cluster's cost is
                       measured on demand, --peers ${OPT_IN_PEERS.join(',')} --only connrate)
  --repeats N          measured runs per figure (default 3, quick 1)
  --duration SEC       measured window per run (default 5, quick 1)
  --warmup SEC         warm-up before each run (default 1, quick 0.3)
  --idle LIST          idle-connection ladder (default 0,2000,5000,9000; quick 0,1000)
  --memory-idle N      idle connections for the memory figure (default: the ladder's top)
  --workers-idle LIST  idle-connection ladder of the workers scenario (default 0,9000,15000;
                       quick 0,1000)
  --udp-sessions N     UDP sessions held for memory per session (default 5000, quick 500)
  --http-clients N     mostly idle keep-alive clients of the HTTP pooling figure (default 1000)
  --connections N      keep-alive connections and connection-rate loops (default 50)
  --no-pin             do not pin with taskset (results are then not comparable)
  --balancer-cpu N     core for the balancer (default 1)
  --load-cpu N         core for the generator, backend and holders (default 0)
  --no-install         do not run scripts/ensure-peers.sh --bench first
  --out DIR            where results go (default bench/results)
  --publish            also write docs/performance-data.csv and docs/scaling.svg
`;

export class OptionsError extends Error {}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function count(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new OptionsError(`${flag} wants an integer ≥ ${min}, not '${value}'`);
  return n;
}

function seconds(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new OptionsError(`${flag} wants seconds ≥ ${min}, not '${value}'`);
  return Math.round(n * 1000);
}

/** A ladder of idle-connection counts: ascending, without repeats, always starting at 0. */
function ladder(flag: string, value: string): number[] {
  const steps = list(value).map((v) => count(flag, v, 0));
  return [...new Set([0, ...steps])].sort((a, b) => a - b);
}

export function parseOptions(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    peers: [...DEFAULT_PEERS],
    only: new Set(SCENARIOS),
    repeats: quick ? 1 : 3,
    warmupMs: quick ? 300 : 1000,
    durationMs: quick ? 1000 : 5000,
    ladder: quick ? [0, 1000] : [0, 2000, 5000, 9000],
    memoryIdle: -1,
    workersLadder: quick ? [0, 1000] : [0, 9000, 15000],
    connections: 50,
    bulkStreams: [1, 8],
    udpSessions: quick ? 500 : 5000,
    httpClients: 1000,
    pin: true,
    balancerCpu: 1,
    loadCpu: 0,
    install: true,
    outDir: 'bench/results',
    publish: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new OptionsError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick': break;
      case '--only': {
        const names = list(value());
        for (const n of names) if (!(SCENARIOS as readonly string[]).includes(n)) throw new OptionsError(`unknown scenario '${n}' (${SCENARIOS.join(', ')})`);
        o.only = new Set(names as ScenarioName[]);
        break;
      }
      case '--peers': {
        const names = list(value());
        for (const n of names) if (!isPeerName(n)) throw new OptionsError(`unknown peer '${n}' (${PEER_NAMES.join(', ')})`);
        o.peers = PEER_NAMES.filter((p) => names.includes(p));
        break;
      }
      case '--repeats': o.repeats = count(flag, value(), 1); break;
      case '--duration': o.durationMs = seconds(flag, value(), 0.1); break;
      case '--warmup': o.warmupMs = seconds(flag, value(), 0); break;
      case '--idle': o.ladder = ladder(flag, value()); break;
      case '--workers-idle': o.workersLadder = ladder(flag, value()); break;
      case '--memory-idle': o.memoryIdle = count(flag, value(), 1); break;
      case '--udp-sessions': o.udpSessions = count(flag, value(), 1); break;
      case '--http-clients': o.httpClients = count(flag, value(), 1); break;
      case '--connections': o.connections = count(flag, value(), 1); break;
      case '--no-pin': o.pin = false; break;
      case '--balancer-cpu': o.balancerCpu = count(flag, value(), 0); break;
      case '--load-cpu': o.loadCpu = count(flag, value(), 0); break;
      case '--no-install': o.install = false; break;
      case '--out': o.outDir = value(); break;
      case '--publish': o.publish = true; break;
      default: throw new OptionsError(`unknown option '${flag}'`);
    }
  }
  if (o.memoryIdle < 0) o.memoryIdle = Math.max(1000, o.ladder[o.ladder.length - 1] ?? 0);
  if (o.publish && o.quick) throw new OptionsError('--publish is for the full run: a --quick run must not replace the published figures');
  if (o.pin && o.balancerCpu === o.loadCpu) throw new OptionsError('--balancer-cpu and --load-cpu must differ');
  return o;
}

/** The most idle connections any peer must hold at once (it sizes every peer's limits). */
export function maxIdle(o: Options): number {
  return Math.max(o.ladder[o.ladder.length - 1] ?? 0, o.only.has('memory') ? o.memoryIdle : 0);
}

/** Connections every peer is configured for: idle ones, the load's, the probe, and some still closing. */
export function connectionLimit(o: Options): number {
  return maxIdle(o) + 2 * o.connections + 200;
}

/** Connections Fulcrum with workers is configured for (-x, global over its workers), as connectionLimit. */
export function workersConnectionLimit(o: Options): number {
  return (o.workersLadder[o.workersLadder.length - 1] ?? 0) + 2 * o.connections + 200;
}

/** A rough duration of the whole run, printed before it starts. */
export function estimateSeconds(o: Options): number {
  const run = (o.warmupMs + o.durationMs) / 1000 + 0.3;
  let perPeer = 2; // start and stop
  const steps = o.ladder.length;
  const idleOn = o.only.has('idle');
  for (const s of ['keepalive', 'connrate'] as const) {
    if (o.only.has(s) || idleOn) perPeer += o.repeats * run * (idleOn ? steps : 1);
  }
  if (idleOn) perPeer += (o.ladder[steps - 1] ?? 0) / 2000; // opening idle connections
  if (o.only.has('bulk')) perPeer += o.bulkStreams.length * o.repeats * run;
  if (o.only.has('memory')) perPeer += o.repeats * (4 + o.memoryIdle / 3000);
  let total = perPeer * o.peers.filter((p) => !HTTP_ONLY_PEERS.includes(p)).length;
  if (o.only.has('udp')) {
    const udpPeers = o.peers.filter((p) => p === 'direct' || p === 'fulcrum' || p === 'pen' || p === 'nginx').length;
    // dnsperf runs whole seconds; memory: a fresh process, two settles, the sessions opened
    total += udpPeers * (2 + Math.ceil(o.warmupMs / 1000) + o.repeats * (Math.max(1, Math.round(o.durationMs / 1000)) + 0.5) + 4 + o.udpSessions / 2000);
  }
  if (o.only.has('http')) {
    const httpPeers = o.peers.filter((p) => p === 'direct' || p === 'fulcrum' || p === 'naive' || p === 'naive-raw' || p === 'haproxy' || p === 'nginx').length;
    // wrk runs whole seconds; pooling: a fresh balancer per repeat, the clients opened, a window of at least 2 s
    const wrkRun = Math.max(1, Math.round(o.durationMs / 1000)) + 0.3;
    total += httpPeers * (2 + Math.round(o.warmupMs / 1000) + o.repeats * (wrkRun + 2 + Math.max(2, o.durationMs / 1000) + o.httpClients / 2000));
  }
  if (o.only.has('workers') && o.peers.includes('fulcrum')) {
    const steps = o.workersLadder.length;
    total += 4 + 2 * o.repeats * run * steps + (o.workersLadder[steps - 1] ?? 0) / 2000;
  }
  return Math.round(total);
}
