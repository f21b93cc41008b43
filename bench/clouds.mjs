#!/usr/bin/env node
// Cloud destinations benchmark: the same `takeout run` of a generated table into Azurite (azure://) and into
// s3rver (s3://), side by side on this machine, and into a local folder as the machine's limit (no emulator,
// no HTTP). The figure is the Azure throughput as a ratio of the S3 one (issue target: at least 0.8×).
// Both emulators persist to disk under bench/out/tmp (s3rver cannot do otherwise; Azurite is given --location
// so neither gets the advantage of memory) and share the machine's cores with takeout, as they do in tests.
//
//   node bench/clouds.mjs [--size MB=300] [--runs N=3] [--no-wait]
//   (or BENCH_SIZE, BENCH_RUNS, BENCH_NO_WAIT=1)
// Before each measurement it waits (up to 3 min) until the CPU is ≥ 90% idle unless --no-wait; tools are
// interleaved within each run and their order rotates from run to run; medians are reported. MB = 10^6 bytes;
// throughput = input file bytes / wall-clock seconds of the whole command (Node start-up included).
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import {
  BUCKET, cleanEnv, cleanupPaths, ensureInput, fmtMB, log, lpad, mb, measureQuietly, median, note, OUT, pad, parseBenchArgs, processCpu, ROOT, run, S3_KEY, sizeRunsSpec, snapshotBuild, startS3rver, stopS3rver, track, warnIfStaleBuild,
} from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  ...sizeRunsSpec(300),
});

const AZURITE_BLOB = path.join(ROOT, 'test', 'emulators', 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
/** Azurite's well-known development account and key (learn.microsoft.com "Use the Azurite emulator"). */
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'bench';
const START_TIMEOUT_MS = 30_000;

async function startAzurite(location) {
  await mkdir(location, { recursive: true });
  const child = track(spawn(process.execPath, [AZURITE_BLOB, '--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location, '--disableTelemetry', '--skipApiVersionCheck', '--loose'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: location }));
  let output = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not report its port within ${START_TIMEOUT_MS / 1000} s\n${output}`)), START_TIMEOUT_MS);
    const onData = (chunk) => {
      output += chunk;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/i.exec(output) ?? /listens on http:\/\/127\.0\.0\.1:(\d+)/i.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => reject(new Error(`Azurite exited early (${code})\n${output}`)));
  });
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
  await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(CONTAINER).createIfNotExists();
  return { child, connectionString };
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function main() {
  warnIfStaleBuild();
  const build = await snapshotBuild();
  const input = await ensureInput(o.size);
  const inputBytes = input.meta.bytes;
  const tmp = path.join(OUT, 'tmp');
  cleanupPaths.add(tmp);
  const s3 = await startS3rver();
  const azurite = await startAzurite(path.join(tmp, `azurite-${process.pid}`));
  const tools = [
    { name: 'takeout local', dest: (tag) => path.join(tmp, `local-${tag}`), env: cleanEnv(), args: [] },
    { name: 'takeout s3', dest: (tag) => `s3://${BUCKET}/bench-clouds-${tag}/`, env: cleanEnv(), args: ['--endpoint-url', s3.endpoint, '--access-key-id', S3_KEY, '--secret-access-key', S3_KEY, '--region', 'us-east-1'], server: s3.child },
    { name: 'takeout azure', dest: (tag) => `azure://${CONTAINER}/bench-clouds-${tag}/`, env: cleanEnv({ AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString }), args: [], server: azurite.child },
  ];
  const results = new Map(tools.map((t) => [t.name, { times: [], cpu: [], serverCpu: [], rss: [] }]));
  try {
    for (let r = 0; r < o.runs; r++) {
      const order = tools.map((_, i) => tools[(i + r) % tools.length]);
      log(`run ${r + 1}/${o.runs}: ${order.map((t) => t.name).join(' → ')}`);
      for (const tool of order) {
        const tag = `${process.pid}-r${r + 1}`;
        const { outcome } = await measureQuietly(tool.name, async (attempt) => {
          const dest = tool.dest(`${tag}-a${attempt}`);
          const cpu0 = tool.server ? processCpu(tool.server.pid) : undefined;
          const result = await run(process.execPath, [build.bin, 'run', '--source', input.dir, '--dest', dest, '--no-progress', '-q', ...tool.args], { env: tool.env, measure: true, stdoutTo: 'null' });
          const cpu1 = tool.server ? processCpu(tool.server.pid) : undefined;
          if (result.code !== 0) return { ok: false, error: result.stderr.trim().split('\n').pop() };
          if (cpu0 !== undefined && cpu1 !== undefined) result.serverCpu = cpu1 - cpu0;
          if (dest.startsWith('/')) await rm(dest, { recursive: true, force: true });
          return { ok: true, seconds: result.seconds, usage: result };
        }, { noWait: o.noWait });
        if (!outcome.ok) {
          log(`  ${pad(tool.name, 14)} FAILED: ${outcome.error}`);
          continue;
        }
        const res = results.get(tool.name);
        res.times.push(outcome.seconds);
        if (outcome.usage.cpu !== undefined) res.cpu.push(outcome.usage.cpu);
        if (outcome.usage.maxRssKb !== undefined) res.rss.push(outcome.usage.maxRssKb);
        if (outcome.usage.serverCpu !== undefined) res.serverCpu.push(outcome.usage.serverCpu);
        const server = outcome.usage.serverCpu !== undefined ? `, emulator ${outcome.usage.serverCpu.toFixed(1)} s` : '';
        log(`  ${pad(tool.name, 14)} ${lpad(outcome.seconds.toFixed(2), 7)} s  ${lpad((mb(inputBytes) / outcome.seconds).toFixed(1), 6)} MB/s  [cpu ${(outcome.usage.cpu ?? NaN).toFixed(1)} s${server}]`);
      }
    }
  } finally {
    await stopChild(azurite.child);
    await stopS3rver();
    await rm(tmp, { recursive: true, force: true });
    cleanupPaths.delete(tmp);
    await rm(build.dir, { recursive: true, force: true });
  }

  log();
  log(`results: input ${fmtMB(inputBytes)} (${input.meta.rows.toLocaleString('en-US')} rows), median of ${o.runs} run${o.runs === 1 ? '' : 's'}, MB = 10^6 bytes`);
  const med = {};
  for (const t of tools) {
    const res = results.get(t.name);
    if (res.times.length === 0) continue;
    med[t.name] = median(res.times);
    const rss = res.rss.length ? `${Math.round((Math.max(...res.rss) * 1024) / 1e6)} MB` : '?';
    const server = res.serverCpu.length ? `, emulator CPU ${median(res.serverCpu).toFixed(1)} s` : '';
    log(`  ${pad(t.name, 15)}${lpad(med[t.name].toFixed(2), 7)} s ${lpad((mb(inputBytes) / med[t.name]).toFixed(1), 7)} MB/s  takeout CPU ${median(res.cpu).toFixed(1)} s, RSS ${rss}${server}`);
  }
  if (med['takeout s3'] && med['takeout azure']) {
    log(`  azure:// (Azurite) vs s3:// (s3rver): ${(med['takeout s3'] / med['takeout azure']).toFixed(2)}× the throughput (target ≥ 0.8×)`);
  }
  if (med['takeout local'] && med['takeout azure']) {
    log(`  azure:// vs a local folder (the machine's limit for this run): ${(med['takeout local'] / med['takeout azure']).toFixed(2)}×`);
  }
  note('both emulators write to disk and share the cores with takeout; their CPU is the emulator process\'s own');
}

main().catch((error) => {
  process.stderr.write(`bench/clouds.mjs: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
