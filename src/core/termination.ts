/**
 * The termination vocabulary: how a connection ended. Every plane speaks it (the data plane sets
 * it, the control plane logs and counts it), so it lives here, below all of them; each code is
 * documented in docs/termination-codes.md.
 */

/** How a connection ended; documented in docs/termination-codes.md and logged per connection. */
export const TERMINATION_REASONS = [
  'client-closed',
  'server-closed',
  'client-reset',
  'server-reset',
  'idle-timeout',
  'connect-timeout',
  'connect-failed',
  'no-server',
  'all-full',
  'acl-denied',
  'stubborn',
  'queue-full',
  'queue-timeout',
  'max-age',
  'server-down',
  'closed-by-operator',
  'shutdown',
  'no-resources',
  'source-limit',
  'evicted',
  'idle-evicted',
  'rate-limit',
] as const;

/**
 * Refusals under a flood: the client is closed at once, without draining it to its FIN, because
 * the descriptor is what is needed back (docs/hardening.md).
 */
export function closesAtOnce(reason: TerminationReason): boolean {
  return reason === 'no-resources' || reason === 'source-limit' || reason === 'rate-limit' || reason === 'idle-evicted';
}

export type TerminationReason = (typeof TERMINATION_REASONS)[number];
