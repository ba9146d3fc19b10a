/**
 * Check probes: one connection per check (UDP kinds: one connected socket, udp-probe.ts), driven by a Conversation (src/core/health/), with a
 * deadline. The only file that opens check connections; every outcome calls `done` exactly once,
 * and the socket is always closed by then (no probe outlives its timeout).
 */
import type { Socket, SocketHandler } from 'bun';
import type { Address } from '../core/address.ts';
import { clampTimerMs, type Clock, type TimerHandle } from '../core/clock.ts';
import { CHECK_KINDS } from '../core/health/check-kinds.ts';
import type { CheckSpec } from '../core/health/check-spec.ts';
import { fail, isVerdict, type Conversation, type ProbeFn, type Step, type Verdict } from '../core/health/conversation.ts';
import { runUdpProbe } from './udp-probe.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

export function conversationFor(spec: CheckSpec, host: string): Conversation {
  return CHECK_KINDS[spec.kind].conversation(spec, host);
}

interface Probe {
  conv: Conversation;
  done: (v: Verdict) => void;
  spec: CheckSpec;
  clock: Clock;
  timer: TimerHandle | null;
  socket: Socket<Probe> | null;
  settled: boolean;
  connected: boolean;
  /** TLS: wait for the handshake before talking. */
  tls: boolean;
}

function settle(p: Probe, v: Verdict): void {
  if (p.settled) return;
  p.settled = true;
  p.clock.clearTimer(p.timer);
  p.timer = null;
  const s = p.socket;
  p.socket = null;
  // A verdict ends the conversation; reset rather than linger in TIME_WAIT on our side when the
  // server is still talking, close gracefully otherwise.
  if (s !== null) {
    if (v.passed) s.end();
    else s.terminate();
  }
  p.done(v);
}

function act(p: Probe, socket: Socket<Probe>, step: Step): void {
  if (step === null || p.settled) return;
  if (isVerdict(step)) {
    settle(p, step);
    return;
  }
  socket.write(step.send);
}

function errorText(e: Error | undefined): string {
  if (e === undefined) return 'connection failed';
  const code = (e as Error & { code?: string }).code;
  return code !== undefined && !e.message.includes(code) ? `${code} ${e.message}` : e.message;
}

const handlers: SocketHandler<Probe> = {
  open(socket) {
    const p = socket.data;
    if (p.settled) {
      socket.terminate();
      return;
    }
    p.socket = socket;
    if (p.tls) return; // talk after the handshake
    p.connected = true;
    act(p, socket, p.conv.connected());
  },
  handshake(socket, _success, authorizationError) {
    const p = socket.data;
    if (p.settled) return;
    p.socket = socket;
    if (p.spec.tls?.verify === true && authorizationError !== null) {
      settle(p, fail(`TLS certificate not trusted: ${authorizationError.message}`));
      return;
    }
    p.connected = true;
    act(p, socket, p.conv.connected());
  },
  data(socket, chunk) {
    const p = socket.data;
    if (p.settled || !p.connected) return;
    act(p, socket, p.conv.data(chunk));
  },
  end(socket) {
    const p = socket.data;
    if (!p.settled) settle(p, p.connected ? p.conv.ended() : fail('closed during the TLS handshake'));
  },
  close(socket, error) {
    const p = socket.data;
    if (p.settled) return;
    if (!p.connected) settle(p, fail(p.tls && p.socket !== null ? `TLS handshake failed: ${errorText(error)}` : `connect failed: ${errorText(error)}`));
    else if (error !== undefined) settle(p, fail(`connection reset: ${errorText(error)}`));
    else settle(p, p.conv.ended());
  },
  error(socket, error) {
    const p = socket.data;
    if (!p.settled) settle(p, fail(p.connected ? `connection error: ${errorText(error)}` : `TLS handshake failed: ${errorText(error)}`));
  },
  connectError(socket, error) {
    const p = socket.data;
    if (!p.settled) settle(p, fail(`connect failed: ${errorText(error)}`));
  },
};

function ignore(): void {}

/** CA files are read once per path and kept (reloads that change the path read the new one). */
const caFiles = new Map<string, string>();
function caText(path: string): string {
  let text = caFiles.get(path);
  if (text === undefined) {
    text = fs().readFileSync(path, 'utf8');
    caFiles.set(path, text);
  }
  return text;
}

function probeTimedOut(p: Probe): void {
  p.timer = null;
  const where = p.connected ? (p.conv.waitingFor !== undefined ? ` (${p.conv.waitingFor()})` : ', waiting for the answer') : p.socket !== null ? ', in the TLS handshake' : ', connecting';
  settle(p, fail(`timeout after ${p.spec.timeoutMs} ms${where}`));
}

/** The probe function for the health checker, with its deadlines on `clock`. */
export function probeRunner(clock: Clock): ProbeFn {
  return (target, spec, done) => runProbeOn(clock, target, spec, done);
}

/** Probes on the system clock. */

function runProbeOn(clock: Clock, target: Address, spec: CheckSpec, done: (v: Verdict) => void): void {
  const host = target.kind === 'tcp' ? target.host : 'localhost';
  if (CHECK_KINDS[spec.kind].transport === 'datagram') {
    runUdpProbe(clock, target, spec, conversationFor(spec, host), done);
    return;
  }
  const p: Probe = { conv: conversationFor(spec, host), done, spec, clock, timer: null, socket: null, settled: false, connected: false, tls: spec.tls !== null };
  p.timer = clock.setTimeout(probeTimedOut, clampTimerMs(spec.timeoutMs), p);
  let promise: Promise<unknown>;
  try {
    const tls = spec.tls === null ? undefined : {
      rejectUnauthorized: false,
      ...(spec.tls.serverName !== null ? { serverName: spec.tls.serverName } : {}),
      ...(spec.tls.caFile !== null ? { ca: caText(spec.tls.caFile) } : {}),
    };
    promise =
      target.kind === 'unix'
        ? Bun.connect<Probe>({ unix: target.path, socket: handlers, data: p, ...(tls !== undefined ? { tls } : {}) })
        : Bun.connect<Probe>({ hostname: target.host, port: target.port, socket: handlers, data: p, ...(tls !== undefined ? { tls } : {}) });
  } catch (e) {
    settle(p, fail(`connect failed: ${errorText(e as Error)}`));
    return;
  }
  promise.catch(ignore);
}
