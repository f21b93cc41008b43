import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Store } from '../src/stores/store.js';
import { createLocalStore } from '../src/stores/local/store.js';
import { openStore } from '../src/stores/registry.js';
import { ERROR_CODES, TakeoutError } from '../src/errors.js';
import { LEASE_FILE, type LeaseRecord } from '../src/manifests/lease.js';
import { acquireLease, LEASE_GIVE_UP_MS, LEASE_HEARTBEAT_MS, LEASE_STALE_MS } from '../src/pipeline/lease.js';
import type { PipelineEvent } from '../src/pipeline/events.js';
import { runTakeout } from '../src/pipeline/run.js';
import { createDirSource } from '../src/sources/dir/source.js';
import { BAD_FIXTURES, errorLines, jsonLines, removeTempFolders, runCli, s3Store, startCli, tempFolder, walkFiles } from './helpers/cli.js';
import { demoWithBigTable, expectOk } from './helpers/projects.js';
import { startFaultProxy } from './faults/proxy.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * Two runs on one destination: the first holds a lease (takeout-lease.json) and renews it; a second run,
 * a --resume or an --overwrite is refused while it lives (exit 9, naming the holder); a dead holder's lease
 * is taken over with --resume; cleanup leaves a live run's uploads alone; the lease is gone after every run.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const s3Args = s3CliArgs(endpoint);
/** Level 9 and 1 MB slices, one table at a time: slow enough to act while the run is mid-table. */
const SLOW = ['--compression-level', '9', '--slice-size', '1MB', '--concurrency', '1'];

let project: string;
const bigProject = (name: string): Promise<string> => demoWithBigTable(name, 8);

/** A lease as another run would have written it. */
function leaseOf(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  const now = new Date().toISOString();
  return {
    formatVersion: 1,
    kind: 'takeout-lease',
    runId: '20261204T070000-0badf00d',
    command: 'run',
    host: 'other-host.example',
    pid: 4242,
    user: 'ana',
    startedAt: now,
    heartbeatAt: now,
    heartbeatMs: LEASE_HEARTBEAT_MS,
    staleAfterMs: LEASE_STALE_MS,
    tool: { name: 'takeout', version: '0.0.0' },
    ...overrides,
  };
}

async function writeLease(folder: string, lease: LeaseRecord): Promise<void> {
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, LEASE_FILE), JSON.stringify(lease));
}

/** A temp file as a killed run leaves it, old enough for any --older-than. */
async function oldTempFile(folder: string, name: string): Promise<string> {
  await mkdir(folder, { recursive: true });
  const file = path.join(folder, `.${name}.abcdef12.takeout-tmp`);
  await writeFile(file, 'partial');
  const old = new Date(Date.now() - 3 * 86_400_000);
  await utimes(file, old, old);
  return file;
}

const exists = (file: string): Promise<boolean> => readFile(file).then(() => true, () => false);

beforeAll(async () => {
  project = await bigProject('lease');
}, 60_000);

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

