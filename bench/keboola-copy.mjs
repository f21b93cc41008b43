#!/usr/bin/env node
// Keboola copy benchmark: `takeout run --source keboola+URL` of one big table, whose export's gzip
// slices are copied as they are from the project's S3 (bucket takeout-other, read with the file's
// temporary credentials) to the destination (bucket takeout-test, written with the --access-key-id
// flags), against the reference way: for each slice in the file's manifest, `aws s3 cp` of the slice
// to a local temp file, then `aws s3 cp` of that file to the destination, one slice after another.
//
//   node bench/keboola-copy.mjs [--gz-size MB=1100] [--slice-size MB=100] [--runs N=3] [--no-wait]
//   (or BENCH_GZ_SIZE, BENCH_SLICE_SIZE, BENCH_RUNS, BENCH_NO_WAIT=1)
//
// Setup (untimed): the Storage API test server (test/keboola/server.ts) is compiled with the project's
// tsc into bench/out/kbc-server/ and started in this process over a copy of fixtures/keboola-project
// with one more table, in.c-main.big. Its data are generated here, not by the server (the server
// parses a table's whole CSV in memory, which does not scale to gigabytes): all-quoted, headerless
// CSV slices of --slice-size raw bytes, gzipped (level 1) until the gzip slices total ≥ --gz-size MB
// (rows of random base64 text, so gzip only shrinks them ~1.3×: the bytes moved are the gzip bytes,
// and takeout's on-the-side inflate, which counts the rows, sees ~1.3× that). They are kept in
// bench/out/keboola-slices-<gz>-<slice>/ and reused by later invocations (delete the folder to regenerate). One warm-up `takeout run` makes the server export the table (a
// tiny stand-in CSV) and cache the file; the big slices and their manifest are then written over
// that file's objects on s3rver, so every timed run is an export-async cache hit on the big file
// (jobPolls: no waiting/processing polls, so the job is done at takeout's first poll, 200 ms).
//
// Each run measures both tools once, interleaved, the order alternating; medians are reported. Before
// each measurement the CPU must be ≥ 90% idle (up to 3 min) unless --no-wait; a disturbed measurement
// is repeated. After each measurement the destination objects are listed and checked (count and
// sizes; in run 1 also their sha256 against the generated slices) and deleted.
// One s3rver serves both buckets; s3rver only accepts the access key S3RVER, so the two credentials
// differ only in the session token the file credentials carry — but takeout reads and writes through
// two separate clients, so every byte passes through it (no server-side copy), as with two accounts.
//
// MB = 10^6 bytes; MB/s = gzip slice bytes moved / wall-clock seconds of the whole command (process
// start to exit: takeout's Node startup and Storage API calls count; so do the reference's 2 × slices
// `aws` process starts).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import {
  awsEnv, BUCKET, cleanEnv, cleanupPaths, compileStorageApiServer, disturbed, firstLine, fmtMB, log, lpad, mb, measureQuietly, median, note, OUT, pad, parseBenchArgs, parseSummary, probeAws, ROOT, run, S3_KEY, s3rverClient, snapshotBuild, startS3rver, stopS3rver, tail, warnIfStaleBuild,
} from './lib.mjs';

const gzip = promisify(gzipCb);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const PROJECT_BUCKET = 'takeout-other';
const TABLE_ID = 'in.c-main.big';
const TOKEN = 'bench-keboola-token';
const TARGET_RATIO = 1.5;
const COLUMNS = ['id', 'payload', 'category', 'amount'];

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  return parseBenchArgs(argv, {
    script: import.meta.url,
    spec: {
      '--gz-size': { key: 'gzSize', type: 'number', env: 'BENCH_GZ_SIZE', default: 1100 },
      '--slice-size': { key: 'sliceSize', type: 'number', env: 'BENCH_SLICE_SIZE', default: 100 },
      '--runs': { key: 'runs', type: 'number', env: 'BENCH_RUNS', default: 3 },
      '--no-wait': { key: 'noWait', type: 'flag', env: 'BENCH_NO_WAIT' },
    },
    check: (o) =>
      !(o.gzSize > 0) ? '--gz-size must be a positive number of MB'
      : !(o.sliceSize > 0) ? '--slice-size must be a positive number of MB'
      : !(Number.isInteger(o.runs) && o.runs > 0) ? '--runs must be a positive integer'
      : undefined,
  });
}

