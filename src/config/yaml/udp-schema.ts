/**
 * A listener's UDP settings in the config file (`protocol: udp` and its `udp:` mapping,
 * docs/udp.md and docs/config.md): the schema, the build into UdpListenerConfig with the
 * defaults, and the checks across fields (what a UDP listener cannot have).
 */
import { z } from 'zod';
import { defaultUdpConfig, type UdpListenerConfig } from '../model.ts';
import { durationField, int, mapping, MAX_INT, oneOf } from './leaves.ts';
import { expecting, type Found } from './messages.ts';

export const udpShape = {
  idle_timeout: durationField().optional(),
  max_sessions: int(1, MAX_INT).optional(),
  max_sessions_per_source: int(0, MAX_INT).optional(),
  amplification_factor: z.number({ error: expecting('a number 0-1000 (0 = no cap)') }).min(0, { error: expecting('a number 0-1000 (0 = no cap)') }).max(1000, { error: expecting('a number 0-1000 (0 = no cap)') }).optional(),
  amplification_floor: int(0, 65535, 'a number of bytes 0-65535').optional(),
  unanswered_sessions: int(0, 1_000_000).optional(),
  reply_timeout: durationField({ minMs: 1 }).optional(),
};

export const udpListenerFields = {
  protocol: oneOf(['tcp', 'udp']).optional(),
  udp: mapping('a mapping of UDP settings (idle_timeout, max_sessions, ...)', udpShape).optional(),
};

type ParsedUdp = z.output<(typeof udpListenerFields)['udp']>;

/** The listener's UDP settings, or undefined for a TCP listener. */
export function buildUdp(protocol: 'tcp' | 'udp' | undefined, u: ParsedUdp): UdpListenerConfig | undefined {
  if (protocol !== 'udp') return undefined;
  const d = defaultUdpConfig();
  return {
    idleTimeoutMs: u?.idle_timeout ?? d.idleTimeoutMs,
    maxSessions: u?.max_sessions ?? d.maxSessions,
    maxPerSource: u?.max_sessions_per_source ?? d.maxPerSource,
    returnFactor: u?.amplification_factor ?? d.returnFactor,
    returnFloorBytes: u?.amplification_floor ?? d.returnFloorBytes,
    unansweredSessions: u?.unanswered_sessions ?? d.unansweredSessions,
    replyTimeoutMs: u?.reply_timeout ?? d.replyTimeoutMs,
  };
}

const TCP_ONLY = ['tls', 'sni_routes', 'preread_timeout'] as const;

/** What a UDP listener cannot have, and `udp:` without `protocol: udp`. */
export function checkUdpListener(l: Record<string, unknown>, i: number, workers: unknown): Found[] {
  const out: Found[] = [];
  if (l.protocol !== 'udp') {
    if (l.udp !== undefined) out.push({ path: ['listeners', i, 'udp'], message: "udp settings need 'protocol: udp' on the listener", atKey: true });
    return out;
  }
  for (const k of TCP_ONLY) {
    if (l[k] !== undefined) out.push({ path: ['listeners', i, k], message: `'${k}' is for TCP listeners; a UDP listener (protocol: udp) forwards datagrams as they are`, atKey: true });
  }
  if (typeof l.listen === 'string' && l.listen.includes('/')) out.push({ path: ['listeners', i, 'listen'], message: 'a UDP listener needs [host:]port, not a Unix socket path' });
  if (workers !== undefined && workers !== 1) {
    out.push({
      path: ['listeners', i, 'protocol'],
      message: "a UDP listener runs in one process: Bun's UDP sockets cannot share a port (no SO_REUSEPORT); set global.workers to 1 or drop the UDP listener",
    });
  }
  return out;
}
