import { expect, test } from 'bun:test';
import type { FulcrumConfig } from '../../../src/config/model.ts';
import { formatIssue, parseConfigText } from '../../../src/config/yaml/parse.ts';

const FILE = 'fulcrum.yaml';
const y = (...lines: string[]): string => `${lines.join('\n')}\n`;

function configOf(text: string): FulcrumConfig {
  const r = parseConfigText(text, FILE);
  if ('errors' in r) throw new Error(`unexpected errors:\n${r.errors.map(formatIssue).join('\n')}`);
  return r.config;
}

function errorsOf(text: string): string[] {
  const r = parseConfigText(text, FILE);
  if (!('errors' in r)) throw new Error('expected errors, got a config');
  return r.errors.map(formatIssue);
}

const GROUPS = ['groups:', '  web:', '    servers: [127.0.0.1:8080]', '  api:', '    servers: [127.0.0.1:9090]'];

test('a full TLS listener: certificates by name, default, versions, ciphers, ALPN, mTLS, timeouts', () => {
  const c = configOf(
    y(
      ...GROUPS,
      'listeners:',
      '  - name: https',
      '    listen: 8443',
      '    group: web',
      '    tls:',
      '      certificates:',
      '        - cert: /etc/f/rsa.crt',
      '          key: /etc/f/rsa.key',
      '          names: [Example.COM, "*.example.com"]',
      '          default: true',
      '        - cert: /etc/f/ec.pem',
      '      sni_path: /etc/f/sni',
      '      min_version: TLSv1.3',
      '      ciphers: ECDHE+AESGCM',
      '      curves: X25519:P-256',
      '      prefer_server_ciphers: true',
      '      alpn: [h2, http/1.1]',
      '      client_auth:',
      '        mode: optional',
      '        ca: /etc/f/clients.pem',
      '      handshake_timeout: 3s',
      '      session_tickets: false',
      '      file_check_interval: 1s',
      '    sni_routes:',
      '      - server_names: [api.example.com]',
      '        alpn: [h2]',
      '        client_identities: ["CN=svc-*"]',
      '        group: api',
    ),
  );
  const l = c.listeners[0]!;
  expect(l.tls).toEqual({
    certificates: [
      { cert: '/etc/f/rsa.crt', key: '/etc/f/rsa.key', names: ['example.com', '*.example.com'], isDefault: true },
      { cert: '/etc/f/ec.pem', key: '/etc/f/ec.pem', names: null, isDefault: false },
    ],
    sniPath: '/etc/f/sni',
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: 'ECDHE+AESGCM',
    curves: 'X25519:P-256',
    preferServerCiphers: true,
    alpn: ['h2', 'http/1.1'],
    clientAuth: { mode: 'optional', caFile: '/etc/f/clients.pem', caDir: null },
    handshakeTimeoutMs: 3000,
    sessionTickets: false,
    reloadCheckMs: 1000,
    ocspResponse: null,
    renegotiationIntervalS: 3600,
  });
  expect(l.sniRoutes).toEqual([{ serverNames: ['api.example.com'], alpn: ['h2'], clientIdentities: ['CN=svc-*'], group: 'api' }]);
});

test('passthrough: sni_routes without tls, with a preread timeout (default 5s)', () => {
  const c = configOf(
    y(
      ...GROUPS,
      'listeners:',
      '  - listen: 443',
      '    group: web',
      '    preread_timeout: 2s',
      '    sni_routes:',
      '      - server_names: ["*.api.test"]',
      '        group: api',
      '  - listen: 444',
      '    group: web',
      '    sni_routes: [{ alpn: [h2], group: api }]',
    ),
  );
  expect(c.listeners[0]).toMatchObject({ prereadTimeoutMs: 2000, sniRoutes: [{ serverNames: ['*.api.test'], group: 'api' }] });
  expect(c.listeners[0]!.tls).toBeUndefined();
  expect(c.listeners[1]!.prereadTimeoutMs).toBe(5000);
});