describe('two runs on one destination', () => {
  it('S3: a second run, --resume and --overwrite are refused (exit 9, naming the holder); the first completes and verifies clean', async () => {
    const prefix = uniquePrefix('lease-two');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    // The first run's write of buckets.json (after its table data) is held for a few seconds: the time the others try.
    const proxy = await startFaultProxy(endpoint);
    try {
      proxy.rules.push({ match: (req) => req.method === 'PUT' && (req.url ?? '').includes('buckets.json'), times: 1, action: { kind: 'stall' } });
      const viaProxy = s3CliArgs(proxy.url);
      const first = startCli(['run', '--source', project, ...SLOW, '--json', '--dest', dest, '--request-timeout', '6000', ...viaProxy]);
      while (!proxy.requests.some((r) => r.fault === 'stall')) await new Promise((resolve) => setTimeout(resolve, 20));
      const runId = String(jsonLines(first.stdout).find((e) => e.type === 'run:start')!.runId);

      const tries = [[], ['--resume'], ['--overwrite']].map((extra) => ['run', '--source', project, ...SLOW, '--dest', dest, ...extra, ...s3Args]);
      // table export --dest onto the same destination is a run too.
      tries.push(['table', 'export', 'in.c-crm.products', '--source', project, '--dest', dest, ...s3Args]);
      const results = await Promise.all(tries.map((args) => runCli(args)));
      for (const [i, second] of results.entries()) {
        expect(second.code, `${tries[i]!.join(' ')}: ${second.stderr}`).toBe(ERROR_CODES.EXISTS);
        const [message] = errorLines(second.stderr);
        expect(message).toContain(`is in use: run ${runId} (takeout run) on host ${hostname()}, pid ${first.child.pid}`);
        expect(message).toMatch(/last heartbeat \d+ s ago/);
        expect(second.stderr).toMatch(/hint: wait for it to finish; if it died, --resume takes over once its lease is stale/);
      }
      expect(proxy.requests.some((r) => r.fault === 'stall' && r.status === undefined)).toBe(true);

      expectOk(await first.done);
    } finally {
      await proxy.stop();
    }
    const keys = await s3Store(client, TEST_BUCKET, prefix).list();
    expect(keys).not.toContain(LEASE_FILE);
    expect(keys).toContain('takeout-manifest.json');
    expectOk(await runCli(['verify', dest, ...s3Args]));
  }, 90_000);

  it('a live lease of another host: refused, and so is --dry-run, which writes nothing', async () => {
    const out = path.join(await tempFolder('lease-other-host'), 'out');
    const lease = leaseOf({ user: 'ana\u001b[31m' });
    await writeLease(out, lease);
    const refused = await runCli(['run', '--source', 'demo', '--dest', out, '--resume']);
    expect(refused.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(refused.stderr)[0]).toContain(`run ${lease.runId} (takeout run) on host other-host.example, pid 4242, user "ana\\u001b[31m"`);
    expect(refused.stderr).not.toContain('\u001b[31m');

    // The dry run is a preflight: refused with the exit code the run would give.
    const dry = await runCli(['run', '--source', 'demo', '--dest', out, '--dry-run']);
    expect(dry.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(dry.stderr)[0]).toContain(`is in use: run ${lease.runId} (takeout run) on host other-host.example`);
    expect(await walkFiles(out)).toEqual([LEASE_FILE]);
    expect(JSON.parse(await readFile(path.join(out, LEASE_FILE), 'utf8'))).toEqual(lease);
  }, 30_000);

  it('a stale lease (no heartbeat for longer than its stale time) is refused without --resume and taken over with it', async () => {
    const out = path.join(await tempFolder('lease-stale'), 'out');
    const old = new Date(Date.now() - LEASE_STALE_MS - 60_000).toISOString();
    await writeLease(out, leaseOf({ startedAt: old, heartbeatAt: old, heartbeatMs: 1_000 }));
    const plain = await runCli(['run', '--source', 'demo', '--dest', out]);
    expect(plain.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(plain.stderr)[0]).toMatch(/holds the lease of run 20261204T070000-0badf00d .* which looks dead \(no heartbeat for \d+ s\)/);
    expect(plain.stderr).toContain('pass --resume to take over');

    const resumed = await runCli(['run', '--source', 'demo', '--dest', out, '--resume']);
    expectOk(resumed);
    expect(resumed.stderr).toMatch(/warning: taking over the lease of run 20261204T070000-0badf00d/);
    expect(await walkFiles(out)).not.toContain(LEASE_FILE);
    expectOk(await runCli(['verify', out]));
  }, 30_000);

  it('SIGKILL: the dead run\'s lease on this host is stale at once; --resume takes it over and completes', async () => {
    const out = path.join(await tempFolder('lease-kill'), 'out');
    const first = startCli(['run', '--source', project, ...SLOW, '--json', '--dest', out]);
    await first.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 2);
    first.child.kill('SIGKILL');
    await first.done;
    const left = JSON.parse(await readFile(path.join(out, LEASE_FILE), 'utf8')) as LeaseRecord;
    expect(left.pid).toBe(first.child.pid);

    const resumed = await runCli(['run', '--source', project, ...SLOW, '--dest', out, '--resume']);
    expectOk(resumed);
    expect(resumed.stderr).toContain(`its process ${first.child.pid} on ${hostname()} is gone`);
    expect(await walkFiles(out)).not.toContain(LEASE_FILE);
    expectOk(await runCli(['verify', out]));
  }, 90_000);
});

