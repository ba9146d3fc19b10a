// TLS termination with pen's options (-E -K -G -A -R -L) and pen's ssl_* commands, over real
// loopback sockets with certificates made at test time.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError } from '../../src/app/pen-commands.ts';
import { outcomeReply, Reloader } from '../../src/app/reload.ts';
import { useHarness, waitFor } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { startInProcess } from '../helpers/in-process.ts';
import { sClient, tlsConnect, tlsEcho } from '../helpers/tls-setup.ts';

const h = useHarness();
let pki: TestPki;
let site: CertFiles;
let client: CertFiles;
let strangerClient: CertFiles;

beforeAll(() => {
  pki = new TestPki();
  site = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  client = pki.leaf('client-one', { client: true, dns: [] });
  strangerClient = pki.leaf('stranger', { client: true, dns: [], ca: 'other' });
});
afterAll(() => pki.close());

describe('pen options', () => {
  test('-E -K: offloads TLS; the server sees plain bytes; the log line says what was negotiated', async () => {
    const echo = h.echo();
    const log = pki.path(`log-${Date.now()}`);
    const lb = await startInProcess(h, ['-l', log, '--log-format', 'fulcrum', '-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    const r = await tlsEcho({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' }, 'hello through TLS\n');
    if (!r.ok) throw new Error(r.error);
    expect(r.session.authorized).toBe(true);
    expect(r.session.peer.fingerprint256).toBe(pki.fingerprint(site.cert));
    expect(r.session.version).toBe('TLSv1.3');
    expect(echo.bytesReceived).toBe('hello through TLS\n'.length);
    r.session.close();
    await waitFor(() => lb.balancer.totals.finished === 1, { what: 'the session to end' });
    const l = lb.balancer.listeners[0]!;
    expect(l.handshakes).toMatchObject({ ok: 1, inProgress: 0, failures: {} });
    await waitFor(() => readFileSync(log, 'utf8').includes('tls=TLSv1.3'), { what: 'the log line' });
    expect(readFileSync(log, 'utf8')).toMatch(/tls=TLSv1\.3 sni=localhost alpn=- cipher=TLS_\S+ resumed=0/);
  });

  test('-E alone: the key is read from the certificate file, as pen does', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-E', site.combined, 'LISTEN', echo.address]);
    const r = await tlsEcho({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' });
    expect(r.ok).toBe(true);
  });

  test('-R -G: a client certificate from the CA is required; none, or one from another CA, is refused and counted', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-R', '-G', pki.ca.cert, '-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    const good = await tlsEcho({ port: lb.port, ca: pki.ca.cert, cert: client.cert, key: client.key });
    expect(good.ok).toBe(true);
    const none = await tlsEcho({ port: lb.port, ca: pki.ca.cert });
    expect(none.ok).toBe(false);
    const stranger = await tlsEcho({ port: lb.port, ca: pki.ca.cert, cert: strangerClient.cert, key: strangerClient.key });
    expect(stranger.ok).toBe(false);
    const l = lb.balancer.listeners[0]!;
    await waitFor(() => l.handshakes.inProgress === 0, { what: 'handshakes to settle' });
    expect(l.handshakes.ok).toBe(1);
    expect(l.handshakes.failures).toEqual({ 'no-client-cert': 1, 'bad-client-cert': 1 });
    expect(echo.connections).toBe(1);
  });

  test('-A: client certificates verified against a directory of CA certificates', async () => {
    const echo = h.echo();
    const dir = pki.path(`cadir-${Date.now()}`);
    mkdirSync(dir);
    copyFileSync(pki.ca.cert, join(dir, 'a1b2c3d4.0'));
    const lb = await startInProcess(h, ['-R', '-A', dir, '-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    expect((await tlsEcho({ port: lb.port, ca: pki.ca.cert, cert: client.cert, key: client.key })).ok).toBe(true);
    expect((await tlsEcho({ port: lb.port, ca: pki.ca.cert, cert: strangerClient.cert, key: strangerClient.key })).ok).toBe(false);
  });

  test('-L tls1.3 refuses a TLS 1.2 client; the default (ssl23) takes TLS 1.2 and 1.3', async () => {
    const echo = h.echo();
    const strict = await startInProcess(h, ['-L', 'tls1.3', '-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    const old = await tlsEcho({ port: strict.port, ca: pki.ca.cert, maxVersion: 'TLSv1.2' });
    expect(old.ok).toBe(false);
    await waitFor(() => strict.balancer.listeners[0]!.handshakes.failures['protocol-version'] === 1, {
      what: 'a protocol-version failure',
      details: () => JSON.stringify(strict.balancer.listeners[0]!.handshakes),
    });
    const usual = await startInProcess(h, ['-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    const r12 = await tlsEcho({ port: usual.port, ca: pki.ca.cert, maxVersion: 'TLSv1.2' });
    if (!r12.ok) throw new Error(r12.error);
    expect(r12.session.version).toBe('TLSv1.2');
    // TLS 1.1 is below Fulcrum's minimum.
    expect((await tlsEcho({ port: usual.port, ca: pki.ca.cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).ok).toBe(false);
  });
});

describe("pen's ssl_* commands", () => {
  test('ssl_option no_tlsv1.2 raises the minimum to TLS 1.3 for new connections; ssl_ciphers limits TLS 1.2 ciphers', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    await lb.commands.execute('ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256');
    const wrongCipher = await tlsEcho({ port: lb.port, ca: pki.ca.cert, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
    expect(wrongCipher.ok).toBe(false);
    const rightCipher = await tlsEcho({ port: lb.port, ca: pki.ca.cert, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(rightCipher.ok).toBe(true);
    await lb.commands.execute('ssl_option no_tlsv1.2');
    expect((await tlsEcho({ port: lb.port, ca: pki.ca.cert, maxVersion: 'TLSv1.2' })).ok).toBe(false);
    expect((await tlsEcho({ port: lb.port, ca: pki.ca.cert })).ok).toBe(true);
    await lb.commands.execute('ssl_option cipher_server_preference');
    expect(lb.balancer.listeners[0]!.tls!.config).toMatchObject({ minVersion: 'TLSv1.3', preferServerCiphers: true });
    // A bad value changes nothing and says why.
    await expect(lb.commands.execute('ssl_ciphers NO-SUCH-CIPHER')).rejects.toThrow(/NO_CIPHER_MATCH.*nothing changed/);
    await expect(lb.commands.execute('ssl_option no_tlsv1.3')).rejects.toThrow(/would leave none/);
    expect((await tlsEcho({ port: lb.port, ca: pki.ca.cert })).ok).toBe(true);
  });

  test('ssl_sni_path: domain.crt/.key in a directory are served by server name; others get the default', async () => {
    const echo = h.echo();
    const dir = pki.path(`sni-${Date.now()}`);
    mkdirSync(dir);
    const a = pki.leaf('a.test');
    const b = pki.leaf('b.test');
    copyFileSync(a.cert, join(dir, 'a.test.crt'));
    copyFileSync(a.key, join(dir, 'a.test.key'));
    copyFileSync(b.cert, join(dir, 'b.test.crt'));
    copyFileSync(b.key, join(dir, 'b.test.key'));
    writeFileSync(join(dir, 'c.test.crt'), readFileSync(b.cert)); // no key: ignored, as pen would fail it
    const lb = await startInProcess(h, ['-E', site.cert, '-K', site.key, '-o', `ssl_sni_path ${dir}`, 'LISTEN', echo.address]);
    const fa = await tlsConnect({ port: lb.port, ca: pki.ca.cert, servername: 'a.test' });
    const fb = await tlsConnect({ port: lb.port, ca: pki.ca.cert, servername: 'B.TEST' });
    const fc = await tlsConnect({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' });
    expect([fa.peer.subjectCN, fb.peer.subjectCN, fc.peer.subjectCN]).toEqual(['a.test', 'b.test', 'localhost']);
    for (const s of [fa, fb, fc]) s.close();
  });

  test("ssl_sni_path: a name's domain.ca verifies client certificates on that name (with -R)", async () => {
    const echo = h.echo();
    const dir = pki.path(`sni-ca-${Date.now()}`);
    mkdirSync(dir);
    const a = pki.leaf('a.test');
    copyFileSync(a.cert, join(dir, 'a.test.crt'));
    copyFileSync(a.key, join(dir, 'a.test.key'));
    copyFileSync(pki.otherCa.cert, join(dir, 'a.test.ca'));
    const lb = await startInProcess(h, ['-R', '-G', pki.ca.cert, '-E', site.cert, '-K', site.key, '-o', `ssl_sni_path ${dir}`, 'LISTEN', echo.address]);
    const ok = async (servername: string, c: CertFiles): Promise<boolean> => (await tlsEcho({ port: lb.port, servername, cert: c.cert, key: c.key })).ok;
    expect(await ok('localhost', client)).toBe(true);
    expect(await ok('localhost', strangerClient)).toBe(false);
    expect(await ok('a.test', strangerClient)).toBe(true);
    expect(await ok('a.test', client)).toBe(false);
  });

  test('ssl_ocsp_response: read and checked, re-read when repeated, refused when broken; never stapled (Bun cannot)', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    const good = pki.ocspResponse(site);
    const file = pki.path(`ocsp-${Date.now()}.der`);
    copyFileSync(good, file);
    await lb.commands.execute(`ssl_ocsp_response ${file}`);
    const tls = lb.balancer.listeners[0]!.tls!;
    expect(tls.ocsp?.summary).toMatch(/successful, certificate good/);
    expect(lb.messages.join('\n')).toContain('NOT stapled');
    copyFileSync(pki.ocspResponse(site, 'revoked'), file);
    await lb.commands.execute(`ssl_ocsp_response ${file}`);
    expect(tls.ocsp?.summary).toMatch(/certificate revoked/);
    writeFileSync(file, 'not DER');
    await expect(lb.commands.execute(`ssl_ocsp_response ${file}`)).rejects.toThrow(CommandError);
    const out = await sClient(['-connect', `127.0.0.1:${lb.port}`, '-status', '-CAfile', pki.ca.cert]);
    expect(out).toContain('OCSP response: no response sent');
  });

  test('ssl_client_renegotiation_interval is accepted; client renegotiation is refused', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['-E', site.cert, '-K', site.key, '-o', 'ssl_client_renegotiation_interval 10', 'LISTEN', echo.address]);
    expect(lb.balancer.listeners[0]!.tls!.config.renegotiationIntervalS).toBe(10);
    // "R" asks OpenSSL's client to renegotiate (TLS 1.2); the server must refuse.
    const out = await sClient(['-connect', `127.0.0.1:${lb.port}`, '-tls1_2', '-CAfile', pki.ca.cert], 'R\n');
    expect(out).toContain('RENEGOTIATING');
    expect(out).toContain('alert no renegotiation');
  });

  test("reload (SIGHUP, the control port's reload) re-reads certificate files with pen's command line too", async () => {
    const echo = h.echo();
    const certFile = pki.path(`reload-${Date.now()}.crt`);
    const keyFile = pki.path(`reload-${Date.now()}.key`);
    copyFileSync(site.cert, certFile);
    copyFileSync(site.key, keyFile);
    const lb = await startInProcess(h, ['-E', certFile, '-K', keyFile, 'LISTEN', echo.address]);
    const next = pki.leaf('localhost', { ips: ['127.0.0.1'] });
    copyFileSync(next.key, keyFile);
    copyFileSync(next.cert, certFile);
    const outcome = await new Reloader(lb.balancer, async () => lb.commands).reload();
    expect(outcomeReply(outcome, false)).toEqual({ reply: 're-read the TLS certificate files\n' });
    expect(outcome.ok && outcome.changes.join('\n')).toContain('new certificate CN=localhost');
    const s = await tlsConnect({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' });
    expect(s.peer.fingerprint256).toBe(pki.fingerprint(next.cert));
    s.close();
  });

  test('ssl_* without a TLS listener is an error', async () => {
    const echo = h.echo();
    const lb = await startInProcess(h, ['LISTEN', echo.address]);
    await expect(lb.commands.execute('ssl_ciphers HIGH')).rejects.toThrow(/no TLS listener/);
  });
});

describe('the input that crashes pen 0.34.1', () => {
  // pen keeps the connections to close in a list of -x entries but adds a connection once per
  // socket event, so up to two per connection: when as many TLS clients as -x vanish at once it
  // writes past the list and later aborts in OpenSSL (docs/architecture.md, Decisions). The same
  // input, scaled down by a smaller -x, must leave Fulcrum counting and serving.
  test('as many TLS clients as -x vanish at once, twice: every session ends and is counted, the next client is served', async () => {
    const echo = h.echo();
    const max = 16;
    const lb = await startInProcess(h, ['-x', String(max), '-E', site.cert, '-K', site.key, 'LISTEN', echo.address]);
    for (let round = 1; round <= 2; round++) {
      const sessions = await Promise.all(Array.from({ length: max }, () => tlsConnect({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' })));
      for (const s of sessions) s.socket.write('hi\n');
      await Promise.all(sessions.map((s) => s.readUntil('hi\n')));
      expect(lb.balancer.activeCount).toBe(max);
      // Gone in the same tick, without close_notify, as when the client process is killed.
      for (const s of sessions) s.close();
      await waitFor(() => lb.balancer.totals.finished === max * round, { what: `round ${round}: every session to end` });
      expect(lb.balancer.activeCount).toBe(0);
      await echo.waitForActive(0);
    }
    const next = await tlsEcho({ port: lb.port, ca: pki.ca.cert, servername: 'localhost' });
    if (!next.ok) throw new Error(next.error);
    next.session.close();
    expect(lb.balancer.listeners[0]!.handshakes.failures).toEqual({});
  });
});
