// TLS termination from the config file: certificates by SNI (exact, wildcard, default), RSA and
// ECDSA side by side, ALPN, mutual TLS, routing after the handshake, the handshake timeout, and
// certificate reloads while connections stay up.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { connect, freePort, useHarness, waitFor, withTimeout } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { sClient, startFromYaml, tlsConnect, tlsEcho, yamlConfig } from '../helpers/tls-setup.ts';

const h = useHarness();
let pki: TestPki;
let apex: CertFiles; // example.test, default
let wildcard: CertFiles; // *.example.test
let api: CertFiles; // api.example.test
let rsaPair: CertFiles; // dual.test, RSA
let ecPair: CertFiles; // dual.test, ECDSA
let client: CertFiles;
let admin: CertFiles;
let stranger: CertFiles;

beforeAll(() => {
  pki = new TestPki();
  apex = pki.leaf('example.test');
  wildcard = pki.leaf('*.example.test');
  api = pki.leaf('api.example.test');
  rsaPair = pki.leaf('dual.test', { keyType: 'rsa' });
  ecPair = pki.leaf('dual.test');
  client = pki.leaf('svc-billing', { client: true, dns: [] });
  admin = pki.leaf('admin', { client: true, dns: [] });
  stranger = pki.leaf('svc-billing', { client: true, dns: [], ca: 'other' });
});
afterAll(() => pki.close());

const lines = (...l: string[]): string => l.join('\n') + '\n';

function groups(...backends: [string, string][]): string[] {
  return ['groups:', ...backends.flatMap(([name, address]) => [`  ${name}:`, `    servers: [${address}]`])];
}

describe('certificates by server name', () => {
  test('exact names, a wildcard, and the default for no SNI or an unknown name', async () => {
    const echo = h.echo();
    const port = freePort();
    await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        '      certificates:',
        `        - { cert: ${wildcard.cert}, key: ${wildcard.key} }`,
        `        - { cert: ${api.cert}, key: ${api.key} }`,
        `        - { cert: ${apex.cert}, key: ${apex.key}, default: true }`,
      ),
    );
    const served = async (servername?: string): Promise<string | undefined> => {
      // Not verified: some of these names are not in the certificate that must be served.
      const s = await tlsConnect({ port, ...(servername !== undefined ? { servername } : {}) });
      s.close();
      return s.peer.subjectCN;
    };
    expect(await served('api.example.test')).toBe('api.example.test'); // exact beats the wildcard
    expect(await served('www.example.test')).toBe('*.example.test');
    expect(await served('WWW.Example.Test.')).toBe('*.example.test');
    expect(await served('a.b.example.test')).toBe('example.test'); // a wildcard covers one label only
    expect(await served('other.test')).toBe('example.test');
    expect(await served()).toBe('example.test');
  });

  test('RSA and ECDSA certificates for the same names, side by side: each client gets the one it can use', async () => {
    const echo = h.echo();
    const port = freePort();
    await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        '      certificates:',
        `        - { cert: ${rsaPair.cert}, key: ${rsaPair.key} }`,
        `        - { cert: ${ecPair.cert}, key: ${ecPair.key} }`,
      ),
    );
    const rsa = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'dual.test', '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256', '-CAfile', pki.ca.cert]);
    const ec = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'dual.test', '-sigalgs', 'ECDSA+SHA256', '-CAfile', pki.ca.cert]);
    expect(rsa).toContain('Server public key is 2048 bit');
    expect(ec).toContain('Server public key is 256 bit');
    expect(rsa).toContain('Verify return code: 0 (ok)');
    expect(ec).toContain('Verify return code: 0 (ok)');
  });
});