describe('the lease is released on every way out', () => {
  it('Ctrl-C: exit 130, the journal kept for --resume, the lease gone', async () => {
    const out = path.join(await tempFolder('lease-sigint'), 'out');
    const cli = startCli(['run', '--source', project, ...SLOW, '--json', '--dest', out]);
    await cli.waitForStdout((stdout) => stdout.includes('"type":"table:slice"'));
    expect(await exists(path.join(out, LEASE_FILE))).toBe(true);
    cli.child.kill('SIGINT');
    const stopped = await cli.done;
    expect(stopped.code).toBe(ERROR_CODES.INTERRUPTED);
    const files = await walkFiles(out);
    expect(files).toContain('takeout-journal.json');
    expect(files).not.toContain(LEASE_FILE);
  }, 60_000);

  it('a failed run (invalid input) leaves no lease', async () => {
    const out = path.join(await tempFolder('lease-failed'), 'out');
    const failed = await runCli(['run', '--source', path.join(BAD_FIXTURES, 'ragged-row'), '--dest', out]);
    expect(failed.code).toBe(ERROR_CODES.INVALID_INPUT);
    expect(await exists(path.join(out, LEASE_FILE))).toBe(false);
    // The next run is not refused by a lease.
    const again = await runCli(['run', '--source', path.join(BAD_FIXTURES, 'ragged-row'), '--dest', out]);
    expect(again.code).toBe(ERROR_CODES.INVALID_INPUT);
  }, 30_000);
  it('S3: a lease that cannot be written stops the run before any data moves (exit 4 naming the lease)', async () => {
    const prefix = uniquePrefix('lease-denied');
    const proxy = await startFaultProxy(endpoint);
    try {
      proxy.rules.push({ match: (req) => req.method === 'PUT' && (req.url ?? '').includes(LEASE_FILE), action: { kind: 'status', status: 403, code: 'AccessDenied', message: 'Access Denied' } });
      const viaProxy = s3CliArgs(proxy.url);
      const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...viaProxy]);
      expect(result.code, result.stderr).toBe(ERROR_CODES.AUTH);
      expect(errorLines(result.stderr)[0]).toContain(`${prefix}${LEASE_FILE}`);
    } finally {
      await proxy.stop();
    }
    expect(await s3Store(client, TEST_BUCKET, prefix).list()).toEqual([]);
  }, 30_000);
});

describe('cleanup and a live lease', () => {
  it('refuses (exit 9) while a run holds the destination\'s lease and leaves its temp files; cleans once it is stale', async () => {
    const out = path.join(await tempFolder('lease-cleanup'), 'out');
    const temp = await oldTempFile(path.join(out, 'in', 'c-main'), 'orders.part_0.csv.gz');
    await writeLease(out, leaseOf());
    const refused = await runCli(['cleanup', out, '--older-than', '0']);
    expect(refused.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(refused.stderr)[0]).toContain('is in use: run 20261204T070000-0badf00d (takeout run) on host other-host.example');
    expect(await exists(temp)).toBe(true);

    const old = new Date(Date.now() - LEASE_STALE_MS - 60_000).toISOString();
    await writeLease(out, leaseOf({ heartbeatAt: old, heartbeatMs: 1_000 }));
    const cleaned = await runCli(['cleanup', out, '--older-than', '0']);
    expectOk(cleaned);
    expect(cleaned.stderr).toMatch(/warning: taking over the lease of run 20261204T070000-0badf00d/);
    expect(await exists(temp)).toBe(false);
    expect(await walkFiles(out)).toEqual([]);
  }, 30_000);

  it('over a parent folder: leaves the temp files under a folder with a live lease, removes the others, and says so', async () => {
    const root = path.join(await tempFolder('lease-cleanup-nested'), 'root');
    const live = await oldTempFile(path.join(root, 'live', 'in', 'c-main'), 'orders.part_0.csv.gz');
    const dead = await oldTempFile(path.join(root, 'dead', 'in', 'c-main'), 'orders.part_0.csv.gz');
    await writeLease(path.join(root, 'live'), leaseOf());
    const cleaned = await runCli(['cleanup', root, '--older-than', '0', '--json']);
    expectOk(cleaned);
    expect(await exists(live)).toBe(true);
    expect(await exists(dead)).toBe(false);
    const events = jsonLines(cleaned.stdout);
    expect(events.find((e) => e.action === 'kept')).toMatchObject({ key: 'live/in/c-main/.orders.part_0.csv.gz.abcdef12.takeout-tmp', holder: '20261204T070000-0badf00d' });
    expect(events.at(-1)).toMatchObject({ type: 'cleanup:summary', tempFiles: 1, keptForLiveRuns: 1 });
    const plain = await runCli(['cleanup', root, '--older-than', '0', '--dry-run']);
    expect(plain.stderr).toMatch(/left alone temp file live\/in\/c-main\/\.orders.*: live\/ is in use by run 20261204T070000-0badf00d/);
  }, 30_000);
});

