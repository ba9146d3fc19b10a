/** Opens N TLS connections through a balancer, sends one line on each, prints "ready", and holds them until stdin closes. */
const port = Number(process.argv[2]);
const n = Number(process.argv[3]);
const sockets: Bun.Socket<undefined>[] = [];
let opened = 0;
const batch = async (count: number): Promise<void> => {
  await Promise.all(
    Array.from({ length: count }, () =>
      Bun.connect({
        hostname: '127.0.0.1',
        port,
        tls: { rejectUnauthorized: false, serverName: 'localhost' },
        socket: { open(s) { s.write('hello\n'); opened++; }, data() {}, close() {}, error() {} },
      }).then((s) => void sockets.push(s)),
    ),
  );
};
for (let i = 0; i < n; i += 50) await batch(Math.min(50, n - i));
while (opened < n) await Bun.sleep(10);
await Bun.sleep(500); // let the balancer connect every server side
console.log('ready');
for await (const _ of Bun.stdin.stream()) void _;
for (const s of sockets) s.end();
export {};
