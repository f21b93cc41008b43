// Helpers shared by the benchmarks (bench/export.mjs, bench/merge.mjs): child processes that are
// stopped on exit or Ctrl-C, commands timed under /usr/bin/time (CPU seconds, peak RSS) with the rest
// of the machine's CPU use noted, waiting for an idle CPU, a throwaway s3rver, the cached generated
// input CSV, a snapshot of the build, medians and formatting. Plain Node ESM, no dependencies.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { generateCsv } from './generate.mjs';

export const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
export const BENCH = path.join(ROOT, 'bench');
export const OUT = path.join(BENCH, 'out');
const S3RVER_SCRIPT = path.join(ROOT, 'test', 'setup', 's3rver-server.mjs');
export const BUCKET = 'takeout-test';
export const S3_KEY = 'S3RVER';

// ---------------------------------------------------------------- processes and cleanup

const children = new Set();
export const cleanupPaths = new Set();

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Process ids of `pid`'s descendants, deepest first (e.g. the node under /usr/bin/time). */
export function descendants(pid) {
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

export function killChildren() {
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
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('TAKEOUT_') || k.startsWith('AWS_') || k === 'BENCH_MODULE_TRACE') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export const TIME_BIN = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
const HAVE_PROC_STAT = existsSync('/proc/stat');

/** Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export function machineCpu() {
  if (!HAVE_PROC_STAT) return undefined;
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function processCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fraction of the machine's CPU (all cores) busy over `ms`. */
export async function busyFraction(ms = 500) {
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
export async function waitQuiet(threshold = 0.1, maxMs = 180000) {
  const t0 = Date.now();
  let busy = await busyFraction();
  while (busy > threshold && Date.now() - t0 < maxMs) busy = await busyFraction(1000);
  return { busy, waitedMs: Date.now() - t0 };
}

/**
 * Runs a command and resolves to { code, signal, seconds, stdout, stderr, outBytes, cpu, otherCpu, maxRssKb }.
 * `stdoutTo`: 'null' sends stdout to /dev/null (nothing read), 'count' counts its bytes, 'capture' keeps it,
 * { file } writes it to that file (created or truncated; the redirection of `cmd > file`).
 * With `measure`, the command runs under /usr/bin/time (its CPU seconds and peak RSS), and the CPU
 * seconds the rest of the machine used meanwhile are reported as `otherCpu` (s3rver's separately,
 * as `serverCpu`, when `serverPid` is given).
 */
export function run(cmd, args, { stdoutTo = 'capture', env = cleanEnv(), cwd = ROOT, measure = false, serverPid } = {}) {
  return new Promise((resolve, reject) => {
    let devnull;
    const stdio = ['ignore', 'pipe', 'pipe'];
    if (stdoutTo === 'null' || typeof stdoutTo === 'object') {
      devnull = openSync(stdoutTo === 'null' ? '/dev/null' : stdoutTo.file, 'w');
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

export function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function firstLine(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.error || r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
}

// ---------------------------------------------------------------- s3rver

/** The running s3rver, if any ({ child, endpoint }); a tracked child, so it is stopped on exit too. */
let s3rver;

/** Starts s3rver (buckets takeout-test and takeout-other) and resolves to { child, endpoint }. */
export async function startS3rver() {
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

/** Stops the s3rver startS3rver started (its storage goes with it). */
export async function stopS3rver() {
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

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const mb = (bytes) => bytes / 1e6;
export const fmtMB = (bytes) => `${mb(bytes).toFixed(1)} MB`;
export const pad = (s, n) => String(s).padEnd(n);
export const lpad = (s, n) => String(s).padStart(n);
export const log = (line = '') => process.stdout.write(`${line}\n`);
export const note = (line) => process.stdout.write(`  · ${line}\n`);

export async function folderBytes(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath ?? entry.path, entry.name))).size;
  }
  return total;
}

/** The summary object from takeout's --json output (the last `run:done` line, or another event type), if any. */
export function parseSummary(stdout, type = 'run:done') {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const event = JSON.parse(line);
      if (event.type === type) return event.summary;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

/** Why a `takeout run` summary does not match the generated input, or undefined when it does. */
export function checkSummary(summary, input) {
  if (summary.status !== 'complete') return `takeout finished with status ${summary.status}`;
  if (summary.rows !== input.meta.rows) return `takeout counted ${summary.rows} rows, the generator wrote ${input.meta.rows}`;
  // rawBytes counts the data rows takeout passed through; the header row is not among them.
  const expected = input.meta.bytes;
  if (Math.abs(summary.rawBytes - expected) > 4096) return `takeout read ${summary.rawBytes} bytes, the file has ${expected}`;
  return undefined;
}

export function tail(text, lines = 15) {
  return text.trim().split('\n').slice(-lines).map((l) => `      ${l}`).join('\n');
}

// ---------------------------------------------------------------- input data

export async function ensureInput(sizeMb) {
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

/**
 * Copies bin/takeout.js, dist/ and package.json under bench/out/ and resolves to { dir, bin }: run
 * takeout as `node bin`, so a rebuild while a benchmark runs cannot mix two builds (node_modules still
 * resolve from ROOT). Remove `dir` at the end (it is in cleanupPaths for Ctrl-C).
 */
export async function snapshotBuild() {
  const dir = path.join(OUT, `takeout-build-${process.pid}`);
  cleanupPaths.add(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await cp(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  await cp(path.join(ROOT, 'bin', 'takeout.js'), path.join(dir, 'bin', 'takeout.js'));
  await cp(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  return { dir, bin: path.join(dir, 'bin', 'takeout.js') };
}

export function warnIfStaleBuild() {
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


export async function probeAws() {
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

export function awsEnv() {
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

/** True when other processes used noticeable CPU during a measurement of `seconds` (usage from run()). */
export function disturbed(usage, seconds) {
  return usage?.otherCpu !== undefined && usage.otherCpu > Math.max(0.5, 0.1 * seconds);
}

/**
 * Runs `attempt(n)` (n = 1, 2, 3) after waiting for an idle CPU; a measurement other processes disturbed
 * is repeated (up to twice) after waiting for quiet again. `attempt` resolves to an outcome
 * { ok, seconds, usage, … }; resolves to { outcome, discarded }.
 */
export async function measureQuietly(name, attempt, { noWait = false } = {}) {
  let outcome;
  let discarded = 0;
  for (let n = 1; ; n++) {
    const quiet = noWait ? { busy: 0, waitedMs: 0 } : await waitQuiet();
    if (quiet.waitedMs > 1500) note(`waited ${(quiet.waitedMs / 1000).toFixed(0)} s for other processes to leave the CPU idle (now ${(quiet.busy * 100).toFixed(0)}% busy)`);
    outcome = await attempt(n);
    const u = outcome.usage;
    if (!(outcome.ok && disturbed(u, outcome.seconds)) || n >= 3 || noWait) break;
    discarded++;
    note(`${name}: ${outcome.seconds.toFixed(2)} s discarded: other processes used ${u.otherCpu.toFixed(1)} CPU-s meanwhile; measuring again`);
  }
  return { outcome, discarded };
}

// ---------------------------------------------------------------- arguments

const truthy = (value) => value !== undefined && value !== '' && value !== '0' && value !== 'false';

/**
 * Parses a bench script's arguments: `--name value`, `--name=value` and boolean flags, each with an
 * environment default. `spec` maps a flag to `{ key, type: 'number'|'string'|'flag', env?, default? }`;
 * `check(o)` returns an error message or undefined. `--help` prints the script's leading `//` comment.
 */
export function parseBenchArgs(argv, { script, spec, check = () => undefined }) {
  const name = path.basename(fileURLToPath(script));
  const usageLine = Object.entries(spec)
    .map(([flag, s]) => (s.type === 'flag' ? `[${flag}]` : `[${flag} ${s.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).toUpperCase()}]`))
    .join(' ');
  const usage = (message) => {
    process.stderr.write(`bench/${name}: ${message}\nusage: node bench/${name} ${usageLine}\n`);
    process.exit(2);
  };
  const o = {};
  for (const s of Object.values(spec)) {
    const fromEnv = s.env ? process.env[s.env] : undefined;
    if (s.type === 'flag') o[s.key] = truthy(fromEnv);
    else if (fromEnv !== undefined && fromEnv !== '') o[s.key] = s.type === 'number' ? Number(fromEnv) : fromEnv;
    else o[s.key] = s.default;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      const lines = readFileSync(fileURLToPath(script), 'utf8').split('\n').slice(1);
      process.stdout.write(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
      process.exit(0);
    }
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const s = spec[flag];
    if (!s) usage(`unknown argument ${arg}`);
    if (s.type === 'flag') {
      o[s.key] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    o[s.key] = s.type === 'number' ? Number(value) : value;
  }
  const problem = check(o);
  if (problem) usage(problem);
  return o;
}

// ---------------------------------------------------------------- the Storage API test server and common flags

/**
 * Compiles test/keboola/server.ts (with the file storages it imports: storage-backends.ts, test/gcs/) with the
 * project's tsc into bench/out/kbc-server/ (skipped while those sources are unchanged); answers the module.
 */
export async function compileStorageApiServer() {
  const outDir = path.join(OUT, 'kbc-server');
  const js = path.join(outDir, 'keboola', 'server.js');
  const hashFile = path.join(outDir, 'source.sha256');
  const hash = createHash('sha256');
  for (const dir of ['keboola', 'gcs']) {
    const folder = path.join(ROOT, 'test', dir);
    for (const name of (await readdir(folder)).filter((n) => n.endsWith('.ts')).sort()) hash.update(name).update(await readFile(path.join(folder, name)));
  }
  const digest = hash.digest('hex');
  if (existsSync(js) && existsSync(hashFile) && (await readFile(hashFile, 'utf8')).trim() === digest) return js;
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, path.join(ROOT, 'test', 'keboola', 'server.ts'), '--outDir', outDir, '--rootDir', path.join(ROOT, 'test'), '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0 || !existsSync(js)) throw new Error(`tsc of test/keboola/server.ts failed (exit ${r.status})\n${tail(`${r.stdout}\n${r.stderr}`)}`);
  await writeFile(hashFile, `${digest}\n`);
  return js;
}

/** `--size MiB --runs N --no-wait`, as most benchmarks take them, with this default size. */
export function sizeRunsSpec(defaultSize) {
  return {
    spec: {
      '--size': { key: 'size', type: 'number', env: 'BENCH_SIZE', default: defaultSize },
      '--runs': { key: 'runs', type: 'number', env: 'BENCH_RUNS', default: 3 },
      '--no-wait': { key: 'noWait', type: 'flag', env: 'BENCH_NO_WAIT' },
    },
    check: (v) => (!(v.size > 0) ? '--size must be a positive number of MiB' : !(v.runs >= 1) ? '--runs must be at least 1' : undefined),
  };
}

/** One timed run's outcome: its line (or FAILED and why), its seconds kept for the median. */
export function noteOutcome(results, tool, outcome, megabytes) {
  if (!outcome.ok) {
    log(`  ${pad(tool, 10)} FAILED: ${outcome.error}`);
    return;
  }
  results[tool].push(outcome.seconds);
  const u = outcome.usage;
  const rss = u.maxRssKb !== undefined ? `, rss ${(u.maxRssKb / 1024).toFixed(0)} MiB` : '';
  log(`  ${pad(tool, 10)} ${lpad(outcome.seconds.toFixed(2), 7)} s  ${lpad((megabytes / outcome.seconds).toFixed(1), 6)} MB/s  [cpu ${(u.cpu ?? NaN).toFixed(1)} s${rss}, other ${(u.otherCpu ?? NaN).toFixed(1)} s]`);
}

/** An S3 client for a throwaway s3rver: path style, checksums only when required (as takeout sends them there). */
export async function s3rverClient(endpoint) {
  const S3 = await import('@aws-sdk/client-s3');
  const client = new S3.S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { S3, client };
}

/** A spec with more flags than `sizeRunsSpec` gives. */
export function withSpec(base, more) {
  return { ...base, spec: { ...base.spec, ...more } };
}

/** Two tools in runs alternating which goes first (so neither always runs on a warmer machine), each run logged. */
export function* alternatingRuns(runs, tools) {
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? tools : [...tools].reverse();
    log(`run ${r + 1}/${runs}: ${order.join(' → ')}`);
    for (const tool of order) yield tool;
  }
}