test('TLS to the servers of a group', () => {
  const c = configOf(
    y(
      'groups:',
      '  app:',
      '    servers: [10.0.0.1:443]',
      '    tls:',
      '      ca: /etc/f/internal-ca.pem',
      '      server_name: App.Internal',
      '      cert: /etc/f/fulcrum-client.pem',
      '      alpn: [h2]',
      '      min_version: TLSv1.3',
      '  lab:',
      '    servers: [10.0.0.2:443]',
      '    tls: { insecure: true }',
      'listeners:',
      '  - listen: 8080',
      '    group: app',
    ),
  );
  expect(c.groups[0]!.tls).toEqual({
    caFile: '/etc/f/internal-ca.pem',
    serverName: 'app.internal',
    insecure: false,
    certFile: '/etc/f/fulcrum-client.pem',
    keyFile: '/etc/f/fulcrum-client.pem',
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: null,
    alpn: ['h2'],
  });
  expect(c.groups[1]!.tls).toMatchObject({ insecure: true, caFile: null });
});

test('TLS mistakes are reported with file, line, column and path', () => {
  const errors = errorsOf(
    y(
      ...GROUPS, //                                   lines 1-5
      'listeners:', //                                 6
      '  - listen: 8443', //                           7
      '    group: web', //                             8
      '    tls:', //                                   9
      '      certificates:', //                        10
      '        - cert: a.crt', //                      11
      '          names: ["a.*.com"]', //               12
      '          dafault: true', //                    13
      '      min_version: SSLv3', //                   14
      '      max_version: TLSv1.5', //                 15
      '      client_auth: { mode: required }', //      16
      '      alpn: [""]', //                           17
      '    sni_routes:', //                            18
      '      - server_names: [x.test]', //             19
      '        group: apj', //                         20
      '  - listen: 444', //                            21
      '    group: web', //                             22
      '    preread_timeout: 1s', //                    23
      '    sni_routes:', //                            24
      '      - client_identities: ["CN=x"]', //        25
      '        group: api', //                         26
    ),
  );
  expect(errors).toEqual([
    `${FILE}:12:19: listeners[0].tls.certificates[0].names[0]: "a.*.com": "*" may only be the whole leftmost label (like *.example.com)`,
    `${FILE}:13:11: listeners[0].tls.certificates[0].dafault: unknown field 'dafault' (did you mean 'default'?)`,
    `${FILE}:14:20: listeners[0].tls.min_version: SSLv3: SSLv2 and SSLv3 are insecure and refused; the oldest version Fulcrum offers is TLSv1`,
    `${FILE}:15:20: listeners[0].tls.max_version: expected a TLS version: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, got "TLSv1.5" (did you mean 'TLSv1.1'?)`,
    `${FILE}:16:7: listeners[0].tls.client_auth: client_auth mode required needs the CA that signs client certificates: ca or ca_dir`,
    `${FILE}:17:14: listeners[0].tls.alpn[0]: an ALPN protocol name may not be empty`,
    `${FILE}:20:16: listeners[0].sni_routes[0].group: unknown group 'apj' (did you mean 'api'?)`,
    `${FILE}:25:9: listeners[1].sni_routes[0].client_identities: client identities are only known when Fulcrum terminates TLS (add tls with client_auth)`,
  ]);
});

test('a TLS listener needs certificates; max below min; insecure with a CA', () => {
  const errors = errorsOf(
    y(
      'groups:',
      '  app:',
      '    servers: [10.0.0.1:443]',
      '    tls: { insecure: true, ca: ca.pem, min_version: TLSv1.3, max_version: TLSv1.2 }',
      'listeners:',
      '  - listen: 8443',
      '    group: app',
      '    tls: { min_version: TLSv1.3, max_version: TLSv1.2 }',
    ),
  );
  expect(errors).toEqual([
    `${FILE}:4:22: groups.app.tls.insecure: insecure: true skips verification, so ca would be ignored; give one or the other`,
    `${FILE}:4:75: groups.app.tls.max_version: max_version TLSv1.2 is below min_version TLSv1.3`,
    `${FILE}:8:5: listeners[0].tls: a TLS listener needs certificates (or an sni_path directory)`,
    `${FILE}:8:47: listeners[0].tls.max_version: max_version TLSv1.2 is below min_version TLSv1.3`,
  ]);
});

test('send_proxy with TLS to the servers is refused (the header would travel inside TLS)', () => {
  const errors = errorsOf(y('groups:', '  app:', '    servers: [10.0.0.1:443]', '    send_proxy: v2', '    tls: { insecure: true }', 'listeners:', '  - listen: 8080', '    group: app'));
  expect(errors).toEqual([`${FILE}:4:17: groups.app.send_proxy: send_proxy with tls is not supported yet: the PROXY header must precede the TLS handshake, and Fulcrum would send it inside TLS`]);
});
