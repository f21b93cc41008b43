#!/usr/bin/env node
// Keboola restore benchmark: `takeout restore TAKEOUT --to keboola+URL` of one generated table into an empty
// project on the Storage API test server (test/keboola/server.ts, aws provider, its file storage on s3rver),
// against the reference the issue names for "bounded by the upload": the same slice files uploaded to the same
// s3rver bucket with the AWS SDK's multipart Upload (@aws-sdk/lib-storage, its default part size and queue),
// one slice after another, in this process — the machine's upload limit for that store.
//
//   node bench/restore-keboola.mjs [--size MB=1024] [--runs N=3] [--no-wait]
//   (or BENCH_SIZE, BENCH_RUNS, BENCH_NO_WAIT=1)
// The input is the export benchmark's generated CSV (bench/generate.mjs), taken out once (untimed) with default
// settings (its `_timestamp` column renamed `timestamp_`, a name Storage takes). Every takeout run restores into a new empty project (a new server on the same s3rver, under a
// new key prefix); its import jobs check that every uploaded slice is there and count its bytes, keeping no
// rows (`importRows: false`: the server would otherwise parse the whole CSV in memory), and polls answer at
// once (jobPolls 0/0: the job is done at takeout's first poll, 200 ms). takeout also reads each slice's
// records on the way and checks its size and sha256 against the manifest; the reference checks nothing.
// Both are interleaved, their order alternating; medians. MB = 10^6 bytes of the gzip slices uploaded;
// wall-clock seconds (takeout's whole command with Node start-up and Storage API calls; the reference's uploads).
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import {
  alternatingRuns, cleanEnv, cleanupPaths, compileStorageApiServer, ensureInput, fmtMB, log, machineCpu, mb, measureQuietly, median, note, noteOutcome, OUT, parseBenchArgs, ROOT, run, s3rverClient, sizeRunsSpec, snapshotBuild, startS3rver, stopS3rver, tail, warnIfStaleBuild,
} from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  ...sizeRunsSpec(1024),
});

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const TABLE = 'in.c-bench.data';
const PROJECT_BUCKET = 'takeout-other';
const TOKEN = 'bench-restore-keboola-token';

/**
 * The generated CSV with its `_timestamp` column renamed `timestamp_`: Storage refuses column names that start
 * with an underscore (`_timestamp` is its own), and so does the test server. Made once per size and reused.
 */
async function keboolaInput(input) {
  const dir = path.join(OUT, `restore-kbc-input-${o.size}`);
  const file = path.join(dir, 'in.c-bench', 'data.csv');
  if (existsSync(file) && statSync(file).size === input.meta.bytes) return dir;
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.dirname(file), { recursive: true });
  cleanupPaths.add(dir);
  let first = true;
  await pipeline(
    createReadStream(input.file),
    async function* rename(chunks) {
      for await (const chunk of chunks) {
        if (first) {
          first = false;
          const text = chunk.toString('latin1');
          const nl = text.indexOf('\n');
          yield Buffer.from(text.slice(0, nl).replace(/(^|,)_timestamp(?=,|\r?$)/, '$1timestamp_'), 'latin1');
          yield chunk.subarray(nl);
        } else yield chunk;
      }
    },
    createWriteStream(file),
  );
  cleanupPaths.delete(dir);
  return dir;
}

