/**
 * TLS state of listeners and groups: reads certificate, key and CA files, checks them, builds
 * native secure contexts (through the data plane), and reloads them on SIGHUP and when the files
 * change. A reload is transactional per certificate: a broken new certificate (unreadable, key
 * mismatch, expired) is reported and the previous one stays in service. Contexts whose inputs
 * did not change are reused, so TLS session resumption keeps working across reloads.
 *
 * File reads here are synchronous: they happen at start, on reload and on a slow timer, never per
 * connection, and certificate files are small. node:crypto (about 6 MB resident) is loaded on
 * the first certificate read, so a balancer without TLS never loads it.
 */
import type { X509Certificate } from 'node:crypto';
import { formatAddress, type Address } from '../core/address.ts';
import { NameTable, normalizeServerName, serverNamePatternProblem } from '../core/tls-rules.ts';
import type { CertificateConfig, GroupTlsConfig, ListenerTlsConfig } from '../config/tls-settings.ts';
import {
  connectTls,
  createClientContext,
  createServerContext,
  encodeAlpn,
  type SecureContextHandle,
  type ServerContextOptions,
  type TlsClientSettings,
  type TlsServerSettings,
} from '../dataplane/bun-tls.ts';
import type { Side } from '../dataplane/session.ts';
import { ocspResponseSummary } from '../protocol/ocsp.ts';
import { FulcrumError } from '../core/errors.ts';

/** node:fs, taken on first use: not loaded at rest (docs/performance.md). */
function fs(): typeof import('node:fs') {
  return process.getBuiltinModule('node:fs');
}

/** node:path, taken on first use: not loaded at rest (docs/performance.md). */
function pathModule(): typeof import('node:path') {
  return process.getBuiltinModule('node:path');
}

function crypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto');
}

export class TlsConfigError extends FulcrumError {
  override readonly name = 'TlsConfigError';

