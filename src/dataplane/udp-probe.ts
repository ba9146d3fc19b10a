/**
 * The probe of the UDP check kinds (`udp`, `dns`; docs/udp.md): one socket per check, connected
 * to the server (the same adapter a UDP session uses, bun-udp.ts), the conversation's datagram
 * sent once, each reply fed to the conversation until it gives a verdict, and a deadline on the
 * injected Clock. ICMP port unreachable (the connected socket's `ECONNREFUSED`) fails the check
 * with that reason at once. `done` is called exactly once, and the socket is closed by then.
 */
import type { Address } from '../core/address.ts';
import { clampTimerMs, type Clock, type TimerHandle } from '../core/clock.ts';
import type { CheckSpec } from '../core/health/check-spec.ts';
import { fail, isVerdict, type Conversation, type Verdict } from '../core/health/conversation.ts';
import { UdpUpstream, type UdpUpstreamHandler } from './bun-udp.ts';

interface UdpProbe {
  conv: Conversation;
  done: (v: Verdict) => void;
  spec: CheckSpec;
  clock: Clock;
  timer: TimerHandle | null;
  socket: UdpUpstream<UdpProbe> | null;
  settled: boolean;
}

function settle(p: UdpProbe, v: Verdict): void {
  if (p.settled) return;
  p.settled = true;
  p.clock.clearTimer(p.timer);
  p.timer = null;
  p.socket?.close();
  p.socket = null;
  p.done(v);
}

function errorText(e: Error): string {
  const code = (e as Error & { code?: string }).code;
  return code !== undefined && !e.message.includes(code) ? `${code} ${e.message}` : e.message;
}

const handler: UdpUpstreamHandler<UdpProbe> = {
  serverDatagram(u, payload) {
    const p = u.session;
    if (p.settled) return;
    const step = p.conv.data(payload);
    if (step === null) return; // not the answer: wait on, until the deadline
    if (isVerdict(step)) settle(p, step);
    else u.send(step.send);
  },
  serverUnreachable(u, error) {
    settle(u.session, fail(`port unreachable (ICMP): ${errorText(error)}`));
  },
  serverError(u, error) {
    settle(u.session, fail(`UDP socket error: ${errorText(error)}`));
  },
};

function timedOut(p: UdpProbe): void {
  p.timer = null;
  settle(p, fail(`timeout after ${p.spec.timeoutMs} ms, ${p.conv.waitingFor?.() ?? 'waiting for a reply'}`));
}

/** Runs one UDP check of `target` with `conv`. */
export function runUdpProbe(clock: Clock, target: Address, spec: CheckSpec, conv: Conversation, done: (v: Verdict) => void): void {
  const p: UdpProbe = { conv, done, spec, clock, timer: null, socket: null, settled: false };
  if (target.kind !== 'tcp') {
    settle(p, fail(`a ${spec.kind} check needs an IP address and port, not a Unix socket (set the check's address and port)`));
    return;
  }
  p.timer = clock.setTimeout(timedOut, clampTimerMs(spec.timeoutMs), p);
  const first = conv.connected();
  if (first !== null && isVerdict(first)) {
    settle(p, first);
    return;
  }
  // Creating the socket may fail (and settle) inside open; the socket is dropped then.
  const u = UdpUpstream.open(p, { hostname: target.host, port: target.port }, handler);
  if (p.settled) {
    u.close();
    return;
  }
  p.socket = u;
  if (first !== null) u.send(first.send);
}
