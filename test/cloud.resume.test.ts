/**
 * kill -9 mid-run on azure:// (Azurite) and gs:// (the GCS test server), after some slices landed: no manifest
 * is left, `takeout run --resume` writes only what is missing and ends with the same slices, byte for byte, as
 * an uninterrupted run into a local folder. On Azure the killed run also leaves a blob of uncommitted blocks
 * (a slice staged in part): `takeout cleanup` finds it and removes it. On GCS the killed run leaves a resumable
 * upload session, which holds no object and cannot be listed (Google expires it after a week): cleanup says the
 * destination does not list leftovers. Ctrl-C on Azure names what it undoes in the words of a cloud (uploads).
 */
import path from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import type { Journal } from '../src/manifests/journal.js';
import type { TakeoutManifest } from '../src/manifests/takeout.js';
import { rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { errorLines, jsonLines, readTakeout, removeTempFolders, runCli, startCli, tempFolder, type CliResult, type Store } from './helpers/cli.js';
import { azureReadBack, gcsReadBack, gcsTestClient, uncommittedBlobs } from './helpers/clouds.js';
import { demoWithBigTable, expectOk } from './helpers/projects.js';
import { uniquePrefix } from './helpers/s3.js';
import { startGcsServer, type GcsServer } from './gcs/server.js';

const connectionString = inject('azureConnectionString');
const BUCKET = 'takeout-test';
const JOURNAL = 'takeout-journal.json';
const MANIFEST = 'takeout-manifest.json';
/**
 * How every run here slices: 12 MiB slices, two tables at a time (the demo's small tables land while the big
 * one is written); Azure stages a slice in blocks of 5 MiB (the least --part-size), one at a time, so a big
 * slice is in part staged for seconds.
 */
const SLICING = ['--compression-level', '1', '--slice-size', '12MB', '--concurrency', '2', '--part-size', '5MB', '--part-concurrency', '1'];
/** The run that is killed is held to 8 MiB/s, so a slice is staged in part for a second or so. */
const SLOW = [...SLICING, '--bwlimit', '8M'];

let gcs: GcsServer;
let storage: Storage;
let container: ContainerClient;
let project: string;
let reference: TakeoutManifest;

const slicesOf = (m: TakeoutManifest): Record<string, { key: string; sha256: string; bytes: number; rows: number }[]> =>
  Object.fromEntries(m.tables.map((t) => [t.id, t.slices.map((s) => ({ key: s.key, sha256: s.sha256, bytes: s.bytes, rows: s.rows }))]));

beforeAll(async () => {
  gcs = await startGcsServer({ buckets: [BUCKET] });
  storage = gcsTestClient(gcs.url);
  container = await rawContainer(connectionString);
  // ~40 MB of rows, ~15 MiB compressed: in.c-big.events in two slices, the first staged in blocks.
  project = await demoWithBigTable('cloud-resume', 40);
  const out = path.join(await tempFolder('cloud-resume-ref'), 'out');
  expectOk(await runCli(['run', '--source', project, ...SLICING, '--dest', out, '-q']));
  reference = (await readTakeout(out)).manifest;
  expect(reference.tables.find((t) => t.id === 'in.c-big.events')!.slices.length).toBeGreaterThan(1);
}, 60_000);

afterAll(async () => {
  await gcs?.close();
  await removeTempFolders();
});

type Cloud = 'azure' | 'gs';
const envOf = (cloud: Cloud): Record<string, string> =>
  cloud === 'azure' ? { AZURE_STORAGE_CONNECTION_STRING: connectionString } : { STORAGE_EMULATOR_HOST: gcs.url };

/** Starts a slow run, waits until `slices` slices landed and `ready()` holds, then kills it with SIGKILL. */
async function killed(cloud: Cloud, dest: string, slices: number, ready: () => Promise<boolean>): Promise<CliResult> {
  const cli = startCli(['run', '--source', project, ...SLOW, '--json', '--dest', dest], { env: envOf(cloud) });
  await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > slices);
  const until = Date.now() + 20_000;
  while (!(await ready()) && Date.now() < until && cli.child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 25));
  cli.child.kill('SIGKILL');
  return cli.done;
}

/** The slices the killed run's journal lists: what --resume must reuse rather than write again. */
async function journalSlices(store: Store): Promise<string[]> {
  const journal = JSON.parse((await store.get(JOURNAL)).toString('utf8')) as Journal;
  return Object.values(journal.tables).flatMap((t) => t.slices.map((slice) => slice.key));
}

async function expectResumedIdentical(cloud: Cloud, dest: string, store: Store): Promise<void> {
  const plain = await runCli(['run', '--source', project, ...SLICING, '--dest', dest], { env: envOf(cloud) });
  expect(plain.code, plain.stderr).toBe(ERROR_CODES.EXISTS);

  const journaled = await journalSlices(store);
  expect(journaled.length).toBeGreaterThan(0);
  const resumed = await runCli(['run', '--source', project, ...SLICING, '--json', '--resume', '--dest', dest], { env: envOf(cloud) });
  expectOk(resumed);
  const summary = jsonLines(resumed.stdout).find((e) => e.type === 'run:done')!.summary as { reused: { slices: number } };
  expect(summary.reused.slices).toBe(journaled.length);
  const written = jsonLines(resumed.stdout).filter((e) => e.type === 'table:slice').map((e) => (e.slice as { key: string }).key);
  expect(written.filter((key) => journaled.includes(key)), 'journaled slices written again').toEqual([]);

  const result = await readTakeout(store);
  expect(result.manifest.status).toBe('complete');
  expect(slicesOf(result.manifest)).toEqual(slicesOf(reference));
  expect(result.keys).not.toContain(JOURNAL);
  const verify = await runCli(['verify', dest], { env: envOf(cloud) });
  expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
}

