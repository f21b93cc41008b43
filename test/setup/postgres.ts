import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';

/**
 * A throwaway PostgreSQL cluster for the tests: initdb in a temp folder, a free loopback port, the
 * unix socket in the same folder, trust authentication, fsync off. initdb and postgres refuse to run
 * as root, so as root they run as the `postgres` system user (spawn's uid/gid). Depends on nothing in src/.
 */

const START_TIMEOUT_MS = 30_000;

export interface PgCluster {
  url: string;
  stop(): Promise<void>;
}

/** The folder holding initdb and postgres: Debian's versioned folder, else the PATH. */
export function findPgBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    return initdb ? initdb.replace(/\/initdb$/, '') : undefined;
  } catch {
    return undefined;
  }
}

export async function startPostgres(): Promise<PgCluster> {
  const asRoot = process.getuid?.() === 0;
  let bin = findPgBin();
  if (!bin && asRoot) {
    // As root (CI) the setup installs Debian's server itself, as .ci/run does.
    execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null'], { stdio: 'inherit' });
    bin = findPgBin();
  }
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install postgresql (or run .ci/run as root)');
  const dir = mkdtempSync(join(tmpdir(), 'takeout-pg-'));
  let uid: number | undefined;
  let gid: number | undefined;
  if (asRoot) {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  // As root, run the server binaries directly as the postgres user (no runuser in between, so signals reach postgres).
  const as = uid !== undefined && gid !== undefined ? { uid, gid, env: { ...process.env, HOME: dir } } : {};
  const data = join(dir, 'data');
  execFileSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'takeout', '--no-sync', '-E', 'UTF8', '--locale', 'C'], { stdio: 'pipe', cwd: dir, ...as });
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
      '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=100'],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, ...as },
  );
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => (log = (log + text).slice(-4000)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start within ${START_TIMEOUT_MS / 1000} s\n${log}`)), START_TIMEOUT_MS);
    const check = (): void => {
      if (/ready to accept connections/.test(log)) {
        clearTimeout(timer);
        resolve();
      } else if (child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`PostgreSQL exited (code ${child.exitCode})\n${log}`));
      } else setTimeout(check, 50);
    };
    check();
  });
  return {
    url: `postgres://takeout@127.0.0.1:${port}/postgres`,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      child.stderr?.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
