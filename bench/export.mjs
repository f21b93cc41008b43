#!/usr/bin/env node
// Export benchmark: `takeout run` against gzip -6, pigz -6 -p2 and (on s3rver) `aws s3 cp`, plus peak
// RSS for a 2 GB table and --help startup time. Plain Node ESM, no dependencies beyond the project's.
//
//   node bench/export.mjs [--size MB=500] [--runs N=3] [--rss-size MB=2048] [--skip-s3] [--skip-rss] [--keep] [--no-wait]
//   (or BENCH_SIZE, BENCH_RUNS, BENCH_RSS_SIZE, BENCH_SKIP_S3=1, BENCH_SKIP_RSS=1, BENCH_KEEP=1, BENCH_NO_WAIT=1)
// Before each measurement it waits (up to 3 min) until the CPU is ≥ 90% idle unless --no-wait; a
// measurement during which other processes used noticeable CPU is flagged NOISY. --keep keeps the
// RSS input and the last run's output folders.
//
// Work folder: bench/out/ (git-ignored). The input CSV is generated once per size by bench/generate.mjs
// as bench/out/export-src-<size>/in.c-bench/data.csv and reused while the generator is unchanged.
// MB = 10^6 bytes; throughput = input file bytes / wall-clock seconds of the whole command
// (process start to exit, so takeout's Node startup counts). Tools are interleaved within each run
// and their order rotates from run to run, so machine noise hits all alike; medians are reported.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  BENCH, BUCKET, OUT, ROOT, S3_KEY, awsEnv, checkSummary, cleanEnv, cleanupPaths, disturbed, ensureInput, firstLine, fmtMB, folderBytes, log, lpad, mb,
  measureQuietly, median, note, pad, parseSummary, probeAws, run, snapshotBuild, startS3rver, stopS3rver, tail, waitQuiet, warnIfStaleBuild, which,
 parseBenchArgs } from './lib.mjs';

// takeout is run from a copy of bin/, dist/ and package.json taken at start (see snapshotBuild), so a
// rebuild while the benchmark runs cannot mix two builds; node_modules still resolve from ROOT.
let BIN = path.join(ROOT, 'bin', 'takeout.js');
const TRACE_HOOK = path.join(BENCH, 'module-trace.mjs');
const STARTUP_RUNS = 10;
/** The s3rver of the current run ({ child, endpoint }). */
let s3rver;

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  return parseBenchArgs(argv, {
    script: import.meta.url,
    spec: {
      '--size': { key: 'size', type: 'number', env: 'BENCH_SIZE', default: 500 },
      '--runs': { key: 'runs', type: 'number', env: 'BENCH_RUNS', default: 3 },
      '--rss-size': { key: 'rssSize', type: 'number', env: 'BENCH_RSS_SIZE', default: 2048 },
      '--skip-s3': { key: 'skipS3', type: 'flag', env: 'BENCH_SKIP_S3' },
      '--skip-rss': { key: 'skipRss', type: 'flag', env: 'BENCH_SKIP_RSS' },
      '--keep': { key: 'keep', type: 'flag', env: 'BENCH_KEEP' },
      '--no-wait': { key: 'noWait', type: 'flag', env: 'BENCH_NO_WAIT' },
    },
    check: (o) =>
      !(o.size > 0) ? '--size must be a positive number of MB'
      : !(Number.isInteger(o.runs) && o.runs > 0) ? '--runs must be a positive integer'
      : !(o.rssSize > 0) ? '--rss-size must be a positive number of MB'
      : undefined,
  });
}

