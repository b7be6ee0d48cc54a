import { createServer } from 'node:net';
import { once } from 'node:events';

/** A free TCP port on 127.0.0.1 (bound, then released): for a child process that must be told its port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}
