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
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { generateCsv } from './generate.mjs';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const BENCH = path.join(ROOT, 'bench');
const OUT = path.join(BENCH, 'out');
// takeout is run from a copy of bin/, dist/ and package.json taken at start (see snapshotBuild), so a
// rebuild while the benchmark runs cannot mix two builds; node_modules still resolve from ROOT.
let BIN = path.join(ROOT, 'bin', 'takeout.js');
const S3RVER_SCRIPT = path.join(ROOT, 'test', 'setup', 's3rver-server.mjs');
const TRACE_HOOK = path.join(BENCH, 'module-trace.mjs');
const BUCKET = 'takeout-test';
const S3_KEY = 'S3RVER';
const STARTUP_RUNS = 10;

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const env = process.env;
  const flag = (name) => env[name] !== undefined && env[name] !== '' && env[name] !== '0' && env[name] !== 'false';
  const o = {
    size: Number(env.BENCH_SIZE ?? 500),
    runs: Number(env.BENCH_RUNS ?? 3),
    rssSize: Number(env.BENCH_RSS_SIZE ?? 2048),
    skipS3: flag('BENCH_SKIP_S3'),
    skipRss: flag('BENCH_SKIP_RSS'),
    keep: flag('BENCH_KEEP'),
    noWait: flag('BENCH_NO_WAIT'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--size': o.size = Number(value()); break;
      case '--runs': o.runs = Number(value()); break;
      case '--rss-size': o.rssSize = Number(value()); break;
      case '--skip-s3': o.skipS3 = true; break;
      case '--skip-rss': o.skipRss = true; break;
      case '--keep': o.keep = true; break;
      case '--no-wait': o.noWait = true; break;
      case '-h': case '--help':
        process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 15).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
        break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!(o.size > 0)) usage('--size must be a positive number of MB');
  if (!(Number.isInteger(o.runs) && o.runs > 0)) usage('--runs must be a positive integer');
  if (!(o.rssSize > 0)) usage('--rss-size must be a positive number of MB');
  return o;
}

function usage(message) {
  process.stderr.write(`bench/export.mjs: ${message}\nusage: node bench/export.mjs [--size MB] [--runs N] [--rss-size MB] [--skip-s3] [--skip-rss] [--keep] [--no-wait]\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- processes and cleanup

const children = new Set();
const cleanupPaths = new Set();
let s3rver;

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Process ids of `pid`'s descendants, deepest first (e.g. the node under /usr/bin/time). */
function descendants(pid) {
  const out = [];
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const task of tasks) {
    let kids;
    try {
      kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      kids = [];
    }
    for (const kid of kids) out.push(...descendants(kid), kid);
  }
  return out;
}

function killChildren() {
  for (const child of children) {
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}: stopping child processes and removing output folders\n`);
    killChildren();
    for (const p of cleanupPaths) {
      try {
        spawnSync('rm', ['-rf', p]);
      } catch {
        // best effort
      }
    }
    process.exit(130);
  });
}

