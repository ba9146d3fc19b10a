/**
 * The protocol side of a check, without sockets: what to send, and how to judge what comes back.
 * The probe (src/dataplane/health-probes.ts) connects, feeds events in and acts on the answers.
 * One kind per file: tcp-check.ts, http-check.ts, script-check.ts, agent-check.ts, udp-check.ts
 * (udp and dns, over one connected UDP socket: `connected` gives the datagram, `data` each reply);
 * tls checks are the tcp conversation over a TLS connection.
 */
import type { Address } from '../address.ts';
import type { CheckSpec } from './check-spec.ts';

/** What an agent check's server said about itself (parsed in agent-check.ts). */
export type AgentState = 'up' | 'drain' | 'maint' | 'down';

export interface AgentReport {
  /** null when the reply named no state (e.g. only a weight). */
  state: AgentState | null;
  /** 0..100+, null when the reply named no weight. */
  weightPercent: number | null;
  reason: string;
}

export interface Verdict {
  readonly passed: boolean;
  /** What the check saw, for the log and the server's down reason. */
  readonly detail: string;
  /** Agent checks: what the server reported. */
  readonly agent?: AgentReport;
}

/** What the conversation wants next: send bytes, wait, or stop with a verdict. */
export type Step = Verdict | { readonly send: Uint8Array } | null;

export interface Conversation {
  /** Connected (after the TLS handshake for TLS checks). */
  connected(): Step;
  /** Bytes arrived. */
  data(chunk: Uint8Array): Step;
  /** The server closed its side. */
  ended(): Verdict;
  /** What it is waiting for, for a timeout's reason (e.g. a script's expected text); default: the answer. */
  waitingFor?(): string;
}

export function isVerdict(s: Step): s is Verdict {
  return s !== null && 'passed' in s;
}

export const pass = (detail: string): Verdict => ({ passed: true, detail });
export const fail = (detail: string): Verdict => ({ passed: false, detail });

/** Received bytes as text for matching and messages (latin1, so any byte maps to one char). */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}

/** A short printable excerpt of received text for messages. */
export function excerpt(text: string, max = 60): string {
  const t = text.length > max ? text.slice(0, max) + '…' : text;
  return JSON.stringify(t);
}

/** Most a check reads before giving up on a match (a server that streams garbage). */
export const MAX_CHECK_READ = 64 * 1024;

/** Runs one check against `target` and reports its verdict (src/dataplane/health-probes.ts). */
export type ProbeFn = (target: Address, spec: CheckSpec, done: (v: Verdict) => void) => void;
