/**
 * Out of file descriptors is our problem, not the servers' (issue 13): Fulcrum runs under a low
 * open-files limit (prlimit), more clients arrive than it can hold, and afterwards both servers
 * are still in rotation (not blacklisted: the round robin reaches both), the failures were
 * counted as `no-resources`, and one line said so.
 */
import { expect, setDefaultTimeout, test } from 'bun:test';
import { bunPath, connect, freePort, repoRoot, sequence, useHarness, waitFor, type Client } from '../harness/index.ts';

setDefaultTimeout(30_000);
const h = useHarness();
const havePrlimit = Bun.which('prlimit') !== null;

test.skipIf(!havePrlimit)('a flood beyond the open-files limit blames no server, and the next client is served', async () => {
  const a = h.identify('a', { after: 'echo' });
  const b = h.identify('b', { after: 'echo' });
  const port = freePort();
  // -b 60: a server wrongly blacklisted would stay out for the rest of the test.
  const lb = await h.spawn(['prlimit', '--nofile=64:64', bunPath(), 'src/cli/main.ts', '-f', '-r', '-b', '60', `127.0.0.1:${port}`, a.address, b.address], {
    cwd: repoRoot,
    port,
    name: 'fulcrum (64 files)',
  });
  const flood: Client[] = [];
  for (let i = 0; i < 60; i++) {
    try {
      flood.push(await connect(port, { timeoutMs: 2000 }));
    } catch {
      break; // the kernel's backlog is full: enough
    }
  }
  // Every flood client is answered one way or the other: served (a line) or closed.
  const outcomes = await Promise.all(flood.map((c) => c.readLine().then(() => 'served', () => 'closed')));
  expect(outcomes).toContain('closed');
  expect(outcomes).toContain('served');
  await lb.waitForLine(/out of file descriptors: \d+ in use of 64/, 10_000);
  await Promise.all(flood.map((c) => c.close()));
  await waitFor(() => a.active + b.active === 0, { what: 'the flood to leave the servers' });
  // Both servers still take clients: neither was blacklisted for our own shortage.
  const names = await sequence(port, 4);
  expect(names.sort()).toEqual(['a', 'a', 'b', 'b']);
  expect(lb.stderr() + lb.stdout()).not.toMatch(/blacklist/i);
});
