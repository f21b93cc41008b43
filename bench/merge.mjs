#!/usr/bin/env node
// Merge benchmark: `takeout files download` of a sliced table from s3rver to one plain CSV against
// `aws s3 cp --recursive` + `pigz -dc`, and `takeout files merge` of the same slices on local disk
// against `cat` (gzip) and `pigz -dc` (plain CSV), plus peak RSS and a --concurrency sweep.
//
//   node bench/merge.mjs [--size MB=1024] [--runs N=3] [--slice-size SIZE=32MB] [--skip-sweep] [--keep] [--no-wait]
//   (or BENCH_SIZE, BENCH_RUNS, BENCH_SLICE_SIZE, BENCH_SKIP_SWEEP=1, BENCH_KEEP=1, BENCH_NO_WAIT=1)
// Once per invocation the input CSV (bench/generate.mjs, cached as bench/out/export-src-<size>/ and
// shared with bench/export.mjs) is cut by `takeout run --slice-size` into gzip slices twice: into a
// local folder and onto a fresh s3rver (s3://takeout-test/bench-merge/). Each run then measures every
// tool once, interleaved, the order rotating from run to run; medians are reported. Before each
// measurement the page cache's dirty pages are written out (`sync`, untimed) and the CPU must be
// ≥ 90% idle (up to 3 min) unless --no-wait; a disturbed measurement is repeated. In the first run
// each output is compared (cmp, untimed) with the source CSV without its header row (plain outputs)
// or with the slices concatenated (gzip outputs), so all are byte-identical. Each output is deleted
// right after it is measured and checked, so every tool writes into page-cache memory the previous one
// freed: on this VM, writing into guest memory not touched before costs takeout ~50% more CPU
// (4.9 → 7.3 CPU-s for a 1 GB download), which would otherwise favour whichever tool ran on warm
// memory. --keep keeps the local slices.
//
// Work folder: bench/out/merge-<tag>/ (git-ignored). MB = 10^6 bytes; MB/s = output bytes / wall-clock
// seconds of the whole command (process start to exit, so takeout's Node startup counts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BUCKET, OUT, ROOT, S3_KEY, awsEnv, checkSummary, cleanupPaths, disturbed, ensureInput, firstLine, fmtMB, log, lpad, mb, measureQuietly,
  median, note, pad, parseSummary, probeAws, run, snapshotBuild, startS3rver, stopS3rver, tail, warnIfStaleBuild, which,
 parseBenchArgs } from './lib.mjs';

const PREFIX = 'bench-merge';
const TABLE_KEY = 'in/c-bench';
const MANIFEST_KEY = 'manifests/in.c-bench.data.manifest';
const S3_MANIFEST = `s3://${BUCKET}/${PREFIX}/${MANIFEST_KEY}`;
const MIN_SLICES = 8;
const SWEEP = [1, 2, 4, 8];
const TARGET_DOWNLOAD = 1.2;
const TARGET_GZIP = 0.8;
const TARGET_RSS_MB = 150;

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  return parseBenchArgs(argv, {
    script: import.meta.url,
    spec: {
      '--size': { key: 'size', type: 'number', env: 'BENCH_SIZE', default: 1024 },
      '--runs': { key: 'runs', type: 'number', env: 'BENCH_RUNS', default: 3 },
      '--slice-size': { key: 'sliceSize', type: 'string', env: 'BENCH_SLICE_SIZE', default: '32MB' },
      '--skip-sweep': { key: 'skipSweep', type: 'flag', env: 'BENCH_SKIP_SWEEP' },
      '--keep': { key: 'keep', type: 'flag', env: 'BENCH_KEEP' },
      '--no-wait': { key: 'noWait', type: 'flag', env: 'BENCH_NO_WAIT' },
    },
    check: (o) =>
      !(o.size > 0) ? '--size must be a positive number of MB'
      : !(Number.isInteger(o.runs) && o.runs > 0) ? '--runs must be a positive integer'
      : !/^\d+(\.\d+)?\s*[kKmMgG]?i?[bB]?$/.test(o.sliceSize) ? '--slice-size must be a size such as 32MB'
      : undefined,
  });
}

