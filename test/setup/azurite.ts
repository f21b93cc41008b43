import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Azurite (github.com/Azure/Azurite), Microsoft's Blob Storage emulator, for the whole run: in memory, on a
 * free loopback port. It lives in test/emulators/ with its own lock file, not in takeout's dependencies (it
 * pulls in sequelize, tedious and mysql2); .ci/run installs it, and this installs it when it is missing.
 */

const EMULATORS = fileURLToPath(new URL('../emulators/', import.meta.url));
const AZURITE_BLOB = `${EMULATORS}node_modules/azurite/dist/src/blob/main.js`;
const START_TIMEOUT_MS = 30_000;
/** Azurite closes in milliseconds on SIGTERM; past this it is killed. */
const STOP_TIMEOUT_MS = 5_000;
const STOP_POLL_MS = 50;

function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
const INSTALL_TIMEOUT_MS = 300_000;
/** In-memory blob data cap (MB): the largest test objects are tens of MB; the default is half the machine's memory. */
const EXTENT_MEMORY_LIMIT_MB = 1024;

/** Azurite's well-known development account (learn.microsoft.com "Use the Azurite emulator", "Well-known storage account and key"). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** http://127.0.0.1:PORT/devstoreaccount1 */
  blobEndpoint: string;
  connectionString: string;
  stop(): Promise<void>;
}

async function ensureInstalled(): Promise<void> {
  try {
    await access(AZURITE_BLOB);
    return;
  } catch {
    // Not installed yet: install the locked version once.
  }
  process.stderr.write('test setup: installing the emulators in test/emulators (npm ci --prefix test/emulators), once\n');
  await promisify(execFile)('npm', ['ci', '--prefix', EMULATORS, '--no-audit', '--no-fund', '--loglevel=error'], {
    timeout: INSTALL_TIMEOUT_MS,
  });
}

export async function startAzurite(): Promise<Azurite> {
  await ensureInstalled();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      AZURITE_BLOB,
      '--blobHost', '127.0.0.1',
      '--blobPort', '0',
      '--inMemoryPersistence',
      '--extentMemoryLimit', String(EXTENT_MEMORY_LIMIT_MB),
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--silent',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() },
  );
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`Azurite did not report its port within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(new Error(`${error.message}${output ? `\n${output}` : ''}`));
    };
    const onText = (text: string): void => {
      output = (output + text).slice(-4000);
      const match = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve(Number(match[1]));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`Azurite exited early (code ${code}, signal ${signal})`)));
    child.stdout?.setEncoding('utf8').on('data', onText);
    child.stderr?.setEncoding('utf8').on('data', onText);
  });
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      // Inside vitest's global teardown the child's 'exit' event was seen not to arrive although the process
      // ended: wait on the process itself (signal 0), bounded, then SIGKILL.
      const deadline = Date.now() + STOP_TIMEOUT_MS;
      while (isAlive(child.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, STOP_POLL_MS));
      if (isAlive(child.pid)) child.kill('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
  };
}
