#!/usr/bin/env node
// Kill-and-resume benchmark: a takeout of a generated table is killed with SIGKILL at a random moment,
// then run again with --resume. Checks that the result is byte-identical to an uninterrupted run (every
// slice's key, size, rows and sha256, and every JSON file's sha256), that `takeout verify` finds nothing
// wrong, and reports how much the resumed run wrote again: the target is less than 2 slices' worth.
// The reference it is set against is a plain rerun (what `aws s3 cp` or a restart does): all of it again.
//
//   node bench/resume.mjs [--size MB=2048] [--slice-size MB=64] [--dest s3|local] [--kill-at F] [--keep]
//   (or BENCH_SIZE, BENCH_SLICE_SIZE, BENCH_DEST, BENCH_KILL_AT, BENCH_KEEP=1)
// --kill-at F places the kill at F × the slices of the uninterrupted run: after floor(F × slices) slices
// have landed, and (F × slices mod 1) of one slice's time later, i.e. mid-slice (default: random in
// 0.15–0.85, printed so that a run can be repeated). Work folder: bench/out/ (git-ignored); the input is the
// export benchmark's generated CSV (bench/generate.mjs).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BUCKET, OUT, ROOT, S3_KEY, cleanEnv, cleanupPaths, ensureInput, fmtMB, log, note, parseBenchArgs, run, snapshotBuild, startS3rver, stopS3rver, track } from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  spec: {
    '--size': { key: 'size', type: 'number', env: 'BENCH_SIZE', default: 2048 },
    '--slice-size': { key: 'sliceSize', type: 'number', env: 'BENCH_SLICE_SIZE', default: 64 },
    '--dest': { key: 'dest', type: 'string', env: 'BENCH_DEST', default: 's3' },
    '--kill-at': { key: 'killAt', type: 'number', env: 'BENCH_KILL_AT', default: undefined },
    '--keep': { key: 'keep', type: 'flag', env: 'BENCH_KEEP' },
  },
  check: (v) =>
    !(v.size > 0) ? '--size must be a positive number of MiB'
    : !['s3', 'local'].includes(v.dest) ? '--dest is s3 or local'
    : v.killAt !== undefined && !(v.killAt > 0 && v.killAt < 1) ? '--kill-at is a fraction between 0 and 1'
    : undefined,
});

const killAt = o.killAt ?? 0.15 + Math.random() * 0.7;
const sliceBytes = o.sliceSize * 1e6;
let BIN = path.join(ROOT, 'bin', 'takeout.js');
let server;

function destFor(name) {
  return o.dest === 's3' ? `s3://${BUCKET}/resume-bench-${name}-${process.pid}/` : path.join(OUT, `resume-${name}`);
}

function s3Args() {
  return o.dest === 's3' ? ['--endpoint-url', server.endpoint, '--access-key-id', S3_KEY, '--secret-access-key', S3_KEY, '--region', 'us-east-1'] : [];
}

function takeoutArgs(project, dest, extra = []) {
  return ['run', '--source', project, '--dest', dest, '--slice-size', `${o.sliceSize}MB`, '--json', '--no-progress', ...s3Args(), ...extra];
}

/** Runs takeout to the end; its JSON events and wall time. */
async function takeout(args) {
  const t0 = performance.now();
  const result = await run(process.execPath, [BIN, ...args]);
  const seconds = (performance.now() - t0) / 1000;
  const events = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return { ...result, seconds, events };
}

/** Starts takeout and SIGKILLs it `delayMs` after its `slices`-th slice landed; the slices it reported landed. */
async function killedAfter(args, slices, delayMs) {
  const child = track(spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let timer;
  const t0 = performance.now();
  let killedAt;
  const arm = () => {
    timer ??= setTimeout(() => {
      killedAt = (performance.now() - t0) / 1000;
      child.kill('SIGKILL');
    }, delayMs);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (t) => {
    stdout += t;
    if (stdout.split('"type":"table:slice"').length > slices) arm();
  });
  if (slices === 0) arm();
  child.stderr.resume();
  const { code, signal } = await new Promise((resolve) => child.once('exit', (c, sig) => resolve({ code: c, signal: sig })));
  clearTimeout(timer);
  const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l); } catch { return {}; } });
  return { code, signal, events, killedAt };
}

async function readManifest(dest) {
  if (o.dest === 'local') return JSON.parse(await readFile(path.join(dest, 'takeout-manifest.json'), 'utf8'));
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY } });
  const key = `${dest.slice(`s3://${BUCKET}/`.length)}takeout-manifest.json`;
  const body = await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body.transformToString();
  client.destroy();
  return JSON.parse(body);
}

/**
 * What must be byte-identical: every slice and every JSON file the manifest lists, except the slice
 * manifests (manifests/*.manifest), whose s3:// URLs name the destination, which differs here.
 */
