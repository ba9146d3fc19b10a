/**
 * UDP servers' health over real loopback sockets (docs/udp.md): the `dns` and `udp` check kinds
 * run by the HealthChecker with rise/fall, against a DNS stub, an echo, and a closed port; and the
 * passive "unanswered sessions" rule. Transitions are shown by counting checks, not by timing.
 */
import { describe, expect, test } from 'bun:test';
import { useHarness, waitFor } from '../harness/index.ts';
import { udpBackend, UdpClient, type UdpBackend } from '../harness/udp.ts';
import { checksToChange, startYaml, waitForStatus } from '../helpers/health.ts';

const h = useHarness();

function yaml(check: string, servers: number[], udp = ''): string {
  return `groups:
  app:
    tracking: false
    blacklist: 0
${check === '' ? '' : `    check: ${check}\n`}    servers: [${servers.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
listeners:
  - listen: LISTEN
    group: app
    protocol: udp
${udp === '' ? '' : `    udp: ${udp}\n`}`;
}

async function backend(answer: (q: Buffer) => (string | Uint8Array)[]): Promise<UdpBackend> {
  const b = await udpBackend(answer);
  h.defer(() => b.close());
  return b;
}

/** A DNS server stub: answers each query with its question and `rcode` (a header with QR set). */
async function dnsStub(): Promise<{ backend: UdpBackend; rcode: number; queries: string[] }> {
  const state = { backend: undefined as unknown as UdpBackend, rcode: 0, queries: [] as string[] };
  state.backend = await backend((q) => {
    if (q.length < 12) return [];
    state.queries.push(q.subarray(12).toString('latin1'));
    const r = Buffer.from(q);
    r.writeUInt16BE(0x8180 | state.rcode, 2);
    return [r];
  });
  return state;
}

/** A port with nothing listening (a socket bound, then closed): datagrams get ICMP port unreachable. */
async function closedPort(): Promise<number> {
  const b = await udpBackend(() => []);
  const port = b.port;
  await b.close();
  return port;
}

describe('dns check', () => {
  test('NOERROR: up; SERVFAIL: down on the `fall`-th check, with the RCODE as reason; NOERROR again: up after `rise`', async () => {
    const stub = await dnsStub();
    const b = await startYaml(h, yaml('{type: dns, query: example.com, query_type: A, interval: 30, timeout: 2000, rise: 2, fall: 3}', [stub.backend.port]));
    const s = b.server(0);
    await waitFor(() => s.checksPassed >= 1, { what: 'a first passing DNS check' });
    expect(stub.queries[0]).toBe('\x07example\x03com\x00\x00\x01\x00\x01');
    stub.rcode = 2;
    expect(await checksToChange(b, s, false)).toBe(3);
    expect(s.downReason).toMatch(/^dns check .* \(example\.com A\): SERVFAIL for example\.com A, 0 answers, expected NOERROR$/);
    expect(b.messages.some((m) => m.includes('is DOWN') && m.includes('SERVFAIL'))).toBe(true);
    stub.rcode = 0;
    expect(await checksToChange(b, s, true)).toBe(2);
    await waitForStatus(b, s, 'up');
  });

  test('a closed port fails at once with ICMP port unreachable as the reason', async () => {
    const port = await closedPort();
    const b = await startYaml(h, yaml('{type: dns, query: example.com, interval: 30, timeout: 10s, rise: 1, fall: 1}', [port]));
    const s = b.server(0);
    expect(await checksToChange(b, s, false)).toBe(1);
    expect(s.downReason).toMatch(/port unreachable \(ICMP\)/);
  });
});

describe('udp check', () => {
  test('an echo answering the expected bytes is up; a wrong reply takes it down; a silent one times out', async () => {
    let mode: 'echo' | 'wrong' | 'silent' = 'echo';
    const echo = await backend((q) => (mode === 'echo' ? [q] : mode === 'wrong' ? ['nope'] : []));
    const b = await startYaml(h, yaml('{type: udp, send: "hex:70 69 6e 67", expect: "text:ping", interval: 30, timeout: 100, rise: 1, fall: 2}', [echo.port]));
    const s = b.server(0);
    await waitFor(() => s.checksPassed >= 1, { what: 'a first passing udp check' });
    expect(echo.received[0]!.text).toBe('ping');
    mode = 'wrong';
    expect(await checksToChange(b, s, false)).toBe(2);
    expect(s.downReason).toContain('reply "nope" does not equal the expected bytes');
    mode = 'echo';
    expect(await checksToChange(b, s, true)).toBe(1);
    mode = 'silent';
    expect(await checksToChange(b, s, false, 2)).toBe(2);
    expect(s.downReason).toMatch(/timeout after 100 ms, waiting for a reply/);
  });

  test('each check comes from a socket of its own (a new source port)', async () => {
    const echo = await backend((q) => [q]);
    const b = await startYaml(h, yaml('{type: udp, send: ping, interval: 20, timeout: 1000}', [echo.port]));
    await waitFor(() => b.server(0).checksPassed >= 3, { what: 'three passing checks' });
    expect(new Set(echo.received.map((r) => r.port)).size).toBeGreaterThanOrEqual(3);
  });
});

describe('unanswered sessions (passive)', () => {
  test('N sessions in a row without a reply count a failure of their server; new sessions go elsewhere', async () => {
    const silent = await backend(() => []);
    const answering = await backend(() => ['ok']);
    // Round robin starts at index 1: sessions alternate answering (1), silent (0), ...
    const b = await startYaml(h, yaml('', [silent.port, answering.port], '{unanswered_sessions: 2, reply_timeout: 1ms, idle_timeout: 1h}').replace('blacklist: 0', 'blacklist: 3600'));
    const relay = b.balancer.listeners[0]!.udp!;
    const s0 = b.server(0);
    const clients: UdpClient[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await UdpClient.open();
      h.defer(() => c.close());
      clients.push(c);
      c.send(`q${i}`, b.port);
      await waitFor(() => silent.received.length + answering.received.length === i + 1, { what: `datagram ${i} at a backend` });
    }
    expect(silent.received.length).toBe(2);
    expect(relay.stats.unansweredFailures).toBe(0);
    await Bun.sleep(5); // past the 1 ms reply timeout (a lower bound, not a race)
    // Each client sends again: its session is judged; the silent server's two count as one failure.
    for (const c of clients) c.send('again', b.port);
    await waitFor(() => silent.received.length + answering.received.length === 8, { what: 'the second datagrams at the backends' });
    await waitFor(() => relay.stats.unansweredFailures === 1, { what: 'one unanswered failure' });
    expect(s0.blacklistedUntilMs).toBeGreaterThan(b.balancer.clock.now());
    // New sessions avoid the failed server.
    const before = silent.received.length;
    for (let i = 0; i < 3; i++) {
      const c = await UdpClient.open();
      h.defer(() => c.close());
      c.send('new', b.port);
      await c.replies(1);
    }
    expect(silent.received.length).toBe(before);
  });
});
