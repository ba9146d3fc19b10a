/**
 * An idle-connection holder, run as its own process by bench/lib/idle.ts:
 *   bun bench/holder.ts HOST PORT COUNT MAX_SECONDS
 * Opens COUNT connections to HOST:PORT, each sending one idle-mode request, prints
 * `held N failed F`, and then holds them until SIGTERM, its parent's death or MAX_SECONDS,
 * whichever comes first. Each connection costs this process one file.
 *
 * A connection counts as opened only once the backend's one-byte acknowledgement comes back
 * through the balancer, and only IN_FLIGHT may be on their way at once: a TCP handshake with
 * the balancer completes in the kernel at once, so pacing on it alone would pour thousands of
 * connections on a balancer faster than it can connect onwards, which measures its burst
 * handling, not idle connections.
 */
import type { SocketHandler } from 'bun';
import { MODE_IDLE, request } from './lib/protocol.ts';

const [host = '127.0.0.1', portText = '', countText = '', maxSecondsText = '600'] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const maxSeconds = Number(maxSecondsText);
if (!(port > 0 && count >= 0 && maxSeconds > 0)) {
  process.stderr.write('usage: bun bench/holder.ts HOST PORT COUNT MAX_SECONDS\n');
  process.exit(2);
}

/** Connections on their way at once: below pen's pending_max (100) and any listen backlog. */
const IN_FLIGHT = 64;
const IDLE_REQUEST = request(MODE_IDLE);

interface State {
  started: number;
  pending: number;
  held: number;
  failed: number;
  /** Held connections that closed later (a balancer that dropped them). */
  lost: number;
}
const state: State = { started: 0, pending: 0, held: 0, failed: 0, lost: 0 };

interface Conn {
  /** The backend acknowledged it: it is held end to end. */
  held: boolean;
  done: boolean;
}

const handlers: SocketHandler<Conn> = {
  open(socket) {
    socket.write(IDLE_REQUEST);
  },
  data(socket) {
    const c = socket.data;
    if (c.held || c.done) return;
    c.held = true;
    state.pending--;
    state.held++;
    next();
  },
  close(socket) {
    const c = socket.data;
    if (c.held) {
      c.held = false;
      state.held--;
      state.lost++;
    } else if (!c.done) {
      state.pending--;
      state.failed++;
      next();
    }
    c.done = true;
  },
  connectError(socket) {
    socket.data.done = true;
    state.pending--;
    state.failed++;
    next();
  },
};

function next(): void {
  while (state.pending < IN_FLIGHT && state.started < count) {
    state.started++;
    state.pending++;
    Bun.connect<Conn>({ hostname: host, port, socket: handlers, data: { held: false, done: false } }).catch(() => {});
  }
  if (state.started === count && state.pending === 0) report();
}

let reported = false;
function report(): void {
  if (reported) return;
  reported = true;
  process.stdout.write(`held ${state.held} failed ${state.failed + state.lost}\n`);
}

function quit(): void {
  process.exit(0);
}

const parent = process.ppid;
process.on('SIGTERM', quit);
setTimeout(quit, maxSeconds * 1000);
// An orphaned holder would keep a balancer's files busy: leave when the bench does.
setInterval(() => {
  if (process.ppid !== parent) quit();
}, 1000);
next();