describe('dataset exports', () => {
  const exportArgs = (out: string, table: string, ...extra: string[]): string[] => [
    'dataset', 'export', table, '--source', project, '--dest', out, '--max-file-size', '256KB', '--compression-level', '9', ...extra,
  ];

  it('two exports to one prefix run at once; the same export twice, and a run there, are refused naming it', async () => {
    const prefix = uniquePrefix('lease-dataset');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    // The first export's manifest-summary.json (after its data) is held for a few seconds: the time the others try.
    const proxy = await startFaultProxy(endpoint);
    let exportId: string;
    try {
      proxy.rules.push({ match: (req) => req.method === 'PUT' && (req.url ?? '').includes('manifest-summary.json'), times: 1, action: { kind: 'stall' } });
      const viaProxy = s3CliArgs(proxy.url);
      const first = startCli([...exportArgs(dest, 'in.c-big.events', '--client-token', 'nightly'), '--json', '--request-timeout', '6000', ...viaProxy]);
      while (!proxy.requests.some((r) => r.fault === 'stall')) await new Promise((resolve) => setTimeout(resolve, 20));
      exportId = String(jsonLines(first.stdout).find((e) => e.type === 'dataset:start')!.exportId);
      expect(await s3Store(client, TEST_BUCKET, prefix).list()).toContain(`takeout-exports/${exportId}.lease.json`);

      const [other, same, run] = await Promise.all([
        runCli([...exportArgs(dest, 'in.c-crm.products'), ...s3Args]),
        runCli([...exportArgs(dest, 'in.c-big.events', '--client-token', 'nightly'), '--request-timeout', '6000', ...viaProxy]),
        runCli(['run', '--source', project, '--dest', dest, ...s3Args]),
      ]);
      expectOk(other);
      expect(same.code, same.stderr).toBe(ERROR_CODES.EXISTS);
      expect(errorLines(same.stderr)[0]).toContain(`is in use: run ${exportId} (takeout dataset export) on host ${hostname()}, pid ${first.child.pid}`);
      expect(run.code, run.stderr).toBe(ERROR_CODES.EXISTS);
      expect(errorLines(run.stderr)[0]).toContain(`is in use: a dataset export is writing here: run ${exportId}`);
      expect(proxy.requests.some((r) => r.fault === 'stall' && r.status === undefined)).toBe(true);
      expectOk(await first.done);
    } finally {
      await proxy.stop();
    }
    expect((await s3Store(client, TEST_BUCKET, prefix).list()).filter((f) => f.endsWith('.lease.json') || f === LEASE_FILE)).toEqual([]);
    const verified = await runCli(['verify', dest, ...s3Args]);
    expect(verified.stderr).toMatch(/verified \d+ files of 2 exports, .*: all good/);
  }, 90_000);

  it('an export resumed with its client token leaves the temp files alone while another export writes to the prefix', async () => {
    const out = path.join(await tempFolder('lease-dataset-kill'), 'out');
    const args = exportArgs(out, 'in.c-big.events', '--client-token', 'killed');
    const first = startCli([...args, '--json']);
    await first.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 2);
    first.child.kill('SIGKILL');
    await first.done;
    // Another export, alive on another host, with a temp file of an upload it is writing.
    await writeFile(path.join(out, 'takeout-exports', '20261204070000-0badf00d.lease.json'), JSON.stringify(leaseOf({ runId: '20261204070000-0badf00d', command: 'dataset export' })));
    const theirs = await oldTempFile(path.join(out, 'AWSDynamoDB', '20261204070000-0badf00d', 'data'), 'part.json.gz');

    const resumed = await runCli([...args, '--json']);
    expectOk(resumed);
    const warnings = jsonLines(resumed.stdout).filter((e) => e.type === 'warning').map((e) => String(e.message));
    expect(warnings.some((w) => /^taking over the lease of run \d{14}-[0-9a-f]{8} \(takeout dataset export\).*: its process \d+ on .* is gone$/.test(w))).toBe(true);
    expect(warnings).toContainEqual(expect.stringMatching(/^left unfinished uploads and temp files alone: run 20261204070000-0badf00d \(takeout dataset export\) on host other-host\.example.* is writing to /));
    expect(await exists(theirs)).toBe(true);
  }, 90_000);
});

