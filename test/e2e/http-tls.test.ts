/**
 * A TLS-terminated HTTP listener (docs/http.md): `mode: http` with `tls:` serves HTTPS with the
 * listener's certificate (the same material as TCP termination) and tells the server
 * X-Forwarded-Proto: https.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { freePort, Harness } from '../harness/index.ts';
import { tempDir, writeYaml } from '../helpers/admin.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { httpBackend } from '../helpers/http-backends.ts';

setDefaultTimeout(60_000);

describe('HTTP mode over TLS', () => {
  const h = new Harness();
  let pki: TestPki;
  let site: CertFiles;
  beforeAll(() => {
    pki = new TestPki();
    site = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  });
  afterAll(() => {
    h.close();
    pki.close();
  });

  test('fetch over HTTPS reaches the server with X-Forwarded-Proto: https', async () => {
    const b = httpBackend('a');
    h.defer(() => b.close());
    const port = freePort();
    const path = join(tempDir(h), 'fulcrum.yaml');
    writeYaml(path, {
      groups: { web: { servers: [b.address] } },
      listeners: [{ listen: `127.0.0.1:${port}`, group: 'web', mode: 'http', tls: { certificates: [{ cert: site.cert, key: site.key, default: true }] } }],
    });
    await h.startFulcrum(['--config', path], { port: [port] });
    const r = await fetch(`https://localhost:${port}/secure`, { tls: { ca: Bun.file(pki.ca.cert) } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { path: string; headers: Record<string, string> };
    expect(body.path).toBe('/secure');
    expect(body.headers['x-forwarded-proto']).toBe('https');
    expect(body.headers['forwarded']).toContain('proto=https');
    // Plain HTTP on the TLS port gets no answer.
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