// ---------------------------------------------------------------- state

let BIN = path.join(ROOT, 'bin', 'takeout.js');
/** { child, endpoint } of the one s3rver all runs download from. */
let s3rver;

const s3Flags = () => ['--endpoint-url', s3rver.endpoint, '--access-key-id', S3_KEY, '--secret-access-key', S3_KEY, '--region', 'us-east-1'];

/** The tools of one run. `bytes`: which output size MB/s is computed from (plain CSV or gzip). */
const TOOLS = [
  { name: 'takeout download', kind: 'download', group: 's3', bytes: 'plain' },
  { name: 'aws s3 cp + pigz -dc', kind: 'aws-pigz', group: 's3', bytes: 'plain' },
  { name: 'takeout merge --gzip', kind: 'merge-gzip', group: 'gzip', bytes: 'gzip' },
  { name: 'takeout merge --gzip -m', kind: 'merge-gzip-m', group: 'gzip', bytes: 'gzip' },
  { name: 'cat', kind: 'cat', group: 'gzip', bytes: 'gzip' },
  { name: 'cat + sync', kind: 'cat-sync', group: 'gzip', bytes: 'gzip' },
  { name: 'takeout merge', kind: 'merge-plain', group: 'plain', bytes: 'plain' },
  { name: 'pigz -dc', kind: 'pigz', group: 'plain', bytes: 'plain' },
];

// ---------------------------------------------------------------- preparation