describe('the lease itself (in process)', () => {
  const events: PipelineEvent[] = [];
  const emit = (event: PipelineEvent): void => void events.push(event);
  const fast = { heartbeatMs: 50, retryMs: 20, giveUpMs: 1_000, staleAfterMs: 5_000 };

  /** A destination whose writes of the lease can be made to fail, or to be overtaken by another writer. */
  function faulty(inner: Store): Store & { failLease: boolean; afterLeasePut?: () => Promise<void> } {
    const wrapped = Object.create(inner) as Store & { failLease: boolean; afterLeasePut?: () => Promise<void> };
    wrapped.failLease = false;
    wrapped.put = async (key, body, options) => {
      if (key === LEASE_FILE && wrapped.failLease) throw new TakeoutError('NETWORK', `PutObject ${key}: connect ECONNREFUSED`);
      const written = await inner.put(key, body, options);
      if (key === LEASE_FILE && wrapped.afterLeasePut) {
        const hook = wrapped.afterLeasePut;
        delete wrapped.afterLeasePut;
        await hook();
      }
      return written;
    };
    return wrapped;
  }

  /** A folder holding a lease this process took (and left, as a killed run would). */
  async function leaseHere(): Promise<string> {
    const out = path.join(await tempFolder('lease-here'), 'out');
    const lease = await acquireLease(await openStore(out), { runId: 'r-here', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: false, emit, timing: fast });
    const text = await readFile(path.join(out, LEASE_FILE));
    await lease.release();
    await writeFile(path.join(out, LEASE_FILE), text);
    return out;
  }

  it('is renewed by its heartbeat, and removed on release', async () => {
    const out = path.join(await tempFolder('lease-beat'), 'out');
    const destination = await openStore(out);
    const lease = await acquireLease(destination, { runId: 'r-1', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: false, emit, timing: fast });
    const first = JSON.parse(await readFile(path.join(out, LEASE_FILE), 'utf8')) as LeaseRecord;
    expect(first).toMatchObject({ runId: 'r-1', host: hostname(), pid: process.pid, heartbeatMs: 50, staleAfterMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const later = JSON.parse(await readFile(path.join(out, LEASE_FILE), 'utf8')) as LeaseRecord;
    expect(Date.parse(later.heartbeatAt)).toBeGreaterThan(Date.parse(first.heartbeatAt));
    // A second holder in this very process is refused too.
    await expect(acquireLease(destination, { runId: 'r-2', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: true, emit, timing: fast })).rejects.toMatchObject({ code: 'EXISTS' });
    await lease.release();
    expect(await exists(path.join(out, LEASE_FILE))).toBe(false);
    expect(lease.signal.aborted).toBe(false);
  });

  it('a heartbeat that keeps failing stops the run within the give-up time, with a clear error', async () => {
    const out = path.join(await tempFolder('lease-fail'), 'out');
    const destination = faulty(await openStore(out));
    const lease = await acquireLease(destination, { runId: 'r-1', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: false, emit, timing: fast });
    destination.failLease = true;
    const t0 = Date.now();
    await new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect(Date.now() - t0).toBeLessThan(fast.giveUpMs + fast.heartbeatMs + 500);
    expect(lease.failure).toMatchObject({ code: 'NETWORK' });
    expect(lease.failure!.message).toMatch(/^could not renew the lease takeout-lease\.json for \d+ s \(PutObject takeout-lease\.json: connect ECONNREFUSED\); stopping, since without a lease another run may start writing here$/);
    await lease.release();
    expect(LEASE_GIVE_UP_MS).toBeLessThan(LEASE_STALE_MS);
  });

  it('a run whose lease cannot be renewed stops with that error (not hanging, not silent), keeping its journal for --resume', async () => {
    const out = path.join(await tempFolder('lease-run-fail'), 'out');
    const destination = faulty(createLocalStore(out));
    // Once the lease fails, slices land slowly: the run is still going when it gives up.
    const inner = destination.writer.bind(destination);
    destination.writer = async (key, options) => {
      const writer = await inner(key, options);
      if (!destination.failLease) return writer;
      return { ...writer, write: writer.write.bind(writer), abort: writer.abort.bind(writer), finish: async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        return writer.finish();
      } };
    };
    const seen: PipelineEvent[] = [];
    const run = runTakeout({
      source: createDirSource(project),
      destination,
      structureOnly: false,
      include: ['in.c-big.events'],
      exclude: [],
      sliceBytes: 1024 * 1024,
      compressionLevel: 9,
      lineEnding: '\n',
      requote: false,
      concurrency: 1,
      overwrite: false,
      dryRun: false,
      failFast: false,
      partBytes: 0,
      partConcurrency: 0,
      toolVersion: 'test',
      recordedOptions: {},
      leaseTiming: fast,
      emit: (event) => {
        seen.push(event);
        // Once data moves, the store stops taking the lease's writes.
        if (event.type === 'table:slice') destination.failLease = true;
      },
    });
    const t0 = Date.now();
    await expect(run).rejects.toMatchObject({ code: 'NETWORK', message: expect.stringMatching(/^could not renew the lease takeout-lease\.json for \d+ s/) });
    expect(Date.now() - t0).toBeLessThan(15_000);
    const files = await walkFiles(out);
    expect(files).not.toContain('takeout-manifest.json');
    expect(files, JSON.stringify(seen.filter((e) => e.type !== 'table:progress'))).toContain('takeout-journal.json');
    expect(files.filter((f) => f.endsWith('.takeout-tmp'))).toEqual([]);
    // Still this run's lease, so it is removed on the way out, if the store lets it.
    expect(files).not.toContain(LEASE_FILE);
    expect(seen.some((e) => e.type === 'run:done')).toBe(false);
  }, 30_000);

  it('a lease that only looks stale (this clock ahead of the holder\'s) is watched, and refused when it is renewed meanwhile', async () => {
    const out = path.join(await tempFolder('lease-skew'), 'out');
    const destination = await openStore(out);
    const old = new Date(Date.now() - LEASE_STALE_MS - 60_000).toISOString();
    await writeLease(out, leaseOf({ heartbeatAt: old, heartbeatMs: 300 }));
    const seen: PipelineEvent[] = [];
    const taking = acquireLease(destination, { runId: 'r-1', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: true, emit: (e) => void seen.push(e), timing: fast });
    // The holder renews, by its clock still in the past of ours.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await writeLease(out, leaseOf({ heartbeatAt: new Date(Date.parse(old) + 300).toISOString(), heartbeatMs: 300 }));
    await expect(taking).rejects.toMatchObject({ code: 'EXISTS', message: expect.stringContaining('the lease is being renewed (is a clock off?): run 20261204T070000-0badf00d') });
    expect(seen.map((e) => (e.type === 'warning' ? e.message : ''))).toContainEqual(expect.stringMatching(/looks stale; watching it for \d+ s to make sure nobody renews it/));
  });

  it('a pid is only looked up on the same host and in the same pid namespace', async () => {
    const { leaseLiveness } = await import('../src/pipeline/lease.js');
    const here = JSON.parse(await readFile(path.join(await leaseHere(), LEASE_FILE), 'utf8')) as LeaseRecord;
    const gone = { ...here, pid: 2 ** 22 + 7 };
    expect(leaseLiveness(gone)).toMatchObject({ live: false, dead: true });
    // Another container on this host name (host networking): its pid means nothing here; the heartbeat decides.
    expect(leaseLiveness({ ...gone, pidNamespace: 'pid:[1]' })).toEqual({ live: true });
    expect(leaseLiveness({ ...gone, host: 'elsewhere' })).toEqual({ live: true });
  });

  it('a store that ignores If-None-Match: the run whose id is not read back is refused; one overtaken later stops at its next heartbeat', async () => {
    const out = path.join(await tempFolder('lease-race'), 'out');
    const plain = await openStore(out);
    const racing = faulty(plain);
    const other = leaseOf({ runId: 'r-other', host: hostname(), pid: process.pid });
    racing.afterLeasePut = () => plain.put(LEASE_FILE, JSON.stringify(other)).then(() => undefined);
    await expect(acquireLease(racing, { runId: 'r-1', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: false, emit, timing: fast })).rejects.toThrow(
      /another run took the lease at the same moment: run r-other/,
    );

    await plain.delete([LEASE_FILE]);
    const lease = await acquireLease(plain, { runId: 'r-1', command: 'run', toolVersion: 't', scope: { kind: 'run' }, takeOver: false, emit, timing: fast });
    await plain.put(LEASE_FILE, JSON.stringify(other));
    await new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect(lease.failure).toMatchObject({ code: 'EXISTS' });
    expect(lease.failure!.message).toContain('another run took the lease: run r-other');
    await lease.release();
    // The winner's lease is not removed by the loser.
    expect(JSON.parse(await readFile(path.join(out, LEASE_FILE), 'utf8'))).toMatchObject({ runId: 'r-other' });
  });
});
