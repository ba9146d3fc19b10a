/**
 * pen's ssl_* commands (ssl_ciphers, ssl_option, ssl_sni_path, ssl_ocsp_response,
 * ssl_client_renegotiation_interval), applied to the first TLS listener.
 */
import { applySslOption } from '../core/tls-rules.ts';
import type { ListenerTlsConfig } from '../config/tls-settings.ts';
import type { Balancer } from './balancer.ts';
import { CommandError, seconds } from './pen-command-args.ts';
import type { ListenerRuntime } from './runtime.ts';

/**
 * pen's ssl_* commands, on the first TLS listener. Unlike pen, where most of them only count
 * before the TLS context is made at start, they apply to new connections at any time; a
 * value that makes the TLS settings unusable is refused and changes nothing.
 */
export function sslCommand(b: Balancer, cmd: string, args: string[]): string {
  const l = b.listeners.find((x) => x.tls !== null);
  if (l === undefined || l.tls === null) throw new CommandError(`${cmd}: no TLS listener (start Fulcrum with -E certfile)`);
  const tls = l.tls;
  const next: ListenerTlsConfig = { ...tls.config, clientAuth: { ...tls.config.clientAuth } };
  switch (cmd) {
    case 'ssl_ciphers':
      next.ciphers = args[0] ?? null; // pen: without a list, back to the library's defaults
      break;
    case 'ssl_option': {
      if (args[0] === undefined) throw new CommandError('ssl_option no_sslv2|no_sslv3|no_tlsv1|no_tlsv1.1|no_tlsv1.2|no_tlsv1.3|cipher_server_preference');
      const r = applySslOption({ min: next.minVersion, max: next.maxVersion }, args[0]);
      if ('error' in r) throw new CommandError(r.error);
      next.minVersion = r.range.min;
      next.maxVersion = r.range.max;
      if (r.serverPreference === true) next.preferServerCiphers = true;
      break;
    }
    case 'ssl_sni_path':
      if (args[0] === undefined) throw new CommandError('ssl_sni_path DIRECTORY');
      next.sniPath = args[0];
      break;
    case 'ssl_ocsp_response': {
      const file = args[0];
      if (file === undefined) throw new CommandError('ssl_ocsp_response FILE');
      let summary: string;
      try {
        summary = tls.readOcsp(file);
      } catch (e) {
        throw new CommandError((e as Error).message);
      }
      tls.config.ocspResponse = file;
      b.diag.info(
        `ssl_ocsp_response: read ${file} (${summary}); it is NOT stapled: Bun's TLS has no API to send an OCSP response, so clients will not receive it (see docs/tls.md)`,
      );
      return '';
    }
    case 'ssl_client_renegotiation_interval':
      tls.config.renegotiationIntervalS = seconds(args[0], cmd) / 1000;
      // Nothing to apply: BoringSSL as a server refuses every client-initiated renegotiation.
      return '';
    default:
      throw new CommandError(`unknown command "${cmd}" (ssl_ciphers, ssl_option, ssl_sni_path, ssl_ocsp_response, ssl_client_renegotiation_interval)`);
  }
  applyTls(b, l, next, cmd);
  return '';
}

function applyTls(b: Balancer, l: ListenerRuntime, next: ListenerTlsConfig, cmd: string): void {
  const tls = l.tls!;
  if (l.handle === null) {
    tls.config = next; // before start: checked when the listener starts
    l.config = { ...l.config, tls: next };
    return;
  }
  try {
    const prepared = tls.prepare(next, new Date(b.clock.now()), true);
    tls.commit(next, prepared);
    for (const m of prepared.messages) b.diag.info(`${cmd}: ${m}`);
  } catch (e) {
    throw new CommandError(`${cmd}: ${(e as Error).message}; nothing changed`);
  }
  l.config = { ...l.config, tls: next };
}
