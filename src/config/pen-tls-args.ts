/**
 * pen's TLS termination options on the command line (-E certificate, -K key, -G/-A client CAs,
 * -R require a client certificate, -L minimum protocol) turned into a listener's TLS settings,
 * with the combinations pen would not accept refused as usage errors.
 */
import type { TlsVersion } from '../core/tls-rules.ts';
import { defaultListenerTls, type ListenerTlsConfig } from './tls-settings.ts';
import { UsageError } from './usage-error.ts';

/** The values of -E -K -G -A -R -L as pen-args.ts collects them. */
export interface PenSslOptions {
  cert: string | null;
  key: string | null;
  caFile: string | null;
  caDir: string | null;
  require: boolean;
  min: TlsVersion | null;
}

/** pen's -E -K -G -A -R -L as a listener's TLS settings; null without -E. */
export function penTls(
  ssl: PenSslOptions,
  notes: string[],
): ListenerTlsConfig | null {
  if (ssl.cert === null) {
    const given = [ssl.key !== null && '-K', ssl.caFile !== null && '-G', ssl.caDir !== null && '-A', ssl.require && '-R', ssl.min !== null && '-L'].filter((x) => x !== false);
    if (given.length > 0) throw new UsageError(`${given.join(', ')} configure TLS termination, which needs the certificate: -E certfile`);
    return null;
  }
  if (!ssl.require && (ssl.caFile !== null || ssl.caDir !== null)) {
    notes.push('-G/-A without -R: as in pen, clients are not asked for a certificate (add -R to require one)');
  }
  const tls = defaultListenerTls();
  // pen: the key may be in the certificate file.
  tls.certificates = [{ cert: ssl.cert, key: ssl.key ?? ssl.cert, names: null, isDefault: true }];
  if (ssl.min !== null) tls.minVersion = ssl.min;
  tls.clientAuth = { mode: ssl.require ? 'required' : 'none', caFile: ssl.caFile, caDir: ssl.caDir };
  return tls;
}
