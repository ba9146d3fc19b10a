/** One TLS connection through a balancer: sends N MB to bench/tls-helpers/sink.ts and prints MB/s. */
const port = Number(process.argv[2]);
const total = Number(process.argv[3]) * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 0x61);
let sent = 0;
let t0 = 0;
await new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('bulk transfer timed out')), 100_000);
  const pump = (s: Bun.Socket<undefined>): void => {
    while (sent < total) {
      const n = s.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
      sent += n;
      if (n < Math.min(chunk.length, total - sent + n)) return; // wait for drain
    }
  };
  void Bun.connect({
    hostname: '127.0.0.1',
    port,
    tls: { rejectUnauthorized: false, serverName: 'localhost' },
    socket: {
      open(s) {
        t0 = performance.now();
        s.write(`BULK ${total}\n`);
        pump(s);
      },
      drain(s) { pump(s); },
      data(s, d) {
        if (d.toString().includes('ok')) {
          const seconds = (performance.now() - t0) / 1000;
          console.log(`${(total / 1e6 / seconds).toFixed(1)} MB/s`);
          clearTimeout(timer);
          s.end();
          resolve();
        }
      },
      close() {},
      error(_s, e) { reject(e); },
      connectError(_s, e) { reject(e); },
    },
  });
});
export {};
