/**
 * TLS clients and backends for tests, with every wait bounded: a node:tls client that reports
 * what it negotiated (certificate, ALPN, version) or why it was refused, TLS echo backends (with
 * optional client certificates), a recording tap for passthrough checks, and an openssl
 * s_client runner for what only OpenSSL's client shows (session resumption, OCSP status).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Socket, TCPSocketListener } from 'bun';
import { Balancer, resolveConfig, type Diagnostics } from '../../src/app/balancer.ts';
import { formatIssue, parseConfigText } from '../../src/config/yaml/parse.ts';
import type { Harness } from '../harness/index.ts';
import { OPENSSL } from './certs.ts';

export const TLS_TIMEOUT_MS = 5_000;

export interface TlsClientOptions {
  port: number;
  host?: string;
  servername?: string;
  /** CA file to verify the server with; without it the server is not verified. */
  ca?: string;
  cert?: string;
  key?: string;
  alpn?: string[];
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ciphers?: string;
  timeoutMs?: number;
  /** Start TLS on this connected socket instead of connecting (e.g. after a PROXY header). */
  socket?: net.Socket;
}

export interface TlsSession {
  socket: tls.TLSSocket;
  /** What the server presented. */
  peer: { subjectCN: string | undefined; fingerprint256: string; keyType: string | undefined };
  alpn: string | false | null;
  version: string | null;
  authorized: boolean;
  /** Everything received so far. */
  received(): string;
  /** Waits until the received text contains `text`. */
  readUntil(text: string, timeoutMs?: number): Promise<string>;
  /** Resolves with how the connection ended: 'closed' or an error message. */
  closed: Promise<string>;
  close(): void;
}

/** Connects and completes a TLS handshake; rejects (bounded) with the reason if it fails. */
export function tlsConnect(o: TlsClientOptions): Promise<TlsSession> {
  const timeoutMs = o.timeoutMs ?? TLS_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let settled = false;
    let text = '';
    const waiters: (() => void)[] = [];
    let endResolve: (v: string) => void = () => {};
    const closed = new Promise<string>((r) => (endResolve = r));
    const socket = tls.connect({
      ...(o.socket !== undefined ? { socket: o.socket } : { host: o.host ?? '127.0.0.1', port: o.port }),
      ...(o.servername !== undefined ? { servername: o.servername } : {}),
      ...(o.ca !== undefined ? { ca: readFileSync(o.ca) } : {}),
      ...(o.cert !== undefined ? { cert: readFileSync(o.cert) } : {}),
      ...(o.key !== undefined ? { key: readFileSync(o.key) } : {}),
      ...(o.alpn !== undefined ? { ALPNProtocols: o.alpn } : {}),
      ...(o.minVersion !== undefined ? { minVersion: o.minVersion } : {}),
      ...(o.maxVersion !== undefined ? { maxVersion: o.maxVersion } : {}),
      ...(o.ciphers !== undefined ? { ciphers: o.ciphers } : {}),
      rejectUnauthorized: o.ca !== undefined,
    });
    const timer = setTimeout(() => fail(new Error(`TLS handshake with port ${o.port} did not finish in ${timeoutMs}ms`)), timeoutMs);
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      for (const w of waiters.splice(0)) w();
    });
    socket.on('error', (e: Error) => {
      fail(e);
      endResolve(e.message);
      for (const w of waiters.splice(0)) w();
    });
    socket.on('close', () => {
      fail(new Error('the connection closed during the TLS handshake'));
      endResolve('closed');
      for (const w of waiters.splice(0)) w();
    });
    socket.on('secureConnect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const cert = socket.getPeerCertificate();
      const session: TlsSession = {
        socket,
        peer: {
          subjectCN: typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined,
          fingerprint256: cert.fingerprint256,
          keyType: (cert as { pubkey?: unknown; asn1Curve?: string; bits?: number }).asn1Curve !== undefined ? 'ec' : cert.bits !== undefined ? 'rsa' : undefined,
        },
        alpn: socket.alpnProtocol ?? null,
        version: socket.getProtocol(),
        authorized: socket.authorized,
        received: () => text,
        readUntil: (want, ms = timeoutMs) =>
          new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error(`timed out after ${ms}ms waiting for "${want}"; got ${JSON.stringify(text.slice(-200))}`)), ms);
            const check = (): void => {
              if (text.includes(want)) {
                clearTimeout(t);
                res(text);
              } else if (socket.destroyed || socket.readableEnded) {
                clearTimeout(t);
                rej(new Error(`the connection ended before "${want}" arrived; got ${JSON.stringify(text.slice(-200))}`));
              } else {
                waiters.push(check);
              }
            };
            check();
          }),
        closed,
        close: () => socket.destroy(),
      };
      resolve(session);
    });
  });
}

/**
 * Connects, sends `payload` and waits for the echo. Returns the session, or the reason the
 * server refused (during or right after the handshake, as TLS 1.3 servers refuse client
 * certificates after the client's Finished).
 */
