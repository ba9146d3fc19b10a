// PROXY protocol in (accept_proxy): real sockets on loopback. The trusted balancer in front is
// 127.0.0.1; 127.0.0.2 plays an untrusted host. After the header, the real client named in it is
// what hashing, the access log and the header Fulcrum sends on (send_proxy) see.
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { connect, customBackend, freePort, identify, useHarness, waitFor } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { startFromYaml, tlsConnect, tlsEchoBackend } from '../helpers/tls-setup.ts';
import { accessRecord, type AccessRecord } from '../../src/control/access-log.ts';
import { encodeProxyV1, encodeProxyV2, type ProxiedAddresses } from '../../src/protocol/proxy-protocol.ts';
import { Metrics } from '../../src/control/metrics.ts';
import type { ListenerRuntime } from '../../src/app/runtime.ts';
import type { Session } from '../../src/dataplane/session.ts';

const h = useHarness();
const lines = (...l: string[]): string => l.join('\n') + '\n';
let pki: TestPki;
let cert: CertFiles;
beforeAll(() => {
  pki = new TestPki();
  cert = pki.leaf('proxied.test');
});
afterAll(() => pki.close());

const client = (ip: string, port = 40000): ProxiedAddresses => ({ family: 'tcp4', sourceAddress: ip, sourcePort: port, destinationAddress: '192.0.2.1', destinationPort: 443 });

async function setup(listenerExtra: string[], groupExtra: string[] = [], servers?: string[]) {
  const a = identify('A', { after: 'echo' });
  const b = identify('B', { after: 'echo' });
  h.add(a);
  h.add(b);
  const port = freePort();
  const lb = await startFromYaml(
    h,
    lines(
      'groups:',
      '  web:',
      `    servers: [${(servers ?? [a.address, b.address]).join(', ')}]`,
      ...groupExtra,
      'listeners:',
      `  - listen: 127.0.0.1:${port}`,
      '    group: web',
      '    accept_proxy: true',
      '    proxy_trusted: [127.0.0.1/32, "::1"]',
      ...listenerExtra,
    ),
  );
  const records: AccessRecord[] = [];
  lb.balancer.onSessionEnd.push((s: Session) => records.push(accessRecord(s)));
  const listener = lb.balancer.listeners[0] as ListenerRuntime;
  return { port, lb, records, listener };
}

/** Sends a header (and maybe more) from 127.0.0.1, returns the server's name line. */
async function via(port: number, header: Uint8Array, from = '127.0.0.1'): Promise<string> {
  const c = h.add(await connect(port, { localAddress: from }));
  await c.write(header);
  const name = await c.readLine();
  await c.close();
  return name;
}

test('v1 and v2 from a trusted source: the real client is hashed (-h) and logged', async () => {
  const { port, records, listener } = await setup([], ['    algorithm: hash']);
  // pen's IPv4 hash takes the first octet as the low byte: 10.x and 11.x land on different servers.
  const even = new Set<string>();
  const odd = new Set<string>();
  for (let i = 0; i < 4; i++) {
    even.add(await via(port, encodeProxyV1(client('10.0.0.' + (i + 1)))));
    odd.add(await via(port, encodeProxyV2(client('11.0.0.' + (i + 1)))));
  }
  expect(even.size).toBe(1);
  expect(odd.size).toBe(1);
  expect([...even][0]).not.toBe([...odd][0]);
  await waitFor(() => records.length >= 8, { what: 'eight access records' });
  const clients = records.map((r) => r.client).sort();
  expect(clients).toContain('10.0.0.1:40000');
  expect(clients).toContain('11.0.0.4:40000');
  expect(clients.some((c) => c.startsWith('127.'))).toBe(false);
  expect(listener.proxy.v1).toBe(4);
  expect(listener.proxy.v2).toBe(4);
});

test('bytes after the header in the same write reach the server; send_proxy passes the real client on', async () => {
  let firstLine = '';
  const back = h.add(
    customBackend('first-line', {
      data(conn, chunk) {
        firstLine += chunk.toString('latin1');
        if (firstLine.includes('hello')) {
          conn.write(firstLine);
          conn.end();
        }
      },
    }),
  );
  const { port } = await setup([], ['    send_proxy: v1'], [back.address]);
  const c = h.add(await connect(port));
  await c.write(Buffer.concat([encodeProxyV2(client('198.51.100.7', 5555)), Buffer.from('hello')]));
  const got = (await c.readAll()).toString('latin1');
  expect(got).toBe('PROXY TCP4 198.51.100.7 192.0.2.1 5555 443\r\nhello');
});

