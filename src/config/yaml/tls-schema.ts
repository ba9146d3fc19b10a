/**
 * The schema of TLS settings: a listener's `tls:` (termination) and `sni_routes:`, and a group's
 * `tls:` (TLS to the servers).
 */
import { z } from 'zod';
import { isTlsVersion, serverNamePatternProblem, TLS_VERSIONS, versionRank, type TlsVersion } from '../../core/tls-rules.ts';
import { bool, duration, filePath, mapping, oneOf } from './leaves.ts';
import { didYouMean, expecting } from './messages.ts';

const TLS_VERSION_TEXT = `a TLS version: ${TLS_VERSIONS.join(', ')}`;
const tlsVersion = z.string({ error: expecting(TLS_VERSION_TEXT) }).transform((v, ctx): TlsVersion => {
  if (isTlsVersion(v)) return v;
  const legacy = /^ssl ?v?[23]$/i.test(v);
  ctx.addIssue({
    code: 'custom',
    message: legacy ? `${v}: SSLv2 and SSLv3 are insecure and refused; the oldest version Fulcrum offers is TLSv1` : `${expecting(TLS_VERSION_TEXT)({ input: v })}${didYouMean(v, TLS_VERSIONS)}`,
  });
  return z.NEVER;
});

const serverNamePattern = z.string({ error: expecting('a server name such as api.example.com or *.example.com') }).transform((v, ctx) => {
  const problem = serverNamePatternProblem(v);
  if (problem === undefined) return v.toLowerCase().replace(/\.$/, '');
  ctx.addIssue({ code: 'custom', message: problem });
  return z.NEVER;
});

const hostName = z.string({ error: expecting('a host name') }).transform((v, ctx) => {
  const problem = v.includes('*') ? `"${v}": a server name to verify may not contain "*"` : serverNamePatternProblem(v);
  if (problem === undefined) return v.toLowerCase().replace(/\.$/, '');
  ctx.addIssue({ code: 'custom', message: problem });
  return z.NEVER;
});

const alpnList = z.array(
  z.string({ error: expecting('an ALPN protocol name such as h2 or http/1.1') }).min(1, { error: 'an ALPN protocol name may not be empty' }).max(255, { error: 'an ALPN protocol name is at most 255 bytes' }),
  { error: expecting('a list of ALPN protocol names, e.g. [h2, http/1.1]') },
);

const textList = (what: string) => z.array(z.string({ error: expecting(what) }).min(1, { error: expecting(what) }), { error: expecting(`a list of ${what}s`) });

export const certificateShape = {
  cert: filePath,
  key: filePath.optional(),
  names: z.array(serverNamePattern, { error: expecting('a list of server names') }).optional(),
  default: bool.optional(),
};

export const clientAuthShape = {
  mode: oneOf(['none', 'optional', 'required']).optional(),
  ca: filePath.optional(),
  ca_dir: filePath.optional(),
};

export const listenerTlsShape = {
  certificates: z.array(mapping('a mapping with cert and key', certificateShape), { error: expecting('a list of certificates') }).optional(),
  sni_path: filePath.optional(),
  min_version: tlsVersion.optional(),
  max_version: tlsVersion.optional(),
  ciphers: z.string({ error: expecting('a cipher list such as "ECDHE+AESGCM:ECDHE+CHACHA20"') }).min(1).optional(),
  curves: z.string({ error: expecting('a list of groups such as "X25519:P-256"') }).regex(/^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)*$/, { error: expecting('a list of groups separated by ":", such as "X25519:P-256"') }).optional(),
  prefer_server_ciphers: bool.optional(),
  alpn: alpnList.optional(),
  client_auth: mapping('a mapping with mode and ca', clientAuthShape)
    .superRefine((ca, ctx) => {
      if ((ca.mode ?? 'required') !== 'none' && ca.ca === undefined && ca.ca_dir === undefined) {
        ctx.addIssue({ code: 'custom', message: `client_auth mode ${ca.mode ?? 'required'} needs the CA that signs client certificates: ca or ca_dir`, path: [] });
      }
    })
    .optional(),
  handshake_timeout: duration.optional(),
  session_tickets: bool.optional(),
  file_check_interval: duration.optional(),
};

export const listenerTls = mapping('a mapping of TLS settings', listenerTlsShape).superRefine((t, ctx) => {
  if ((t.certificates === undefined || t.certificates.length === 0) && t.sni_path === undefined) {
    ctx.addIssue({ code: 'custom', message: 'a TLS listener needs certificates (or an sni_path directory)', path: [] });
  }
  if (t.min_version !== undefined && t.max_version !== undefined && versionRank(t.min_version) > versionRank(t.max_version)) {
    ctx.addIssue({ code: 'custom', message: `max_version ${t.max_version} is below min_version ${t.min_version}`, path: ['max_version'] });
  }
});

export const groupTlsShape = {
  ca: filePath.optional(),
  server_name: hostName.optional(),
  insecure: bool.optional(),
  cert: filePath.optional(),
  key: filePath.optional(),
  min_version: tlsVersion.optional(),
  max_version: tlsVersion.optional(),
  ciphers: z.string({ error: expecting('a cipher list') }).min(1).optional(),
  alpn: alpnList.optional(),
};

export const groupTls = mapping('a mapping of TLS settings for the servers', groupTlsShape).superRefine((t, ctx) => {
  if (t.insecure === true && t.ca !== undefined) ctx.addIssue({ code: 'custom', message: 'insecure: true skips verification, so ca would be ignored; give one or the other', path: ['insecure'] });
  if (t.key !== undefined && t.cert === undefined) ctx.addIssue({ code: 'custom', message: 'key needs cert (the client certificate it belongs to)', path: ['key'] });
  if (t.min_version !== undefined && t.max_version !== undefined && versionRank(t.min_version) > versionRank(t.max_version)) {
    ctx.addIssue({ code: 'custom', message: `max_version ${t.max_version} is below min_version ${t.min_version}`, path: ['max_version'] });
  }
});

export const sniRouteShape = {
  server_names: z.array(serverNamePattern, { error: expecting('a list of server names') }).optional(),
  alpn: alpnList.optional(),
  client_identities: textList('a client identity such as "CN=svc-*"').optional(),
  group: z.string({ error: expecting('the name of a group') }),
};
