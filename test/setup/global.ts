import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startAzurite, type Azurite } from './azurite.js';
import { startPostgres, type PgCluster } from './postgres.js';

/**
 * Starts one s3rver for the whole run (see s3rver-server.mjs) and provides its endpoint to tests
 * as `inject('s3Endpoint')`; Azurite's blob endpoint and connection string likewise (see azurite.ts).
 * Depends on nothing in src/.
 */

const SERVER_SCRIPT = fileURLToPath(new URL('./s3rver-server.mjs', import.meta.url));
const START_TIMEOUT_MS = 20_000;

let server: ChildProcess | undefined;
let postgres: PgCluster | undefined;
let azurite: Azurite | undefined;

export async function setup(project: TestProject): Promise<void> {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', SERVER_SCRIPT], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  server = child;
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });

  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      fail(new Error(`s3rver did not report its port within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(new Error(`${error.message}${stderr ? `\n${stderr}` : ''}`));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`s3rver exited early (code ${code}, signal ${signal})`)));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      stdout += text;
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      try {
        const { port: reported } = JSON.parse(stdout.slice(0, newline)) as { port: number };
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(reported);
      } catch (error) {
        fail(new Error(`s3rver printed an unexpected line: ${stdout.slice(0, newline)} (${String(error)})`));
      }
    });
  });

  project.provide('s3Endpoint', `http://127.0.0.1:${port}`);
  postgres = await startPostgres();
  project.provide('pgUrl', postgres.url);
  azurite = await startAzurite();
  project.provide('azureBlobEndpoint', azurite.blobEndpoint);
  project.provide('azureConnectionString', azurite.connectionString);
}

export async function teardown(): Promise<void> {
  await postgres?.stop();
  postgres = undefined;
  await azurite?.stop();
  azurite = undefined;
  const child = server;
  server = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
