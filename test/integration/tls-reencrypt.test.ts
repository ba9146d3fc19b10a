// TLS to the servers (re-encryption): verified against a CA and a server name, refused for bad
// certificates (with failover to the next server), explicitly insecure for lab use, and with a
// client certificate toward servers that require one.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { connect, freePort, useHarness, waitFor } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { startFromYaml, tlsConnect, tlsEchoBackend } from '../helpers/tls-setup.ts';

const h = useHarness();
let pki: TestPki;
let appCert: CertFiles;
let wrongName: CertFiles;
let expired: CertFiles;
let otherCa: CertFiles;
let localhost: CertFiles;
let fulcrumClient: CertFiles;
let front: CertFiles;

beforeAll(() => {
  pki = new TestPki();
  appCert = pki.leaf('app.internal');
  wrongName = pki.leaf('wrong.internal');
  expired = pki.leaf('app.internal', { dates: ['20200101000000Z', '20210101000000Z'] });
  otherCa = pki.leaf('app.internal', { ca: 'other' });
  localhost = pki.leaf('localhost');
  fulcrumClient = pki.leaf('fulcrum-lb', { client: true, dns: [] });
  front = pki.leaf('www.test');
});
afterAll(() => pki.close());

const lines = (...l: string[]): string => l.join('\n') + '\n';

async function reencrypt(servers: string[], tls: string[], extra: string[] = [], global: string[] = [], groupExtra: string[] = []) {
  const port = freePort();
  const lb = await startFromYaml(
    h,
    lines(...(global.length > 0 ? ['global:', ...global.map((g) => `  ${g}`)] : []), 'groups:', '  app:', `    servers: [${servers.join(', ')}]`, '    blacklist: 30s', ...groupExtra, '    tls:', ...tls.map((t) => `      ${t}`), 'listeners:', `  - listen: 127.0.0.1:${port}`, '    group: app', ...extra),
  );
  return { port, ...lb };
}

/** A plain client through Fulcrum: the name line the TLS backend sends, or null if the connection closes. */
async function greeting(port: number): Promise<string | null> {
  const c = await connect(port);
  try {
    return (await c.readLine()).trim();
  } catch {
    return null;
  } finally {
    await c.close();
  }
}

test('verified against the CA and the configured server name, which is also sent as SNI', async () => {
  const back = tlsEchoBackend(h, { cert: appCert.cert, key: appCert.key, name: 'app' });
  const { port, balancer } = await reencrypt([back.address], [`ca: ${pki.ca.cert}`, 'server_name: app.internal']);
  expect(await greeting(port)).toBe('app');
  const c = await connect(port);
  await c.readLine();
  await c.write('through TLS to the server\n');
  expect(await c.readLine()).toBe('through TLS to the server');
  await c.close();
  expect(back.serverNames).toEqual(['app.internal', 'app.internal']);
  await waitFor(() => balancer.totals.finished === 2, { what: 'sessions to end' });
  expect(balancer.totals.ends).toEqual({ 'client-closed': 2 });
});

test('the server name defaults to the host name the server was written with', async () => {
  const back = tlsEchoBackend(h, { cert: localhost.cert, key: localhost.key, name: 'by-name' });
  const { port } = await reencrypt([`localhost:${back.port}`], [`ca: ${pki.ca.cert}`]);
  expect(await greeting(port)).toBe('by-name');
  expect(back.serverNames).toEqual(['localhost']);
});

test('a wrong name, an expired certificate or another CA is refused; the server counts a connect failure', async () => {
  for (const bad of [wrongName, expired, otherCa]) {
    const back = tlsEchoBackend(h, { cert: bad.cert, key: bad.key, name: 'should-not-see' });
    const { port, balancer, messages } = await reencrypt([back.address], [`ca: ${pki.ca.cert}`, 'server_name: app.internal']);
    expect(await greeting(port)).toBeNull();
    const server = balancer.defaultGroup.servers[0]!;
    await waitFor(() => server.connectFailures === 1, { what: `a connect failure for ${bad.cert}`, details: () => messages.join('\n') });
    expect(server.isBlacklisted(Date.now())).toBe(true);
  }
});

test('a server with a bad certificate fails over to the next server', async () => {
  const bad = tlsEchoBackend(h, { cert: wrongName.cert, key: wrongName.key, name: 'bad' });
  const good = tlsEchoBackend(h, { cert: appCert.cert, key: appCert.key, name: 'good' });
  const log = pki.path(`failover-${Date.now()}.log`);
  const { port, balancer } = await reencrypt([bad.address, good.address], [`ca: ${pki.ca.cert}`, 'server_name: app.internal'], [], [`log_file: ${log}`, 'log_format: fulcrum'], ['    tracking: false']);
  // Round robin without tracking tries each server in turn: every client is served by the good one.
  expect([await greeting(port), await greeting(port)]).toEqual(['good', 'good']);
  await waitFor(() => balancer.totals.finished === 2, { what: 'the sessions to end' });
  expect(balancer.defaultGroup.servers[0]!.connectFailures).toBe(1);
  await waitFor(() => readFileSync(log, 'utf8').includes('after failures on server 0'), { what: 'the log line', timeoutMs: 3_000, details: () => readFileSync(log, 'utf8') });
});

test('insecure: true accepts any certificate (lab use)', async () => {
  const back = tlsEchoBackend(h, { cert: otherCa.cert, key: otherCa.key, name: 'lab' });
  const { port, messages } = await reencrypt([back.address], ['insecure: true']);
  expect(await greeting(port)).toBe('lab');
  expect(messages.join('\n')).toContain('NOT verified');
});

test('a client certificate toward servers that require one', async () => {
  const back = tlsEchoBackend(h, { cert: appCert.cert, key: appCert.key, ca: pki.ca.cert, requireClientCert: true, name: 'mtls' });
  const without = await reencrypt([back.address], [`ca: ${pki.ca.cert}`, 'server_name: app.internal']);
  expect(await greeting(without.port)).toBeNull();
  const withCert = await reencrypt([back.address], [`ca: ${pki.ca.cert}`, 'server_name: app.internal', `cert: ${fulcrumClient.cert}`, `key: ${fulcrumClient.key}`]);
  expect(await greeting(withCert.port)).toBe('mtls');
  expect(back.clientCNs.filter((c) => c !== null)).toEqual(['fulcrum-lb']);
});

test('TLS on both sides: terminate, then re-encrypt', async () => {
  const back = tlsEchoBackend(h, { cert: appCert.cert, key: appCert.key, name: 'inner' });
  const { port } = await reencrypt([back.address], [`ca: ${pki.ca.cert}`, 'server_name: app.internal'], ['    tls:', `      certificates: [{ cert: ${front.cert}, key: ${front.key} }]`]);
  const s = await tlsConnect({ port, servername: 'www.test', ca: pki.ca.cert });
  expect(s.peer.subjectCN).toBe('www.test');
  await s.readUntil('inner\n');
  s.socket.write('both ways\n');
  await s.readUntil('both ways\n');
  s.close();
});
