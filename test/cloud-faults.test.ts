/**
 * The hardening issue's fault cases on azure:// and gs://: the real CLI writes through the fault proxy
 * (test/faults/proxy.ts, in the cloud's error dialect) in front of Azurite and of the GCS test server. Every
 * case ends within the watchdog (60 s) with exactly one error line naming the object, the documented exit
 * code, nothing that looks complete (no takeout-manifest.json, no layout file, no committed object that is
 * not whole) and no secret (the account key, the access token) in the output. Faults: 403 (exit 4), 500 on
 * every retry (exit 1), a 503 once (retried: the run completes), a stalled request (the request timeout
 * fires: exit 8), a reset connection (exit 8), a truncated download body (verify; the journal read by --resume).
 */
import type { IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { errorLines, removeTempFolders, runCli, WATCHDOG_MS, type CliResult } from './helpers/cli.js';
import { bigPayloadProject } from './helpers/projects.js';
import { uniquePrefix } from './helpers/s3.js';
import { faultProxyForTests } from './faults/proxy.js';
import type { FaultAction } from './faults/proxy.js';
import { writeKind } from './faults/write-kinds.mjs';
import type { WriteKind } from './faults/write-kinds.mjs';
import { startGcsServer, type GcsServer } from './gcs/server.js';

const connectionString = inject('azureConnectionString');
const azureOrigin = new URL(inject('azureBlobEndpoint')).origin;
const ACCOUNT_KEY = /AccountKey=([^;]+)/.exec(connectionString)![1]!;
/** The GCS test server asks for this bearer token; it must never be printed. */
const GCS_TOKEN = 'ya29.fault-test-token-never-printed';
const BUCKET = 'takeout-test';
const RUN_ARGS = ['run', '--source', 'demo', '--slice-rows', '10000'];
/** One slice of ~12 MB stored uncompressed: staged in 3 blocks of 5 MB on Azure, 2 resumable chunks of 8 MiB on GCS. */
const BIG_ARGS = ['--compression-level', '0', '--part-size', '5MB'];

type Cloud = 'azure' | 'gs';
/** Store requests that write: Azure Put Blob, Put Block, Put Block List; GCS one-shot upload, resumable start, chunk. */
type WriteOp = 'PutBlob' | 'PutBlock' | 'PutBlockList' | 'Upload' | 'ResumableStart' | 'ResumableChunk';

let gcs: GcsServer;
let container: ContainerClient;
let bigSource: string;
// Registered before the proxies: the GCS one starts in front of this server.
beforeAll(async () => {
  gcs = await startGcsServer({ buckets: [BUCKET], token: GCS_TOKEN });
  container = await rawContainer(connectionString);
  bigSource = await bigPayloadProject('cloud-faults-big');
});

// Cases run concurrently, each under a prefix of its own: the rules are not cleared between tests.
const azureProxy = faultProxyForTests(azureOrigin, { dialect: 'azure', clearAfterEach: false });
const gcsProxy = faultProxyForTests(() => gcs.url, { dialect: 'gcs', clearAfterEach: false });

afterAll(async () => {
  await gcs?.close();
  await removeTempFolders();
});

const proxyOf = (cloud: Cloud): typeof azureProxy => (cloud === 'azure' ? azureProxy : gcsProxy);

function cliEnv(cloud: Cloud): Record<string, string> {
  return cloud === 'azure'
    ? { AZURE_STORAGE_CONNECTION_STRING: connectionString.replace(azureOrigin, azureProxy.url) }
    : { STORAGE_EMULATOR_HOST: gcsProxy.url, GOOGLE_OAUTH_ACCESS_TOKEN: GCS_TOKEN };
}

const destOf = (cloud: Cloud, prefix: string): string => (cloud === 'azure' ? `azure://${TEST_CONTAINER}/${prefix}` : `gs://${BUCKET}/${prefix}`);

/** The write a request makes under `prefix`, with its key relative to it; undefined for reads, lists, deletes. */
function writeOf(cloud: Cloud, req: Pick<IncomingMessage, 'method' | 'url'>, prefix: string): { op: WriteOp; key: string } | undefined {
  const url = new URL(req.url ?? '/', 'http://proxy');
  if (cloud === 'azure') {
    const lead = `/devstoreaccount1/${TEST_CONTAINER}/${prefix}`;
    const full = decodeURIComponent(url.pathname);
    if (req.method !== 'PUT' || !full.startsWith(lead)) return undefined;
    const comp = url.searchParams.get('comp');
    const op = comp === 'block' ? 'PutBlock' : comp === 'blocklist' ? 'PutBlockList' : comp === null ? 'PutBlob' : undefined;
    return op && { op, key: full.slice(lead.length) };
  }
  if (!url.pathname.endsWith(`/upload/storage/v1/b/${BUCKET}/o`)) return undefined;
  const name = url.searchParams.get('name') ?? '';
  if (!name.startsWith(prefix)) return undefined;
  const key = name.slice(prefix.length);
  if (req.method === 'PUT') return { op: 'ResumableChunk', key };
  if (req.method !== 'POST') return undefined;
  return { op: url.searchParams.get('uploadType') === 'resumable' ? 'ResumableStart' : 'Upload', key };
}

/**
 * Every attempt at the first object of `kind` written with one of `ops`: the SDKs retry 500s, timeouts and
 * resets, and the rule keeps answering, as a container or bucket that refuses the write does.
 */
function firstWrite(cloud: Cloud, prefix: string, kind: WriteKind, ops: readonly WriteOp[]): (req: IncomingMessage) => boolean {
  let target: string | undefined;
  return (req) => {
    const write = writeOf(cloud, req, prefix);
    if (!write || !ops.includes(write.op) || writeKind(write.key) !== kind) return false;
    target ??= write.key;
    return write.key === target;
  };
}

/** Keys under `prefix` as the cloud lists them: only committed blobs / finished objects. */
async function committed(cloud: Cloud, prefix: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (cloud === 'azure') {
    for await (const item of container.listBlobsFlat({ prefix })) out.set(item.name.slice(prefix.length), await container.getBlobClient(item.name).downloadToBuffer());
  } else {
    for (const [name, object] of gcs.state.buckets.get(BUCKET) ?? new Map()) if (name.startsWith(prefix)) out.set(name.slice(prefix.length), Buffer.from(object.data));
  }
  return out;
}

/** One error line naming the object, an expected exit code, no secret, and nothing at the destination that looks complete. */
async function expectCleanFailure(cloud: Cloud, prefix: string, result: CliResult, exits: readonly number[], names?: string): Promise<string> {
  const lines = errorLines(result.stderr);
  expect(lines, result.stderr).toHaveLength(1);
  expect(exits, result.stderr).toContain(result.code);
  if (names !== undefined) expect(lines[0], result.stderr).toContain(names);
  for (const secret of [ACCOUNT_KEY, GCS_TOKEN]) expect(result.stdout + result.stderr).not.toContain(secret);
  const objects = await committed(cloud, prefix);
  if (result.code !== ERROR_CODES.PARTIAL) {
    expect([...objects.keys()]).not.toContain('takeout-manifest.json');
    expect([...objects.keys()].filter((k) => writeKind(k) === 'layout')).toEqual([]);
  }
  // Whatever is committed is whole: every slice gunzips, every JSON file parses.
  for (const [key, data] of objects) {
    if (key.endsWith('.gz')) expect(() => gunzipSync(data), key).not.toThrow();
    else if (key.endsWith('.json') || key.endsWith('.manifest')) expect(() => JSON.parse(data.toString('utf8')) as unknown, key).not.toThrow();
  }
  return lines[0]!;
}

const DENIED: Record<Cloud, FaultAction> = {
  azure: { kind: 'status', status: 403, code: 'AuthorizationPermissionMismatch', message: 'This request is not authorized to perform this operation using this permission.' },
  gs: { kind: 'status', status: 403, code: 'forbidden', message: 'takeout@example.iam.gserviceaccount.com does not have storage.objects.create access.' },
};
const BROKEN: Record<Cloud, FaultAction> = {
  azure: { kind: 'status', status: 500, code: 'InternalError', message: 'The server encountered an internal error.' },
  gs: { kind: 'status', status: 500, code: 'backendError', message: 'Backend Error' },
};
const BUSY: Record<Cloud, FaultAction> = {
  azure: { kind: 'status', status: 503, code: 'ServerBusy', message: 'The server is currently unable to receive requests.' },
  gs: { kind: 'status', status: 503, code: 'backendError', message: 'Service Unavailable' },
};

interface Row {
  kind: WriteKind;
  ops: Record<Cloud, WriteOp[]>;
  big?: boolean;
  what: string;
}
const SMALL: Record<Cloud, WriteOp[]> = { azure: ['PutBlob', 'PutBlockList'], gs: ['Upload', 'ResumableStart', 'ResumableChunk'] };
const ROWS: Row[] = [
  { kind: 'slice', ops: SMALL, what: 'slice' },
  { kind: 'journal', ops: SMALL, what: 'journal' },
  { kind: 'layout', ops: SMALL, what: 'layout file' },
  { kind: 'manifest', ops: SMALL, what: 'takeout-manifest.json' },
  { kind: 'lock', ops: SMALL, what: 'lease' },
  { kind: 'slice', ops: { azure: ['PutBlock'], gs: ['ResumableStart'] }, big: true, what: 'big slice: first block / resumable session start' },
  { kind: 'slice', ops: { azure: ['PutBlockList'], gs: ['ResumableChunk'] }, big: true, what: 'big slice: block list / resumable chunk' },
];
const CASES = (['azure', 'gs'] as const).flatMap((cloud, c) =>
  ROWS.map((row, r) => ({ cloud, ...row, ...((r + c) % 2 === 0 ? { fault: '403', action: DENIED[cloud], exit: ERROR_CODES.AUTH } : { fault: '500 on every retry', action: BROKEN[cloud], exit: ERROR_CODES.FAILED }) })),
);

describe('a failing write to azure:// or gs:// ends the run with one line, its exit code and nothing that looks complete', () => {
  it.concurrent.each(CASES)('$cloud: the first $what write answers $fault', async ({ cloud, kind, ops, big, action, exit }) => {
    const prefix = uniquePrefix(`cloud-faults-${cloud}-${kind}`);
    const proxy = proxyOf(cloud);
    proxy.rules.push({ match: firstWrite(cloud, prefix, kind, ops[cloud]), action });
    const args = big ? ['run', '--source', bigSource, ...BIG_ARGS] : RUN_ARGS;
    const result = await runCli([...args, '--dest', destOf(cloud, prefix)], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    const faulted = proxy.requests.filter((r) => r.fault !== undefined && writeOf(cloud, r, prefix) !== undefined);
    expect(faulted.length, `the ${kind} fault was not reached\n${result.stderr}`).toBeGreaterThan(0);
    const key = writeOf(cloud, faulted[0]!, prefix)!.key;
    await expectCleanFailure(cloud, prefix, result, kind === 'slice' && !big ? [exit, ERROR_CODES.PARTIAL] : [exit], key);
  });
});

/** A read of `key` under `prefix`: Azure Get Blob, GCS media download. */
function readOf(cloud: Cloud, req: Pick<IncomingMessage, 'method' | 'url'>, prefix: string, key: string): boolean {
  const url = new URL(req.url ?? '/', 'http://proxy');
  if (req.method !== 'GET') return false;
  if (cloud === 'azure') return decodeURIComponent(url.pathname) === `/devstoreaccount1/${TEST_CONTAINER}/${prefix}${key}`;
  return url.searchParams.get('alt') === 'media' && decodeURIComponent(url.pathname).endsWith(`/b/${BUCKET}/o/${prefix}${key}`);
}

describe.each(['azure', 'gs'] as const)('%s: retried, stalled, reset and truncated', (cloud) => {
  const proxy = proxyOf(cloud);

  it.concurrent('a 503 on the first slice write is retried and the run completes; verify is clean', async () => {
    const prefix = uniquePrefix(`cloud-busy-${cloud}`);
    proxy.rules.push({ match: firstWrite(cloud, prefix, 'slice', SMALL[cloud]), times: 1, action: BUSY[cloud] });
    const result = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix), '-q'], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(result.code, result.stderr).toBe(0);
    expect(proxy.requests.filter((r) => r.fault !== undefined && writeOf(cloud, r, prefix) !== undefined)).toHaveLength(1);
    const verify = await runCli(['verify', destOf(cloud, prefix)], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(verify.code, verify.stderr).toBe(0);
  });

  it.concurrent('a stalled journal write ends with a NETWORK error once the request timeout and its retries are spent', async () => {
    const prefix = uniquePrefix(`cloud-stall-${cloud}`);
    proxy.rules.push({ match: firstWrite(cloud, prefix, 'journal', SMALL[cloud]), action: { kind: 'stall' } });
    const result = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix), '--request-timeout', '500'], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    await expectCleanFailure(cloud, prefix, result, [ERROR_CODES.NETWORK], 'takeout-journal.json');
    // A try that timed out is tried again, as on S3: a server silent once does not end the run.
    expect(proxy.requests.filter((r) => r.fault !== undefined && writeOf(cloud, r, prefix) !== undefined).length).toBeGreaterThan(1);
  });

  it.concurrent('a write that gets no answer once is tried again and the run completes', async () => {
    const prefix = uniquePrefix(`cloud-stall-once-${cloud}`);
    const rule = { match: firstWrite(cloud, prefix, 'layout', SMALL[cloud]), times: 1, action: { kind: 'stall' } as FaultAction };
    proxy.rules.push(rule);
    const result = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix), '--request-timeout', '1s', '-q'], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(rule.times, 'the stall was not reached').toBe(0);
    expect(result.code, result.stderr).toBe(0);
    const verify = await runCli(['verify', destOf(cloud, prefix)], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(verify.code, verify.stderr).toBe(0);
  });

  it.concurrent('a connection reset on every try of a layout write ends with a NETWORK error', async () => {
    const prefix = uniquePrefix(`cloud-reset-${cloud}`);
    proxy.rules.push({ match: firstWrite(cloud, prefix, 'layout', SMALL[cloud]), action: { kind: 'reset' } });
    const result = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix)], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    await expectCleanFailure(cloud, prefix, result, [ERROR_CODES.NETWORK], '.json');
  });

  it.concurrent('verify: a slice download cut short once is read again; cut short every time, one line naming the slice', async () => {
    const prefix = uniquePrefix(`cloud-truncate-${cloud}`);
    const run = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix), '-q'], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(run.code, run.stderr).toBe(0);
    const key = 'in/c-main/orders.part_0.csv.gz';
    const once = { match: (req: IncomingMessage) => readOf(cloud, req, prefix, key), times: 1, action: { kind: 'truncate', afterBytes: 1000 } as FaultAction };
    proxy.rules.push(once);
    // A GCS body cut mid-way never ends (see src/stores/gcs/store.ts get): the idle bound is the request timeout.
    const verify = ['verify', destOf(cloud, prefix), '--request-timeout', '2s'];
    const recovered = await runCli(verify, { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(once.times, 'the truncation was not reached').toBe(0);
    expect(recovered.code, recovered.stderr).toBe(0);

    proxy.rules.push({ match: (req) => readOf(cloud, req, prefix, key), action: { kind: 'truncate', afterBytes: 1000 } });
    const broken = await runCli(verify, { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(broken.code, broken.stderr).not.toBe(0);
    const lines = errorLines(broken.stderr);
    expect(lines.length, broken.stderr).toBeGreaterThan(0);
    expect(lines.join('\n')).toContain(key);
    expect(lines.join('\n'), broken.stderr).toMatch(/(the connection was cut|no byte came for 2 s|the body ended) after \d+ of \d+ bytes, 3 times/);
    for (const secret of [ACCOUNT_KEY, GCS_TOKEN]) expect(broken.stdout + broken.stderr).not.toContain(secret);
  });

  it.concurrent('--resume after a failed run reads its journal through a download cut once, and completes', async () => {
    const prefix = uniquePrefix(`cloud-resume-read-${cloud}`);
    proxy.rules.push({ match: firstWrite(cloud, prefix, 'manifest', SMALL[cloud]), times: 1, action: DENIED[cloud] });
    const failed = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix)], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    await expectCleanFailure(cloud, prefix, failed, [ERROR_CODES.AUTH], 'takeout-manifest.json');
    expect([...(await committed(cloud, prefix)).keys()]).toContain('takeout-journal.json');

    const cut = { match: (req: IncomingMessage) => readOf(cloud, req, prefix, 'takeout-journal.json'), times: 1, action: { kind: 'truncate', afterBytes: 100 } as FaultAction };
    proxy.rules.push(cut);
    const resumed = await runCli([...RUN_ARGS, '--dest', destOf(cloud, prefix), '--resume', '--request-timeout', '2s', '-q'], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(cut.times, 'the journal read was not cut').toBe(0);
    expect(resumed.code, resumed.stderr).toBe(0);
    const verify = await runCli(['verify', destOf(cloud, prefix)], { env: cliEnv(cloud), timeoutMs: WATCHDOG_MS });
    expect(verify.code, verify.stderr).toBe(0);
  });
});