/** SIGKILLed after slices landed: no manifest, the journal there, at least two slices committed. */
async function expectKilledMidRun(code: number, store: { list(): Promise<string[]> }): Promise<string[]> {
  expect(code).toBe(137);
  const keys = await store.list();
  expect(keys).not.toContain(MANIFEST);
  expect(keys).toContain(JOURNAL);
  expect(keys.filter((k) => k.includes('.part_')).length).toBeGreaterThanOrEqual(2);
  return keys;
}

describe('kill -9 mid-run, then --resume', () => {
  it.concurrent('azure://: leaves committed slices and uncommitted blocks, no manifest; cleanup removes the blocks; --resume is byte-identical', async () => {
    const prefix = uniquePrefix('cloud-resume-azure');
    const dest = `azure://${TEST_CONTAINER}/${prefix}`;
    const store = azureReadBack(container, prefix);
    const stopped = await killed('azure', dest, 2, async () => (await uncommittedBlobs(container, prefix)).some((name) => name.startsWith('in/c-big/')));
    const keys = await expectKilledMidRun(stopped.code, store);
    const staged = await uncommittedBlobs(container, prefix);
    expect(staged.length, 'no slice was staged in part when the run was killed').toBeGreaterThan(0);

    // The killed run's lease names a dead process on this host: stale at once, so cleanup may act.
    const dry = await runCli(['cleanup', dest, '--older-than', '0', '--dry-run', '--json'], { env: envOf('azure') });
    expect(dry.code, dry.stderr).toBe(0);
    for (const name of staged) expect(dry.stdout, name).toContain(name);
    expect(await uncommittedBlobs(container, prefix)).toEqual(staged);
    const cleanup = await runCli(['cleanup', dest, '--older-than', '0'], { env: envOf('azure') });
    expect(cleanup.code, cleanup.stderr).toBe(0);
    // Said in Azure's words: blocks discarded, not multipart uploads aborted.
    expect(cleanup.stderr).toMatch(/discarded the uncommitted blocks of /);
    expect(cleanup.stderr).toMatch(/cleaned up \d+ blobs? with uncommitted blocks, \d+ temp files?/);
    expect(await uncommittedBlobs(container, prefix)).toEqual([]);
    // Cleanup removes leftovers only: the landed slices and the journal stay for --resume (the dead run's lease,
    // taken over by cleanup, goes with cleanup's own).
    const notLease = (list: string[]): string[] => list.filter((k) => k !== 'takeout-lease.json');
    expect(notLease(await store.list())).toEqual(notLease(keys));

    await expectResumedIdentical('azure', dest, store);
  }, 60_000);

  // The writer sends its 8 MiB chunks as they fill: a big slice's session is open, holding one chunk, until the slice ends.
  it.concurrent('gs://: leaves finished slices and an open resumable session, no manifest; --resume is byte-identical; cleanup has nothing it can list', async () => {
    const prefix = uniquePrefix('cloud-resume-gs');
    const dest = `gs://${BUCKET}/${prefix}`;
    const store = gcsReadBack(storage, BUCKET, prefix);
    const openSession = async (): Promise<boolean> => [...gcs.state.sessions.values()].some((s) => s.name.startsWith(prefix) && s.done === undefined);
    const stopped = await killed('gs', dest, 2, openSession);
    await expectKilledMidRun(stopped.code, store);
    expect(await openSession(), 'no resumable session was open when the run was killed').toBe(true);

    const cleanup = await runCli(['cleanup', dest, '--older-than', '0'], { env: envOf('gs') });
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.stderr).toMatch(/nothing a crashed run leaves there can be listed or cleaned/);
    expect(cleanup.stderr).toMatch(/cleaned up 0 open resumable uploads, 0 temp files/);

    await expectResumedIdentical('gs', dest, store);
  }, 60_000);

  it.concurrent('azure://: Ctrl-C mid-run says it aborts uploads (not temp files), exit 130, and --resume completes byte-identical', async () => {
    const prefix = uniquePrefix('cloud-sigint-azure');
    const dest = `azure://${TEST_CONTAINER}/${prefix}`;
    const cli = startCli(['run', '--source', project, ...SLOW, '--json', '--dest', dest], { env: envOf('azure') });
    await cli.waitForStdout((stdout) => stdout.includes('"type":"table:slice"'));
    cli.child.kill('SIGINT');
    const stopped = await cli.done;
    expect(stopped.code, stopped.stderr).toBe(ERROR_CODES.INTERRUPTED);
    expect(stopped.stderr).toContain('takeout: interrupting: aborting uploads and removing temp files');
    expect(errorLines(stopped.stderr)).toEqual(['takeout: error: interrupted: open uploads were aborted, no manifest was written [INTERRUPTED, exit 130]']);
    await expectResumedIdentical('azure', dest, azureReadBack(container, prefix));
  }, 60_000);
});