/** `takeout run` of the input to `dest` (local folder or s3:// URL); resolves to its summary. */
async function sliceInput(input, dest, o, extra = []) {
  const t0 = performance.now();
  const r = await run(process.execPath, [BIN, 'run', '--source', input.dir, '--dest', dest, '--slice-size', o.sliceSize, '--no-progress', '--json', ...extra]);
  const summary = parseSummary(r.stdout);
  if (r.code !== 0 || !summary) throw new Error(`takeout run --dest ${dest} exited ${r.code ?? r.signal}\n${tail(r.stderr)}`);
  const check = checkSummary(summary, input);
  if (check) throw new Error(`takeout run --dest ${dest}: ${check}`);
  log(`  takeout run → ${dest}: ${summary.slices} slices, ${fmtMB(summary.rawBytes)} → ${fmtMB(summary.bytes)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return summary;
}

/** The slices the local manifest lists, in its order; checks they are part_0, part_1, … and their sizes. */
async function readSlices(dir) {
  const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_KEY), 'utf8'));
  const slices = [];
  for (const [i, entry] of manifest.entries.entries()) {
    const key = entry.url.replace(/^s3:\/\/[^/]+\/(?:[^/]+\/)*?(?=in\/)/, '');
    const m = /\.part_(\d+)\.csv\.gz$/.exec(key);
    if (!m || Number(m[1]) !== i) throw new Error(`manifest entry ${i} is ${entry.url}, expected …part_${i}.csv.gz (numeric part order)`);
    const file = path.join(dir, key);
    const size = (await stat(file)).size;
    if (size !== entry.meta?.content_length) throw new Error(`${key} has ${size} bytes, the manifest says ${entry.meta?.content_length}`);
    slices.push({ key, name: path.basename(key), file, bytes: size, rows: entry.meta?.record_count });
  }
  return slices;
}

// ---------------------------------------------------------------- tools

/** Runs one tool once; resolves to { ok, seconds, usage, out, parts?, internalMs?, error?, detail? }. */
async function runTool(tool, ctx, { concurrency } = {}) {
  const { work, slices, expected } = ctx;
  const files = slices.map((s) => s.file);
  const out = path.join(work, `out-${tool.kind}${concurrency ? `-c${concurrency}` : ''}.${tool.bytes === 'gzip' ? 'csv.gz' : 'csv'}`);
  await rm(out, { force: true });
  // Write out the previous tools' dirty pages now, untimed, so each tool starts from a clean page cache.
  await run('sync', []);
  try {
    let outcome;
    const takeout = async (args) => {
      const serverPid = tool.group === 's3' ? s3rver.child.pid : undefined;
      const r = await run(process.execPath, [BIN, 'files', ...args, '-o', out, '--no-header', '--no-progress', '--json'], { measure: true, serverPid });
      const summary = parseSummary(r.stdout, 'merge:done');
      if (r.code !== 0 || !summary) return { ok: false, error: `takeout exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
      return { ok: true, seconds: r.seconds, usage: r, internalMs: summary.durationMs, extra: `${summary.slices} slices` };
    };
    const plain = async (cmd, args, label) => {
      const r = await run(cmd, args, { stdoutTo: { file: out }, measure: true });
      if (r.code !== 0) return { ok: false, error: `${label} exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
      return { ok: true, seconds: r.seconds, usage: r };
    };
    switch (tool.kind) {
      case 'download':
        outcome = await takeout(['download', S3_MANIFEST, ...s3Flags(), ...(concurrency ? ['--concurrency', String(concurrency)] : [])]);
        break;
      case 'merge-gzip':
        outcome = await takeout(['merge', ...files, '--gzip']);
        break;
      case 'merge-gzip-m':
        outcome = await takeout(['merge', '-m', path.join(ctx.slicesDir, MANIFEST_KEY), '--gzip']);
        break;
      case 'merge-plain':
        outcome = await takeout(['merge', ...files]);
        break;
      case 'cat':
        outcome = await plain('cat', ['--', ...files], 'cat');
        break;
      case 'cat-sync': {
        const r = await run('sh', ['-c', 'out=$1; shift; cat -- "$@" > "$out" && sync -- "$out"', 'sh', out, ...files], { measure: true });
        outcome = r.code !== 0 ? { ok: false, error: `cat + sync exited ${r.code ?? r.signal}`, detail: tail(r.stderr) } : { ok: true, seconds: r.seconds, usage: r };
        break;
      }
      case 'pigz':
        outcome = await plain('pigz', ['-dc', '--', ...files], 'pigz -dc');
        break;
      case 'aws-pigz':
        outcome = await awsPigz(ctx, out);
        break;
      default:
        throw new Error(`unknown tool kind ${tool.kind}`);
    }
    if (outcome.ok) {
      const size = (await stat(out)).size;
      const want = tool.bytes === 'gzip' ? expected.gzip : expected.plain;
      if (size !== want) return { ok: false, error: `wrote ${size} bytes, expected ${want}` };
      outcome.out = out;
      outcome.outBytes = size;
    }
    return outcome;
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The reference pipeline: `aws s3 cp --recursive` of the slices into a temp folder, then `pigz -dc` of
 * them in part order into one file. Timed end to end (both steps, back to back); a `sync` of the
 * output afterwards is timed separately and not counted (takeout fsyncs its output, the pipeline does not).
 */
async function awsPigz(ctx, out) {
  const tmp = path.join(ctx.work, 'aws-slices');
  await rm(tmp, { recursive: true, force: true });
  const env = awsEnv();
  const t0 = performance.now();
  const dl = await run('aws', ['s3', 'cp', '--recursive', `s3://${BUCKET}/${PREFIX}/${TABLE_KEY}/`, `${tmp}/`, '--endpoint-url', s3rver.endpoint, '--only-show-errors', '--no-progress'], { env, measure: true, serverPid: s3rver.child.pid });
  if (dl.code !== 0) return { ok: false, error: `aws s3 cp exited ${dl.code ?? dl.signal}`, detail: tail(`${dl.stdout}\n${dl.stderr}`) };
  const names = await readdir(tmp).catch(() => []);
  const missing = ctx.slices.filter((s) => !names.includes(s.name));
  if (missing.length || names.length !== ctx.slices.length) return { ok: false, error: `aws s3 cp fetched ${names.length} files, expected the ${ctx.slices.length} slices${missing.length ? ` (missing ${missing[0].name})` : ''}` };
  const dec = await run('pigz', ['-dc', '--', ...ctx.slices.map((s) => path.join(tmp, s.name))], { stdoutTo: { file: out }, measure: true });
  const seconds = (performance.now() - t0) / 1000;
  if (dec.code !== 0) return { ok: false, error: `pigz -dc exited ${dec.code ?? dec.signal}`, detail: tail(dec.stderr) };
  const sync = await run('sync', ['--', out]);
  await rm(tmp, { recursive: true, force: true });
  const sum = (k) => (dl[k] !== undefined && dec[k] !== undefined ? dl[k] + dec[k] : undefined);
  const usage = { cpu: sum('cpu'), otherCpu: sum('otherCpu'), serverCpu: dl.serverCpu, maxRssKb: Math.max(dl.maxRssKb ?? 0, dec.maxRssKb ?? 0) || undefined };
  return {
    ok: true,
    seconds,
    usage,
    parts: { 'of which aws s3 cp': dl.seconds, 'of which pigz -dc': dec.seconds, 'then sync OUT, uncounted': sync.seconds },
    extra: `aws s3 cp ${dl.seconds.toFixed(2)} s [cpu ${dl.cpu?.toFixed(1) ?? '?'} s] + pigz -dc ${dec.seconds.toFixed(2)} s [cpu ${dec.cpu?.toFixed(1) ?? '?'} s]; sync afterwards ${sync.seconds.toFixed(2)} s, not counted`,
  };
}

/** Bytes of the file's first line, its LF included (the generator's header row has no quoted newline). */
async function headerLength(file) {
  const fh = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(1 << 16), 0, 1 << 16, 0);
    const nl = buffer.subarray(0, bytesRead).indexOf(0x0a);
    if (nl === -1) throw new Error(`${file}: no header row in its first 64 KiB`);
    return nl + 1;
  } finally {
    await fh.close();
  }
}