  constructor(message: string, options?: ErrorOptions) {
    super('E_TLS_CONFIG', message, options);
  }
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const KEY_BLOCK = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END (?:[A-Z]+ )?PRIVATE KEY-----/g;

function readText(path: string, what: string): string {
  try {
    return fs().readFileSync(path, 'utf8');
  } catch (e) {
    throw new TlsConfigError(`cannot read the ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function certBlocks(text: string, path: string, what: string): string[] {
  const blocks = text.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new TlsConfigError(`${path}: no PEM certificate in the ${what}`);
  return blocks;
}

/** A PEM bundle of CA certificates from a file and/or a directory (pen's -G and -A). */
export function readCaBundle(file: string | null, dir: string | null): string[] | null {
  if (file === null && dir === null) return null;
  const out: string[] = [];
  if (file !== null) out.push(...certBlocks(readText(file, 'CA file'), file, 'CA file'));
  if (dir !== null) {
    let names: string[];
    try {
      names = fs().readdirSync(dir).sort();
    } catch (e) {
      throw new TlsConfigError(`cannot read the CA directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const n of names) {
      const p = pathModule().join(dir, n);
      try {
        if (!fs().statSync(p).isFile()) continue;
        out.push(...(fs().readFileSync(p, 'utf8').match(CERT_BLOCK) ?? []));
      } catch {
        // unreadable entries in a hashed directory are skipped, as OpenSSL's lookup would
      }
    }
    if (out.length === 0) throw new TlsConfigError(`${dir}: no PEM certificates in the CA directory`);
  }
  for (const pem of out) {
    try {
      new (crypto().X509Certificate)(pem);
    } catch (e) {
      throw new TlsConfigError(`a CA certificate in ${file ?? dir} cannot be parsed: ${(e as Error).message}`);
    }
  }
  return out;
}

/** A certificate and key that were read and checked. */
export interface LoadedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** CA bundle for client certificates on this name (pen's sni `domain.ca`), else null. */
  readonly caPem: string[] | null;
  readonly names: string[];
  readonly isDefault: boolean;
  readonly subject: string;
  readonly keyType: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly fingerprint: string;
}

/** Reads and checks one certificate/key pair; throws TlsConfigError saying what is wrong. */
export function loadCertificate(c: CertificateConfig, now: Date, caFile: string | null = null): LoadedCertificate {
  const certText = readText(c.cert, 'certificate file');
  const keyText = c.key === c.cert ? certText : readText(c.key, 'key file');
  const certs = certBlocks(certText, c.cert, 'certificate file');
  const keys = keyText.match(KEY_BLOCK) ?? [];
  if (keys.length === 0) throw new TlsConfigError(`${c.key}: no PEM private key${c.key === c.cert ? ' in the certificate file (give the key with -K)' : ''}`);
  let x509: X509Certificate;
  try {
    x509 = new (crypto().X509Certificate)(certs[0]!);
  } catch (e) {
    throw new TlsConfigError(`${c.cert}: the certificate cannot be parsed: ${(e as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(crypto().createPrivateKey(keys[0]!));
  } catch (e) {
    throw new TlsConfigError(`${c.key}: the private key cannot be read: ${(e as Error).message}`);
  }
  if (!matches) throw new TlsConfigError(`${c.key} is not the private key of the certificate in ${c.cert}`);
  const names = c.names ?? certificateNames(x509);
  for (const n of names) {
    const problem = serverNamePatternProblem(n);
    if (problem !== undefined && c.names !== null) throw new TlsConfigError(`${c.cert}: ${problem}`);
  }
  const caPem = caFile === null ? null : certBlocks(readText(caFile, 'CA file'), caFile, 'CA file');
  return {
    certFile: c.cert,
    keyFile: c.key,
    certPem: certs.join('\n') + '\n',
    keyPem: keys[0]! + '\n',
    caPem,
    names: names.filter((n) => serverNamePatternProblem(n) === undefined).map(normalizeServerName),
    isDefault: c.isDefault,
    subject: x509.subject.replace(/\n/g, ', '),
    keyType: x509.publicKey.asymmetricKeyType ?? 'unknown',
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    fingerprint: x509.fingerprint256,
  };
}

/** The DNS names of a certificate (subjectAltName), else its CN. */
function certificateNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san !== undefined && san !== '') {
    const dns = san.split(/,\s*/).filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4));
    if (dns.length > 0) return dns;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn];
}

export function validityProblem(c: LoadedCertificate, now: Date): string | undefined {
  if (now < c.notBefore) return `${c.certFile} is not valid before ${c.notBefore.toISOString()}`;
  if (now > c.notAfter) return `${c.certFile} expired on ${c.notAfter.toISOString()}`;
  return undefined;
}

/** pen's ssl_sni_path: every `NAME.crt` with a `NAME.key` (and optional `NAME.ca`) in the directory. */
function sniPathEntries(dir: string): { config: CertificateConfig; caFile: string | null }[] {
  let files: string[];
  try {
    files = fs().readdirSync(dir);
  } catch (e) {
    throw new TlsConfigError(`cannot read ssl_sni_path ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const set = new Set(files);
  return files
    .filter((f) => f.endsWith('.crt') && set.has(`${f.slice(0, -4)}.key`))
    .sort()
    .map((f) => {
      const name = f.slice(0, -4);
      return {
        config: { cert: pathModule().join(dir, f), key: pathModule().join(dir, `${name}.key`), names: [name], isDefault: false },
        caFile: set.has(`${name}.ca`) ? pathModule().join(dir, `${name}.ca`) : null,
      };
    });
}

/** Size, mtime and inode of a path, to notice changes (also atomic replacement by rename). */
function stamp(path: string): string {
  try {
    const s = fs().statSync(path);
    if (s.isDirectory()) return `d:${s.mtimeMs}:${fs().readdirSync(path).sort().join('/')}`;
    return `f:${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch {
    return 'missing';
  }
}

interface Built {
  settings: TlsServerSettings;
  certificates: LoadedCertificate[];
  files: Map<string, string>;
  contexts: Map<string, SecureContextHandle>;
  good: Map<string, LoadedCertificate>;
}

/** New TLS settings, checked, not yet in service. */
export interface PreparedTls {
  readonly built: Built;
  readonly messages: string[];
}

/**
 * The TLS side of one terminating listener. `settings` is what new connections get; it is
 * replaced as a whole by `load()` (start), `reload()` (SIGHUP, file changes, pen commands).
 */
export class ListenerTls {
  config: ListenerTlsConfig;
  #built: Built | null = null;
  /** Last good certificate per cert/key pair, kept when a new version is broken. */
  #lastGood = new Map<string, LoadedCertificate>();
  /** OCSP response read for pen's ssl_ocsp_response (checked, not stapled: see docs/tls.md). */
  ocsp: { file: string; bytes: number; summary: string } | null = null;
  readonly warnings: string[] = [];

  constructor(config: ListenerTlsConfig) {
    this.config = config;
  }

  get settings(): TlsServerSettings | null {
    return this.#built?.settings ?? null;
  }

  get certificates(): readonly LoadedCertificate[] {
    return this.#built?.certificates ?? [];
  }

  /** Builds everything from the config; throws TlsConfigError if any certificate is unusable. */
  load(now: Date): string[] {
    const p = this.prepare(this.config, now, false);
    this.commit(this.config, p);
    return p.messages;
  }

  /**
   * Re-reads the files. Certificates that fail keep their previous version (reported in the
   * returned messages); settings that fail as a whole (a bad cipher list) keep everything as it was.
   */
  reload(now: Date): string[] {
    try {
      const p = this.prepare(this.config, now, true);
      this.commit(this.config, p);
      return p.messages;
    } catch (e) {
      return [`error: ${(e as Error).message}; the previous TLS settings stay in service`];
    }
  }

  /** Builds new settings for `config` without applying them (a config reload applies all or nothing). */
  prepare(config: ListenerTlsConfig, now: Date, keepOld: boolean): PreparedTls {
    const messages: string[] = [];
    const built = this.#build(config, now, messages, keepOld && this.#built !== null);
    return { built, messages };
  }

  commit(config: ListenerTlsConfig, p: PreparedTls): void {
    this.config = config;
    this.#built = p.built;
    this.#lastGood = p.built.good;
  }

  /** True when a file this listener reads has changed since it was last built. */
  filesChanged(): boolean {
    const files = this.#built?.files;
    if (files === undefined) return false;
    for (const [path, s] of files) if (stamp(path) !== s) return true;
    return false;
  }

  /** Re-reads pen's OCSP response file (pen re-reads it when the command is repeated). */
  readOcsp(file: string): string {
    let bytes: Buffer;
    try {
      bytes = fs().readFileSync(file);
    } catch (e) {
      throw new TlsConfigError(`ssl_ocsp_response: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const summary = ocspResponseSummary(bytes);
    if ('error' in summary) throw new TlsConfigError(`ssl_ocsp_response: ${file}: ${summary.error}`);
    this.ocsp = { file, bytes: bytes.length, summary: summary.text };
    return summary.text;
  }

  #build(c: ListenerTlsConfig, now: Date, messages: string[], keepOld: boolean): Built {
    const files = new Map<string, string>();
    const watch = (p: string | null): void => {
      if (p !== null && !files.has(p)) files.set(p, stamp(p));
    };
    const entries: { config: CertificateConfig; caFile: string | null }[] = c.certificates.map((config) => ({ config, caFile: null }));
    if (c.sniPath !== null) {
      watch(c.sniPath);
      entries.push(...sniPathEntries(c.sniPath));
    }
    if (entries.length === 0) throw new TlsConfigError('a TLS listener needs at least one certificate');
    const loaded: LoadedCertificate[] = [];
    const good = new Map<string, LoadedCertificate>();
    for (const e of entries) {
      watch(e.config.cert);
      watch(e.config.key);
      watch(e.caFile);
      const key = `${e.config.cert}\0${e.config.key}`;
      const old = this.#lastGood.get(key);
      let cert: LoadedCertificate;
      try {
        cert = loadCertificate(e.config, now, e.caFile);
        const problem = validityProblem(cert, now);
        if (problem !== undefined) {
          if (keepOld && old !== undefined && validityProblem(old, now) === undefined) throw new TlsConfigError(problem);
          messages.push(`warning: ${problem}; serving it anyway`);
        }
        if (old !== undefined && old.fingerprint !== cert.fingerprint) messages.push(`${cert.certFile}: new certificate ${cert.subject}, valid until ${cert.notAfter.toISOString()}`);
      } catch (err) {
        if (!keepOld || old === undefined || !(err instanceof TlsConfigError)) throw err;
        messages.push(`error: ${err.message}; the previous certificate stays in service`);
        cert = old;
      }
      loaded.push({ ...cert, isDefault: e.config.isDefault, names: e.config.names === null ? cert.names : e.config.names.map(normalizeServerName) });
      good.set(key, cert);
    }
    watch(c.clientAuth.caFile);
    watch(c.clientAuth.caDir);
    const clientCa = c.clientAuth.mode === 'none' ? null : readCaBundle(c.clientAuth.caFile, c.clientAuth.caDir);
    if (c.clientAuth.mode !== 'none' && clientCa === null) messages.push('warning: client certificates are verified against the system\'s trusted roots (no CA file given)');
    const alpn = encodeAlpnOrThrow(c.alpn);

    // Contexts: one per distinct set of certificates (RSA + ECDSA for the same names share one).
    const previous = this.#built?.contexts ?? new Map<string, SecureContextHandle>();
    const contexts = new Map<string, SecureContextHandle>();
    const contextOf = (set: LoadedCertificate[]): SecureContextHandle => {
      const options: ServerContextOptions = {
        certs: set.map((x) => x.certPem),
        keys: set.map((x) => x.keyPem),
        ca: set[0]!.caPem ?? clientCa,
        minVersion: c.minVersion,
        maxVersion: c.maxVersion,
        ciphers: c.ciphers,
        curves: c.curves,
        preferServerCiphers: c.preferServerCiphers,
        sessionTickets: c.sessionTickets,
        clientAuth: c.clientAuth.mode,
      };
      const id = crypto().createHash('sha256').update(JSON.stringify(options)).digest('hex');
      let ctx = contexts.get(id) ?? previous.get(id);
      if (ctx === undefined) {
        try {
          ctx = createServerContext(options);
        } catch (e) {
          throw new TlsConfigError(`${set.map((x) => x.certFile).join(', ')}: ${(e as Error).message}`);
        }
      }
      contexts.set(id, ctx);
      return ctx;
    };
    const byName = new Map<string, LoadedCertificate[]>();
    for (const cert of loaded) {
      for (const n of cert.names) {
        const list = byName.get(n) ?? [];
        list.push(cert);
        byName.set(n, list);
      }
    }
    const table = new NameTable<SecureContextHandle>();
    for (const [name, set] of byName) table.set(name, contextOf(set));
    let defaults = loaded.filter((x) => x.isDefault);
    if (defaults.length === 0) {
      const first = loaded[0]!;
      const key = [...first.names].sort().join(',');
      defaults = loaded.filter((x) => [...x.names].sort().join(',') === key);
    }
    const context = contextOf(defaults);
    const settings: TlsServerSettings = {
      context,
      contextFor: (name) => table.get(name),
      clientAuth: c.clientAuth.mode,
      alpn,
      handshakeTimeoutMs: c.handshakeTimeoutMs,
    };
    return { settings, certificates: loaded, files, contexts, good };
  }
}

function encodeAlpnOrThrow(list: readonly string[]): Uint8Array | null {
  try {
    return encodeAlpn(list);
  } catch (e) {
    throw new TlsConfigError((e as Error).message);
  }
}

/** TLS toward the servers of a group: one context, settings per server (the name to verify). */
export class GroupTls {
  readonly config: GroupTlsConfig;
  #context: SecureContextHandle;
  readonly #alpn: Uint8Array | null;
  readonly #byServer = new Map<string, TlsClientSettings>();

  constructor(config: GroupTlsConfig) {
    this.config = config;
    const ca = readCaBundle(config.caFile, null);
    const cert = config.certFile === null ? null : readText(config.certFile, 'client certificate file');
    const key = config.keyFile === null ? cert : readText(config.keyFile, 'client key file');
    try {
      this.#context = createClientContext({
        ca,
        cert: cert === null ? null : certBlocks(cert, config.certFile!, 'client certificate file').join('\n'),
        key: key === null ? null : ((key.match(KEY_BLOCK) ?? [])[0] ?? ''),
        minVersion: config.minVersion,
        maxVersion: config.maxVersion,
        ciphers: config.ciphers,
      });
    } catch (e) {
      throw new TlsConfigError(`server TLS: ${(e as Error).message}`);
    }
    this.#alpn = encodeAlpnOrThrow(config.alpn);
  }

  /** Connects a session's server side over TLS (the group's connection path). */
  connect(address: Address, side: Side, hostname: string | undefined): void {
    connectTls(address, side, this.settingsFor(formatAddress(address), hostname));
  }

  /** Settings for one server: SNI and the verified name default to the server's host name. */
  settingsFor(key: string, hostname: string | undefined): TlsClientSettings {
    let s = this.#byServer.get(key);
    if (s === undefined) {
      s = { context: this.#context, serverName: this.config.serverName ?? hostname ?? null, insecure: this.config.insecure, alpn: this.#alpn };
      this.#byServer.set(key, s);
    }
    return s;
  }
}
