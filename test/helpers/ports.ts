import { createServer } from 'node:net';

/**
 * A port on 127.0.0.1 with nothing listening on it: the OS picks a free one, and it is given back at once.
 * For a server a test starts there, or for a connection that must be refused. Depends on nothing in src/.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}