/** Output size of a stdout-only compressor, measured once per input and tool version (untimed) and cached. */
async function compressedSize(input, key, cmd, args) {
  if (input.meta.outputs[key] !== undefined) return input.meta.outputs[key];
  const r = await run(cmd, args, { stdoutTo: 'count' });
  if (r.code !== 0) return undefined;
  input.meta.outputs[key] = r.outBytes;
  await writeFile(input.metaFile, `${JSON.stringify(input.meta, null, 2)}\n`);
  return r.outBytes;
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    process.stderr.write('bench/export.mjs: dist/ is missing (dist/cli/main.js not found): run `npm run build` first.\n');
    process.exit(1);
  }
  const started = Date.now();
  await mkdir(OUT, { recursive: true });
  const build = await snapshotBuild();
  const snapshot = build.dir;
  BIN = build.bin;

  log(`takeout export benchmark — ${new Date().toISOString()}`);
  const cpu = cpus();
  log(`machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
  const git = firstLine('git', ['-C', ROOT, 'log', '-1', '--format=%h %s']);
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout?.trim();
  log(`takeout: ${git ?? '?'}${dirty ? ' (src/ has uncommitted changes)' : ''}`);
  warnIfStaleBuild();
  log(`settings: --size ${o.size} MiB, --runs ${o.runs}${o.skipS3 ? ', --skip-s3' : ''}${o.skipRss ? ', --skip-rss' : `, --rss-size ${o.rssSize} MiB`}${o.keep ? ', --keep' : ''}`);
  log();

  const input = await ensureInput(o.size);
  const inputBytes = input.meta.bytes;

  // Tools.
  const gzipVersion = firstLine('gzip', ['--version']);
  const pigzPath = which('pigz');
  const pigzVersion = pigzPath ? firstLine('pigz', ['--version']) : undefined;
  const tools = [];
  tools.push({ name: 'gzip -6', cmd: 'gzip', args: ['-6', '-c', input.file], kind: 'stdout' });
  if (pigzPath) tools.push({ name: 'pigz -6 -p2', cmd: 'pigz', args: ['-6', '-p2', '-c', input.file], kind: 'stdout' });
  else note('pigz not found on PATH: skipping it (apt-get install -y pigz)');
  tools.push({ name: 'takeout local', kind: 'takeout-local' });

  let awsInfo;
  if (!o.skipS3) {
    tools.push({ name: 'takeout s3', kind: 'takeout-s3' });
    awsInfo = await probeAws();
    if (awsInfo.ok) tools.push({ name: 'aws s3 cp', kind: 'aws' });
  }

  log(`tools: ${gzipVersion ?? 'gzip ?'}; ${pigzVersion ?? 'no pigz'}; takeout ${firstLine(process.execPath, [BIN, '--version']) ?? '?'}${awsInfo ? `; aws: ${awsInfo.message}` : ''}`);
  log();

  // Output sizes of gzip and pigz (untimed, cached with the input).
  const sizes = {};
  sizes['gzip -6'] = await compressedSize(input, `gzip-6 ${gzipVersion}`, 'gzip', ['-6', '-c', input.file]);
  if (pigzPath) sizes['pigz -6 -p2'] = await compressedSize(input, `pigz-6 ${pigzVersion}`, 'pigz', ['-6', '-p2', '-c', input.file]);

  const results = new Map(tools.map((t) => [t.name, { times: [], failures: [], outBytes: undefined, internalMs: [], cpu: [], rss: [], serverCpu: [], noisy: 0, discarded: 0 }]));
  const runTag = `${Date.now().toString(36)}-${process.pid}`;

  for (let r = 0; r < o.runs; r++) {
    const order = tools.map((_, i) => tools[(i + r) % tools.length]);
    log(`run ${r + 1}/${o.runs}: ${order.filter((t) => !results.get(t.name).disabled).map((t) => t.name).join(' → ')}`);
    if (!o.skipS3) s3rver = await startS3rver();
    try {
      for (const tool of order) {
        const res = results.get(tool.name);
        if (res.disabled) continue;
        // A measurement other processes disturbed is repeated (up to twice) after waiting for quiet again.
        const { outcome, discarded } = await measureQuietly(
          tool.name,
          (attempt) => runTool(tool, { input, runTag: `${runTag}-r${r + 1}${attempt > 1 ? `-a${attempt}` : ''}`, keepOutput: o.keep && r === o.runs - 1 }),
          { noWait: o.noWait },
        );
        res.discarded += discarded;
        if (outcome.ok) {
          res.times.push(outcome.seconds);
          if (outcome.outBytes !== undefined) res.outBytes = outcome.outBytes;
          if (outcome.internalMs !== undefined) res.internalMs.push(outcome.internalMs);
          const u = outcome.usage ?? {};
          if (u.cpu !== undefined) res.cpu.push(u.cpu);
          if (u.maxRssKb !== undefined) res.rss.push(u.maxRssKb);
          if (u.serverCpu !== undefined) res.serverCpu.push(u.serverCpu);
          const noisy = disturbed(u, outcome.seconds);
          if (noisy) res.noisy++;
          const usage = u.cpu !== undefined ? `  [cpu ${u.cpu.toFixed(1)} s${u.serverCpu !== undefined ? `, s3rver ${u.serverCpu.toFixed(1)} s` : ''}, other ${(u.otherCpu ?? 0).toFixed(1)} s${noisy ? ' NOISY' : ''}]` : '';
          log(`  ${pad(tool.name, 14)} ${lpad(outcome.seconds.toFixed(2), 7)} s  ${lpad((mb(inputBytes) / outcome.seconds).toFixed(1), 6)} MB/s${outcome.extra ? `  ${outcome.extra}` : ''}${usage}`);
        } else {
          res.failures.push(outcome.error);
          log(`  ${pad(tool.name, 14)} FAILED: ${outcome.error}`);
          if (outcome.detail) log(outcome.detail);
          if (tool.kind === 'aws') {
            // Only a reference: note it and go on without it.
            res.disabled = true;
            note('aws s3 cp is only a reference: leaving it out of the remaining runs');
          }
        }
      }
    } finally {
      await stopS3rver();
    }
  }
  await rm(path.join(OUT, 'tmp'), { recursive: true, force: true });
  cleanupPaths.delete(path.join(OUT, 'tmp'));
  for (const name of ['gzip -6', 'pigz -6 -p2']) if (results.has(name)) results.get(name).outBytes = sizes[name];
  if (results.get('aws s3 cp')?.times.length) results.get('aws s3 cp').outBytes = inputBytes;

  // Table.
  log();
  log(`results: input ${fmtMB(inputBytes)} (${input.meta.rows.toLocaleString('en-US')} rows), median of ${o.runs} run${o.runs === 1 ? '' : 's'}, MB = 10^6 bytes`);
  const header = `  ${pad('tool', 15)}${lpad('median s', 9)}${lpad('MB/s', 8)}${lpad('output', 12)}${lpad('ratio', 7)}${lpad('CPU s', 7)}${lpad('RSS MB', 8)}   all runs (s)`;
  log(header);
  log(`  ${'-'.repeat(header.length - 2)}`);
  const med = {};
  for (const t of tools) {
    const res = results.get(t.name);
    const m = median(res.times);
    med[t.name] = res.times.length > 0 ? m : undefined;
    const outCol = res.outBytes !== undefined ? fmtMB(res.outBytes) : '?';
    const ratio = res.outBytes ? `${(inputBytes / res.outBytes).toFixed(2)}×` : '?';
    const all =
      res.times.map((s) => s.toFixed(2)).join(', ') +
      (res.failures.length ? ` (${res.failures.length} failed)` : '') +
      (res.noisy ? ` (${res.noisy} disturbed by other processes)` : '') +
      (res.discarded ? ` (${res.discarded} disturbed run${res.discarded === 1 ? '' : 's'} discarded and repeated)` : '');
    const cpuCol = res.cpu.length ? median(res.cpu).toFixed(1) : '?';
    const rssCol = res.rss.length ? String(Math.round((Math.max(...res.rss) * 1024) / 1e6)) : '?';
    log(`  ${pad(t.name, 15)}${lpad(res.times.length ? m.toFixed(2) : '—', 9)}${lpad(res.times.length ? (mb(inputBytes) / m).toFixed(1) : '—', 8)}${lpad(outCol, 12)}${lpad(ratio, 7)}${lpad(cpuCol, 7)}${lpad(rssCol, 8)}   ${all}`);
  }
  const local = results.get('takeout local');
  if (local.internalMs.length) {
    const ms = median(local.internalMs);
    note(`takeout local, as takeout itself reports it (without process start/exit): ${(ms / 1000).toFixed(2)} s, ${(mb(inputBytes) / (ms / 1000)).toFixed(1)} MB/s`);
  }
  const s3res = results.get('takeout s3');
  if (s3res?.internalMs.length) {
    const ms = median(s3res.internalMs);
    note(`takeout s3, as takeout itself reports it: ${(ms / 1000).toFixed(2)} s, ${(mb(inputBytes) / (ms / 1000)).toFixed(1)} MB/s`);
  }
  note('CPU s = user + system seconds of the tool itself (median; s3rver not included), RSS MB = its peak resident set (largest run), both from /usr/bin/time');
  const server = ['takeout s3', 'aws s3 cp'].filter((n) => results.get(n)?.serverCpu.length).map((n) => `${n} ${median(results.get(n).serverCpu).toFixed(1)} s`);
  if (server.length) note(`s3rver CPU while receiving (median): ${server.join(', ')}`);
  if (results.has('gzip -6')) note('gzip and pigz write to /dev/null; their output sizes come from one untimed run per input (cached in bench/out/export-src-<size>.json)');
  if (awsInfo && !results.get('aws s3 cp')?.times.length) note(`aws s3 cp: ${awsInfo.message}; ${awsInfo.ok ? 'it failed, see above' : 'not run'}`);
  else if (awsInfo) note(`aws s3 cp: ${awsInfo.message}; it uploads the raw file (no compression), so it moves ${(inputBytes / (s3res?.outBytes ?? inputBytes)).toFixed(1)}× the bytes takeout does`);

  const speedup = (a, b) => (med[a] !== undefined && med[b] !== undefined ? med[b] / med[a] : undefined);
  const x = (v) => (v === undefined ? 'n/a' : `${v.toFixed(2)}×`);
  log();
  log('ratios (speed, from median wall times; > 1 means takeout is faster):');
  log(`  takeout local / gzip -6      = ${x(speedup('takeout local', 'gzip -6'))}`);
  log(`  takeout local / pigz -6 -p2  = ${x(speedup('takeout local', 'pigz -6 -p2'))}`);
  if (!o.skipS3) {
    log(`  takeout s3 / takeout local   = ${x(speedup('takeout s3', 'takeout local'))}`);
    log(`  takeout s3 / aws s3 cp       = ${x(speedup('takeout s3', 'aws s3 cp'))}`);
  }

  // Peak RSS.
  let rss;
  if (!o.skipRss) {
    log();
    rss = await measureRss(o);
  }

  // Startup.
  log();
  const startup = await measureStartup(input, o);

  // Acceptance.
  const fig = (v, digits = 2) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
  const verdict = (ok) => (ok === undefined ? '' : ok ? '  ok' : '  MISSED');
  const vGzip = speedup('takeout local', 'gzip -6');
  const vPigz = speedup('takeout local', 'pigz -6 -p2');
  log();
  log(`acceptance (${o.size} MiB input, ${o.runs} run${o.runs === 1 ? '' : 's'}, finished in ${((Date.now() - started) / 60000).toFixed(1)} min):`);
  log(`takeout local / gzip -6 = ${fig(vGzip)}× (target ≥ 2.0)${verdict(vGzip === undefined ? undefined : vGzip >= 2.0)}`);
  log(`takeout local / pigz -6 -p2 = ${fig(vPigz)}× (target ≥ 1.0)${verdict(vPigz === undefined ? undefined : vPigz >= 1.0)}`);
  if (rss) log(`peak RSS for ${(o.rssSize / 1024).toFixed(o.rssSize % 1024 ? 1 : 0)} GB = ${rss.peakMB === undefined ? 'n/a' : Math.round(rss.peakMB)} MB (target ≤ 200)${verdict(rss.peakMB === undefined ? undefined : rss.peakMB <= 200)}`);
  else log('peak RSS: skipped (--skip-rss)');
  log(`--help startup = ${fig(startup.medianMs, 0)} ms (target ≤ 200)${verdict(startup.medianMs <= 200)}`);

  // The exit status reflects takeout and the reference compressors; a failing `aws` is only noted.
  const failed = tools.some((t) => t.kind !== 'aws' && results.get(t.name).failures.length > 0) || rss?.failed;
  await rm(snapshot, { recursive: true, force: true });
  cleanupPaths.delete(snapshot);
  process.exitCode = failed ? 1 : 0;
}

async function runTool(tool, { input, runTag, keepOutput }) {
  try {
    if (tool.kind === 'stdout') {
      const r = await run(tool.cmd, tool.args, { stdoutTo: 'null', measure: true });
      if (r.code !== 0) return { ok: false, error: `${tool.cmd} exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
      return { ok: true, seconds: r.seconds, usage: r };
    }
    if (tool.kind === 'takeout-local') {
      const dest = path.join(OUT, `export-dest-${runTag}`);
      await rm(dest, { recursive: true, force: true });
      cleanupPaths.add(dest);
      try {
        const r = await run(process.execPath, [BIN, 'run', '--source', input.dir, '--dest', dest, '--no-progress', '--json'], { measure: true });
        const summary = parseSummary(r.stdout);
        if (r.code !== 0 || !summary) return { ok: false, error: `takeout exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
        const check = checkSummary(summary, input);
        if (check) return { ok: false, error: check, detail: tail(r.stderr) };
        const onDisk = await folderBytes(dest);
        return {
          ok: true,
          seconds: r.seconds,
          usage: r,
          outBytes: summary.bytes,
          internalMs: summary.durationMs,
          extra: `${summary.slices} slice${summary.slices === 1 ? '' : 's'}, ${fmtMB(summary.bytes)} (${fmtMB(onDisk)} with metadata), takeout says ${(summary.durationMs / 1000).toFixed(2)} s`,
        };
      } finally {
        if (!keepOutput) {
          await rm(dest, { recursive: true, force: true });
          cleanupPaths.delete(dest);
        }
      }
    }
    if (tool.kind === 'takeout-s3') {
      const dest = `s3://${BUCKET}/${runTag}/`;
      const r = await run(process.execPath, [
        BIN, 'run', '--source', input.dir, '--dest', dest, '--no-progress', '--json',
        '--endpoint-url', s3rver.endpoint, '--access-key-id', S3_KEY, '--secret-access-key', S3_KEY, '--region', 'us-east-1',
      ], { measure: true, serverPid: s3rver.child.pid });
      const summary = parseSummary(r.stdout);
      if (r.code !== 0 || !summary) return { ok: false, error: `takeout exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
      const check = checkSummary(summary, input);
      if (check) return { ok: false, error: check, detail: tail(r.stderr) };
      return {
        ok: true,
        seconds: r.seconds,
        usage: r,
        outBytes: summary.bytes,
        internalMs: summary.durationMs,
        extra: `${summary.slices} slice${summary.slices === 1 ? '' : 's'}, ${fmtMB(summary.bytes)} to ${dest}, takeout says ${(summary.durationMs / 1000).toFixed(2)} s`,
      };
    }
    if (tool.kind === 'aws') {
      const key = `${runTag}-aws/data.csv`;
      const env = awsEnv();
      const r = await run('aws', ['s3', 'cp', input.file, `s3://${BUCKET}/${key}`, '--endpoint-url', s3rver.endpoint, '--only-show-errors', '--no-progress'], { env, stdoutTo: 'capture', measure: true, serverPid: s3rver.child.pid });
      if (r.code !== 0) return { ok: false, error: `aws s3 cp exited ${r.code ?? r.signal}`, detail: tail(`${r.stdout}\n${r.stderr}`) };
      // Untimed check that the object arrived whole (a chunk-encoded body would have another size).
      const head = await run('aws', ['s3api', 'head-object', '--bucket', BUCKET, '--key', key, '--endpoint-url', s3rver.endpoint, '--output', 'json'], { env });
      let stored;
      try {
        stored = JSON.parse(head.stdout).ContentLength;
      } catch {
        stored = undefined;
      }
      if (stored !== input.meta.bytes) return { ok: false, error: `aws s3 cp stored ${stored ?? '?'} bytes, the file has ${input.meta.bytes}`, detail: tail(head.stderr) };
      return { ok: true, seconds: r.seconds, usage: r, extra: `object of ${fmtMB(stored)} verified with head-object` };
    }
    throw new Error(`unknown tool kind ${tool.kind}`);
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

async function measureRss(o) {
  log(`peak RSS: takeout run on a ${o.rssSize} MiB table to a local folder`);
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  const input = await ensureInput(o.rssSize);
  const dest = path.join(OUT, `export-dest-rss-${Date.now().toString(36)}`);
  cleanupPaths.add(dest);
  const result = {};
  try {
    let r;
    const args = [BIN, 'run', '--source', input.dir, '--dest', dest, '--no-progress', '--json'];
    if (!o.noWait) await waitQuiet();
    if (timeBin) {
      r = await run(timeBin, ['-v', process.execPath, ...args]);
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
      if (m) result.peakMB = (Number(m[1]) * 1024) / 1e6;
    } else {
      note('/usr/bin/time not found: reading maxRSS from process.resourceUsage() at exit instead');
      const probe = path.join(OUT, 'rss-probe.cjs');
      await writeFile(probe, "process.on('exit', () => process.stderr.write(`maxrss-kb ${process.resourceUsage().maxRSS}\\n`));\n");
      r = await run(process.execPath, ['--require', probe, ...args]);
      const m = /maxrss-kb (\d+)/.exec(r.stderr);
      if (m) result.peakMB = (Number(m[1]) * 1024) / 1e6;
    }
    const summary = parseSummary(r.stdout);
    if (r.code !== 0 || !summary) {
      result.failed = true;
      log(`  FAILED: takeout exited ${r.code ?? r.signal}`);
      log(tail(r.stderr));
    } else {
      const check = checkSummary(summary, input);
      if (check) {
        result.failed = true;
        log(`  FAILED: ${check}`);
      }
      log(`  ${fmtMB(input.meta.bytes)} → ${fmtMB(summary.bytes)} in ${summary.slices} slice${summary.slices === 1 ? '' : 's'}, ${r.seconds.toFixed(1)} s wall, ${(mb(input.meta.bytes) / r.seconds).toFixed(1)} MB/s`);
    }
    if (result.peakMB !== undefined) log(`  peak RSS (${timeBin ? '/usr/bin/time -v, Maximum resident set size' : 'resourceUsage().maxRSS'}): ${Math.round(result.peakMB)} MB (${(result.peakMB * 1e6 / 2 ** 20).toFixed(0)} MiB)`);
    else log('  peak RSS: could not be read');
  } finally {
    await rm(dest, { recursive: true, force: true });
    cleanupPaths.delete(dest);
    if (!o.keep && o.rssSize !== o.size) {
      await rm(input.dir, { recursive: true, force: true });
      await rm(input.metaFile, { force: true });
      log(`  removed ${path.relative(ROOT, input.dir)} (--keep keeps it)`);
    }
  }
  return result;
}

async function measureStartup(input, o) {
  log(`startup: node bin/takeout.js --help, ${STARTUP_RUNS} runs after 1 warm-up`);
  if (!o.noWait) await waitQuiet();
  const times = [];
  await run(process.execPath, [BIN, '--help'], { stdoutTo: 'null' });
  for (let i = 0; i < STARTUP_RUNS; i++) {
    const r = await run(process.execPath, [BIN, '--help'], { stdoutTo: 'null' });
    if (r.code !== 0) {
      log(`  --help exited ${r.code}: ${tail(r.stderr)}`);
      continue;
    }
    times.push(r.seconds * 1000);
  }
  const baseline = [];
  for (let i = 0; i < 5; i++) baseline.push((await run(process.execPath, ['-e', '0'], { stdoutTo: 'null' })).seconds * 1000);
  const medianMs = median(times);
  log(`  median ${medianMs.toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}); bare \`node -e 0\` ${median(baseline).toFixed(0)} ms`);

  // Which modules --help loads, traced by bench/module-trace.mjs (module.register hooks + require cache).
  const traced = async (args) => {
    const file = path.join(OUT, `module-trace-${process.pid}-${Date.now()}.txt`);
    const r = await run(process.execPath, ['--import', TRACE_HOOK, BIN, ...args], { stdoutTo: 'null', env: cleanEnv({ BENCH_MODULE_TRACE: file }) });
    let lines = [];
    try {
      lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    } catch {
      // no trace written
    }
    await rm(file, { force: true });
    const modules = [...new Set(lines.map((l) => l.slice(4).replace(/^file:\/\//, '')))];
    const packages = new Map();
    for (const m of modules) {
      const p = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m)?.[1];
      if (p) packages.set(p, (packages.get(p) ?? 0) + 1);
    }
    const aws = [...packages.keys()].filter((p) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/') || p.startsWith('@aws-crypto/'));
    return { code: r.code, modules, packages, aws };
  };
  const help = await traced(['--help']);
  if (help.modules.length === 0) {
    log('  AWS SDK loaded: unknown (the module trace recorded nothing)');
  } else {
    const pk = [...help.packages.entries()].sort((a, b) => b[1] - a[1]).map(([p, n]) => `${p} ${n}`).join(', ');
    log(`  AWS SDK loaded: ${help.aws.length ? `yes (${help.aws.join(', ')})` : 'no'} — --help loads ${help.modules.length} modules; packages: ${pk || 'none'}`);
  }
  // Control: the trace must see the SDK when an s3:// destination is opened (dry run, nothing written).
  const control = await traced(['run', '--source', input.dir, '--dest', 's3://takeout-test/bench-dry-run/', '--endpoint-url', 'http://127.0.0.1:9', '--access-key-id', S3_KEY, '--secret-access-key', S3_KEY, '--region', 'us-east-1', '--dry-run', '--no-progress']);
  const localDry = await traced(['run', '--source', input.dir, '--dest', path.join(OUT, 'never-written'), '--dry-run', '--no-progress']);
  log(`  check: a dry run to s3:// loads the SDK: ${control.aws.length ? 'yes' : 'NO (the trace may be broken)'} (${control.modules.length} modules); a dry run to a local folder: ${localDry.aws.length ? 'yes' : 'no'} (${localDry.modules.length} modules)`);
  return { medianMs };
}

main().catch(async (error) => {
  process.stderr.write(`bench/export.mjs: ${error instanceof Error ? error.stack : String(error)}\n`);
  await stopS3rver().catch(() => undefined);
  process.exit(1);
});
