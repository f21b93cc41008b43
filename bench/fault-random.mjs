#!/usr/bin/env node
// Randomized write-fault runs: `takeout run` of the demo project into a local folder whose every write fails
// from a random point on (test/faults/faulty-local.mjs, loaded into the real CLI), N times with a seeded
// schedule (test/faults/random-faults.mjs, the same one test/write-faults.random.test.ts uses). Every run must
// end within 60 s (it is SIGKILLed and counted as hung otherwise) with a failed write's exit code, no temp
// files and no manifest unless partial. Prints the distribution of end times and the max; exits 1 on any problem.
//
//   node bench/fault-random.mjs [--runs N=200] [--seed S] [--parallel P=2]
//   (or BENCH_FAULT_RUNS, TAKEOUT_FAULT_SEED, BENCH_FAULT_PARALLEL). Needs `npm run build` first.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FAILED_WRITE_EXITS, prng, randomFault } from '../test/faults/random-faults.mjs';
import { ROOT, cleanEnv, log, note, parseBenchArgs, track, warnIfStaleBuild } from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  spec: {
    '--runs': { key: 'runs', type: 'number', env: 'BENCH_FAULT_RUNS', default: 200 },
    '--seed': { key: 'seed', type: 'number', env: 'TAKEOUT_FAULT_SEED', default: undefined },
    '--parallel': { key: 'parallel', type: 'number', env: 'BENCH_FAULT_PARALLEL', default: 2 },
  },
  check: (v) => (v.runs >= 1 && v.parallel >= 1 ? undefined : '--runs and --parallel must be at least 1'),
});

/** A run still going after this is hung: SIGKILLed and reported. */
const WATCHDOG_MS = 60_000;
const BIN = path.join(ROOT, 'bin', 'takeout.js');
const REGISTER = path.join(ROOT, 'test', 'faults', 'faulty-register.mjs');
const ARGS = ['run', '--source', path.join(ROOT, 'fixtures', 'demo-project'), '--slice-rows', '10000'];

function takeout(args, env) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = track(spawn(process.execPath, ['--import', REGISTER, BIN, ...args], { cwd: ROOT, env: cleanEnv({ CI: 'true', ...env }), stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => (stderr += text));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, WATCHDOG_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, hung, ms: performance.now() - started });
    });
  });
}

async function allFiles(root, prefix = '') {
  const entries = await readdir(path.join(root, prefix), { withFileTypes: true }).catch(() => []);
  const out = [];
  for (const entry of entries) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await allFiles(root, rel)));
    else out.push(rel);
  }
  return out;
}

warnIfStaleBuild();
const seed = o.seed ?? randomInt(2 ** 31);
const work = await mkdtemp(path.join(tmpdir(), 'takeout-fault-random-'));
try {
  const count = await takeout([...ARGS, '--dest', path.join(work, 'count')], { TAKEOUT_TEST_WRITE_LOG: path.join(work, 'count.log') });
  if (count.code !== 0) throw new Error(`the counting run failed:\n${count.stderr}`);
  const writes = (await readFile(path.join(work, 'count.log'), 'utf8')).split('\n').filter(Boolean).length;
  log(`takeout run of the demo project, ${writes} writes; ${o.runs} runs, every write failing from a random one on, seed ${seed} (TAKEOUT_FAULT_SEED=${seed})`);

  const random = prng(seed);
  const faults = Array.from({ length: o.runs }, () => randomFault(random, writes));
  const times = [];
  const problems = [];
  const exits = new Map();
  let next = 0;
  let unreached = 0;
  const worker = async () => {
    while (next < faults.length) {
      const index = next++;
      const fault = faults[index];
      const dest = path.join(work, `run-${index}`);
      const writeLog = path.join(work, `run-${index}.log`);
      const result = await takeout([...ARGS, '--dest', dest], { TAKEOUT_TEST_FAULT: JSON.stringify(fault), TAKEOUT_TEST_WRITE_LOG: writeLog });
      times.push(result.ms);
      exits.set(result.code, (exits.get(result.code) ?? 0) + 1);
      const where = `run ${index} ${JSON.stringify(fault)}`;
      // Journal rewrites coalesce: a run may write less than the counted one, and a fault past its end is never reached.
      if (!(await readFile(writeLog, 'utf8').catch(() => '')).includes('HIT\t')) {
        unreached++;
        if (result.hung) problems.push(`${where}: still running after ${WATCHDOG_MS / 1000} s (killed)`);
        else if (result.code !== 0) problems.push(`${where}: fault not reached, yet exit ${result.code}`);
        await rm(dest, { recursive: true, force: true });
        continue;
      }
      const files = await allFiles(dest);
      if (result.hung) problems.push(`${where}: still running after ${WATCHDOG_MS / 1000} s (killed)`);
      else if (!FAILED_WRITE_EXITS.includes(result.code)) problems.push(`${where}: exit ${result.code}`);
      if (!result.stderr.includes('takeout: error:')) problems.push(`${where}: no error line`);
      if (files.some((f) => f.endsWith('.takeout-tmp'))) problems.push(`${where}: temp files left`);
      if (result.code !== 3 && files.includes('takeout-manifest.json')) problems.push(`${where}: a manifest after exit ${result.code}`);
      await rm(dest, { recursive: true, force: true });
    }
  };
  await Promise.all(Array.from({ length: o.parallel }, worker));

  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
  log(`end times: min ${fmt(times[0])} · p50 ${fmt(at(0.5))} · p90 ${fmt(at(0.9))} · p99 ${fmt(at(0.99))} · max ${fmt(times[times.length - 1])}`);
  const buckets = [0.5, 1, 2, 5, 10, 30, 60];
  let from = 0;
  for (const upper of buckets) {
    const n = times.filter((t) => t >= from * 1000 && t < upper * 1000).length;
    if (n > 0) note(`${lpadS(`${from}–${upper} s`, 9)} ${'#'.repeat(Math.ceil((n / times.length) * 50))} ${n}`);
    from = upper;
  }
  if (unreached > 0) note(`${unreached} run(s) wrote less than the counted run and never reached their fault (they must succeed)`);
  note(`exit codes: ${[...exits].sort((a, b) => a[0] - b[0]).map(([code, n]) => `${code} ×${n}`).join(', ')}`);
  const ended = times.length - problems.filter((p) => p.includes('killed')).length;
  log(`${ended}/${times.length} runs ended within ${WATCHDOG_MS / 1000} s (${((100 * ended) / times.length).toFixed(1)} %)`);
  if (problems.length > 0) {
    for (const problem of problems) log(`problem: ${problem}`);
    process.exitCode = 1;
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

function lpadS(s, n) {
  return String(s).padStart(n);
}
