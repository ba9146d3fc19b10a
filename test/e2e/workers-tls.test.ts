/**
 * --workers with TLS termination (docs/workers.md, docs/tls.md): every worker terminates TLS on
 * the shared port, and SIGHUP makes every worker re-read the certificate files, not only the
 * primary (which only checks them).
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { copyFileSync } from 'node:fs';
import { freePort, useHarness, waitFor, type RunningProcess } from '../harness/index.ts';
import { TestPki, type CertFiles } from '../helpers/certs.ts';
import { tlsConnect } from '../helpers/tls-setup.ts';

const h = useHarness();
let pki: TestPki;
let site: CertFiles;

beforeAll(() => {
  pki = new TestPki();
  site = pki.leaf('localhost', { ips: ['127.0.0.1'] });
});
afterAll(() => pki.close());

/** Per-worker accepted counts from the SIGUSR1 statistics. */
async function acceptedByWorker(p: RunningProcess): Promise<number[]> {
  const from = p.lines().length;
  p.kill('SIGUSR1');
  const line = await waitFor(() => p.lines().slice(from).find((l) => l.text.includes('workers:'))?.text, { what: 'the workers line of SIGUSR1', details: () => p.describe() });
  return [...line.matchAll(/worker \d+ \(pid \d+\): (\d+) accepted/g)].map((m) => Number(m[1]));
}

test('every worker terminates TLS, and SIGHUP gives every worker the new certificate', async () => {
  const echo = h.echo();
  const base = pki.path(`workers-${Date.now()}`);
  const certFile = `${base}.crt`;
  const keyFile = `${base}.key`;
  copyFileSync(site.cert, certFile);
  copyFileSync(site.key, keyFile);
  const port = freePort();
  const p = await h.startFulcrum(['-d', '--workers=2', '-E', certFile, '-K', keyFile, `127.0.0.1:${port}`, echo.address], { port, readyLine: /2 workers ready/ });
  const fingerprints = async (): Promise<Set<string>> => {
    const before = await acceptedByWorker(p);
    const seen = new Set<string>();
    // Until both workers have answered at least once (bounded).
    for (let i = 0; i < 40; i++) {
      const s = await tlsConnect({ port, ca: pki.ca.cert, servername: 'localhost' });
      seen.add(s.peer.fingerprint256);
      s.socket.write('x\n');
      await s.readUntil('x\n');
      s.close();
      const now = await acceptedByWorker(p);
      if (i >= 3 && now.every((n, k) => n > before[k]!)) return seen;
    }
    throw new Error('the connections did not reach both workers');
  };
  expect(await fingerprints()).toEqual(new Set([pki.fingerprint(site.cert)]));
  const second = pki.leaf('localhost', { ips: ['127.0.0.1'] });
  copyFileSync(second.key, keyFile);
  copyFileSync(second.cert, certFile);
  p.kill('SIGHUP');
  await p.waitForLine(/fulcrum worker 0: listener default: SIGHUP: TLS reloaded/, 10_000);
  await p.waitForLine(/fulcrum worker 1: listener default: SIGHUP: TLS reloaded/, 10_000);
  expect(await fingerprints()).toEqual(new Set([pki.fingerprint(second.cert)]));
  // The primary's statistics count every worker's handshakes (each one accepted connection; a
  // client that does not speak TLS is a failure, by its reason, and is never accepted).
  const plain = await h.connect(port);
  await plain.write('GET / HTTP/1.0\r\n\r\n');
  await plain.waitClosed(5_000);
  await waitFor(
    async () => {
      const from = p.lines().length;
      p.kill('SIGUSR1');
      const line = await waitFor(() => p.lines().slice(from).find((l) => /listener default .*handshakes/.test(l.text))?.text, { what: 'the TLS line of SIGUSR1' });
      const total = (await acceptedByWorker(p)).reduce((x, y) => x + y, 0);
      const m = /(\d+) handshakes \(\d+ resumed\), 0 in progress, failures: (\S+)/.exec(line);
      return m !== null && Number(m[1]) === total && m[2]!.startsWith('not-tls=1');
    },
    { what: 'handshakes summed over the workers', details: () => p.describe() },
  );
});
