// A throwaway S3-compatible server for the test suite, run as a child process by test/setup/global.ts.
//
// Run it with `node --openssl-legacy-provider`: s3rver 3.7.1 encrypts ListObjectsV2 continuation
// tokens with DES, which OpenSSL 3 only offers through the legacy provider; without it any listing
// that needs a second page fails.
//
// Prints one JSON line {"port":N} on stdout once listening; exits when stdin closes or on SIGTERM/SIGINT.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

const directory = await mkdtemp(path.join(tmpdir(), 'takeout-s3rver-'));
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory,
  silent: true,
  resetOnClose: true,
  configureBuckets: [{ name: 'takeout-test' }, { name: 'takeout-other' }],
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await server.close();
  } catch {
    // Not running yet, or already closed.
  }
  await rm(directory, { recursive: true, force: true }).catch(() => undefined);
  process.exit(code);
}

process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
process.stdin.on('end', () => void stop(0));
process.stdin.on('close', () => void stop(0));
process.stdin.resume();

try {
  const { port } = await server.run();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
} catch (error) {
  process.stderr.write(`s3rver failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  await stop(1);
}
