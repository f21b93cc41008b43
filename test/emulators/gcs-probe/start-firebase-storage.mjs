// Starts the Cloud Storage emulator of firebase-tools in this process, without Java: `firebase emulators:start`
// needs Java >= 21 (Debian 12 ships 17) and downloads its rules runtime jar at start (no network here), so the
// rules runtime is replaced by a no-op. The Cloud (JSON API) endpoints authorise every request as admin, so
// storage rules never apply to them anyway.
//
// Usage: FIREBASE_TOOLS_DIR=/scratch/node_modules/firebase-tools node start-firebase-storage.mjs
// Prints one JSON line {"port":N} on stdout once listening on 127.0.0.1 (a free port); exits on SIGTERM/SIGINT
// or when stdin closes.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const toolsDir = process.env.FIREBASE_TOOLS_DIR;
if (!toolsDir) throw new Error('set FIREBASE_TOOLS_DIR to an installed firebase-tools package folder');
const require = createRequire(path.join(toolsDir, 'package.json'));

// The emulator keeps its blobs under os.tmpdir()/firebase/storage/blobs: a private TMPDIR keeps runs apart.
const scratch = mkdtempSync(path.join(tmpdir(), 'gcs-firebase-'));
process.env.TMPDIR = scratch;

const { StorageEmulator } = require('./lib/emulator/storage/index.js');
const { createApp } = require('./lib/emulator/storage/server.js');
const { EmulatorRegistry } = require('./lib/emulator/registry.js');

const emulator = new StorageEmulator({
  projectId: 'demo-takeout',
  host: '127.0.0.1',
  port: 0,
  auto_download: false,
  rules: { name: path.join(scratch, 'storage.rules'), content: '' },
});
// The stub: no Java process, no ruleset (the admin storage layer used by the JSON API ignores rules).
emulator._rulesRuntime.start = async () => undefined;
emulator._rulesRuntime.stop = async () => undefined;
emulator._rulesManager.start = async () => [];
emulator._rulesManager.stop = async () => undefined;

const app = await createApp('demo-takeout', emulator);
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const { port } = server.address();
// Metadata links and resumable session URIs are built from the registry's host and port, as under the CLI.
emulator.args.port = port;
EmulatorRegistry.INSTANCES.set('storage', emulator);
process.stdout.write(`${JSON.stringify({ port })}\n`);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections?.();
  rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
