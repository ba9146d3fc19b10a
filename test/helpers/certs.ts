/**
 * A test PKI made with openssl at test time, in a temp dir: two CAs (the trusted one and a
 * "wrong" one), server and client certificates with chosen names, key types and validity
 * (expired, not yet valid), and pre-fetched OCSP responses. Nothing is checked in: every run
 * makes fresh keys. EC P-256 keys by default (fast to make); RSA where a test needs it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const OPENSSL = '/usr/bin/openssl';

export interface CertFiles {
  /** PEM certificate. */
  cert: string;
  /** PEM private key. */
  key: string;
  /** PEM certificate followed by its key (pen's -E without -K). */
  combined: string;
  name: string;
}

export interface LeafOptions {
  /** DNS names (subjectAltName); the first is also the CN. Default: [name]. */
  dns?: string[];
  /** IP addresses for subjectAltName. */
  ips?: string[];
  /** Which CA signs it. */
  ca?: 'main' | 'other';
  keyType?: 'ec' | 'rsa';
  /** A client certificate (extendedKeyUsage clientAuth) rather than a server one. */
  client?: boolean;
  /** Validity, e.g. expired: ['20200101000000Z', '20210101000000Z']. */
  dates?: [string, string];
}

function run(args: string[], cwd: string): string {
  const r = spawnSync(OPENSSL, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

function keyArgs(type: 'ec' | 'rsa'): string[] {
  return type === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
}

const CA_CNF = (dir: string): string => `
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = ${dir}/index.txt
new_certs_dir = ${dir}/newcerts
serial = ${dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
`;

export class TestPki {
  readonly dir: string;
  readonly ca: CertFiles;
  readonly otherCa: CertFiles;
  #serial = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'fulcrum-pki-'));
    this.ca = this.#makeCa('main', 'Fulcrum Test CA');
    this.otherCa = this.#makeCa('other', 'Some Other CA');
  }

  #makeCa(id: string, cn: string): CertFiles {
    const d = join(this.dir, `ca-${id}`);
    mkdirSync(join(d, 'newcerts'), { recursive: true });
    writeFileSync(join(d, 'index.txt'), '');
    writeFileSync(join(d, 'serial'), id === 'main' ? '1000\n' : '5000\n');
    writeFileSync(join(d, 'ca.cnf'), CA_CNF(d));
    run(
      ['req', '-x509', ...keyArgs('ec'), '-nodes', '-days', '365', '-subj', `/CN=${cn}`, '-keyout', 'ca.key', '-out', 'ca.crt',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
      d,
    );
    const cert = join(d, 'ca.crt');
    const key = join(d, 'ca.key');
    const combined = join(d, 'ca.pem');
    writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
    return { cert, key, combined, name: cn };
  }

  /** Issues a leaf certificate; `file` names the files (unique per call). */
  leaf(name: string, opts: LeafOptions = {}): CertFiles {
    const which = opts.ca ?? 'main';
    const ca = which === 'main' ? this.ca : this.otherCa;
    const caDir = join(this.dir, `ca-${which}`);
    const base = join(this.dir, `${name.replace(/[^A-Za-z0-9.-]/g, '_')}-${++this.#serial}`);
    const dns = opts.dns ?? [name];
    const san = [...dns.map((d) => `DNS:${d}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)];
    const ext = [
      '[ ext ]',
      'basicConstraints = CA:FALSE',
      opts.client === true ? 'extendedKeyUsage = clientAuth' : 'extendedKeyUsage = serverAuth',
      opts.client === true ? 'keyUsage = digitalSignature' : 'keyUsage = digitalSignature, keyEncipherment',
      ...(san.length > 0 ? [`subjectAltName = ${san.join(', ')}`] : []),
    ].join('\n');
    writeFileSync(`${base}.ext`, ext + '\n');
    run(['req', ...keyArgs(opts.keyType ?? 'ec'), '-nodes', '-subj', `/CN=${dns[0] ?? name}`, '-keyout', `${base}.key`, '-out', `${base}.csr`], this.dir);
    const dates = opts.dates === undefined ? ['-days', '30'] : ['-startdate', opts.dates[0], '-enddate', opts.dates[1]];
    run(
      ['ca', '-batch', '-config', join(caDir, 'ca.cnf'), '-cert', ca.cert, '-keyfile', ca.key, '-in', `${base}.csr`, '-out', `${base}.crt`,
        '-notext', '-extfile', `${base}.ext`, '-extensions', 'ext', ...dates],
      this.dir,
    );
    const combined = `${base}.pem`;
    writeFileSync(combined, readFileSync(`${base}.crt`, 'utf8') + readFileSync(`${base}.key`, 'utf8'));
    return { cert: `${base}.crt`, key: `${base}.key`, combined, name };
  }

  /** A pre-fetched OCSP response (DER file) for a leaf of the main CA, signed by the CA. */
  ocspResponse(leaf: CertFiles, status: 'good' | 'revoked' = 'good'): string {
    const caDir = join(this.dir, 'ca-main');
    const base = `${leaf.cert}.${status}.${++this.#serial}`;
    if (status === 'revoked') run(['ca', '-config', join(caDir, 'ca.cnf'), '-cert', this.ca.cert, '-keyfile', this.ca.key, '-revoke', leaf.cert], this.dir);
    run(['ocsp', '-issuer', this.ca.cert, '-cert', leaf.cert, '-reqout', `${base}.req`, '-no_nonce'], this.dir);
    run(
      ['ocsp', '-index', join(caDir, 'index.txt'), '-rsigner', this.ca.cert, '-rkey', this.ca.key, '-CA', this.ca.cert, '-reqin', `${base}.req`,
        '-respout', `${base}.der`, '-ndays', '1'],
      this.dir,
    );
    return `${base}.der`;
  }

  /** SHA-256 fingerprint of a certificate file, as Node and Bun print it (AA:BB:...). */
  fingerprint(certFile: string): string {
    const out = run(['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], this.dir);
    return out.trim().split('=')[1]!;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