describe('ALPN and versions', () => {
  test("the server's ALPN preference wins among what the client offers; a client without ALPN gets none", async () => {
    const echo = h.echo();
    const port = freePort();
    const { balancer } = await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`,
        '      alpn: [h2, http/1.1]',
        '      min_version: TLSv1.3',
      ),
    );
    const both = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test', alpn: ['http/1.1', 'h2'] });
    const h1 = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test', alpn: ['http/1.1'] });
    const none = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test' });
    expect([both.alpn, h1.alpn, none.alpn]).toEqual(['h2', 'http/1.1', false]);
    for (const s of [both, h1, none]) s.close();
    // Offering ALPN, but nothing the listener speaks: refused with no_application_protocol.
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test', alpn: ['spdy/3'] })).ok).toBe(false);
    await waitFor(() => balancer.listeners[0]!.handshakes.failures['no-alpn-match'] === 1, { what: 'a no-alpn-match failure' });
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test', maxVersion: 'TLSv1.2' })).ok).toBe(false);
  });
});

describe('mutual TLS', () => {
  test('required: only clients with a certificate from the CA get through', async () => {
    const echo = h.echo();
    const port = freePort();
    const { balancer } = await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`,
        `      client_auth: { mode: required, ca: ${pki.ca.cert} }`,
      ),
    );
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test', cert: client.cert, key: client.key })).ok).toBe(true);
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test' })).ok).toBe(false);
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test', cert: stranger.cert, key: stranger.key })).ok).toBe(false);
    await waitFor(() => balancer.listeners[0]!.handshakes.inProgress === 0, { what: 'handshakes to settle' });
    expect(balancer.listeners[0]!.handshakes.failures).toEqual({ 'no-client-cert': 1, 'bad-client-cert': 1 });
  });

  test('optional: no certificate is fine, a bad one is not; the verified identity is logged and routes', async () => {
    const web = h.identify('web', { after: 'echo' });
    const billing = h.identify('billing', { after: 'echo' });
    const port = freePort();
    const log = pki.path(`mtls-${Date.now()}.log`);
    const { balancer } = await startFromYaml(
      h,
      lines(
        'global:',
        `  log_file: ${log}`,
        '  log_format: fulcrum',
        ...groups(['web', web.address], ['billing', billing.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`,
        `      client_auth: { mode: optional, ca: ${pki.ca.cert} }`,
        '    sni_routes:',
        '      - client_identities: ["CN=svc-*"]',
        '        group: billing',
      ),
    );
    const anonymous = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test' });
    await anonymous.readUntil('web\n');
    const svc = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test', cert: client.cert, key: client.key });
    await svc.readUntil('billing\n');
    const other = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test', cert: admin.cert, key: admin.key });
    await other.readUntil('web\n');
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test', cert: stranger.cert, key: stranger.key })).ok).toBe(false);
    for (const s of [anonymous, svc, other]) s.close();
    await waitFor(() => balancer.totals.finished === 3, { what: 'three sessions to end' });
    await waitFor(() => readFileSync(log, 'utf8').split('\n').length >= 4, { what: 'three log lines' });
    const text = readFileSync(log, 'utf8');
    expect(text).toContain('client_cert="CN=svc-billing"');
    expect(text).toContain('client_cert="CN=admin"');
    expect(balancer.listeners[0]!.handshakes.failures).toEqual({ 'bad-client-cert': 1 });
  });
});

describe('routing after termination', () => {
  test('sni_routes choose the group by server name and ALPN; others go to the listener group', async () => {
    const web = h.identify('web', { after: 'echo' });
    const apiBackend = h.identify('api', { after: 'echo' });
    const grpc = h.identify('grpc', { after: 'echo' });
    const port = freePort();
    await startFromYaml(
      h,
      lines(
        ...groups(['web', web.address], ['api', apiBackend.address], ['grpc', grpc.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        '      certificates:',
        `        - { cert: ${wildcard.cert}, key: ${wildcard.key} }`,
        '      alpn: [h2, http/1.1]',
        '    sni_routes:',
        '      - { server_names: [api.example.test], alpn: [h2], group: grpc }',
        '      - { server_names: [api.example.test], group: api }',
      ),
    );
    const who = async (servername: string, alpn?: string[]): Promise<string> => {
      const s = await tlsConnect({ port, ca: pki.ca.cert, servername, ...(alpn !== undefined ? { alpn } : {}) });
      const text = await s.readUntil('\n');
      s.close();
      return text.trim();
    };
    expect(await who('api.example.test', ['h2'])).toBe('grpc');
    expect(await who('api.example.test', ['http/1.1'])).toBe('api');
    expect(await who('www.example.test')).toBe('web');
  });
});

describe('handshake timeout', () => {
  test('a client that connects and never finishes the handshake is closed at the timeout and counted', async () => {
    const echo = h.echo();
    const port = freePort();
    const { balancer } = await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`,
        '      handshake_timeout: 300ms',
      ),
    );
    const silent = await connect(port);
    const partial = await connect(port);
    await partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // the start of a ClientHello, then nothing
    expect(await silent.waitClosed(3_000)).not.toBe('timeout');
    expect(await partial.waitClosed(3_000)).not.toBe('timeout');
    expect(balancer.listeners[0]!.handshakes.failures).toEqual({ timeout: 2 });
    expect(balancer.listeners[0]!.handshakes.inProgress).toBe(0);
    expect(echo.connections).toBe(0);
    // A real client is still served.
    expect((await tlsEcho({ port, ca: pki.ca.cert, servername: 'example.test' })).ok).toBe(true);
  });

  test('plain text sent to a TLS port is refused and counted as not TLS', async () => {
    const echo = h.echo();
    const port = freePort();
    const { balancer } = await startFromYaml(
      h,
      lines(...groups(['web', echo.address]), 'listeners:', `  - listen: 127.0.0.1:${port}`, '    group: web', '    tls:', `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`),
    );
    const c = await connect(port);
    await c.write('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n');
    expect(await c.waitClosed(3_000)).not.toBe('timeout');
    await waitFor(() => balancer.listeners[0]!.handshakes.failures['not-tls'] === 1, {
      what: 'a not-tls failure',
      details: () => JSON.stringify(balancer.listeners[0]!.handshakes),
    });
  });
});