/** Environment for takeout: no TAKEOUT_* variables (they are option values) and no stray AWS settings. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('TAKEOUT_') || k.startsWith('AWS_') || k === 'BENCH_MODULE_TRACE') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

const TIME_BIN = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
const HAVE_PROC_STAT = existsSync('/proc/stat');

/** Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat. */
function machineCpu() {
  if (!HAVE_PROC_STAT) return undefined;
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function processCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fraction of the machine's CPU (all cores) busy over `ms`. */
async function busyFraction(ms = 500) {
  const a = machineCpu();
  await sleep(ms);
  const b = machineCpu();
  if (!a || !b || b.total === a.total) return 0;
  return (b.busy - a.busy) / (b.total - a.total);
}

/**
 * Waits (up to maxMs) until other processes leave the CPU mostly idle, so one tool is not measured
 * while, say, a test suite runs next to it. Resolves to { busy, waitedMs }.
 */
async function waitQuiet(threshold = 0.1, maxMs = 180000) {
  const t0 = Date.now();
  let busy = await busyFraction();
  while (busy > threshold && Date.now() - t0 < maxMs) busy = await busyFraction(1000);
  return { busy, waitedMs: Date.now() - t0 };
}

/**
 * Runs a command and resolves to { code, signal, seconds, stdout, stderr, outBytes, cpu, otherCpu, maxRssKb }.
 * `stdoutTo`: 'null' sends stdout to /dev/null (nothing read), 'count' counts its bytes, 'capture' keeps it.
 * With `measure`, the command runs under /usr/bin/time (its CPU seconds and peak RSS), and the CPU
 * seconds the rest of the machine used meanwhile are reported as `otherCpu` (s3rver's separately,
 * as `serverCpu`, when `serverPid` is given).
 */
function run(cmd, args, { stdoutTo = 'capture', env = cleanEnv(), cwd = ROOT, measure = false, serverPid } = {}) {
  return new Promise((resolve, reject) => {
    let devnull;
    const stdio = ['ignore', 'pipe', 'pipe'];
    if (stdoutTo === 'null') {
      devnull = openSync('/dev/null', 'w');
      stdio[1] = devnull;
    }
    const timed = measure && TIME_BIN !== undefined;
    const [file, argv] = timed ? [TIME_BIN, ['-f', '\nBENCHTIME %e %U %S %M', cmd, ...args]] : [cmd, args];
    const cpu0 = measure ? machineCpu() : undefined;
    const server0 = serverPid ? processCpu(serverPid) : undefined;
    const t0 = performance.now();
    let child;
    try {
      child = track(spawn(file, argv, { stdio, env, cwd }));
    } catch (error) {
      if (devnull !== undefined) closeSync(devnull);
      reject(error);
      return;
    }
    let stdout = '';
    let stderr = '';
    let outBytes = 0;
    child.stdout?.on('data', (chunk) => {
      outBytes += chunk.length;
      if (stdoutTo === 'capture') stdout += chunk.toString('utf8');
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => {
      stderr = (stderr + text).slice(-20000);
    });
    child.once('error', (error) => {
      if (devnull !== undefined) closeSync(devnull);
      reject(error);
    });
    child.once('close', (code, signal) => {
      const seconds = (performance.now() - t0) / 1000;
      const cpu1 = measure ? machineCpu() : undefined;
      const server1 = serverPid ? processCpu(serverPid) : undefined;
      if (devnull !== undefined) closeSync(devnull);
      const result = { code, signal, seconds, stdout, stderr, outBytes };
      if (timed) {
        const m = /\nBENCHTIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(stderr);
        if (m) {
          result.cpu = Number(m[2]) + Number(m[3]);
          result.maxRssKb = Number(m[4]);
          result.stderr = stderr.slice(0, m.index);
        }
        const exited = /Command exited with non-zero status (\d+)/.exec(result.stderr);
        if (exited) {
          result.code = Number(exited[1]);
          result.stderr = result.stderr.replace(exited[0], '');
        }
      }
      if (server0 !== undefined && server1 !== undefined) result.serverCpu = server1 - server0;
      if (cpu0 && cpu1 && result.cpu !== undefined) result.otherCpu = Math.max(0, cpu1.busy - cpu0.busy - result.cpu - (result.serverCpu ?? 0));
      resolve(result);
    });
  });
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function firstLine(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.error || r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
}

// ---------------------------------------------------------------- s3rver

async function startS3rver() {
  // s3rver-server.mjs makes its storage folder with mkdtemp(os.tmpdir()): TMPDIR keeps it under bench/out.
  const tmp = path.join(OUT, 'tmp');
  await mkdir(tmp, { recursive: true });
  cleanupPaths.add(tmp);
  const child = track(
    spawn(process.execPath, ['--openssl-legacy-provider', S3RVER_SCRIPT], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...cleanEnv(), TMPDIR: tmp },
      cwd: ROOT,
    }),
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (t) => {
    stderr = (stderr + t).slice(-4000);
  });
  const port = await new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => fail(new Error('s3rver did not report its port within 20 s')), 20000);
    const fail = (error) => {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(new Error(`${error.message}${stderr ? `\n${stderr}` : ''}`));
    };
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`s3rver exited early (code ${code}, signal ${signal})`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      stdout += text;
      const nl = stdout.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      try {
        resolve(JSON.parse(stdout.slice(0, nl)).port);
      } catch {
        fail(new Error(`s3rver printed an unexpected line: ${stdout.slice(0, nl)}`));
      }
    });
  });
  s3rver = { child, endpoint: `http://127.0.0.1:${port}` };
  return s3rver;
}

