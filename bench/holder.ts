/**
 * An idle-connection holder, run as its own process by bench/lib/idle.ts:
 *   bun bench/holder.ts HOST PORT COUNT MAX_SECONDS
 * Opens COUNT connections to HOST:PORT (a bounded number of connects in flight, so no listen
 * backlog overflows), sends each one idle-mode request so the backend counts it, prints
 * `held N failed F`, and then holds them, reading nothing back, until SIGTERM, its parent's
 * death or MAX_SECONDS, whichever comes first. Each connection costs this process one file.
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

/** Connects in flight at once: far below any peer's listen backlog. */
const IN_FLIGHT = 128;
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
  open: boolean;
}

const handlers: SocketHandler<Conn> = {
  open(socket) {
    socket.data.open = true;
    socket.write(IDLE_REQUEST);
    state.pending--;
    state.held++;
    next();
  },
  data() {},
  close(socket) {
    if (socket.data.open) {
      socket.data.open = false;
      state.held--;
      state.lost++;
    }
  },
  connectError() {
    state.pending--;
    state.failed++;
    next();
  },
};

function next(): void {
  while (state.pending < IN_FLIGHT && state.started < count) {
    state.started++;
    state.pending++;
    Bun.connect<Conn>({ hostname: host, port, socket: handlers, data: { open: false } }).catch(() => {});
  }
  if (state.started === count && state.pending === 0) report();
}

let reported = false;
function report(): void {
  if (reported) return;
  reported = true;
  process.stdout.write(`held ${state.held} failed ${state.failed}\n`);
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
