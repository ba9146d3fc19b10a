// Observes pen -U (the system pen) on loopback and prints what it does, scenario by scenario:
// which backend each client address:port reaches, where replies come from, what the backend
// sees as the source, what a closed or silent backend does. Its output is the evidence for
// docs/udp.md ("pen -U as observed"). Run: bun scripts/pen-udp-observe.ts (needs /usr/bin/pen).
// A research script, not a test: every wait is bounded, nothing here is asserted.
import { readFileSync } from 'node:fs';
import type { udp } from 'bun';

type Mode = 'echo' | 'twice' | 'silent' | 'late' | 'big';

interface Backend {
  id: string;
  port: number;
  /** Source ports the backend saw, in order. */
  seen: string[];
  sock: udp.Socket<'buffer'>;
}

async function backend(id: string): Promise<Backend> {
  const seen: string[] = [];
  const sock = await Bun.udpSocket({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, data, port, address) {
        seen.push(`${address}:${port}`);
        const text = data.toString();
        const mode = text.split(' ')[0] as Mode;
        const reply = Buffer.from(`${id} ${text}`);
        if (mode === 'silent') return;
        if (mode === 'late') {
          // "late N": the reply leaves N ms later (1500 by default).
          setTimeout(() => s.send(reply, port, address), Number(text.split(' ')[2] ?? 1500));
          return;
        }
        s.send(reply, port, address);
        if (mode === 'big') {
          s.send(Buffer.alloc(1400, 0x61), port, address);
          s.send(Buffer.alloc(1400, 0x62), port, address);
          return;
        }
        if (mode === 'twice') s.send(Buffer.from(`${id} second ${text}`), port, address);
      },
    },
  });
  return { id, port: sock.port, seen, sock };
}

interface Reply {
  text: string;
  from: string;
}

interface Client {
  name: string;
  sock: udp.Socket<'buffer'>;
  replies: Reply[];
}

async function client(name: string, host: string): Promise<Client> {
  const replies: Reply[] = [];
  const sock = await Bun.udpSocket({
    hostname: host,
    port: 0,
    socket: {
      data(_s, data, port, address) {
        replies.push({ text: data.toString(), from: `${address}:${port}` });
      },
    },
  });
  return { name: `${name}(${host}:${sock.port})`, sock, replies };
}

const sleep = (ms: number) => Bun.sleep(ms);

async function waitReplies(c: Client, n: number, ms = 800): Promise<void> {
  const end = performance.now() + ms;
  while (c.replies.length < n && performance.now() < end) await sleep(5);
}

function udpListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const table = readFileSync('/proc/net/udp', 'utf8');
  return table.includes(`:${hex} 00000000:0000`);
}

async function startPen(args: string[], listenPort: number) {
  const proc = Bun.spawn(['/usr/bin/pen', '-U', '-f', ...args], { stdout: 'pipe', stderr: 'pipe' });
  const end = performance.now() + 3000;
  while (!udpListening(listenPort) && performance.now() < end) await sleep(20);
  return proc;
}

async function freeUdpPort(): Promise<number> {
  const s = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
  const p = s.port;
  s.close();
  return p;
}

/** Sends `text` from `c` and waits (bounded) for `expect` replies; returns the new replies. */
async function exchange(c: Client, listen: number, text: string, expect = 1, ms = 800): Promise<Reply[]> {
  const before = c.replies.length;
  c.sock.send(Buffer.from(text), listen, '127.0.0.1');
  await waitReplies(c, before + expect, ms);
  return c.replies.slice(before);
}

function show(label: string, c: Client, r: Reply[]): void {
  console.log(`  ${label} ${c.name} -> ${r.length === 0 ? '(no reply)' : r.map((x) => `[${x.text}] from ${x.from}`).join(', ')}`);
}

async function scenario(title: string, penArgs: string[], body: (listen: number, b: Backend[]) => Promise<void>, nBackends = 2): Promise<void> {
  console.log(`\n## ${title}\n  pen -U -f ${penArgs.join(' ')} <listen> <backends>`);
  const backends: Backend[] = [];
  for (let i = 0; i < nBackends; i++) backends.push(await backend(`S${i}`));
  const listen = await freeUdpPort();
  const proc = await startPen([...penArgs, `127.0.0.1:${listen}`, ...backends.map((b) => `127.0.0.1:${b.port}`)], listen);
  console.log(`  listening on 127.0.0.1:${listen}`);
  try {
    await sleep(100);
    await body(listen, backends);
    for (const b of backends) console.log(`  backend ${b.id} (:${b.port}) saw sources: ${b.seen.join(' ')}`);
  } finally {
    proc.kill();
    await proc.exited;
    for (const b of backends) b.sock.close();
  }
}

