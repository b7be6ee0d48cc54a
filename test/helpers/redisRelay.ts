/**
 * A site's WAN link to the central Redis, for the multi-site lab: run inside a site's network
 * namespace, it listens on TCP there and pipes each connection to Redis's Unix socket (a file,
 * reachable from every namespace). So the agents reach Redis without a single interface added to
 * the host's own network stack, and cutting a site off is an iptables rule inside its namespace.
 *
 *   node redisRelay.js LISTEN_HOST LISTEN_PORT UNIX_SOCKET
 */
import { connect, createServer } from 'node:net';

const [host, port, socketPath] = process.argv.slice(2);
if (!host || !port || !socketPath) {
  process.stderr.write('usage: redisRelay.js LISTEN_HOST LISTEN_PORT UNIX_SOCKET\n');
  process.exit(2);
}
const server = createServer((client) => {
  const upstream = connect(socketPath);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(Number(port), host, () => process.stdout.write(`relay ${host}:${port} -> ${socketPath}\n`));
// Connections are cut at once, as a WAN link going down would.
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
