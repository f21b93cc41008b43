import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { errorLines, jsonLines, removeTempFolders, runCli, snapshot, tempFolder, walkFiles, type CliResult } from './helpers/cli.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { faultProxyForTests } from './faults/proxy.js';

/**
 * `takeout cleanup DEST`, end to end through the built CLI: stale temp files in a local folder, and
 * incomplete multipart uploads under an S3 prefix. s3rver has no ListMultipartUploads or
 * AbortMultipartUpload, so the fault proxy answers those two with canned responses and records them.
 */

const endpoint = inject('s3Endpoint');
const DAY_MS = 86_400_000;
const proxy = faultProxyForTests(endpoint);

function context(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr}`;
}

afterAll(removeTempFolders);

describe('takeout cleanup on a local folder', () => {
  const OLD = ['.customers.csv.aaaaaaaaaaaa.takeout-tmp', 'in/c-main/.orders.part_0.csv.gz.bbbbbbbbbbbb.takeout-tmp', 'in/c-main/deep/er/.x.cccccccccccc.takeout-tmp'];
  const FRESH = ['in/.tables.json.dddddddddddd.takeout-tmp', 'in/c-main/deep/.y.eeeeeeeeeeee.takeout-tmp'];
  /** Not temp files: a regular file, a hidden file, a name that only ends like one, one that only starts like one. */
  const KEEP = ['takeout-manifest.json', 'in/c-main/orders.part_0.csv.gz', 'in/.hidden', 'in/c-main/orders.takeout-tmp', 'in/c-main/deep/.x.takeout-tmp.csv'];

  async function plant(): Promise<string> {
    const root = path.join(await tempFolder('cleanup-local'), 'takeout');
    const past = new Date(Date.now() - 2 * DAY_MS);
    for (const key of [...OLD, ...FRESH, ...KEEP]) {
      const file = path.join(root, ...key.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, `content of ${key}\n`);
      // Every non-temp file is old too: age alone must never be a reason to remove a file.
      if (!FRESH.includes(key)) await utimes(file, past, past);
    }
    return root;
  }

  it('removes only the temp files older than 24 h, one line each, and touches nothing else', async () => {
    const root = await plant();
    const before = await snapshot(root);
    const result = await runCli(['cleanup', root]);
    expect(result.code, context(result)).toBe(0);
    const lines = result.stderr.split('\n').filter(Boolean);
    for (const key of OLD) expect(lines, context(result)).toContain(`removed temp file ${key}`);
    expect(lines.filter((l) => l.startsWith('removed temp file')), context(result)).toHaveLength(OLD.length);
    expect(lines.at(-1), context(result)).toMatch(/^cleaned up 0 incomplete multipart uploads, 3 temp files older than 24h in /);
    const after = await snapshot(root);
    expect(Object.keys(after).sort()).toEqual([...FRESH, ...KEEP].sort());
    for (const key of [...FRESH, ...KEEP]) expect(after[key], key).toBe(before[key]);
  });

  it('--dry-run lists the same files and removes none', async () => {
    const root = await plant();
    const before = await snapshot(root);
    const result = await runCli(['cleanup', root, '--dry-run']);
    expect(result.code, context(result)).toBe(0);
    const lines = result.stderr.split('\n').filter(Boolean);
    for (const key of OLD) expect(lines, context(result)).toContain(`would remove temp file ${key}`);
    expect(lines.filter((l) => l.startsWith('would remove')), context(result)).toHaveLength(OLD.length);
    expect(lines.at(-1), context(result)).toMatch(/^would clean up 0 incomplete multipart uploads, 3 temp files/);
    expect(await snapshot(root)).toEqual(before);
  });

  it('--older-than 0 removes every temp file, fresh ones too; --json gives one object per file and a summary', async () => {
    const root = await plant();
    const result = await runCli(['cleanup', root, '--older-than', '0', '--json']);
    expect(result.code, context(result)).toBe(0);
    const events = jsonLines(result.stdout);
    const items = events.filter((e) => e.type === 'cleanup:item');
    expect(items.map((e) => e.key).sort()).toEqual([...OLD, ...FRESH].sort());
    for (const item of items) expect(item).toMatchObject({ action: 'removed', kind: 'temp-file' });
    expect(events.at(-1)).toMatchObject({ type: 'cleanup:summary', dryRun: false, olderThanMs: 0, multipartUploads: 0, tempFiles: 5 });
    expect(await walkFiles(root)).toEqual([...KEEP].sort());
  });

  it('--older-than 7d keeps the 2-day-old files; 30m takes them', async () => {
    const root = await plant();
    const week = await runCli(['cleanup', root, '--older-than', '7d']);
    expect(week.code, context(week)).toBe(0);
    expect((await walkFiles(root)).length).toBe(OLD.length + FRESH.length + KEEP.length);
    const halfHour = await runCli(['cleanup', root, '--older-than', '30m', '-q']);
    expect(halfHour.code, context(halfHour)).toBe(0);
    expect(halfHour.stderr).toBe('');
    expect(await walkFiles(root)).toEqual([...FRESH, ...KEEP].sort());
  });

  it('a missing folder has nothing to clean; a bad --older-than is a usage error (exit 2)', async () => {
    const missing = path.join(await tempFolder('cleanup-missing'), 'nothing-here');
    const none = await runCli(['cleanup', missing]);
    expect(none.code, context(none)).toBe(0);
    expect(none.stderr).toMatch(/cleaned up 0 incomplete multipart uploads, 0 temp files/);
    for (const age of ['24', '1y', '-1h', 'h']) {
      const bad = await runCli(['cleanup', missing, '--older-than', age]);
      expect(bad.code, `${age}: ${context(bad)}`).toBe(2);
      expect(errorLines(bad.stderr)[0], context(bad)).toContain('--older-than');
    }
  });
});

describe('takeout cleanup on an S3 prefix', () => {
  const isListUploads = (method: string | undefined, url: string | undefined): boolean =>
    method === 'GET' && /[?&]uploads(?:[=&]|$)/.test(url ?? '');
  const isAbort = (method: string | undefined, url: string | undefined): boolean => method === 'DELETE' && /[?&]uploadId=/.test(url ?? '');

  function uploadsXml(prefix: string, uploads: { key: string; id: string; initiated: Date }[]): string {
    const entries = uploads
      .map(
        (u) =>
          `<Upload><Key>${u.key}</Key><UploadId>${u.id}</UploadId><Initiator><ID>x</ID><DisplayName>x</DisplayName></Initiator>` +
          `<Owner><ID>x</ID><DisplayName>x</DisplayName></Owner><StorageClass>STANDARD</StorageClass><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
      )
      .join('');
    return (
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Bucket>${TEST_BUCKET}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${prefix}</Prefix>` +
      `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${entries}</ListMultipartUploadsResult>`
    );
  }

  function planUploads(prefix: string): { old: string; fresh: string } {
    const old = { key: `${prefix}in/c-main/orders.part_0.csv.gz`, id: 'old-upload-id-1', initiated: new Date(Date.now() - 3 * DAY_MS) };
    const fresh = { key: `${prefix}in/c-main/orders.part_1.csv.gz`, id: 'fresh-upload-id-2', initiated: new Date(Date.now() - 60_000) };
    proxy.rules.push(
      {
        match: (req) => isListUploads(req.method, req.url),
        action: { kind: 'respond', status: 200, headers: { 'content-type': 'application/xml' }, body: uploadsXml(prefix, [old, fresh]) },
      },
      { match: (req) => isAbort(req.method, req.url), action: { kind: 'respond', status: 204 } },
    );
    return { old: old.id, fresh: fresh.id };
  }

  it('aborts exactly the upload older than 24 h, listing with the destination prefix', async () => {
    const prefix = uniquePrefix('cleanup');
    const ids = planUploads(prefix);
    const result = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, ...s3CliArgs(proxy.url)]);
    expect(result.code, context(result)).toBe(0);
    const lists = proxy.requests.filter((r) => isListUploads(r.method, r.url));
    expect(lists, context(result)).toHaveLength(1);
    expect(new URL(lists[0]!.url, 'http://x').searchParams.get('prefix')).toBe(prefix);
    const aborts = proxy.requests.filter((r) => isAbort(r.method, r.url));
    expect(aborts, context(result)).toHaveLength(1);
    const abortUrl = new URL(aborts[0]!.url, 'http://x');
    expect(abortUrl.searchParams.get('uploadId')).toBe(ids.old);
    expect(decodeURIComponent(abortUrl.pathname)).toBe(`/${TEST_BUCKET}/${prefix}in/c-main/orders.part_0.csv.gz`);
    const lines = result.stderr.split('\n').filter(Boolean);
    expect(lines[0], context(result)).toMatch(/^aborted multipart upload in\/c-main\/orders\.part_0\.csv\.gz \(started \d{4}-\d\d-\d\dT/);
    expect(lines.at(-1), context(result)).toMatch(/^cleaned up 1 incomplete multipart upload, 0 temp files older than 24h in s3:\/\//);
    expect(result.stderr).not.toContain(ids.fresh);
  });

  it('--dry-run sends no abort; --older-than 0 --json aborts both', async () => {
    const prefix = uniquePrefix('cleanup-dry');
    const ids = planUploads(prefix);
    const dry = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, '--dry-run', ...s3CliArgs(proxy.url)]);
    expect(dry.code, context(dry)).toBe(0);
    expect(proxy.requests.filter((r) => isAbort(r.method, r.url)), context(dry)).toHaveLength(0);
    // Reads only (listing, and looking for the lease of a run in progress): nothing written, nothing removed.
    expect(proxy.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'), context(dry)).toHaveLength(0);
    expect(dry.stderr).toMatch(/^would abort multipart upload in\/c-main\/orders\.part_0\.csv\.gz \(started /m);
    expect(dry.stderr).toMatch(/would clean up 1 incomplete multipart upload/);

    proxy.requests.length = 0;
    const all = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, '--older-than', '0', '--json', ...s3CliArgs(proxy.url)]);
    expect(all.code, context(all)).toBe(0);
    const aborted = proxy.requests.filter((r) => isAbort(r.method, r.url)).map((r) => new URL(r.url, 'http://x').searchParams.get('uploadId'));
    expect(aborted.sort()).toEqual([ids.fresh, ids.old].sort());
    const events = jsonLines(all.stdout);
    expect(events.filter((e) => e.type === 'cleanup:item').map((e) => e.uploadId)).toEqual([ids.old, ids.fresh]);
    expect(events.at(-1)).toMatchObject({ type: 'cleanup:summary', multipartUploads: 2, tempFiles: 0 });
  });

  it('a failed abort is an error with the key (exit 1); a missing bucket exits 5; a refused key exits 4', async () => {
    const prefix = uniquePrefix('cleanup-errors');
    proxy.rules.push({ match: (req) => isAbort(req.method, req.url), action: { kind: 'status', status: 500, code: 'InternalError' } });
    planUploads(prefix);
    const failed = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, ...s3CliArgs(proxy.url)], { timeoutMs: 60_000 });
    expect(failed.code, context(failed)).toBe(1);
    expect(errorLines(failed.stderr)[0], context(failed)).toContain(`AbortMultipartUpload s3://${TEST_BUCKET}/${prefix}in/c-main/orders.part_0.csv.gz`);

    proxy.rules.length = 0;
    proxy.rules.push({ match: (req) => isListUploads(req.method, req.url), action: { kind: 'status', status: 404, code: 'NoSuchBucket' } });
    const missing = await runCli(['cleanup', 's3://no-such-bucket-here/x/', ...s3CliArgs(proxy.url)]);
    expect(missing.code, context(missing)).toBe(5);
    expect(errorLines(missing.stderr)[0], context(missing)).toContain('bucket no-such-bucket-here does not exist');

    proxy.rules.length = 0;
    proxy.rules.push({ match: (req) => isListUploads(req.method, req.url), action: { kind: 'status', status: 403, code: 'AccessDenied' } });
    const denied = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, ...s3CliArgs(proxy.url)]);
    expect(denied.code, context(denied)).toBe(4);
    expect(errorLines(denied.stderr)[0], context(denied)).toContain('ListMultipartUploads');
  });
  /** The lease of a run in progress elsewhere (another host, a heartbeat just now). */
  async function liveLease(key: string): Promise<void> {
    const now = new Date().toISOString();
    const lease = { formatVersion: 1, kind: 'takeout-lease', runId: '20261204T070000-0badf00d', command: 'run', host: 'other-host.example', pid: 4242, user: 'ana', startedAt: now, heartbeatAt: now, heartbeatMs: 30_000, staleAfterMs: 120_000, tool: { name: 'takeout', version: '0.0.0' } };
    const client = rawS3Client(endpoint);
    try {
      await client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: JSON.stringify(lease) }));
    } finally {
      client.destroy();
    }
  }

  it('a run in progress at the prefix: exit 9 naming it, and no upload aborted', async () => {
    const prefix = uniquePrefix('cleanup-live');
    planUploads(prefix);
    await liveLease(`${prefix}takeout-lease.json`);
    const refused = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, '--older-than', '0', ...s3CliArgs(proxy.url)]);
    expect(refused.code, context(refused)).toBe(9);
    expect(errorLines(refused.stderr)[0], context(refused)).toContain('is in use: run 20261204T070000-0badf00d (takeout run) on host other-host.example, pid 4242');
    expect(proxy.requests.filter((r) => isAbort(r.method, r.url))).toHaveLength(0);
    const dry = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, '--older-than', '0', '--dry-run', ...s3CliArgs(proxy.url)]);
    expect(dry.stderr).toMatch(/is in use by run 20261204T070000-0badf00d .*: a cleanup now would be refused/);
  });

  it('over a parent prefix: the uploads under a prefix with a live lease are left alone, and the output says so', async () => {
    const prefix = uniquePrefix('cleanup-nested');
    const ids = planUploads(prefix);
    // planUploads puts both uploads under in/c-main/: a run writing to <prefix>in/ holds them.
    await liveLease(`${prefix}in/takeout-lease.json`);
    const result = await runCli(['cleanup', `s3://${TEST_BUCKET}/${prefix}`, '--older-than', '0', ...s3CliArgs(proxy.url)]);
    expect(result.code, context(result)).toBe(0);
    expect(proxy.requests.filter((r) => isAbort(r.method, r.url))).toHaveLength(0);
    expect(result.stderr).toMatch(/^left alone multipart upload in\/c-main\/orders\.part_0\.csv\.gz: in\/ is in use by run 20261204T070000-0badf00d/m);
    expect(result.stderr).toMatch(/cleaned up 0 incomplete multipart uploads, 0 temp files in s3:\/\/.*; left 2 items alone \(runs in progress\)/);
    expect(result.stderr).not.toContain(ids.old);
  });
});