export async function tlsEcho(o: TlsClientOptions, payload = 'ping\n'): Promise<{ ok: true; session: TlsSession } | { ok: false; error: string }> {
  let s: TlsSession;
  try {
    s = await tlsConnect(o);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  try {
    s.socket.write(payload);
    await s.readUntil(payload, o.timeoutMs);
    return { ok: true, session: s };
  } catch (e) {
    s.close();
    return { ok: false, error: (e as Error).message };
  }
}

export interface TlsBackend {
  port: number;
  address: string;
  /** Server names the clients asked for (SNI), in order. */
  serverNames: (string | null)[];
  /** Verified client certificate CNs, in order (null if none). */
  clientCNs: (string | null)[];
  connections: number;
}

/** A TLS echo server (Bun.listen with TLS) with the given certificate. */
export function tlsEchoBackend(h: Harness, o: { cert: string; key: string; ca?: string; requireClientCert?: boolean; name?: string }): TlsBackend {
  const b: TlsBackend = { port: 0, address: '', serverNames: [], clientCNs: [], connections: 0 };
  const l: TCPSocketListener<undefined> = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    tls: {
      cert: readFileSync(o.cert, 'utf8'),
      key: readFileSync(o.key, 'utf8'),
      ...(o.ca !== undefined ? { ca: readFileSync(o.ca, 'utf8') } : {}),
      ...(o.requireClientCert === true ? { requestCert: true, rejectUnauthorized: true } : {}),
    },
    socket: {
      handshake(s: Socket<undefined>, ok: boolean) {
        b.connections++;
        b.serverNames.push(s.getServername() || null);
        const cn = s.getPeerCertificate()?.subject?.CN;
        b.clientCNs.push(typeof cn === 'string' && s.authorized ? cn : null);
        if (!ok && o.requireClientCert === true) s.terminate();
        else if (o.name !== undefined) s.write(`${o.name}\n`);
      },
      data(s: Socket<undefined>, d: Buffer) {
        s.write(d);
      },
      end(s: Socket<undefined>) {
        s.end();
      },
      error() {},
    },
  });
  b.port = l.port;
  b.address = `127.0.0.1:${l.port}`;
  h.defer(() => l.stop(true));
  return b;
}

/** A plain TCP tap in front of a server: it records the bytes each way, unchanged, and forwards them. */
export interface Tap {
  port: number;
  address: string;
  /** Bytes from clients, per connection. */
  fromClients: Buffer[][];
  fromServer: Buffer[][];
}

export async function tap(h: Harness, targetPort: number): Promise<Tap> {
  const t: Tap = { port: 0, address: '', fromClients: [], fromServer: [] };
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    const up: Buffer[] = [];
    const down: Buffer[] = [];
    t.fromClients.push(up);
    t.fromServer.push(down);
    const s = net.connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true });
    c.on('data', (d: Buffer) => {
      up.push(Buffer.from(d));
      s.write(d);
    });
    s.on('data', (d: Buffer) => {
      down.push(Buffer.from(d));
      c.write(d);
    });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
    c.on('close', () => s.destroy());
    s.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  h.defer(() => new Promise<void>((r) => server.close(() => r())));
  const addr = server.address();
  t.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  t.address = `127.0.0.1:${t.port}`;
  return t;
}

export function sha256(parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/**
 * Runs `openssl s_client` (bounded) with `input` on stdin; resolves with stdout + stderr. Stdin
 * stays open until `untilOutput` appears in the output (or the bound), since s_client quits at
 * its end of input, possibly before the reply (and a TLS 1.3 session ticket) arrived.
 */
export function sClient(args: string[], input = '', timeoutMs = TLS_TIMEOUT_MS, untilOutput?: string): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn(OPENSSL, ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    // Give the handshake time before writing (s_client quits at EOF on stdin).
    setTimeout(() => {
      if (untilOutput === undefined) {
        p.stdin.end(input);
        return;
      }
      p.stdin.write(input);
      const check = setInterval(() => {
        if (out.includes(untilOutput)) {
          clearInterval(check);
          setTimeout(() => p.stdin.end(), 100);
        }
      }, 20);
      p.on('close', () => clearInterval(check));
    }, 300);
  });
}

export interface YamlBalancer {
  balancer: Balancer;
  messages: string[];
}

/** Runs a Balancer in this process from YAML text (ports already chosen by the test). */
export async function startFromYaml(h: Harness, text: string): Promise<YamlBalancer> {
  const r = parseConfigText(text, 'test.yaml');
  if ('errors' in r) throw new Error(`config errors:\n${r.errors.map(formatIssue).join('\n')}`);
  const messages: string[] = [];
  const diag: Diagnostics = {
    info: (m) => messages.push(m),
    error: (m) => messages.push('error: ' + m),
    debug: (_l, m) => messages.push(m),
  };
  const balancer = new Balancer(await resolveConfig(r.config), diag);
  balancer.start();
  h.defer(() => balancer.stop());
  return { balancer, messages };
}

/** Parses YAML text into a config (for reload tests). */
export async function yamlConfig(text: string) {
  const r = parseConfigText(text, 'test.yaml');
  if ('errors' in r) throw new Error(`config errors:\n${r.errors.map(formatIssue).join('\n')}`);
  return resolveConfig(r.config);
}