function content(manifest) {
  const slices = manifest.tables.flatMap((t) => t.slices.map((s) => `${s.key} ${s.bytes} ${s.rows} ${s.sha256}`));
  const files = manifest.files.filter((f) => o.dest === 'local' || !f.key.startsWith('manifests/')).map((f) => `${f.key} ${f.bytes} ${f.sha256}`);
  return createHash('sha256').update([...slices, ...files].join('\n')).digest('hex');
}

async function main() {
  ({ bin: BIN } = await snapshotBuild());
  const input = await ensureInput(o.size);
  if (o.dest === 's3') server = await startS3rver();
  log(`resume bench: ${fmtMB(input.meta.bytes)} table, ${o.sliceSize} MB slices → ${o.dest === 's3' ? `s3rver (${server.endpoint})` : 'a local folder'}`);

  const ref = destFor('ref');
  const full = await takeout(takeoutArgs(input.dir, ref));
  if (full.code !== 0) throw new Error(`uninterrupted run failed: ${full.stderr}`);
  const reference = await readManifest(ref);
  const slices = reference.totals.slices;
  log(`uninterrupted: ${full.seconds.toFixed(1)} s, ${slices} slices, ${fmtMB(reference.totals.bytes)} stored`);

  const dest = destFor('killed');
  if (o.dest === 'local') {
    await rm(dest, { recursive: true, force: true });
    cleanupPaths.add(dest);
  }
  const position = killAt * slices;
  const sliceMs = (full.seconds * 1000) / slices;
  const killed = await killedAfter(takeoutArgs(input.dir, dest), Math.floor(position), Math.round((position % 1) * sliceMs));
  const landed = killed.events.filter((e) => e.type === 'table:slice');
  log(`killed (SIGKILL) after ${killed.killedAt?.toFixed(1)} s (--kill-at ${killAt.toFixed(3)}): ${landed.length} slice(s) had landed, ${fmtMB(landed.reduce((n, e) => n + e.slice.bytes, 0))}`);
  if (killed.signal !== 'SIGKILL') note(`the run ended on its own (code ${killed.code}) before the kill: pick a smaller --kill-at`);

  const resumed = await takeout(takeoutArgs(input.dir, dest, ['--resume']));
  if (resumed.code !== 0) throw new Error(`resumed run failed (exit ${resumed.code}): ${resumed.stderr}`);
  const summary = resumed.events.find((e) => e.type === 'run:done')?.summary;
  const rewritten = resumed.events.filter((e) => e.type === 'table:slice');
  const rewrittenBytes = rewritten.reduce((n, e) => n + e.slice.bytes, 0);
  const result = await readManifest(dest);
  const identical = content(result) === content(reference);
  const verify = await run(process.execPath, [BIN, 'verify', dest, ...s3Args()]);

  const lostBefore = Math.max(0, reference.totals.bytes - rewrittenBytes - (summary?.reused?.bytes ?? 0));
  log(`resumed: ${resumed.seconds.toFixed(1)} s; kept ${summary?.reused?.slices ?? 0} slice(s) (${fmtMB(summary?.reused?.bytes ?? 0)}), wrote ${rewritten.length} slice(s) (${fmtMB(rewrittenBytes)})`);
  const landedBytes = landed.reduce((n, e) => n + e.slice.bytes, 0);
  const again = rewrittenBytes - (reference.totals.bytes - landedBytes);
  log('');
  log(`byte-identical to the uninterrupted run: ${identical ? 'yes' : 'NO'}`);
  log(`takeout verify: ${verify.code === 0 ? 'clean' : `exit ${verify.code}\n${verify.stderr}`}`);
  // Work lost = slices that had landed but were written again (landed after the journal's last write)
  // + the slice in flight at the kill (its multipart upload was never completed), at most one per table.
  const lost = Math.max(0, again) + sliceBytes;
  log(`written again: ${fmtMB(Math.max(0, again))} of slices that had landed + at most one slice in flight (≤ ${fmtMB(sliceBytes)}) = ≤ ${(lost / sliceBytes).toFixed(2)} slices' worth (target < 2) ${lost / sliceBytes < 2 ? 'ok' : 'MISSED'}`);
  log(`a plain rerun (aws s3 cp, or a restart) writes all ${fmtMB(reference.totals.bytes)} again; resume wrote ${fmtMB(rewrittenBytes)} = ${(reference.totals.bytes / Math.max(1, rewrittenBytes)).toFixed(2)}× less`);
  if (lostBefore > 0) note(`unaccounted bytes: ${lostBefore}`);
  if (!identical || verify.code !== 0 || (Math.max(0, again) + sliceBytes) / sliceBytes >= 2) process.exitCode = 1;
}

try {
  await main();
} finally {
  await stopS3rver();
  if (!o.keep && o.dest === 'local') for (const p of ['ref', 'killed']) await rm(destFor(p), { recursive: true, force: true });
}