describe('certificate reload', () => {
  test('a new certificate file is served to new connections while an established TLS connection stays up', async () => {
    const echo = h.echo();
    const port = freePort();
    const certFile = pki.path(`live-${Date.now()}.crt`);
    const keyFile = pki.path(`live-${Date.now()}.key`);
    const first = pki.leaf('example.test');
    const second = pki.leaf('example.test');
    copyFileSync(first.cert, certFile);
    copyFileSync(first.key, keyFile);
    const { balancer, messages } = await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${certFile}, key: ${keyFile} }]`,
        '      file_check_interval: 100ms',
      ),
    );
    const old = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test' });
    expect(old.peer.fingerprint256).toBe(pki.fingerprint(first.cert));
    old.socket.write('before\n');
    await old.readUntil('before\n');
    // Replace the files the way certbot does: new content, key first.
    copyFileSync(second.key, keyFile);
    copyFileSync(second.cert, certFile);
    await waitFor(async () => (await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test' }).then((s) => (s.close(), s.peer.fingerprint256)))=== pki.fingerprint(second.cert), {
      what: 'the new certificate to be served',
      timeoutMs: 5_000,
      intervalMs: 100,
      details: () => messages.join('\n'),
    });
    old.socket.write('after\n');
    await old.readUntil('after\n');
    expect(balancer.activeCount).toBeGreaterThanOrEqual(1);
    expect(messages.join('\n')).toContain('certificate files changed: TLS reloaded');
    old.close();
  });

  test('a broken new certificate is reported and the old one stays in service (SIGHUP path)', async () => {
    const echo = h.echo();
    const port = freePort();
    const certFile = pki.path(`keep-${Date.now()}.crt`);
    const keyFile = pki.path(`keep-${Date.now()}.key`);
    const good = pki.leaf('example.test');
    copyFileSync(good.cert, certFile);
    copyFileSync(good.key, keyFile);
    const { balancer, messages } = await startFromYaml(
      h,
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${certFile}, key: ${keyFile} }]`,
        '      file_check_interval: 0',
      ),
    );
    const served = async (): Promise<string> => {
      const s = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test' });
      s.close();
      return s.peer.fingerprint256;
    };
    // 1. A key that does not match.
    copyFileSync(pki.leaf('example.test').key, keyFile);
    balancer.reloadTls('SIGHUP');
    expect(messages.join('\n')).toMatch(/error: .*is not the private key of the certificate.*the previous certificate stays in service/);
    expect(await served()).toBe(pki.fingerprint(good.cert));
    // 2. An expired certificate replacing a valid one.
    const expired = pki.leaf('example.test', { dates: ['20200101000000Z', '20210101000000Z'] });
    copyFileSync(expired.cert, certFile);
    copyFileSync(expired.key, keyFile);
    balancer.reloadTls('SIGHUP');
    expect(messages.join('\n')).toMatch(/expired on 2021-01-01.*the previous certificate stays in service/);
    expect(await served()).toBe(pki.fingerprint(good.cert));
    // 3. Garbage.
    writeFileSync(certFile, 'not a certificate');
    balancer.reloadTls('SIGHUP');
    expect(await served()).toBe(pki.fingerprint(good.cert));
  });

  test('TLS sessions resume across a reload that does not change the certificate', async () => {
    const echo = h.echo();
    const port = freePort();
    const config = (extra: string): string =>
      lines(
        ...groups(['web', echo.address]),
        'listeners:',
        `  - listen: 127.0.0.1:${port}`,
        '    group: web',
        '    tls:',
        `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`,
        `      handshake_timeout: ${extra}`,
      );
    const { balancer } = await startFromYaml(h, config('10s'));
    const sess = pki.path(`session-${Date.now()}`);
    // BoringSSL sends the session ticket with the server's first bytes, so the client says something.
    const first = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'example.test', '-CAfile', pki.ca.cert, '-sess_out', sess], 'hello\n', 5_000, 'hello\n');
    expect(first).toContain('New, TLSv1.3');
    balancer.reload(await yamlConfig(config('9s')));
    balancer.reloadTls('SIGHUP');
    const again = await sClient(['-connect', `127.0.0.1:${port}`, '-servername', 'example.test', '-CAfile', pki.ca.cert, '-sess_in', sess], 'hello\n', 5_000, 'hello\n');
    expect(again).toContain('Reused, TLSv1.3');
    await waitFor(() => balancer.listeners[0]!.handshakes.resumed === 1, { what: 'a resumed handshake to be counted' });
  });
});

test('half-close through TLS: the client FIN (close_notify) reaches the server and the reply still flows back', async () => {
  const sink = h.sink();
  const port = freePort();
  await startFromYaml(h, lines(...groups(['web', sink.address]), 'listeners:', `  - listen: 127.0.0.1:${port}`, '    group: web', '    tls:', `      certificates: [{ cert: ${apex.cert}, key: ${apex.key} }]`));
  const s = await tlsConnect({ port, ca: pki.ca.cert, servername: 'example.test' });
  const payload = Buffer.alloc(300_000, 7);
  s.socket.end(payload);
  const reply = await s.readUntil('\n', 5_000);
  expect(reply).toMatch(/^[0-9a-f]{64} 300000\n$/);
  expect(await withTimeout(s.closed, 3_000, 'the close')).toBe('closed');
  void net;
});