// ---------------------------------------------------------------- state

let BIN = path.join(ROOT, 'bin', 'takeout.js');
/** { child, endpoint } of the s3rver holding both buckets. */
let s3rver;
/** The Storage API test server (in this process). */
let api;
/** @aws-sdk/client-s3 client for setup, checks and cleanup (untimed). */
let s3;
let S3;

// ---------------------------------------------------------------- the table's slices

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliett'];

/** One slice's raw CSV (all fields quoted, like a Snowflake unload; no header), rows from `firstId`. */
function sliceText(firstId, rawBytes) {
  const parts = [];
  let bytes = 0;
  let id = firstId;
  // Random base64 payloads: realistic-looking rows that gzip shrinks only a little.
  const pool = randomBytes(Math.ceil((rawBytes * 0.9) / 4) * 3).toString('base64');
  let at = 0;
  while (bytes < rawBytes) {
    const len = 60 + (id % 61);
    if (at + len > pool.length) at = 0;
    const line = `"${id}","${pool.slice(at, at + len)}","${WORDS[id % WORDS.length]}","${((id * 7919) % 100000) / 100}"\n`;
    at += len;
    parts.push(line);
    bytes += line.length;
    id++;
  }
  return { text: parts.join(''), rows: id - firstId };
}

/** The generated slices, cached in bench/out/keboola-slices-<gz>-<slice>/ with a meta.json. */
async function ensureSlices(o) {
  const dir = path.join(OUT, `keboola-slices-${o.gzSize}-${o.sliceSize}`);
  const metaFile = path.join(dir, 'meta.json');
  const generatorHash = createHash('sha256').update(sliceText.toString()).digest('hex').slice(0, 16);
  try {
    const meta = JSON.parse(await readFile(metaFile, 'utf8'));
    if (meta.generatorHash === generatorHash && meta.slices.every((s) => existsSync(path.join(dir, s.name)))) {
      log(`slices: reusing ${path.relative(ROOT, dir)} (${meta.slices.length} slices, ${fmtMB(meta.bytes)} gzip, ${fmtMB(meta.rawBytes)} raw, ${meta.rows.toLocaleString('en-US')} rows)`);
      return { dir, meta };
    }
  } catch {
    // generate
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  cleanupPaths.add(dir);
  process.stdout.write(`slices: generating ${path.relative(ROOT, dir)} (≥ ${o.gzSize} MB gzip in slices of ${o.sliceSize} MB raw) … `);
  const t0 = performance.now();
  const slices = [];
  let total = 0;
  let nextId = 1;
  // Two slices at a time: zlib's async gzip runs on the libuv thread pool.
  while (total < o.gzSize * 1e6) {
    const batch = [];
    for (let k = 0; k < 2; k++) {
      const { text, rows } = sliceText(nextId, o.sliceSize * 1e6);
      nextId += rows;
      batch.push({ index: slices.length + batch.length, rows, raw: Buffer.from(text, 'latin1') });
    }
    const zipped = await Promise.all(batch.map((b) => gzip(b.raw, { level: 1 })));
    for (const [k, b] of batch.entries()) {
      const body = zipped[k];
      const name = `slice_${b.index}.csv.gz`;
      await writeFile(path.join(dir, name), body);
      slices.push({ name, bytes: body.length, rawBytes: b.raw.length, rows: b.rows, sha256: createHash('sha256').update(body).digest('hex') });
      total += body.length;
      if (total >= o.gzSize * 1e6) break;
    }
  }
  const meta = {
    generatorHash,
    slices,
    bytes: total,
    rawBytes: slices.reduce((n, s) => n + s.rawBytes, 0),
    rows: slices.reduce((n, s) => n + s.rows, 0),
  };
  await writeFile(metaFile, `${JSON.stringify(meta, null, 2)}\n`);
  cleanupPaths.delete(dir);
  log(`${slices.length} slices, ${fmtMB(meta.bytes)} gzip (${fmtMB(meta.rawBytes)} raw) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { dir, meta };
}

// ---------------------------------------------------------------- Storage API server and fixture

/** A copy of fixtures/keboola-project with the table in.c-main.big added (its data CSV a one-row stand-in). */
async function makeFixture(meta) {
  const src = path.join(ROOT, 'fixtures', 'keboola-project');
  const dir = path.join(OUT, 'kbc-fixture');
  await rm(dir, { recursive: true, force: true });
  await cp(src, dir, { recursive: true });
  const tables = JSON.parse(await readFile(path.join(dir, 'tables.json'), 'utf8'));
  const model = tables.find((t) => t.id === 'in.c-main.orders') ?? tables.find((t) => !t.isAlias);
  const big = JSON.parse(JSON.stringify(model));
  Object.assign(big, {
    uri: String(model.uri).replace(model.id, TABLE_ID),
    id: TABLE_ID,
    name: 'big',
    displayName: 'big',
    path: `/${TABLE_ID}`,
    primaryKey: ['id'],
    columns: COLUMNS,
    rowsCount: meta.rows,
    dataSizeBytes: meta.bytes,
    metadata: [],
    columnMetadata: {},
  });
  delete big.definition;
  tables.push(big);
  await writeFile(path.join(dir, 'tables.json'), `${JSON.stringify(tables, null, 2)}\n`);
  await writeFile(path.join(dir, 'data', `${TABLE_ID}.csv`), `${COLUMNS.join(',')}\n1,stand-in,alpha,0.07\n`);
  return dir;
}

// ---------------------------------------------------------------- S3 helpers (untimed)

async function listPrefix(bucket, prefix) {
  const out = [];
  let token;
  do {
    const page = await s3.send(new S3.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const c of page.Contents ?? []) out.push({ key: c.Key, size: c.Size });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function deletePrefix(bucket, prefix) {
  const objects = await listPrefix(bucket, prefix);
  for (let i = 0; i < objects.length; i += 500) {
    await s3.send(new S3.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects.slice(i, i + 500).map((x) => ({ Key: x.key })) } }));
  }
}

async function sha256Of(bucket, key) {
  const r = await s3.send(new S3.GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash('sha256');
  for await (const chunk of r.Body) h.update(chunk);
  return h.digest('hex');
}

/** Why the copied slices under `prefix` differ from the generated ones, or undefined when they match. */
async function checkCopy(prefix, slices, { hashes }) {
  const all = await listPrefix(BUCKET, prefix);
  const parts = all.filter((x) => /\.part_\d+\.csv\.gz$/.test(x.key));
  const byIndex = new Map(parts.map((x) => [Number(/\.part_(\d+)\.csv\.gz$/.exec(x.key)[1]), x]));
  if (parts.length !== slices.length) return `${parts.length} slice objects under s3://${BUCKET}/${prefix}, expected ${slices.length}`;
  for (const [i, s] of slices.entries()) {
    const got = byIndex.get(i);
    if (!got) return `no …part_${i}.csv.gz under s3://${BUCKET}/${prefix}`;
    if (got.size !== s.bytes) return `${got.key}: ${got.size} bytes, the slice has ${s.bytes}`;
    if (hashes) {
      const digest = await sha256Of(BUCKET, got.key);
      if (digest !== s.sha256) return `${got.key}: sha256 ${digest}, the slice has ${s.sha256}`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- tools

const destFlags = () => ['--endpoint-url', s3rver.endpoint, '--access-key-id', S3_KEY, '--secret-access-key', S3_KEY, '--region', 'us-east-1'];

function takeoutArgs(prefix) {
  return [BIN, 'run', '--source', `keboola+${api.url}`, '--dest', `s3://${BUCKET}/${prefix}/`, '--include', TABLE_ID, ...destFlags(), '--no-progress', '--json'];
}

const takeoutEnv = () => cleanEnv({ KBC_STORAGE_TOKEN: TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3rver.endpoint });

/** Events of a --json run: the table:done event and the slice sha256s. */
function events(stdout) {
  const out = { slices: [] };
  for (const line of stdout.split('\n')) {
    try {
      const e = JSON.parse(line);
      if (e.type === 'table:done' && e.table === TABLE_ID) out.tableDone = e;
      if (e.type === 'table:slice' && e.table === TABLE_ID) out.slices.push(e.slice);
    } catch {
      // not JSON
    }
  }
  return out;
}

let takeoutInvocations = 0;

async function runTakeout(ctx, prefix) {
  takeoutInvocations++;
  const r = await run(process.execPath, takeoutArgs(prefix), { env: takeoutEnv(), measure: true, serverPid: s3rver.child.pid });
  const summary = parseSummary(r.stdout);
  if (r.code !== 0 || !summary) return { ok: false, error: `takeout exited ${r.code ?? r.signal}`, detail: tail(`${r.stdout.slice(-3000)}\n${r.stderr}`) };
  if (summary.status !== 'complete') return { ok: false, error: `takeout finished with status ${summary.status}: ${JSON.stringify(summary.failures)}` };
  if (summary.bytes !== ctx.meta.bytes || summary.slices !== ctx.meta.slices.length || summary.rows !== ctx.meta.rows) {
    return { ok: false, error: `takeout copied ${summary.slices} slices, ${summary.bytes} bytes, ${summary.rows} rows; expected ${ctx.meta.slices.length}, ${ctx.meta.bytes}, ${ctx.meta.rows}` };
  }
  const ev = events(r.stdout);
  const shaOk = ev.slices.length === ctx.meta.slices.length && ctx.meta.slices.every((s, i) => ev.slices[i]?.sha256 === s.sha256);
  if (!shaOk) return { ok: false, error: 'the sha256s takeout reported for the slices differ from the generated ones' };
  return {
    ok: true,
    seconds: r.seconds,
    usage: r,
    internalMs: summary.durationMs,
    tableMs: ev.tableDone?.durationMs,
    extra: `takeout: run ${(summary.durationMs / 1000).toFixed(2)} s, table ${((ev.tableDone?.durationMs ?? NaN) / 1000).toFixed(2)} s (export job + copy), sha256 of every slice as generated`,
  };
}

/** The reference: per slice, aws s3 cp to a temp file, then aws s3 cp of the file to the destination; sequential. */
async function runReference(ctx, prefix) {
  const tmp = path.join(ctx.work, 'aws-tmp.csv.gz');
  const script = [
    'set -e',
    'aws=$1; ep=$2; tmp=$3; dest=$4; shift 4',
    'n=0',
    'for key in "$@"; do',
    '  "$aws" s3 cp "s3://takeout-other/$key" "$tmp" --endpoint-url "$ep" --only-show-errors --no-progress',
    '  "$aws" s3 cp "$tmp" "$dest.part_$n.csv.gz" --endpoint-url "$ep" --only-show-errors --no-progress',
    '  rm -f "$tmp"',
    '  n=$((n + 1))',
    'done',
  ].join('\n');
  const dest = `s3://${BUCKET}/${prefix}/in/c-main/big`;
  const r = await run('sh', ['-c', script, 'sh', ctx.awsPath, s3rver.endpoint, tmp, dest, ...ctx.sliceKeys], { env: awsEnv(), measure: true, serverPid: s3rver.child.pid });
  await rm(tmp, { force: true });
  if (r.code !== 0) return { ok: false, error: `aws s3 cp loop exited ${r.code ?? r.signal}`, detail: tail(`${r.stdout}\n${r.stderr}`) };
  return { ok: true, seconds: r.seconds, usage: r, extra: `${ctx.sliceKeys.length} × (aws s3 cp → temp file, aws s3 cp → destination)` };
}

const TOOLS = [
  { name: 'takeout run (keboola)', kind: 'takeout', fn: runTakeout },
  { name: 'aws s3 cp ×2 per slice', kind: 'reference', fn: runReference },
];

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    process.stderr.write('bench/keboola-copy.mjs: dist/ is missing (dist/cli/main.js not found): run `npm run build` first.\n');
    process.exit(1);
  }
  const started = Date.now();
  await mkdir(OUT, { recursive: true });
  const build = await snapshotBuild();
  BIN = build.bin;
  const tag = `${Date.now().toString(36)}-${process.pid}`;
  const work = path.join(OUT, `keboola-copy-${tag}`);
  cleanupPaths.add(work);
  await mkdir(work, { recursive: true });

  log(`takeout Keboola copy benchmark — ${new Date().toISOString()}`);
  const cpu = cpus();
  log(`machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
  const git = firstLine('git', ['-C', ROOT, 'log', '-1', '--format=%h %s']);
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout?.trim();
  log(`takeout: ${git ?? '?'}${dirty ? ' (src/ has uncommitted changes)' : ''}`);
  warnIfStaleBuild();
  log(`settings: --gz-size ${o.gzSize} MB, --slice-size ${o.sliceSize} MB raw, --runs ${o.runs}${o.noWait ? ', --no-wait' : ''}`);
  const awsInfo = await probeAws();
  if (!awsInfo.ok) throw new Error(`aws: ${awsInfo.message}: the reference needs the AWS CLI`);
  log(`tools: takeout ${firstLine(process.execPath, [BIN, '--version']) ?? '?'}; aws: ${awsInfo.message} (run by that path, not through a pyenv shim)`);
  log();

  // Setup: slices, s3rver, the Storage API server, a warm-up export, the big slices over its file.
  const { meta } = await ensureSlices(o);
  const serverJs = await compileStorageApiServer();
  const fixtureDir = await makeFixture(meta);
  cleanupPaths.add(fixtureDir);
  s3rver = await startS3rver();
  ({ S3, client: s3 } = await s3rverClient(s3rver.endpoint));
  const { startStorageApi } = await import(pathToFileURL(serverJs).href);
  api = await startStorageApi({
    s3Endpoint: s3rver.endpoint,
    bucket: PROJECT_BUCKET,
    token: TOKEN,
    fixtureDir,
    sliceBytes: o.sliceSize * 1e6,
    jobPolls: { waiting: 0, processing: 0 },
    cache: true,
  });
  log(`Storage API test server (test/keboola/server.ts, compiled to ${path.relative(ROOT, serverJs)}) at ${api.url}; s3rver ${s3rver.endpoint}`);

  const tw = performance.now();
  const warm = await run(process.execPath, takeoutArgs('bench-kbc-warmup'), { env: takeoutEnv() });
  const warmSummary = parseSummary(warm.stdout);
  if (warm.code !== 0 || warmSummary?.status !== 'complete') throw new Error(`warm-up takeout run exited ${warm.code ?? warm.signal}\n${tail(`${warm.stdout.slice(-3000)}\n${warm.stderr}`)}`);
  await deletePrefix(BUCKET, 'bench-kbc-warmup/');
  const file = [...api.state.files.values()].find((f) => f.tableId === TABLE_ID);
  if (!file || !file.sliced) throw new Error(`the warm-up run left no sliced export file of ${TABLE_ID} on the server`);
  log(`warm-up takeout run (untimed): ${((performance.now() - tw) / 1000).toFixed(1)} s; the server exported ${TABLE_ID} as file ${file.id} (${file.objectKeys.length} stand-in slice)`);

  const tu = performance.now();
  await deletePrefix(PROJECT_BUCKET, file.key);
  const sliceKeys = meta.slices.map((_, i) => `${file.key}_0_0_${i}.csv.gz`);
  for (const [i, s] of meta.slices.entries()) {
    await s3.send(new S3.PutObjectCommand({ Bucket: PROJECT_BUCKET, Key: sliceKeys[i], Body: await readFile(path.join(path.join(OUT, `keboola-slices-${o.gzSize}-${o.sliceSize}`), s.name)), ContentType: 'application/gzip' }));
  }
  const manifest = { entries: sliceKeys.map((k) => ({ url: `s3://${PROJECT_BUCKET}/${k}`, mandatory: true })) };
  await s3.send(new S3.PutObjectCommand({ Bucket: PROJECT_BUCKET, Key: `${file.key}manifest`, Body: JSON.stringify(manifest), ContentType: 'application/json' }));
  Object.assign(file, { objectKeys: sliceKeys, sizeBytes: meta.bytes, rows: meta.rows });
  const sizes = meta.slices.map((s) => s.bytes);
  log(`the big slices written over file ${file.id} in s3://${PROJECT_BUCKET}/${file.key}… (untimed, ${((performance.now() - tu) / 1000).toFixed(1)} s): ${meta.slices.length} slices, ${fmtMB(Math.min(...sizes))} – ${fmtMB(Math.max(...sizes))} each, ${fmtMB(meta.bytes)} gzip in all (${fmtMB(meta.rawBytes)} raw, ${(meta.rawBytes / meta.bytes).toFixed(2)}×), ${meta.rows.toLocaleString('en-US')} rows`);
  if (meta.bytes < 1e9) note(`the slices total ${fmtMB(meta.bytes)} gzip, below the 1 GB the figure asks for: raise --gz-size`);
  log();

  const ctx = { work, meta, sliceKeys, awsPath: awsInfo.path };
  const results = new Map(TOOLS.map((t) => [t.name, { times: [], failures: [], internalMs: [], tableMs: [], cpu: [], rss: [], serverCpu: [], noisy: 0, discarded: 0 }]));
  const checks = [];
  const requests0 = { ...api.state.requests };
  let measurement = 0;

  for (let r = 0; r < o.runs; r++) {
    const order = TOOLS.map((_, i) => TOOLS[(i + r) % TOOLS.length]);
    log(`run ${r + 1}/${o.runs}: ${order.map((t) => t.name).join(' → ')}`);
    for (const tool of order) {
      const res = results.get(tool.name);
      let prefix;
      const { outcome, discarded } = await measureQuietly(
        tool.name,
        async () => {
          if (prefix) await deletePrefix(BUCKET, `${prefix}/`);
          prefix = `bench-kbc-${tag}-${tool.kind}-${++measurement}`;
          return tool.fn(ctx, prefix);
        },
        { noWait: o.noWait },
      );
      res.discarded += discarded;
      if (outcome.ok) {
        const problem = await checkCopy(`${prefix}/`, meta.slices, { hashes: r === 0 });
        checks.push({ tool: tool.name, ok: problem === undefined, message: problem ?? `${meta.slices.length} slice objects${r === 0 ? ', sha256 of each as generated' : ', sizes as generated'}` });
        if (problem) {
          outcome.ok = false;
          outcome.error = `destination check: ${problem}`;
        }
      }
      await deletePrefix(BUCKET, `${prefix}/`);
      if (outcome.ok) {
        res.times.push(outcome.seconds);
        if (outcome.internalMs !== undefined) res.internalMs.push(outcome.internalMs);
        if (outcome.tableMs !== undefined) res.tableMs.push(outcome.tableMs);
        const u = outcome.usage ?? {};
        if (u.cpu !== undefined) res.cpu.push(u.cpu);
        if (u.maxRssKb !== undefined) res.rss.push(u.maxRssKb);
        if (u.serverCpu !== undefined) res.serverCpu.push(u.serverCpu);
        const noisy = disturbed(u, outcome.seconds);
        if (noisy) res.noisy++;
        const usage = u.cpu !== undefined ? `  [cpu ${u.cpu.toFixed(1)} s, s3rver ${(u.serverCpu ?? NaN).toFixed(1)} s, other ${(u.otherCpu ?? 0).toFixed(1)} s${u.maxRssKb ? `, RSS ${Math.round((u.maxRssKb * 1024) / 1e6)} MB` : ''}${noisy ? ' NOISY' : ''}]` : '';
        log(`  ${pad(tool.name, 24)} ${lpad(outcome.seconds.toFixed(2), 7)} s  ${lpad((mb(meta.bytes) / outcome.seconds).toFixed(1), 6)} MB/s${usage}`);
        if (outcome.extra) note(outcome.extra);
        note(`check: ${checks.at(-1).message}`);
      } else {
        res.failures.push(outcome.error);
        log(`  ${pad(tool.name, 24)} FAILED: ${outcome.error}`);
        if (outcome.detail) log(outcome.detail);
      }
    }
  }

  const requests = Object.fromEntries(Object.entries(api.state.requests).map(([k, v]) => [k, v - (requests0[k] ?? 0)]).filter(([, v]) => v > 0));
  await api.stop();
  s3.destroy();
  await stopS3rver();

  // Table.
  log();
  log(`results: ${meta.slices.length} slices, ${fmtMB(meta.bytes)} gzip moved project S3 → destination (through the tool), median of ${o.runs} run${o.runs === 1 ? '' : 's'}, MB = 10^6 bytes`);
  const header = `  ${pad('tool', 26)}${lpad('median s', 9)}${lpad('MB/s', 8)}${lpad('CPU s', 7)}${lpad('s3rver', 8)}${lpad('RSS MB', 8)}   all runs (s)`;
  log(header);
  log(`  ${'-'.repeat(header.length - 2)}`);
  const med = {};
  for (const t of TOOLS) {
    const res = results.get(t.name);
    const m = median(res.times);
    med[t.kind] = res.times.length ? m : undefined;
    const all =
      res.times.map((s) => s.toFixed(2)).join(', ') +
      (res.failures.length ? ` (${res.failures.length} failed)` : '') +
      (res.noisy ? ` (${res.noisy} disturbed by other processes)` : '') +
      (res.discarded ? ` (${res.discarded} disturbed run${res.discarded === 1 ? '' : 's'} discarded and repeated)` : '');
    log(`  ${pad(t.name, 26)}${lpad(res.times.length ? m.toFixed(2) : '—', 9)}${lpad(res.times.length ? (mb(meta.bytes) / m).toFixed(1) : '—', 8)}${lpad(res.cpu.length ? median(res.cpu).toFixed(1) : '?', 7)}${lpad(res.serverCpu.length ? median(res.serverCpu).toFixed(1) : '?', 8)}${lpad(res.rss.length ? String(Math.round((Math.max(...res.rss) * 1024) / 1e6)) : '?', 8)}   ${all}`);
  }
  log();
  const tk = results.get(TOOLS[0].name);
  if (tk.internalMs.length) note(`takeout run as takeout itself reports it (without process start/exit): ${(median(tk.internalMs) / 1000).toFixed(2)} s, of which the table (export-async, job poll, file, manifest, copy) ${(median(tk.tableMs) / 1000).toFixed(2)} s → ${(mb(meta.bytes) / (median(tk.tableMs) / 1000)).toFixed(1)} MB/s`);
  note(`Storage API requests of the ${takeoutInvocations} timed takeout invocations (repeats of disturbed ones included): ${Object.entries(requests).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  note('CPU s = user + system seconds of the tool (median; for the reference all its aws processes), s3rver = s3rver CPU seconds meanwhile (it shares the cores), RSS MB = peak resident set of the largest process (largest run), from /usr/bin/time');
  note(`the slices are random base64 text gzipped at level 1 (${(meta.rawBytes / meta.bytes).toFixed(2)}× ratio); takeout inflates each slice on the side to count its rows, so with real CSV (3–5×) its inflate work per byte moved would be larger`);

  const ratio = med.takeout !== undefined && med.reference !== undefined ? med.reference / med.takeout : undefined;
  const peak = tk.rss.length ? (Math.max(...tk.rss) * 1024) / 1e6 : undefined;
  const mismatch = checks.filter((c) => !c.ok);
  log();
  log(`acceptance (${fmtMB(meta.bytes)} gzip in ${meta.slices.length} slices, ${o.runs} run${o.runs === 1 ? '' : 's'}, finished in ${((Date.now() - started) / 60000).toFixed(1)} min):`);
  log(`takeout / (aws s3 cp to temp + aws s3 cp to destination, per slice) = ${ratio === undefined ? 'n/a' : ratio.toFixed(2)}× (target ≥ ${TARGET_RATIO})${ratio === undefined ? '' : ratio >= TARGET_RATIO ? '  ok' : '  MISSED'}`);
  log(`bytes moved ≥ 1 GB: ${fmtMB(meta.bytes)} ${meta.bytes >= 1e9 ? ' ok' : ' MISSED'}`);
  log(`takeout peak RSS = ${peak === undefined ? 'n/a' : Math.round(peak)} MB`);
  log(`destination checks: ${checks.length - mismatch.length}/${checks.length} ok${mismatch.length ? ` (${mismatch.map((c) => `${c.tool}: ${c.message}`).join('; ')})` : ''}`);

  const failed = TOOLS.some((t) => results.get(t.name).failures.length > 0) || mismatch.length > 0;
  await rm(work, { recursive: true, force: true });
  cleanupPaths.delete(work);
  await rm(fixtureDir, { recursive: true, force: true });
  cleanupPaths.delete(fixtureDir);
  await rm(path.join(OUT, 'tmp'), { recursive: true, force: true });
  cleanupPaths.delete(path.join(OUT, 'tmp'));
  await rm(build.dir, { recursive: true, force: true });
  cleanupPaths.delete(build.dir);
  process.exitCode = failed ? 1 : 0;
}

main().catch(async (error) => {
  process.stderr.write(`bench/keboola-copy.mjs: ${error instanceof Error ? error.stack : String(error)}\n`);
  await api?.stop().catch(() => undefined);
  await stopS3rver().catch(() => undefined);
  for (const p of cleanupPaths) spawnSync('rm', ['-rf', p]);
  process.exit(1);
});