async function stopS3rver() {
  const server = s3rver;
  s3rver = undefined;
  if (!server) return;
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- helpers

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (bytes) => bytes / 1e6;
const fmtMB = (bytes) => `${mb(bytes).toFixed(1)} MB`;
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const log = (line = '') => process.stdout.write(`${line}\n`);
const note = (line) => process.stdout.write(`  · ${line}\n`);

async function folderBytes(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath ?? entry.path, entry.name))).size;
  }
  return total;
}

/** The summary object from takeout's --json output (last `run:done` line), if any. */
function parseSummary(stdout) {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const event = JSON.parse(line);
      if (event.type === 'run:done') return event.summary;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

function tail(text, lines = 15) {
  return text.trim().split('\n').slice(-lines).map((l) => `      ${l}`).join('\n');
}

// ---------------------------------------------------------------- input data

async function ensureInput(sizeMb) {
  const dir = path.join(OUT, `export-src-${sizeMb}`);
  const file = path.join(dir, 'in.c-bench', 'data.csv');
  const metaFile = path.join(OUT, `export-src-${sizeMb}.json`);
  const generatorHash = createHash('sha256').update(await readFile(path.join(BENCH, 'generate.mjs'))).digest('hex').slice(0, 16);
  let meta;
  try {
    meta = JSON.parse(await readFile(metaFile, 'utf8'));
    const st = statSync(file);
    if (meta.generatorHash !== generatorHash || meta.sizeMb !== sizeMb || st.size !== meta.bytes || Math.round(st.mtimeMs) !== meta.mtimeMs) meta = undefined;
  } catch {
    meta = undefined;
  }
  if (meta) {
    log(`input: reusing ${path.relative(ROOT, file)} (${fmtMB(meta.bytes)}, ${meta.rows.toLocaleString('en-US')} rows)`);
    return { dir, file, meta, metaFile };
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  cleanupPaths.add(dir);
  process.stdout.write(`input: generating ${path.relative(ROOT, file)} (${sizeMb} MiB) … `);
  const t0 = performance.now();
  const { bytes, rows } = await generateCsv(partial, sizeMb);
  const secs = (performance.now() - t0) / 1000;
  await rename(partial, file);
  cleanupPaths.delete(dir);
  log(`${fmtMB(bytes)}, ${rows.toLocaleString('en-US')} rows in ${secs.toFixed(1)} s (${(mb(bytes) / secs).toFixed(0)} MB/s)`);
  meta = { sizeMb, generatorHash, bytes, rows, mtimeMs: Math.round(statSync(file).mtimeMs), outputs: {} };
  await writeFile(metaFile, `${JSON.stringify(meta, null, 2)}\n`);
  return { dir, file, meta, metaFile };
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
  const snapshot = await snapshotBuild();

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
    if (!o.skipS3) await startS3rver();
    try {
      for (const tool of order) {
        const res = results.get(tool.name);
        if (res.disabled) continue;
        // A measurement other processes disturbed is repeated (up to twice) after waiting for quiet again.
        let outcome;
        for (let attempt = 1; ; attempt++) {
          const quiet = o.noWait ? { busy: 0, waitedMs: 0 } : await waitQuiet();
          if (quiet.waitedMs > 1500) note(`waited ${(quiet.waitedMs / 1000).toFixed(0)} s for other processes to leave the CPU idle (now ${(quiet.busy * 100).toFixed(0)}% busy)`);
          outcome = await runTool(tool, { input, runTag: `${runTag}-r${r + 1}${attempt > 1 ? `-a${attempt}` : ''}`, keepOutput: o.keep && r === o.runs - 1 });
          const u = outcome.usage;
          const disturbed = outcome.ok && u?.otherCpu !== undefined && u.otherCpu > Math.max(0.5, 0.1 * outcome.seconds);
          if (!disturbed || attempt >= 3 || o.noWait) break;
          res.discarded++;
          note(`${tool.name}: ${outcome.seconds.toFixed(2)} s discarded: other processes used ${u.otherCpu.toFixed(1)} CPU-s meanwhile; measuring again`);
        }
        if (outcome.ok) {
          res.times.push(outcome.seconds);
          if (outcome.outBytes !== undefined) res.outBytes = outcome.outBytes;
          if (outcome.internalMs !== undefined) res.internalMs.push(outcome.internalMs);
          const u = outcome.usage ?? {};
          if (u.cpu !== undefined) res.cpu.push(u.cpu);
          if (u.maxRssKb !== undefined) res.rss.push(u.maxRssKb);
          if (u.serverCpu !== undefined) res.serverCpu.push(u.serverCpu);
          const noisy = u.otherCpu !== undefined && u.otherCpu > Math.max(0.5, 0.1 * outcome.seconds);
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

/** Copies bin/takeout.js, dist/ and package.json under bench/out/ and points BIN at the copy. */
async function snapshotBuild() {
  const dir = path.join(OUT, `takeout-build-${process.pid}`);
  cleanupPaths.add(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await cp(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  await cp(path.join(ROOT, 'bin', 'takeout.js'), path.join(dir, 'bin', 'takeout.js'));
  await cp(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  BIN = path.join(dir, 'bin', 'takeout.js');
  return dir;
}

function warnIfStaleBuild() {
  // dist/ older than a source file usually means a forgotten `npm run build`.
  const newest = (dir, ext) => {
    let latest = 0;
    const walk = (d) => {
      let entries;
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(ext)) latest = Math.max(latest, statSync(p).mtimeMs);
      }
    };
    walk(dir);
    return latest;
  };
  const src = newest(path.join(ROOT, 'src'), '.ts');
  const dist = newest(path.join(ROOT, 'dist'), '.js');
  if (src > dist) note('warning: src/ has files newer than dist/: run `npm run build` to benchmark the current code');
}


async function probeAws() {
  const awsPath = which('aws');
  if (!awsPath) return { ok: false, message: 'no `aws` on PATH, skipped' };
  const version = firstLine('aws', ['--version'], cleanEnv()) ?? 'version unknown';
  let real = awsPath;
  if (awsPath.includes('/.pyenv/shims/')) {
    const pyenv = spawnSync('pyenv', ['which', 'aws'], { encoding: 'utf8' });
    if (pyenv.status === 0 && pyenv.stdout.trim()) real = pyenv.stdout.trim();
  }
  return { ok: true, version, path: real, message: `${version} (${real})` };
}

function awsEnv() {
  // WHEN_REQUIRED: newer botocore otherwise sends aws-chunked bodies with CRC trailers that s3rver 3.7.1
  // cannot read; takeout also sends checksums only when required against a custom endpoint.
  return cleanEnv({
    AWS_ACCESS_KEY_ID: S3_KEY,
    AWS_SECRET_ACCESS_KEY: S3_KEY,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
    AWS_PAGER: '',
  });
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

function checkSummary(summary, input) {
  if (summary.status !== 'complete') return `takeout finished with status ${summary.status}`;
  if (summary.rows !== input.meta.rows) return `takeout counted ${summary.rows} rows, the generator wrote ${input.meta.rows}`;
  // rawBytes counts the data rows takeout passed through; the header row is not among them.
  const expected = input.meta.bytes;
  if (Math.abs(summary.rawBytes - expected) > 4096) return `takeout read ${summary.rawBytes} bytes, the file has ${expected}`;
  return undefined;
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