/** cmp of `file` against `parts` concatenated (`cat parts | cmp - file`); undefined when identical, else cmp's message. */
function cmpConcat(parts, file) {
  const r = spawnSync('sh', ['-c', 'f=$1; shift; cat -- "$@" | cmp - "$f"', 'sh', file, ...parts], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim() || `cmp exited ${r.status}`;
}

/** cmp of two files (with `skip` bytes of the first skipped); undefined when identical, else cmp's message. */
function cmp(a, b, skip = 0) {
  const r = spawnSync('cmp', [...(skip ? ['-i', `${skip}:0`] : []), '--', a, b], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim() || `cmp exited ${r.status}`;
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    process.stderr.write('bench/merge.mjs: dist/ is missing (dist/cli/main.js not found): run `npm run build` first.\n');
    process.exit(1);
  }
  const started = Date.now();
  await mkdir(OUT, { recursive: true });
  const build = await snapshotBuild();
  BIN = build.bin;
  const tag = `${Date.now().toString(36)}-${process.pid}`;
  const work = path.join(OUT, `merge-${tag}`);
  cleanupPaths.add(work);
  await mkdir(work, { recursive: true });

  log(`takeout merge benchmark — ${new Date().toISOString()}`);
  const cpu = cpus();
  log(`machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
  const git = firstLine('git', ['-C', ROOT, 'log', '-1', '--format=%h %s']);
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout?.trim();
  log(`takeout: ${git ?? '?'}${dirty ? ' (src/ has uncommitted changes)' : ''}`);
  warnIfStaleBuild();
  log(`settings: --size ${o.size} MiB, --runs ${o.runs}, --slice-size ${o.sliceSize}${o.skipSweep ? ', --skip-sweep' : ''}${o.keep ? ', --keep' : ''}${o.noWait ? ', --no-wait' : ''}`);
  const pigzVersion = which('pigz') ? firstLine('pigz', ['--version']) : undefined;
  if (!pigzVersion) throw new Error('pigz not found on PATH (apt-get install -y pigz): it is the reference decompressor');
  const awsInfo = await probeAws();
  log(`tools: takeout ${firstLine(process.execPath, [BIN, '--version']) ?? '?'}; ${pigzVersion}; ${firstLine('cat', ['--version']) ?? 'cat ?'}; aws: ${awsInfo.message}`);
  log();

  // Preparation: the input, its slices on local disk and on a fresh s3rver.
  const input = await ensureInput(o.size);
  const headerBytes = await headerLength(input.file);
  const slicesDir = path.join(work, 'slices');
  log(`slicing (once, untimed): takeout run --slice-size ${o.sliceSize}`);
  const localSummary = await sliceInput(input, slicesDir, o);
  s3rver = await startS3rver();
  const s3Summary = await sliceInput(input, `s3://${BUCKET}/${PREFIX}/`, o, s3Flags());
  const slices = await readSlices(slicesDir);
  const expected = { plain: localSummary.rawBytes, gzip: slices.reduce((a, s) => a + s.bytes, 0) };
  if (slices.length !== localSummary.slices || s3Summary.slices !== localSummary.slices || s3Summary.bytes !== localSummary.bytes) {
    throw new Error(`the local takeout has ${slices.length} slices (${localSummary.bytes} bytes), the S3 one ${s3Summary.slices} (${s3Summary.bytes} bytes)`);
  }
  if (expected.plain !== input.meta.bytes - headerBytes) throw new Error(`the slices hold ${expected.plain} raw bytes, the input without its header ${input.meta.bytes - headerBytes}`);
  const sizes = slices.map((s) => s.bytes);
  log(`  ${slices.length} slices (${slices[0].name} … ${slices.at(-1).name}), ${fmtMB(Math.min(...sizes))} – ${fmtMB(Math.max(...sizes))} each; plain CSV ${fmtMB(expected.plain)}, gzip ${fmtMB(expected.gzip)} (${(expected.plain / expected.gzip).toFixed(2)}×)`);
  if (slices.length < MIN_SLICES) throw new Error(`only ${slices.length} slices, the benchmark needs ≥ ${MIN_SLICES}: raise --size or lower --slice-size`);
  log(`  S3 manifest: ${S3_MANIFEST} on s3rver ${s3rver.endpoint}`);
  log();

  const ctx = { work, slices, slicesDir, expected };
  const tools = TOOLS.filter((t) => t.kind !== 'aws-pigz' || awsInfo.ok);
  if (!awsInfo.ok) note(`aws: ${awsInfo.message}: the download reference pipeline is left out`);
  const results = new Map(tools.map((t) => [t.name, { times: [], failures: [], internalMs: [], cpu: [], rss: [], serverCpu: [], parts: {}, noisy: 0, discarded: 0, outBytes: undefined }]));
  const checks = [];

  for (let r = 0; r < o.runs; r++) {
    const order = tools.map((_, i) => tools[(i + r) % tools.length]);
    log(`run ${r + 1}/${o.runs}: ${order.filter((t) => !results.get(t.name).disabled).map((t) => t.name).join(' → ')}`);
    for (const tool of order) {
      const res = results.get(tool.name);
      if (res.disabled) continue;
      const { outcome, discarded } = await measureQuietly(tool.name, () => runTool(tool, ctx), { noWait: o.noWait });
      res.discarded += discarded;
      if (outcome.ok && r === 0) {
        // Byte-for-byte check, once per tool (untimed).
        const diff = tool.bytes === 'gzip' ? cmpConcat(slices.map((x) => x.file), outcome.out) : cmp(input.file, outcome.out, headerBytes);
        const against = tool.bytes === 'gzip' ? 'the slices concatenated' : 'the source CSV without its header row';
        checks.push({ tool: tool.name, ok: diff === undefined, message: diff === undefined ? `identical to ${against}` : `DIFFERS from ${against}: ${diff}  MISMATCH` });
      }
      if (outcome.out) await rm(outcome.out, { force: true });
      if (outcome.ok) {
        res.times.push(outcome.seconds);
        res.outBytes = outcome.outBytes;
        if (outcome.internalMs !== undefined) res.internalMs.push(outcome.internalMs);
        for (const [k, v] of Object.entries(outcome.parts ?? {})) (res.parts[k] ??= []).push(v);
        const u = outcome.usage ?? {};
        if (u.cpu !== undefined) res.cpu.push(u.cpu);
        if (u.maxRssKb !== undefined) res.rss.push(u.maxRssKb);
        if (u.serverCpu !== undefined) res.serverCpu.push(u.serverCpu);
        const noisy = disturbed(u, outcome.seconds);
        if (noisy) res.noisy++;
        const usage = u.cpu !== undefined ? `  [cpu ${u.cpu.toFixed(1)} s${u.serverCpu !== undefined ? `, s3rver ${u.serverCpu.toFixed(1)} s` : ''}, other ${(u.otherCpu ?? 0).toFixed(1)} s${u.maxRssKb ? `, RSS ${Math.round((u.maxRssKb * 1024) / 1e6)} MB` : ''}${noisy ? ' NOISY' : ''}]` : '';
        log(`  ${pad(tool.name, 24)} ${lpad(outcome.seconds.toFixed(2), 7)} s  ${lpad((mb(outcome.outBytes) / outcome.seconds).toFixed(1), 6)} MB/s${outcome.extra ? `  ${outcome.extra}` : ''}${usage}`);
        if (r === 0) note(`cmp: ${checks.at(-1).message}`);
      } else {
        res.failures.push(outcome.error);
        log(`  ${pad(tool.name, 24)} FAILED: ${outcome.error}`);
        if (outcome.detail) log(outcome.detail);
        if (tool.kind === 'aws-pigz') {
          res.disabled = true;
          note('aws s3 cp + pigz -dc is only a reference: leaving it out of the remaining runs');
        }
      }
    }
  }

  // --concurrency sweep of takeout files download (one run each).
  const sweep = [];
  if (!o.skipSweep) {
    log();
    log(`takeout files download --concurrency ${SWEEP.join(', ')} (one run each, default 4):`);
    const tool = TOOLS[0];
    for (const c of SWEEP) {
      const { outcome } = await measureQuietly(`--concurrency ${c}`, () => runTool(tool, ctx, { concurrency: c }), { noWait: o.noWait });
      if (outcome.out) await rm(outcome.out, { force: true });
      if (!outcome.ok) {
        log(`  -c ${c}  FAILED: ${outcome.error}`);
        if (outcome.detail) log(outcome.detail);
        sweep.push({ c, failed: true });
        continue;
      }
      const u = outcome.usage ?? {};
      const rssMB = u.maxRssKb !== undefined ? (u.maxRssKb * 1024) / 1e6 : undefined;
      sweep.push({ c, seconds: outcome.seconds, rssMB });
      log(`  -c ${c}  ${lpad(outcome.seconds.toFixed(2), 7)} s  ${lpad((mb(outcome.outBytes) / outcome.seconds).toFixed(1), 6)} MB/s  peak RSS ${rssMB === undefined ? '?' : Math.round(rssMB)} MB  [cpu ${u.cpu?.toFixed(1) ?? '?'} s, s3rver ${u.serverCpu?.toFixed(1) ?? '?'} s, other ${(u.otherCpu ?? 0).toFixed(1)} s${disturbed(u, outcome.seconds) ? ' NOISY' : ''}]`);
    }
  }
  await stopS3rver();

  // Table.
  log();
  log(`results: ${slices.length} slices, ${fmtMB(expected.plain)} plain CSV / ${fmtMB(expected.gzip)} gzip, median of ${o.runs} run${o.runs === 1 ? '' : 's'}, MB = 10^6 bytes`);
  const header = `  ${pad('tool', 26)}${lpad('median s', 9)}${lpad('MB/s', 8)}${lpad('CPU s', 7)}${lpad('RSS MB', 8)}   all runs (s)`;
  const med = {};
  const groups = [
    ['s3', 'S3 (s3rver) → one plain CSV; MB/s of plain CSV written'],
    ['gzip', 'local slices → one gzip file; MB/s of gzip written'],
    ['plain', 'local slices → one plain CSV; MB/s of plain CSV written'],
  ];
  for (const [group, title] of groups) {
    log(`  ${title}`);
    log(header);
    log(`  ${'-'.repeat(header.length - 2)}`);
    for (const t of tools.filter((x) => x.group === group)) {
      const res = results.get(t.name);
      const m = median(res.times);
      med[t.name] = res.times.length > 0 ? m : undefined;
      const bytes = t.bytes === 'gzip' ? expected.gzip : expected.plain;
      const all =
        res.times.map((s) => s.toFixed(2)).join(', ') +
        (res.failures.length ? ` (${res.failures.length} failed)` : '') +
        (res.noisy ? ` (${res.noisy} disturbed by other processes)` : '') +
        (res.discarded ? ` (${res.discarded} disturbed run${res.discarded === 1 ? '' : 's'} discarded and repeated)` : '');
      const cpuCol = res.cpu.length ? median(res.cpu).toFixed(1) : '?';
      const rssCol = res.rss.length ? String(Math.round((Math.max(...res.rss) * 1024) / 1e6)) : '?';
      log(`  ${pad(t.name, 26)}${lpad(res.times.length ? m.toFixed(2) : '—', 9)}${lpad(res.times.length ? (mb(bytes) / m).toFixed(1) : '—', 8)}${lpad(cpuCol, 7)}${lpad(rssCol, 8)}   ${all}`);
      for (const [part, xs] of Object.entries(res.parts)) log(`    ${pad(part, 24)}${lpad(median(xs).toFixed(2), 9)}${' '.repeat(30)}${xs.map((s) => s.toFixed(2)).join(', ')}`);
    }
    log();
  }
  for (const name of ['takeout download', 'takeout merge --gzip', 'takeout merge --gzip -m', 'takeout merge']) {
    const res = results.get(name);
    if (res?.internalMs.length) note(`${name}, as takeout itself reports it (without process start/exit): ${(median(res.internalMs) / 1000).toFixed(2)} s`);
  }
  const server = ['takeout download', 'aws s3 cp + pigz -dc'].filter((n) => results.get(n)?.serverCpu.length).map((n) => `${n} ${median(results.get(n).serverCpu).toFixed(1)} s`);
  if (server.length) note(`s3rver CPU while serving (median; it shares the ${cpu.length} cores): ${server.join(', ')}`);
  note('CPU s = user + system seconds of the tool (median; for the pipeline aws + pigz; s3rver not included), RSS MB = peak resident set of the largest process (largest run), from /usr/bin/time');
  note('takeout download and merge fsync their output before the rename; `cat` and `aws s3 cp + pigz -dc` do not (their dirty pages are written by the untimed `sync` before the next tool); `cat + sync` = `cat … > OUT && sync OUT`');
  note('takeout merge --gzip (slices given as arguments: no sizes to check, so each slice is also inflated on the side to prove it whole); takeout merge --gzip -m (the local manifest gives each slice\'s size: copied without inflating) — extra, for comparison');

  const speed = (a, b) => (med[a] !== undefined && med[b] !== undefined ? med[b] / med[a] : undefined);
  const x = (v) => (v === undefined ? 'n/a' : `${v.toFixed(2)}×`);
  log();
  log('ratios (speed, from median wall times; > 1 means takeout is faster):');
  log(`  takeout download / (aws s3 cp + pigz -dc)   = ${x(speed('takeout download', 'aws s3 cp + pigz -dc'))}`);
  log(`  takeout merge --gzip / cat                  = ${x(speed('takeout merge --gzip', 'cat'))}   (cat without fsync)`);
  log(`  takeout merge --gzip / cat + sync           = ${x(speed('takeout merge --gzip', 'cat + sync'))}   (both durable: fsync / sync OUT)`);
  log(`  takeout merge --gzip -m / cat               = ${x(speed('takeout merge --gzip -m', 'cat'))}`);
  log(`  takeout merge --gzip -m / cat + sync        = ${x(speed('takeout merge --gzip -m', 'cat + sync'))}`);
  log(`  takeout merge / pigz -dc                    = ${x(speed('takeout merge', 'pigz -dc'))}`);

  // Acceptance.
  const rssOf = (names) => {
    const all = names.flatMap((n) => results.get(n)?.rss ?? []);
    return all.length ? (Math.max(...all) * 1024) / 1e6 : undefined;
  };
  const rssNames = ['takeout download', 'takeout merge --gzip', 'takeout merge'];
  const peak = rssOf(rssNames);
  const fig = (v) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(2));
  const verdict = (ok) => (ok === undefined ? '' : ok ? '  ok' : '  MISSED');
  const vDl = speed('takeout download', 'aws s3 cp + pigz -dc');
  const vCat = speed('takeout merge --gzip', 'cat');
  const vSync = speed('takeout merge --gzip', 'cat + sync');
  log();
  log(`acceptance (${o.size} MiB input in ${slices.length} slices of --slice-size ${o.sliceSize}, ${o.runs} run${o.runs === 1 ? '' : 's'}, finished in ${((Date.now() - started) / 60000).toFixed(1)} min):`);
  log(`download+merge vs aws s3 cp + pigz -dc = ${fig(vDl)}× (target ≥ ${TARGET_DOWNLOAD})${verdict(vDl === undefined ? undefined : vDl >= TARGET_DOWNLOAD)}`);
  log(`merge --gzip vs cat = ${fig(vCat)}× (target ≥ ${TARGET_GZIP})${verdict(vCat === undefined ? undefined : vCat >= TARGET_GZIP)}`);
  log(`merge --gzip vs cat + sync = ${fig(vSync)}× (target ≥ ${TARGET_GZIP}, like for like: both durable)${verdict(vSync === undefined ? undefined : vSync >= TARGET_GZIP)}`);
  log(`peak RSS = ${peak === undefined ? 'n/a' : Math.round(peak)} MB (target ≤ ${TARGET_RSS_MB}; files download, merge --gzip and merge at the default --concurrency 4)${verdict(peak === undefined ? undefined : peak <= TARGET_RSS_MB)}`);
  const sweepOk = sweep.filter((s) => !s.failed && s.rssMB !== undefined);
  if (sweepOk.length) log(`  (--concurrency sweep: ${sweepOk.map((s) => `-c ${s.c} ${s.seconds.toFixed(2)} s / ${Math.round(s.rssMB)} MB`).join(', ')})`);
  const mismatch = checks.filter((c) => c.ok === false);
  const same = (names) => names.every((n) => checks.some((c) => c.tool === n && c.ok));
  log(`outputs byte-identical (cmp, run 1): takeout download = aws s3 cp + pigz -dc = source CSV without header: ${same(['takeout download', 'aws s3 cp + pigz -dc']) ? 'yes' : 'NO or not checked'}; takeout merge --gzip = cat: ${same(['takeout merge --gzip', 'cat']) ? 'yes' : 'NO or not checked'}; all ${checks.length} outputs checked: ${mismatch.length ? `NO (${mismatch.map((c) => c.tool).join(', ')} differ)` : 'identical'}`);

  const failed = tools.some((t) => t.kind !== 'aws-pigz' && results.get(t.name).failures.length > 0) || sweep.some((s) => s.failed) || mismatch.length > 0;
  if (o.keep) {
    cleanupPaths.delete(work);
    note(`kept ${path.relative(ROOT, slicesDir)} (--keep)`);
  } else {
    await rm(work, { recursive: true, force: true });
    cleanupPaths.delete(work);
  }
  await rm(path.join(OUT, 'tmp'), { recursive: true, force: true });
  cleanupPaths.delete(path.join(OUT, 'tmp'));
  await rm(build.dir, { recursive: true, force: true });
  cleanupPaths.delete(build.dir);
  process.exitCode = failed ? 1 : 0;
}

main().catch(async (error) => {
  process.stderr.write(`bench/merge.mjs: ${error instanceof Error ? error.stack : String(error)}\n`);
  await stopS3rver().catch(() => undefined);
  for (const p of cleanupPaths) spawnSync('rm', ['-rf', p]);
  process.exit(1);
});