async function main() {
  warnIfStaleBuild();
  const build = await snapshotBuild();
  const input = await ensureInput(o.size);
  const inputDir = await keboolaInput(input);
  const takeoutDir = path.join(OUT, `restore-kbc-src-${o.size}`);
  cleanupPaths.add(takeoutDir);
  await rm(takeoutDir, { recursive: true, force: true });
  const exported = await run(process.execPath, [build.bin, 'run', '--source', inputDir, '--dest', takeoutDir, '-q', '--no-progress'], { env: cleanEnv() });
  if (exported.code !== 0) throw new Error(`takeout run failed:\n${exported.stderr}`);
  const manifest = JSON.parse(await readFile(path.join(takeoutDir, 'takeout-manifest.json'), 'utf8'));
  const table = manifest.tables.find((t) => t.id === TABLE);
  const slices = table.slices.map((s) => ({ file: path.join(takeoutDir, s.key), bytes: s.bytes, name: path.basename(s.key) }));
  const gzBytes = table.bytes;
  log(`takeout: ${fmtMB(input.meta.bytes)} CSV, ${table.rows.toLocaleString('en-US')} rows in ${slices.length} slices (${fmtMB(gzBytes)} gzip)`);

  const serverJs = await compileStorageApiServer();
  const fixtureDir = path.join(OUT, `kbc-fixture-${process.pid}`);
  cleanupPaths.add(fixtureDir);
  await cp(path.join(ROOT, 'fixtures', 'keboola-project'), fixtureDir, { recursive: true });
  const s3rver = await startS3rver();
  const { client: s3 } = await s3rverClient(s3rver.endpoint);
  const { Upload } = await import('@aws-sdk/lib-storage');
  const { startStorageApi } = await import(pathToFileURL(serverJs).href);
  log(`Storage API test server (test/keboola/server.ts, compiled to ${path.relative(ROOT, serverJs)}); s3rver ${s3rver.endpoint}`);

  const results = { takeout: [], reference: [] };
  let n = 0;
  try {
    for (const tool of alternatingRuns(o.runs, ['takeout', 'reference'])) {
      const { outcome } = await measureQuietly(tool, async () => {
        const tag = `bench-restore-${process.pid}-${n++}`;
        if (tool === 'reference') {
          const cpu0 = machineCpu();
          const own0 = process.cpuUsage();
          const t0 = performance.now();
          for (const slice of slices) {
            await new Upload({ client: s3, params: { Bucket: PROJECT_BUCKET, Key: `${tag}/${slice.name}`, Body: createReadStream(slice.file), ContentType: 'application/gzip', ServerSideEncryption: 'AES256' } }).done();
          }
          const seconds = (performance.now() - t0) / 1000;
          const own = process.cpuUsage(own0);
          const cpu = (own.user + own.system) / 1e6;
          const busy = machineCpu().busy - cpu0.busy;
          return { ok: true, seconds, usage: { cpu, otherCpu: Math.max(0, busy - cpu) } };
        }
        const api = await startStorageApi({ s3Endpoint: s3rver.endpoint, bucket: PROJECT_BUCKET, token: TOKEN, fixtureDir, emptyProject: true, importRows: false, jobPolls: { waiting: 0, processing: 0 }, keyPrefix: `${tag}/` });
        try {
          const env = cleanEnv({ KBC_STORAGE_TOKEN: TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3rver.endpoint });
          const result = await run(process.execPath, [build.bin, 'restore', takeoutDir, '--to', `keboola+${api.url}`, '--include', TABLE, '-q', '--no-progress'], { env, measure: true });
          if (result.code !== 0) return { ok: false, error: tail(result.stderr, 3) };
          const files = [...api.state.files.values()].filter((f) => f.sliced && f.objectKeys.length > 0);
          const uploaded = files.reduce((sum, f) => sum + f.sizeBytes, 0);
          const keys = files.reduce((sum, f) => sum + f.objectKeys.length, 0);
          if (uploaded !== gzBytes || keys !== slices.length) return { ok: false, error: `${keys} objects of ${uploaded} bytes imported, ${slices.length} of ${gzBytes} expected` };
          if (!api.state.tableData.has(TABLE)) return { ok: false, error: `${TABLE} was not created` };
          return { ok: true, seconds: result.seconds, usage: result, files: files.length };
        } finally {
          await api.stop();
        }
      }, { noWait: o.noWait });
      noteOutcome(results, tool, outcome, mb(gzBytes));
    }
  } finally {
    s3.destroy();
    await stopS3rver();
    await rm(takeoutDir, { recursive: true, force: true });
    await rm(fixtureDir, { recursive: true, force: true });
    await rm(build.dir, { recursive: true, force: true });
  }
  log();
  log(`results: ${fmtMB(gzBytes)} of gzip slices (${fmtMB(input.meta.bytes)} CSV) into a Keboola project on s3rver, median of ${o.runs} run${o.runs === 1 ? '' : 's'}`);
  const t = median(results.takeout);
  const ref = median(results.reference);
  log(`  takeout restore --to keboola+   ${t.toFixed(2)} s  ${(mb(gzBytes) / t).toFixed(1)} MB/s`);
  log(`  AWS SDK Upload of the slices    ${ref.toFixed(2)} s  ${(mb(gzBytes) / ref).toFixed(1)} MB/s`);
  log(`  takeout vs the upload alone: ${(ref / t).toFixed(2)}× the throughput`);
  note('"other" is the CPU the rest of the machine (s3rver and, for takeout, the Storage API test server in this process) used meanwhile');
}

main().catch((error) => {
  process.stderr.write(`bench/restore-keboola.mjs: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
