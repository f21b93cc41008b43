// Starts the GCS JSON-API test server (test/gcs/server.ts) for probe.mjs: compiles it with the repo's tsc into
// a temporary folder (Node 20 cannot run TypeScript), prints {"port":N} once listening on 127.0.0.1, and stops
// when its stdin closes. Server options may be given as JSON in GCS_SERVER_OPTIONS, e.g.
// '{"persistLimit":262144,"rewriteBytesPerCall":100000}'.
//   GCS_CLIENT_DIR=/tmp/gcs-client node probe.mjs --json out.json -- node start-test-gcs-server.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const out = mkdtempSync(path.join(tmpdir(), 'gcs-test-server-'));
execFileSync(process.execPath, [
  path.join(repo, 'node_modules/typescript/bin/tsc'),
  '--outDir', out, '--rootDir', path.join(repo, 'test/gcs'), '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
  '--target', 'ES2022', '--strict', '--skipLibCheck', '--types', 'node', path.join(repo, 'test/gcs/server.ts'),
], { stdio: 'inherit' });
const { startGcsServer } = await import(pathToFileURL(path.join(out, 'server.js')).href);
const server = await startGcsServer(JSON.parse(process.env.GCS_SERVER_OPTIONS ?? '{}'));
console.log(JSON.stringify({ port: Number(new URL(server.url).port) }));
process.stdin.resume();
const stop = async () => {
  await server.close();
  rmSync(out, { recursive: true, force: true });
  process.exit(0);
};
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
