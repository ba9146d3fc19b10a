/**
 * TLS through the real `fulcrum` command, side by side with pen 0.34.1 (built with SSL) as the
 * oracle for pen's options: `fulcrum -E cert.pem -K key.pem PORT app1 app2` must offload TLS as
 * pen does. Also what pen cannot do: SIGHUP reloads the certificate, and the config file.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, writeFileSync } from 'node:fs';
import { freePort, penAvailable, useHarness, waitFor, type Harness } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { tlsConnect, tlsEcho } from '../helpers/tls-setup.ts';

const h = useHarness();
let pki: TestPki;
let site: CertFiles;
let client: CertFiles;

beforeAll(() => {
  pki = new TestPki();
  site = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  client = pki.leaf('client', { client: true, dns: [] });
});
afterAll(() => pki.close());

async function start(hh: Harness, program: 'pen' | 'fulcrum', args: string[]) {
  return program === 'pen' ? hh.startPen(args) : hh.startFulcrum(args);
}

/** Who serves a TLS connection (the identify backend's name), or '-' if it fails. */
async function whoOverTls(port: number, extra: { cert?: string; key?: string } = {}): Promise<string> {
  try {
    const s = await tlsConnect({ port, ca: pki.ca.cert, servername: 'localhost', timeoutMs: 3000, ...extra });
    const line = await s.readUntil('\n', 3000);
    s.close();
    return `${line.trim()}@${s.peer.fingerprint256.slice(0, 11)}`;
  } catch {
    return '-';
  }
}

describe.skipIf(!penAvailable())('TLS as pen 0.34.1 does it', () => {
  test('-E -K offloads TLS: same certificate, same round robin (-r) over two servers', async () => {
    const a = h.identify('app1');
    const b = h.identify('app2');
    const results: Record<string, string[]> = {};
    for (const program of ['pen', 'fulcrum'] as const) {
      const port = freePort();
      const proc = await start(h, program, ['-r', '-E', site.cert, '-K', site.key, `127.0.0.1:${port}`, a.address, b.address]);
      results[program] = [];
      for (let i = 0; i < 4; i++) results[program]!.push(await whoOverTls(port));
      await proc.close();
    }
    expect(results.fulcrum).toEqual(results.pen!);
    expect(new Set(results.pen!.map((x) => x.split('@')[0]))).toEqual(new Set(['app1', 'app2']));
  });

  test('-E with the key in the same file, and -R -G: the same clients are refused', async () => {
    const a = h.identify('app1');
    const outcome: Record<string, string[]> = {};
    for (const program of ['pen', 'fulcrum'] as const) {
      const port = freePort();
      const proc = await start(h, program, ['-R', '-G', pki.ca.cert, '-E', site.combined, `127.0.0.1:${port}`, a.address]);
      outcome[program] = [
        (await whoOverTls(port, { cert: client.cert, key: client.key })).split('@')[0]!,
        (await whoOverTls(port)).split('@')[0]!,
      ];
      await proc.close();
    }
    expect(outcome.fulcrum).toEqual(outcome.pen!);
    expect(outcome.pen).toEqual(['app1', '-']);
  });
});

test('fulcrum -E -K re-reads the certificate on SIGHUP (pen needs a restart); a connection stays up', async () => {
  const echo = h.echo();
  const dir = pki.path(`e2e-${Date.now()}`);
  const certFile = `${dir}.crt`;
  const keyFile = `${dir}.key`;
  const second = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  copyFileSync(site.cert, certFile);
  copyFileSync(site.key, keyFile);
  const port = freePort();
  const proc = await h.startFulcrum(['-E', certFile, '-K', keyFile, `127.0.0.1:${port}`, echo.address]);
  const live = await tlsConnect({ port, ca: pki.ca.cert, servername: 'localhost' });
  expect(live.peer.fingerprint256).toBe(pki.fingerprint(site.cert));
  copyFileSync(second.key, keyFile);
  copyFileSync(second.cert, certFile);
  proc.kill('SIGHUP');
  await proc.waitForLine(/SIGHUP: TLS reloaded/, 5_000);
  const fresh = await tlsConnect({ port, ca: pki.ca.cert, servername: 'localhost' });
  expect(fresh.peer.fingerprint256).toBe(pki.fingerprint(second.cert));
  live.socket.write('still here\n');
  await live.readUntil('still here\n');
  live.close();
  fresh.close();
});

test('--config with TLS, and `fulcrum check` reports TLS mistakes with their place', async () => {
  const echo = h.echo();
  const port = freePort();
  const good = pki.path(`tls-${Date.now()}.yaml`);
  writeFileSync(
    good,
    [
      'groups:',
      '  app:',
      `    servers: [${echo.address}]`,
      'listeners:',
      `  - listen: 127.0.0.1:${port}`,
      '    group: app',
      '    tls:',
      `      certificates: [{ cert: ${site.cert}, key: ${site.key} }]`,
      '      alpn: [http/1.1]',
      '',
    ].join('\n'),
  );
  const proc = await h.startFulcrum(['--config', good], { port });
  const r = await tlsEcho({ port, ca: pki.ca.cert, servername: 'localhost', alpn: ['http/1.1'] });
  if (!r.ok) throw new Error(r.error);
  expect(r.session.alpn).toBe('http/1.1');
  r.session.close();
  await proc.close();

  const bad = pki.path(`bad-${Date.now()}.yaml`);
  writeFileSync(bad, ['groups:', '  app:', '    servers: [127.0.0.1:1]', 'listeners:', '  - listen: 8443', '    group: app', '    tls:', '      min_version: SSLv3', '      certificates: [{ cert: x.crt }]', ''].join('\n'));
  const check = await h.spawn([process.execPath, 'src/cli/main.ts', 'check', bad], { readiness: false });
  expect(await check.waitForExit(10_000)).toBe(1);
  expect(check.stderr()).toContain(`${bad}:8:20: listeners[0].tls.min_version: SSLv3: SSLv2 and SSLv3 are insecure and refused`);
});

test('a certificate that cannot be used stops the start with the reason', async () => {
  const echo = h.echo();
  const port = freePort();
  const other = pki.leaf('localhost');
  const proc = await h.spawn([process.execPath, 'src/cli/main.ts', '-f', '-E', site.cert, '-K', other.key, `127.0.0.1:${port}`, echo.address], { readiness: false });
  expect(await proc.waitForExit(10_000)).toBe(1);
  expect(proc.stderr()).toContain('is not the private key of the certificate');
  await waitFor(() => !proc.running, { what: 'the process to exit' });
});
