/**
 * What Fulcrum would cost on node:tls: the smallest TLS-terminating proxy written with Bun's
 * node:tls server and node:net (streams and pipe()), for bench/tls.ts only.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [port, target, cert, key] = process.argv.slice(2);
tls
  .createServer({ cert: readFileSync(cert!), key: readFileSync(key!) }, (client) => {
    const server = net.connect(Number(target), '127.0.0.1');
    client.pipe(server);
    server.pipe(client);
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
  })
  .listen(Number(port), '127.0.0.1');
