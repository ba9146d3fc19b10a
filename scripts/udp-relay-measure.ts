// A rough measurement of the UDP building blocks (docs/udp.md, "Measurement"): a minimal relay
// (session table + bun-udp adapter) in its own process between DNS-sized clients and an echo
// backend in this one. Prints datagrams/s through the relay and the relay's CPU time per
// exchange. One run, no warm-up discipline: a rough figure, not a benchmark.
// Run: bun scripts/udp-relay-measure.ts [seconds=3] [clients=4] [window=32] [batch=0|1]
import { UdpSessionTable, type UdpSession } from '../src/core/udp/sessions.ts';
import { UdpListener, UdpUpstream, type UdpUpstreamHandler } from '../src/dataplane/bun-udp.ts';
import { systemClock } from '../src/dataplane/system-clock.ts';

type Session = UdpSession<UdpUpstream<Session> | null>;

async function relayMode(backendPort: number, batch: boolean): Promise<void> {
  const table = new UdpSessionTable<UdpUpstream<Session> | null>(systemClock, { sessionEnded: (s) => s.data?.close() }, { idleTimeoutMs: 30_000 });
  const up: UdpUpstreamHandler<Session> = {
    serverDatagram(u, p) {
      const s = u.session;
      if (!table.fromServer(s, p.length)) return;
      if (batch) listener.queueToClient(p, s.address, s.port);
      else listener.sendToClient(p, s.address, s.port);
    },
    serverUnreachable: (u) => table.close(u.session, 'error'),
    serverError: () => {},
  };
  const listener = await UdpListener.listen({ hostname: '127.0.0.1', port: 0 }, {
    clientDatagram(_l, p, address, port) {
      let s = table.get(address, port);
      if (s === undefined) {
        s = table.open(address, port, 0, null);
        s.data = UdpUpstream.open(s, { hostname: '127.0.0.1', port: backendPort }, up);
      }
      table.fromClient(s, p.length);
      s.data!.send(p);
    },
  });
  console.log(`PORT ${listener.port}`);
  let start = process.cpuUsage();
  for await (const line of console) {
    if (line === 'start') start = process.cpuUsage();
    if (line === 'stop') {
      const d = process.cpuUsage(start);
      console.log(`CPU ${d.user + d.system} ${listener.datagramsIn} ${listener.datagramsOut} ${listener.batches} ${table.stats.capDroppedDatagrams}`);
      process.exit(0);
    }
  }
}

async function main(): Promise<void> {
  const [seconds = 3, clients = 4, window = 32, batch = 0] = process.argv.slice(2).map(Number);
  const answer = Buffer.alloc(100, 7); // a DNS-sized answer to a 40-byte query
  const backend = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0, socket: { data: (s, _d, port, addr) => void s.send(answer, port, addr), error: () => {} } });
  const relay = Bun.spawn([process.execPath, import.meta.path, 'relay', String(backend.port), String(batch)], { stdin: 'pipe', stdout: 'pipe' });
  const reader = relay.stdout.getReader();
  let out = '';
  const readLine = async (prefix: string): Promise<string> => {
    const end = performance.now() + 5000;
    while (performance.now() < end) {
      const line = out.split('\n').find((l) => l.startsWith(prefix));
      if (line !== undefined) return line;
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    throw new Error(`relay did not print ${prefix}: ${out}`);
  };
  const port = Number((await readLine('PORT ')).split(' ')[1]);
  const query = Buffer.alloc(40, 1);
  let replies = 0;
  let running = true;
  const socks = [];
  for (let i = 0; i < clients; i++) {
    socks.push(await Bun.udpSocket({ hostname: '127.0.0.1', port: 0, socket: { data: (s) => {
      replies++;
      if (running) s.send(query, port, '127.0.0.1');
    }, error: () => {} } }));
  }
  relay.stdin.write('start\n');
  relay.stdin.flush();
  const t0 = performance.now();
  // Each client keeps `window` queries in flight; a lost datagram lowers the window (rough).
  for (const s of socks) for (let w = 0; w < window; w++) s.send(query, port, '127.0.0.1');
  await Bun.sleep(seconds * 1000);
  running = false;
  const elapsed = (performance.now() - t0) / 1000;
  relay.stdin.write('stop\n');
  relay.stdin.flush();
  const [, cpu, din, dout, batches] = (await readLine('CPU ')).split(' ').map(Number);
  const exchanges = replies;
  console.log(`${seconds}s, ${clients} clients × ${window} in flight, batch=${batch}: ${Math.round(exchanges / elapsed)} exchanges/s ` +
    `(${Math.round((din! + dout!) / elapsed)} datagrams/s in and out of the listener), relay CPU ${(cpu! / 1000 / elapsed / 10).toFixed(0)}% of a core, ` +
    `${(cpu! / exchanges).toFixed(1)} µs per exchange (2 datagrams in, 2 out)${batch ? `, ${(dout! / Math.max(1, batches!)).toFixed(2)} replies per sendMany` : ''}`);
  await relay.exited;
  for (const s of socks) s.close();
  backend.close();
}

if (process.argv[2] === 'relay') await relayMode(Number(process.argv[3]), process.argv[4] === '1');
else await main();