test('an untrusted source is closed unread and counted', async () => {
  const { port, listener, records, lb } = await setup([]);
  const c = h.add(await connect(port, { localAddress: '127.0.0.2' }));
  await c.write(encodeProxyV1(client('10.9.9.9'))).catch(() => undefined);
  expect(['fin', 'reset']).toContain(await c.waitClosed());
  expect(listener.proxy.failures.untrusted).toBe(1);
  expect(records.length).toBe(0);
  const text = await new Metrics(lb.balancer, { version: 'test' }).scrape();
  expect(text).toContain(`fulcrum_listener_proxy_failures_total{listener="listener-1",address="127.0.0.1:${port}",reason="untrusted"} 1`);
});

test('garbage, a partial header and silence are closed with a reason, and no session starts', async () => {
  const { port, listener, records } = await setup(['    proxy_timeout: 300ms']);
  const garbage = h.add(await connect(port));
  await garbage.write('GET / HTTP/1.1\r\n\r\n');
  expect(await garbage.waitClosed()).toBe('fin');
  const partial = h.add(await connect(port));
  await partial.write('PROXY TCP4 10.0.0.1 ');
  expect(await partial.waitClosed()).toBe('fin');
  const silent = h.add(await connect(port));
  expect(await silent.waitClosed()).toBe('fin');
  const cut = h.add(await connect(port));
  await cut.end('PROXY TCP4 10.');
  await waitFor(() => (listener.proxy.failures['client-closed'] ?? 0) === 1, { what: 'the half header counted' });
  expect(listener.proxy.failures['bad-header']).toBe(1);
  expect(listener.proxy.failures.timeout).toBe(2);
  expect(listener.proxy.inProgress).toBe(0);
  expect(records.length).toBe(0);
});

test('with TLS termination behind it: header first, then the handshake (SNI still picks the certificate)', async () => {
  const { port, records, listener } = await setup(['    tls:', '      certificates:', `        - { cert: ${cert.cert}, key: ${cert.key} }`]);
  // The client writes the header on the raw TCP connection, then starts TLS on it.
  const net = await import('node:net');
  const raw = net.connect(port, '127.0.0.1');
  h.defer(() => {
    raw.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  raw.write(encodeProxyV1(client('203.0.113.9', 6000)));
  const s = await tlsConnect({ port, socket: raw, servername: 'proxied.test', ca: pki.ca.cert });
  expect(s.peer.subjectCN).toBe('proxied.test');
  expect(['A\n', 'B\n']).toContain(await s.readUntil('\n'));
  s.socket.end();
  await waitFor(() => records.length === 1, { what: 'the access record' });
  expect(records[0]!.client).toBe('203.0.113.9:6000');
  expect(records[0]!.tls?.mode).toBe('terminated');
  expect(records[0]!.tls?.sni).toBe('proxied.test');
  expect(listener.proxy.v1).toBe(1);
});

test('with passthrough behind it: header first, then the ClientHello routes by SNI to a server that terminates', async () => {
  const back = tlsEchoBackend(h, { cert: cert.cert, key: cert.key, name: 'T' });
  const port = freePort();
  const lb = await startFromYaml(
    h,
    lines(
      'groups:',
      '  other:',
      '    servers: [127.0.0.1:1]',
      '  tls:',
      `    servers: [${back.address}]`,
      'listeners:',
      `  - listen: 127.0.0.1:${port}`,
      '    group: other',
      '    accept_proxy: true',
      '    proxy_trusted: [127.0.0.1]',
      '    sni_routes:',
      '      - { server_names: [proxied.test], group: tls }',
    ),
  );
  const records: AccessRecord[] = [];
  lb.balancer.onSessionEnd.push((s: Session) => records.push(accessRecord(s)));
  const net = await import('node:net');
  const raw = net.connect(port, '127.0.0.1');
  h.defer(() => {
    raw.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  raw.write(encodeProxyV2({ family: 'tcp6', sourceAddress: '2001:db8::7', sourcePort: 7000, destinationAddress: '2001:db8::1', destinationPort: 443 }));
  const s = await tlsConnect({ port, socket: raw, servername: 'proxied.test', ca: pki.ca.cert });
  expect(s.peer.subjectCN).toBe('proxied.test');
  s.socket.end();
  await waitFor(() => records.length === 1, { what: 'the access record' });
  expect(records[0]!.client).toBe('2001:db8::7:7000');
  expect(records[0]!.tls?.mode).toBe('passthrough');
  expect(records[0]!.group).toBe('tls');
});
