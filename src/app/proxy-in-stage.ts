/**
 * The PROXY-in stage of a listener with accept_proxy, which ListenerRuntime delegates its
 * ProxyAcceptor bookkeeping to: who may send a header (trusted sources), the -x bound on headers
 * being read, and the counts of headers by version and failures by reason.
 */
import { TrustedSources } from '../core/trusted-sources.ts';
import type { AcceptProxyConfig, GlobalConfig } from '../config/model.ts';
import type { ProxyFailure } from '../dataplane/proxy-in.ts';

/** PROXY protocol in (accept_proxy): headers read, by version, and failures by reason. */
export interface ProxyStats {
  v1: number;
  v2: number;
  inProgress: number;
  failures: Partial<Record<ProxyFailure, number>>;
  /** The last failure, `reason: detail`, for the operator. */
  last: string | null;
}

export class ProxyInStage {
  readonly stats: ProxyStats = { v1: 0, v2: 0, inProgress: 0, failures: {}, last: null };
  /** The listener's count of accepted connections (workers may share it, so it stays there). */
  readonly #counters: { accepted: number };
  /** The live global settings (read each time: a reload replaces them). */
  readonly #hooks: { readonly global: GlobalConfig };
  /** Who may send a header; null without accept_proxy. */
  #trusted: TrustedSources | null = null;

  constructor(counters: { accepted: number }, hooks: { readonly global: GlobalConfig }) {
    this.#counters = counters;
    this.#hooks = hooks;
  }

  configure(acceptProxy: AcceptProxyConfig | null): void {
    const trusted = acceptProxy === null ? null : TrustedSources.parse(acceptProxy.trusted);
    // The config checker has refused bad entries already; should one slip through, trust nobody.
    this.#trusted = trusted === null ? null : typeof trusted === 'string' ? (TrustedSources.parse([]) as TrustedSources) : trusted;
  }

  opened(remoteAddress: string): boolean {
    this.#counters.accepted++;
    if (this.#trusted === null || !this.#trusted.trusts(remoteAddress)) {
      this.#failure('untrusted', `${remoteAddress} is not in proxy_trusted`);
      return false;
    }
    // Bounded like TLS handshakes: headers that trickle in cannot hold more than -x sockets.
    if (this.stats.inProgress >= this.#hooks.global.maxConnections) {
      this.#failure('handshake-limit', `${this.stats.inProgress} PROXY headers are being read`);
      return false;
    }
    this.stats.inProgress++;
    return true;
  }

  failed(reason: ProxyFailure, detail: string): void {
    this.stats.inProgress--;
    this.#failure(reason, detail);
  }

  #failure(reason: ProxyFailure, detail: string): void {
    const p = this.stats;
    p.failures[reason] = (p.failures[reason] ?? 0) + 1;
    p.last = `${reason}: ${detail}`;
  }

  passed(version: 1 | 2): void {
    this.stats.inProgress--;
    if (version === 1) this.stats.v1++;
    else this.stats.v2++;
  }
}
