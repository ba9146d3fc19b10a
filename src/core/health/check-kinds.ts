/**
 * The registry of check kinds: what each kind's conversation is and which config fields it takes
 * beyond the common timing ones. Adding a kind = its conversation file in this folder, its name in
 * CHECK_KIND_NAMES (check-spec.ts) and one entry here; the config schema and the probes read this.
 */
import { AgentConversation } from './agent-check.ts';
import type { CheckKind, CheckSpec } from './check-spec.ts';
import type { Conversation } from './conversation.ts';
import { HttpConversation } from './http-check.ts';
import { ScriptConversation } from './script-check.ts';
import { ConnectConversation } from './tcp-check.ts';
import { DnsConversation, UdpExpectConversation } from './udp-check.ts';

export interface CheckKindEntry {
  /** Config fields this kind accepts (snake_case, as in the file). */
  readonly fields: readonly string[];
  /** How the probe talks: a connection (TCP, TLS) or one connected UDP socket per check. */
  readonly transport: 'stream' | 'datagram';
  /** A fresh conversation for one check of `host`. */
  conversation(spec: CheckSpec, host: string): Conversation;
}

export const CHECK_KINDS: Readonly<Record<CheckKind, CheckKindEntry>> = {
  tcp: { transport: 'stream', fields: [], conversation: () => new ConnectConversation('connect') },
  tls: { transport: 'stream', fields: ['tls'], conversation: () => new ConnectConversation('TLS handshake') },
  http: { transport: 'stream', fields: ['method', 'path', 'host', 'expect_status', 'expect_body', 'tls'], conversation: (spec, host) => new HttpConversation(spec.http!, host) },
  script: { transport: 'stream', fields: ['script', 'tls'], conversation: (spec) => new ScriptConversation(spec.script ?? []) },
  agent: { transport: 'stream', fields: ['send'], conversation: (spec) => new AgentConversation(spec.agentSend) },
  udp: { transport: 'datagram', fields: ['send', 'expect', 'expect_match'], conversation: (spec) => new UdpExpectConversation(spec.udp!) },
  dns: { transport: 'datagram', fields: ['query', 'query_type', 'expect_rcode'], conversation: (spec) => new DnsConversation(spec.dns!) },
};
