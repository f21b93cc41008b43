// A throwaway PostgreSQL cluster for the benchmarks (as test/setup/postgres.ts does for the tests):
// initdb in a temp folder, trust authentication, fsync off; as root the binaries run as the postgres user.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { cleanEnv, cleanupPaths, firstLine, track } from './lib.mjs';

export /** The environment without PG* variables (they would change what psql and takeout connect to), plus `extra`. */
function pgFreeEnv(extra = {}) {
  const env = cleanEnv();
  for (const name of Object.keys(env)) if (name.startsWith('PG')) delete env[name];
  return { ...env, ...extra };
}

export function findPgBin() {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(base, versions[0], 'bin');
  }
  const initdb = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout?.trim();
  return initdb ? path.dirname(initdb) : undefined;
}

export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * initdb in a temp folder, trust authentication, fsync off, wal_level minimal (the table is created and
 * filled in one transaction, so it skips the WAL). As root the binaries run as the postgres user.
 */
export async function startCluster() {
  const bin = findPgBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql), or pass --url');
  const dir = mkdtempSync(path.join(tmpdir(), 'takeout-bench-pg-'));
  cleanupPaths.add(dir);
  let as = {};
  if (process.getuid?.() === 0) {
    const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, id('-u'), id('-g'));
    as = { uid: id('-u'), gid: id('-g'), env: { ...pgFreeEnv(), HOME: dir } };
  }
  const data = path.join(dir, 'data');
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'takeout', '--no-sync', '-E', 'UTF8', '--locale', 'C'], { encoding: 'utf8', cwd: dir, ...as });
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.stderr}`);
  const port = await freePort();
  const args = [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off',
    '-c', 'full_page_writes=off', '-c', 'wal_level=minimal', '-c', 'max_wal_senders=0', '-c', 'max_wal_size=4GB',
  ];
  const child = track(spawn(path.join(bin, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, ...as }));
  let serverLog = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    serverLog = (serverLog + text).slice(-4000);
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within 30 s\n${serverLog}`)), 30_000);
    const check = () => {
      if (/ready to accept connections/.test(serverLog)) {
        clearTimeout(timer);
        resolve();
      } else if (child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`PostgreSQL exited (code ${child.exitCode})\n${serverLog}`));
      } else setTimeout(check, 50);
    };
    check();
  });
  const cluster = {
    url: `postgres://takeout@127.0.0.1:${port}/postgres`,
    dir,
    child,
    version: firstLine(path.join(bin, 'postgres'), ['--version']),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      child.stderr.destroy();
      await rm(dir, { recursive: true, force: true });
      cleanupPaths.delete(dir);
    },
  };
  return cluster;
}
