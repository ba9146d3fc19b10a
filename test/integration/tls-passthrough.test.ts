// SNI routing without termination: Fulcrum reads the ClientHello's server name (and ALPN),
// chooses a group, and passes the encrypted stream through untouched; the TLS session is
// between the client and the server behind.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { connect, freePort, useHarness, waitFor } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { sha256, startFromYaml, tap, tlsConnect, tlsEchoBackend } from '../helpers/tls-setup.ts';

const h = useHarness();
let pki: TestPki;
let a: CertFiles;
let b: CertFiles;
let fallback: CertFiles;

beforeAll(() => {
  pki = new TestPki();
  a = pki.leaf('a.test');
  b = pki.leaf('b.test', { dns: ['b.test', '*.b.test'] });
  fallback = pki.leaf('fallback.test');
});
afterAll(() => pki.close());

const lines = (...l: string[]): string => l.join('\n') + '\n';

async function setup(extra: string[] = []) {
  const backA = tlsEchoBackend(h, { cert: a.cert, key: a.key, name: 'A' });
  const backB = tlsEchoBackend(h, { cert: b.cert, key: b.key, name: 'B' });
  const backDefault = tlsEchoBackend(h, { cert: fallback.cert, key: fallback.key, name: 'default' });
  const tapA = await tap(h, backA.port);
  const port = freePort();
  const lb = await startFromYaml(
    h,
    lines(
      'groups:',
      '  a:',
      `    servers: [${tapA.address}]`,
      '  b:',
      `    servers: [${backB.address}]`,
      '  other:',
      `    servers: [${backDefault.address}]`,
      'listeners:',
      `  - listen: 127.0.0.1:${port}`,
      '    group: other',
      ...extra,
      '    sni_routes:',
      '      - { server_names: [a.test], group: a }',
      '      - { server_names: ["*.b.test", b.test], group: b }',
    ),
  );
  return { port, lb, backA, backB, backDefault, tapA };
}

test('routes by server name; the server behind terminates TLS; no name or an unknown one goes to the listener group', async () => {
  const { port, backA, backB, backDefault } = await setup();
  const toA = await tlsConnect({ port, servername: 'a.test', ca: pki.ca.cert });
  const toB = await tlsConnect({ port, servername: 'x.b.test', ca: pki.ca.cert });
  const toOther = await tlsConnect({ port, servername: 'unknown.test' });
  const noName = await tlsConnect({ port });
  expect([toA.peer.subjectCN, toB.peer.subjectCN, toOther.peer.subjectCN, noName.peer.subjectCN]).toEqual(['a.test', 'b.test', 'fallback.test', 'fallback.test']);
  await toA.readUntil('A\n');
  await toB.readUntil('B\n');
  await toOther.readUntil('default\n');
  await noName.readUntil('default\n');
  expect(backA.serverNames).toEqual(['a.test']);
  expect(backB.serverNames).toEqual(['x.b.test']);
  expect(backDefault.serverNames).toEqual(['unknown.test', null]);
  for (const s of [toA, toB, toOther, noName]) s.close();
});

test('the bytes reach the server unchanged, the ClientHello first', async () => {
  const { port, tapA, lb } = await setup();
  // Taps on both sides of Fulcrum record the wire: what the client sent must be what the server got.
  const front = await tap(h, port);
  const session = await tlsConnect({ port: front.port, servername: 'a.test', ca: pki.ca.cert });
  await session.readUntil('A\n');
  const payload = 'x'.repeat(100_000) + '\n';
  session.socket.write(payload);
  await session.readUntil(payload);
  session.close();
  await waitFor(() => lb.balancer.totals.finished === 1, { what: 'the session to end' });
  const sent = front.fromClients[0]!;
  const sentBytes = Buffer.concat(sent);
  await waitFor(() => Buffer.concat(tapA.fromClients[0] ?? []).length >= sentBytes.length, { what: 'every byte at the server' });
  expect(sentBytes.length).toBeGreaterThan(100_000);
  expect(sentBytes[0]).toBe(0x16); // a TLS handshake record: the ClientHello went first
  expect(sha256(tapA.fromClients[0]!)).toBe(sha256(sent));
  // And what the server sent reached the client unchanged (a close_notify may still be on its way).
  const down = Buffer.concat(front.fromServer[0]!);
  expect(down.length).toBeGreaterThan(100_000);
  expect(sha256([down])).toBe(sha256([Buffer.concat(tapA.fromServer[0]!).subarray(0, down.length)]));
  const s = lb.balancer.groups.get('a')!.servers[0]!;
  expect(s.bytesToServer).toBe(sentBytes.length);
  expect(lb.balancer.listeners[0]!.handshakes).toMatchObject({ ok: 1, inProgress: 0 });
});

test('a ClientHello that arrives a few bytes at a time is still routed', async () => {
  const { port } = await setup();
  // Capture a real ClientHello, then replay it in small pieces on a raw socket.
  const capture = await (async () => {
    const chunks: Buffer[] = [];
    const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: (_s, d) => void chunks.push(Buffer.from(d)) } });
    h.defer(() => l.stop(true));
    const s = await tlsConnect({ port: l.port, servername: 'b.test', timeoutMs: 500 }).catch(() => null);
    s?.close();
    await waitFor(() => chunks.length > 0, { what: 'a ClientHello' });
    return Buffer.concat(chunks);
  })();
  const c = await connect(port);
  for (let i = 0; i < capture.length; i += 7) {
    await c.write(capture.subarray(i, i + 7));
    await Bun.sleep(1);
  }
  // The server behind answers with its ServerHello: a TLS handshake record.
  const first = await c.readExactly(1);
  expect(first[0]).toBe(0x16);
  await c.close();
});

test('ALPN in the ClientHello can route too', async () => {
  const h2 = tlsEchoBackend(h, { cert: a.cert, key: a.key, name: 'h2-backend' });
  const other = tlsEchoBackend(h, { cert: a.cert, key: a.key, name: 'other' });
  const port = freePort();
  await startFromYaml(
    h,
    lines(
      'groups:',
      '  grpc:',
      `    servers: [${h2.address}]`,
      '  web:',
      `    servers: [${other.address}]`,
      'listeners:',
      `  - listen: 127.0.0.1:${port}`,
      '    group: web',
      '    sni_routes:',
      '      - { alpn: [h2], group: grpc }',
    ),
  );
  const viaH2 = await tlsConnect({ port, servername: 'a.test', alpn: ['h2', 'http/1.1'] });
  await viaH2.readUntil('h2-backend\n');
  const viaH1 = await tlsConnect({ port, servername: 'a.test', alpn: ['http/1.1'] });
  await viaH1.readUntil('other\n');
  viaH2.close();
  viaH1.close();
});

test('not TLS, or silence, is closed and counted; the preread timeout bounds the wait', async () => {
  const { port, lb, backDefault } = await setup(['    preread_timeout: 300ms']);
  const plain = await connect(port);
  await plain.write('GET / HTTP/1.1\r\n\r\n');
  expect(await plain.waitClosed(3_000)).not.toBe('timeout');
  const silent = await connect(port);
  expect(await silent.waitClosed(3_000)).not.toBe('timeout');
  const l = lb.balancer.listeners[0]!;
  await waitFor(() => l.handshakes.inProgress === 0, { what: 'the gates to close' });
  expect(l.handshakes.failures).toEqual({ 'not-tls': 1, timeout: 1 });
  expect(backDefault.connections).toBe(0);
});
