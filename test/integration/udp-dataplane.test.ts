// The UDP adapter (src/dataplane/bun-udp.ts) with real loopback sockets: a minimal relay (the
// session table + one connected upstream socket per client address:port) in front of an echo
// backend; replies must reach the right client from the listening address, each session must
// reach the backend from its own port, and a closed backend port must raise the unreachable event.
import { afterEach, expect, test } from 'bun:test';
import type { udp } from 'bun';
import { UdpSessionTable, type UdpSession } from '../../src/core/udp/sessions.ts';
import { UdpListener, UdpUpstream, type UdpListenerHandler, type UdpUpstreamHandler } from '../../src/dataplane/bun-udp.ts';
import { systemClock } from '../../src/dataplane/system-clock.ts';
import { waitFor } from '../harness/util.ts';

type Session = UdpSession<UdpUpstream<Session> | null>;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Received {
  text: string;
  from: string;
}

async function udpPeer(hostname: string, onData?: (s: udp.Socket<'buffer'>, d: Buffer, port: number, address: string) => void) {
  const got: Received[] = [];
  const socket = await Bun.udpSocket({
    hostname,
    port: 0,
    socket: {
      data(s, d, port, address) {
        got.push({ text: d.toString(), from: `${address}:${port}` });
        onData?.(s, d, port, address);
      },
    },
  });
  cleanups.push(() => socket.close());
  return { socket, got };
}

/** A relay as the app will build it, reduced to the session table and the adapter. */
async function relay(backendHost: string, backendPort: number, listenHost = '127.0.0.1', batch = false) {
  const events = { unreachable: 0, errors: 0 };
  const table = new UdpSessionTable<UdpUpstream<Session> | null>(systemClock, {
    sessionEnded(s) {
      s.data?.close();
    },
  }, { idleTimeoutMs: 10_000 });
  const upstreamHandler: UdpUpstreamHandler<Session> = {
    serverDatagram(u, payload) {
      const s = u.session;
      if (!table.fromServer(s, payload.length)) return;
      if (batch) listener.queueToClient(payload, s.address, s.port);
      else listener.sendToClient(payload, s.address, s.port);
    },
    serverUnreachable(u) {
      events.unreachable++;
      table.close(u.session, 'error');
    },
    serverError() {
      events.errors++;
    },
  };
  const handler: UdpListenerHandler = {
    clientDatagram(_l, payload, address, port) {
      let s = table.get(address, port);
      if (s === undefined) {
        if (!table.admits(address)) return;
        s = table.open(address, port, 0, null);
        s.data = UdpUpstream.open(s, { hostname: backendHost, port: backendPort }, upstreamHandler);
      }
      table.fromClient(s, payload.length);
      s.data!.send(payload);
    },
  };
  const listener = await UdpListener.listen({ hostname: listenHost, port: 0 }, handler);
  cleanups.push(() => {
    table.closeAll();
    listener.close();
  });
  return { listener, table, events };
}

test('two clients through the relay: replies reach the right client from the listening address', async () => {
  const seenSources: string[] = [];
  const backend = await udpPeer('127.0.0.1', (s, d, port, address) => {
    seenSources.push(`${address}:${port}`);
    s.send(Buffer.concat([Buffer.from('echo '), d]), port, address);
  });
  const { listener, table } = await relay('127.0.0.1', backend.socket.port);
  const a = await udpPeer('127.0.0.1');
  const b = await udpPeer('127.0.0.1');
  for (let i = 0; i < 3; i++) {
    a.socket.send(`a${i}`, listener.port, '127.0.0.1');
    b.socket.send(`b${i}`, listener.port, '127.0.0.1');
  }
  await waitFor(() => a.got.length === 3 && b.got.length === 3, { what: 'three replies for each client' });
  const from = `127.0.0.1:${listener.port}`;
  expect(a.got.map((r) => r.text).sort()).toEqual(['echo a0', 'echo a1', 'echo a2']);
  expect(b.got.map((r) => r.text).sort()).toEqual(['echo b0', 'echo b1', 'echo b2']);
  expect(new Set([...a.got, ...b.got].map((r) => r.from))).toEqual(new Set([from]));
  // One upstream socket per session: the backend saw exactly two source ports, three times each.
  expect(new Set(seenSources).size).toBe(2);
  expect(table.size).toBe(2);
  const sa = table.get('127.0.0.1', a.socket.port)!;
  expect([sa.datagramsIn, sa.datagramsOut, sa.bytesIn, sa.bytesOut]).toEqual([3, 3, 6, 21]);
  expect(seenSources).toContain(`127.0.0.1:${sa.data!.localPort}`);
});

test('batched replies (sendMany at the end of the tick) arrive in full and in order', async () => {
  const backend = await udpPeer('127.0.0.1', (s, d, port, address) => {
    // Three replies per datagram, sent back to back: the relay queues them into one batch.
    for (let i = 0; i < 3; i++) s.send(Buffer.concat([d, Buffer.from(`.${i}`)]), port, address);
  });
  const { listener } = await relay('127.0.0.1', backend.socket.port, '127.0.0.1', true);
  const a = await udpPeer('127.0.0.1');
  a.socket.send('q', listener.port, '127.0.0.1');
  await waitFor(() => a.got.length === 3, { what: 'three batched replies' });
  expect(a.got.map((r) => r.text)).toEqual(['q.0', 'q.1', 'q.2']);
  expect(listener.datagramsOut).toBe(3);
  expect(listener.sendDrops).toBe(0);
});

test('a closed backend port raises serverUnreachable and ends the session', async () => {
  const gone = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
  const deadPort = gone.port;
  gone.close();
  const { listener, table, events } = await relay('127.0.0.1', deadPort);
  const a = await udpPeer('127.0.0.1');
  a.socket.send('anyone?', listener.port, '127.0.0.1');
  await waitFor(() => events.unreachable >= 1, { what: 'the unreachable event' });
  expect(table.size).toBe(0);
  expect(table.stats.errored).toBe(1);
  expect(a.got).toEqual([]);
});

test('an upstream socket used directly: ready at once, ECONNREFUSED reported as unreachable', async () => {
  const gone = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
  const deadPort = gone.port;
  gone.close();
  const seen: string[] = [];
  const handler: UdpUpstreamHandler<string> = {
    serverDatagram() {},
    serverUnreachable(u, err) {
      seen.push(`${u.session}:${(err as Error & { code?: string }).code}`);
    },
    serverError(_u, err) {
      seen.push(`error:${err.message}`);
    },
  };
  const u = UdpUpstream.open('s1', { hostname: '127.0.0.1', port: deadPort }, handler);
  cleanups.push(() => u.close());
  // Bun creates the socket inside the call, so it is ready at once and the datagram goes out now.
  expect(u.ready).toBe(true);
  expect(u.send(Buffer.from('x'))).toBe(true);
  await waitFor(() => seen.length >= 1, { what: 'ECONNREFUSED on the connected socket' });
  expect(seen[0]).toBe('s1:ECONNREFUSED');
  u.close();
  expect(u.send(Buffer.from('y'))).toBe(false);
});

test('IPv6: a client on ::1 through a listener on ::1 to an IPv6 backend', async () => {
  const backend = await udpPeer('::1', (s, d, port, address) => s.send(d, port, address));
  const { listener } = await relay('::1', backend.socket.port, '::1');
  const a = await udpPeer('::1');
  a.socket.send('six', listener.port, '::1');
  await waitFor(() => a.got.length === 1, { what: 'the IPv6 reply' });
  expect(a.got[0]).toEqual({ text: 'six', from: `::1:${listener.port}` });
});