async function main(): Promise<void> {
  // 1 and 2: which server per client address:port, with and without tracking (-r).
  for (const args of [[], ['-r']]) {
    await scenario(`selection ${args.join(' ') || '(default: tracking by client address, round robin for new clients)'}`, args, async (listen) => {
      const cs = [await client('A', '127.0.0.1'), await client('B', '127.0.0.1'), await client('C', '127.0.0.2'), await client('D', '127.0.0.3')];
      for (let round = 0; round < 2; round++) {
        for (const c of cs) show(`round ${round}`, c, await exchange(c, listen, `echo r${round}`));
      }
    });
  }

  // 3: two replies to one datagram; a late reply (1.5 s); a reply to a datagram after the session's slot was recycled.
  await scenario('multiple and late replies (-x 3: three connection slots)', ['-x', '3'], async (listen) => {
    const a = await client('A', '127.0.0.1');
    show('twice', a, await exchange(a, listen, 'twice 1', 2));
    show('late (1.5 s, nothing else sent)', a, await exchange(a, listen, 'late 2', 1, 2500));
    const b = await client('B', '127.0.0.2');
    const before = b.replies.length;
    b.sock.send(Buffer.from('late 3'), listen, '127.0.0.1');
    await sleep(100);
    // Four more datagrams from other clients while B's reply is pending: pen's slots cycle.
    const others = [await client('C', '127.0.0.3'), await client('D', '127.0.0.4'), await client('E', '127.0.0.5'), await client('F', '127.0.0.6')];
    for (const o of others) show('filler', o, await exchange(o, listen, 'echo x'));
    await waitReplies(b, before + 1, 2500);
    show('late reply after 4 other datagrams', b, b.replies.slice(before));
  });

  // 4: idle_timeout vs a late reply (pen checks idle connections when its event loop wakes,
  // at the latest every -t seconds).
  await scenario('no idle_timeout, a reply 5 s later', [], async (listen) => {
    const a = await client('A', '127.0.0.1');
    show('late 5 s', a, await exchange(a, listen, 'late 1 5000', 1, 6500));
  });
  await scenario('idle_timeout 2, a reply 5 s later', ['-o', 'idle_timeout 2'], async (listen) => {
    const a = await client('A', '127.0.0.1');
    show('late 5 s', a, await exchange(a, listen, 'late 1 5000', 1, 6500));
  });

  // 5: a closed backend port (ICMP port unreachable): blacklisted? A fresh client per datagram.
  await scenario('second backend closed (ICMP port unreachable), -r, a new client port per datagram', ['-r'], async (listen, b) => {
    b[1]!.sock.close();
    for (let i = 0; i < 6; i++) {
      const c = await client(`N${i}`, '127.0.0.1');
      show(`#${i}`, c, await exchange(c, listen, `echo ${i}`, 1, 400));
      c.sock.close();
    }
  });
  await scenario('second backend closed, tracking: the same client again after no reply', [], async (listen, b) => {
    b[1]!.sock.close();
    const a = await client('A', '127.0.0.1');
    for (let i = 0; i < 3; i++) show(`#${i}`, a, await exchange(a, listen, `echo ${i}`, 1, 400));
    const a2 = await client('A2', '127.0.0.1');
    show('same address, new port', a2, await exchange(a2, listen, 'echo x', 1, 400));
  });

  // 6: a silent backend (socket open, never answers): fresh clients, -r.
  await scenario('second backend silent, -r, a new client port per datagram', ['-r'], async (listen) => {
    for (let i = 0; i < 6; i++) {
      const c = await client(`N${i}`, '127.0.0.1');
      show(`#${i}`, c, await exchange(c, listen, `silent ${i}`, 1, 300));
      c.sock.close();
    }
  });

  // 7: the reply size pen forwards (amplification): the backend answers 2 datagrams of 1400 bytes to 6 bytes.
  await scenario('amplification: 6 bytes in, two replies out', [], async (listen) => {
    const a = await client('A', '127.0.0.1');
    const r = await exchange(a, listen, 'big 1', 2);
    console.log(`  A received ${r.length} datagrams, ${r.reduce((n, x) => n + x.text.length, 0)} bytes`);
  });
}

await main();
