/**
 * pen's -l log, with the real pen 0.34.1 as the oracle: the same clients through pen and through
 * Fulcrum against the same HTTP server must give the same lines (`client_ip seconds server_ip
 * first-line-of-the-chunk`), the timestamp aside. pen buffers its log until it exits, so both
 * are stopped before their files are read.
 */
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, penAvailable, useHarness } from '../harness/index.ts';

const h = useHarness();

/** What each client sends, in one write: an HTTP request, junk bytes, a line longer than pen looks at. */
const REQUESTS: Uint8Array[] = [
  new TextEncoder().encode('GET /some/path?x=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n'),
  new Uint8Array([...new TextEncoder().encode('hello '), 0xff, 0x01, 0xc3, 0xa9, ...new TextEncoder().encode('world\tX\r\nsecond line\n')]),
  new TextEncoder().encode('P'.repeat(300) + '\n'),
];

async function logLines(program: 'pen' | 'fulcrum', serverPort: number, dir: string): Promise<string[]> {
  const port = freePort();
  const file = join(dir, `${program}.log`);
  const args = ['-l', file, `127.0.0.1:${port}`, `127.0.0.1:${serverPort}`];
  const proc = program === 'pen' ? await h.startPen(args) : await h.startFulcrum(args);
  for (const bytes of REQUESTS) {
    const c = await h.connect(port);
    await c.write(bytes);
    await c.end();
    await c.readAll();
  }
  await proc.close();
  // The seconds are the only field that may differ.
  return readFileSync(file, 'latin1').split('\n').filter((l) => l !== '').map((l) => l.replace(/^(\S+) \d+ /, '$1 T '));
}

describe.skipIf(!penAvailable())('-l writes pen\'s log format', () => {
  test('the same line for the same request as pen 0.34.1, timestamp aside', async () => {
    const web = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('hello\n') });
    h.defer(() => web.stop(true));
    const dir = mkdtempSync(join(tmpdir(), 'fulcrum-penlog-'));
    h.defer(() => rmSync(dir, { recursive: true, force: true }));
    const pen = await logLines('pen', web.port!, dir);
    const fulcrum = await logLines('fulcrum', web.port!, dir);
    expect(pen).toEqual([
      '127.0.0.1 T 127.0.0.1 GET /some/path?x=1 HTTP/1.1',
      '127.0.0.1 T 127.0.0.1 hello .\x01..world\tX',
      `127.0.0.1 T 127.0.0.1 ${'P'.repeat(100)}`,
    ]);
    expect(fulcrum).toEqual(pen);
  });
});
