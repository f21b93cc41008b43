#!/usr/bin/env node
// PostgreSQL export benchmark: `takeout table export public.big --source URL --dest DIR` (local slices,
// default settings) against `psql -c "\copy (SELECT * FROM public.big) to stdout csv force quote *" |
// pigz -6 -p2 > file`, on a table of ≥ 1 GB created server-side in a throwaway cluster.
//
//   node bench/pg-export.mjs [--rows N=7000000] [--runs N=3] [--url postgres://…] [--keep] [--no-wait]
//   (or BENCH_PG_ROWS, BENCH_RUNS, BENCH_PG_URL, BENCH_KEEP=1, BENCH_NO_WAIT=1)
// Without --url it starts its own cluster (initdb in a temp folder, as test/setup/postgres.ts does; as
// root, initdb and postgres run as the postgres user) and removes it at the end; with --url it uses that database and creates
// public.big there unless a table of that name with --rows rows exists. --keep keeps the last outputs.
//
// MB = 10^6 bytes; throughput = the CSV bytes psql produces (uncompressed, measured once, untimed)
// / wall-clock seconds of the whole command (takeout's Node startup counts). Both sides use the same
// session settings (TimeZone UTC, DateStyle ISO, YMD, …), so the CSV takeout compresses is byte for
// byte what psql prints. The two are interleaved and their order alternates from run to run; medians.
// CPU and peak RSS come from /usr/bin/time (for the pipeline: psql + pigz together, RSS of the larger);
// the server's CPU (the COPY backend) from the postmaster's reaped children, when the cluster is ours.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pgFreeEnv, startCluster } from './pg-cluster.mjs';
import {
  OUT, ROOT, cleanupPaths, disturbed, firstLine, fmtMB, folderBytes, log, lpad, mb, measureQuietly, median, note, pad, parseSummary, run,
  sleep, snapshotBuild, tail, warnIfStaleBuild,
 parseBenchArgs } from './lib.mjs';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
/** The session takeout sets (src/sources/postgres.ts), given to psql too. */
const PG_SESSION = { PGTZ: 'UTC', PGDATESTYLE: 'ISO, YMD', PGOPTIONS: '-c IntervalStyle=postgres -c extra_float_digits=1' };
const COPY = '\\copy (SELECT * FROM public.big) to stdout csv force quote *';

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  return parseBenchArgs(argv, {
    script: import.meta.url,
    spec: {
      '--rows': { key: 'rows', type: 'number', env: 'BENCH_PG_ROWS', default: 7_000_000 },
      '--runs': { key: 'runs', type: 'number', env: 'BENCH_RUNS', default: 3 },
      '--url': { key: 'url', type: 'string', env: 'BENCH_PG_URL' },
      '--keep': { key: 'keep', type: 'flag', env: 'BENCH_KEEP' },
      '--no-wait': { key: 'noWait', type: 'flag', env: 'BENCH_NO_WAIT' },
    },
    check: (o) =>
      !(Number.isInteger(o.rows) && o.rows > 0) ? '--rows must be a positive integer'
      : !(Number.isInteger(o.runs) && o.runs > 0) ? '--runs must be a positive integer'
      : undefined,
  });
}

// ---------------------------------------------------------------- processes

/** The cluster this script started ({ url, dir, child, version, stop }). */
let cluster;

/** CPU seconds of a process and its reaped children (the postmaster's exited backends), from /proc/<pid>/stat. */
function treeCpu(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/**
 * lib.mjs's run() with the server's share: the CPU the PostgreSQL backends used meanwhile (they exit
 * with their connection and are reaped by the postmaster) as `serverCpu`, and not counted in `otherCpu`.
 */
async function runMeasured(cmd, args, env) {
  const s0 = cluster ? treeCpu(cluster.child.pid) : undefined;
  const r = await run(cmd, args, { env, measure: true });
  const s1 = cluster ? treeCpu(cluster.child.pid) : undefined;
  if (s0 !== undefined && s1 !== undefined) {
    r.serverCpu = s1 - s0;
    if (r.otherCpu !== undefined) r.otherCpu = Math.max(0, r.otherCpu - r.serverCpu);
  }
  return r;
}

/** Other benchmarks of this repository running now (their command lines), from pgrep. */
function otherBenchmarks() {
  const r = spawnSync('pgrep', ['-af', 'bench/(merge|export)\\.mjs'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => l.trim() !== '' && !l.startsWith(`${process.pid} `));
}

async function waitForOtherBenchmarks() {
  const maxMs = 60 * 60_000;
  const t0 = Date.now();
  let others = otherBenchmarks();
  if (others.length === 0) return;
  log(`waiting for other benchmarks to finish (up to ${maxMs / 60_000} min):`);
  for (const line of others) note(line.slice(0, 160));
  while (others.length > 0 && Date.now() - t0 < maxMs) {
    await sleep(10_000);
    others = otherBenchmarks();
  }
  if (others.length > 0) note('other benchmarks are still running: measuring anyway (results may be disturbed)');
  else note(`waited ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
}

// ---------------------------------------------------------------- the cluster (as test/setup/postgres.ts)

/** About 170 bytes of CSV a row: bigint, uuid, timestamptz, numeric, text with commas/quotes/newlines, jsonb. */
const CREATE = (rows) => `
BEGIN;
DROP TABLE IF EXISTS public.big;
CREATE TABLE public.big (id bigint NOT NULL, uid uuid NOT NULL, created_at timestamptz NOT NULL, amount numeric(14,2), note text, doc jsonb);
INSERT INTO public.big
SELECT g,
       md5(g::text)::uuid,
       timestamptz '2020-01-01 00:00:00+00' + (g::bigint * 7919 % 157680000) * interval '1 second' + (g % 1000) * interval '1 millisecond',
       CASE WHEN g % 50 = 0 THEN NULL ELSE round(((g * 2654435761) % 100000000) / 100.0 - 250000, 2) END,
       CASE g % 10 WHEN 0 THEN E'said "hello", then\\nleft' WHEN 1 THEN '' WHEN 2 THEN NULL
            ELSE 'customer ' || (g % 50000) || ', order ' || g || ' Žluťoučký' END,
       jsonb_build_object('k', g % 100, 's', 'v' || (g % 7), 'a', jsonb_build_array(g % 3, 'q"x', g % 2 = 0))
  FROM generate_series(1, ${rows}) g;
COMMIT;`;

async function ensureTable(url, rows) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const exists = await client.query("SELECT to_regclass('public.big') IS NOT NULL AS ok");
    if (exists.rows[0].ok) {
      const n = await client.query('SELECT count(*)::bigint AS n FROM public.big');
      if (Number(n.rows[0].n) === rows) {
        log(`table: reusing public.big (${rows.toLocaleString('en-US')} rows)`);
        return await tableInfo(client);
      }
    }
    process.stdout.write(`table: creating public.big with ${rows.toLocaleString('en-US')} rows … `);
    const t0 = performance.now();
    await client.query(CREATE(rows));
    await client.query('VACUUM (ANALYZE, FREEZE) public.big');
    log(`${((performance.now() - t0) / 1000).toFixed(1)} s (with VACUUM ANALYZE)`);
    return await tableInfo(client);
  } finally {
    await client.end();
  }
}

async function tableInfo(client) {
  const r = await client.query("SELECT pg_total_relation_size('public.big')::bigint AS bytes, current_setting('server_version') AS version");
  return { bytes: Number(r.rows[0].bytes), serverVersion: r.rows[0].version };
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    process.stderr.write('bench/pg-export.mjs: dist/ is missing: run `npm run build` first.\n');
    process.exit(1);
  }
  for (const tool of ['psql', 'pigz']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      process.stderr.write(`bench/pg-export.mjs: ${tool} is not on PATH (apt-get install -y ${tool === 'psql' ? 'postgresql-client' : 'pigz'}).\n`);
      process.exit(1);
    }
  }
  const started = Date.now();
  await mkdir(OUT, { recursive: true });
  log(`takeout PostgreSQL export benchmark — ${new Date().toISOString()}`);
  const cpu = cpus();
  log(`machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
  const git = firstLine('git', ['-C', ROOT, 'log', '-1', '--format=%h %s']);
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout?.trim();
  log(`takeout: ${git ?? '?'}${dirty ? ' (src/ has uncommitted changes)' : ''}`);
  warnIfStaleBuild();
  log(`settings: --rows ${o.rows}, --runs ${o.runs}${o.url ? ', --url (given)' : ''}${o.keep ? ', --keep' : ''}`);
  await waitForOtherBenchmarks();
  const build = await snapshotBuild();

  let url = o.url;
  if (!url) {
    const c = (cluster = await startCluster());
    url = c.url;
    log(`cluster: ${c.version ?? 'postgres'} on ${url} (fsync off), data in ${c.dir}`);
  }
  const table = await ensureTable(url, o.rows);
  log(`table: public.big is ${fmtMB(table.bytes)} on disk (server ${table.serverVersion})`);
  log(`tools: ${firstLine('psql', ['--version'])}; ${firstLine('pigz', ['--version'])}; takeout ${firstLine(process.execPath, [build.bin, '--version']) ?? '?'}`);

  // The input size: the CSV psql prints (untimed; also warms the page cache for both tools).
  const psqlEnv = pgFreeEnv(PG_SESSION);
  process.stdout.write('input: measuring the CSV psql prints … ');
  const probe = await run('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', COPY], { stdoutTo: 'count', env: psqlEnv });
  if (probe.code !== 0) throw new Error(`psql failed:\n${probe.stderr}`);
  const inputBytes = probe.outBytes;
  log(`${fmtMB(inputBytes)} in ${probe.seconds.toFixed(1)} s (psql to a pipe, no compression)`);
  if (inputBytes < 1e9 || table.bytes < 1e9) note(`warning: the table is under 1 GB (${fmtMB(inputBytes)} CSV, ${fmtMB(table.bytes)} on disk): raise --rows`);
  log();

  const tools = [
    { name: 'takeout', kind: 'takeout' },
    { name: 'psql | pigz -6 -p2', kind: 'psql' },
  ];
  const results = new Map(tools.map((t) => [t.name, { times: [], cpu: [], serverCpu: [], rss: [], noisy: 0, discarded: 0, failures: [], outBytes: undefined, internal: [] }]));
  const runTag = `${Date.now().toString(36)}-${process.pid}`;
  for (let r = 0; r < o.runs; r++) {
    const order = tools.map((_, i) => tools[(i + r) % tools.length]);
    log(`run ${r + 1}/${o.runs}: ${order.map((t) => t.name).join(' → ')}`);
    for (const tool of order) {
      const res = results.get(tool.name);
      const keep = o.keep && r === o.runs - 1;
      // A measurement other processes disturbed is repeated (up to twice) after waiting for quiet again.
      const { outcome, discarded } = await measureQuietly(
        tool.name,
        (attempt) => runTool(tool, { url, bin: build.bin, psqlEnv, tag: `${runTag}-r${r + 1}-a${attempt}`, keep, inputBytes, rows: o.rows }),
        { noWait: o.noWait },
      );
      res.discarded += discarded;
      if (!outcome.ok) {
        res.failures.push(outcome.error);
        log(`  ${pad(tool.name, 20)} FAILED: ${outcome.error}`);
        if (outcome.detail) log(outcome.detail);
        continue;
      }
      const u = outcome.usage;
      res.times.push(u.seconds);
      res.outBytes = outcome.outBytes;
      if (u.cpu !== undefined) res.cpu.push(u.cpu);
      if (u.serverCpu !== undefined) res.serverCpu.push(u.serverCpu);
      if (u.maxRssKb !== undefined) res.rss.push(u.maxRssKb);
      if (outcome.internalMs !== undefined) res.internal.push(outcome.internalMs);
      const noisy = disturbed(u, u.seconds);
      if (noisy) res.noisy++;
      const usage = u.cpu !== undefined ? `  [cpu ${u.cpu.toFixed(1)} s${u.serverCpu !== undefined ? `, server ${u.serverCpu.toFixed(1)} s` : ''}, other ${(u.otherCpu ?? 0).toFixed(1)} s${noisy ? ' NOISY' : ''}]` : '';
      log(`  ${pad(tool.name, 20)} ${lpad(u.seconds.toFixed(2), 7)} s  ${lpad((mb(inputBytes) / u.seconds).toFixed(1), 6)} MB/s  → ${fmtMB(outcome.outBytes)}${outcome.extra ? `, ${outcome.extra}` : ''}${usage}`);
    }
  }

  log();
  log(`results: public.big, ${o.rows.toLocaleString('en-US')} rows, ${fmtMB(inputBytes)} of CSV (${fmtMB(table.bytes)} on disk), median of ${o.runs} run${o.runs === 1 ? '' : 's'}, MB = 10^6 bytes`);
  const header = `  ${pad('tool', 21)}${lpad('median s', 9)}${lpad('MB/s', 8)}${lpad('output', 11)}${lpad('ratio', 7)}${lpad('CPU s', 7)}${lpad('srv CPU', 8)}${lpad('RSS MB', 8)}   all runs (s)`;
  log(header);
  log(`  ${'-'.repeat(header.length - 2)}`);
  const med = {};
  for (const t of tools) {
    const res = results.get(t.name);
    const m = res.times.length ? median(res.times) : undefined;
    med[t.name] = m;
    const all = res.times.map((s) => s.toFixed(2)).join(', ') + (res.failures.length ? ` (${res.failures.length} failed)` : '') + (res.noisy ? ` (${res.noisy} disturbed by other processes)` : '') +
      (res.discarded ? ` (${res.discarded} disturbed run${res.discarded === 1 ? '' : 's'} discarded and repeated)` : '');
    log(
      `  ${pad(t.name, 21)}${lpad(m !== undefined ? m.toFixed(2) : '—', 9)}${lpad(m !== undefined ? (mb(inputBytes) / m).toFixed(1) : '—', 8)}` +
        `${lpad(res.outBytes !== undefined ? fmtMB(res.outBytes) : '?', 11)}${lpad(res.outBytes ? `${(inputBytes / res.outBytes).toFixed(2)}×` : '?', 7)}` +
        `${lpad(res.cpu.length ? median(res.cpu).toFixed(1) : '?', 7)}${lpad(res.serverCpu.length ? median(res.serverCpu).toFixed(1) : '?', 8)}` +
        `${lpad(res.rss.length ? String(Math.round((Math.max(...res.rss) * 1024) / 1e6)) : '?', 8)}   ${all}`,
    );
  }
  const tk = results.get('takeout');
  if (tk.internal.length) {
    const ms = median(tk.internal);
    note(`takeout as it reports itself (without process start/exit): ${(ms / 1000).toFixed(2)} s, ${(mb(inputBytes) / (ms / 1000)).toFixed(1)} MB/s`);
  }
  note('CPU s = user + system seconds of the command (psql and pigz together), srv CPU = the PostgreSQL backend serving the COPY, RSS MB = peak resident set of the largest process; medians, RSS the largest run');
  note(`psql and takeout both read in TimeZone UTC, DateStyle ISO, YMD, IntervalStyle postgres, extra_float_digits 1, so both compress the same ${fmtMB(inputBytes)}`);
  const ratio = med.takeout !== undefined && med['psql | pigz -6 -p2'] !== undefined ? med['psql | pigz -6 -p2'] / med.takeout : undefined;
  log();
  log(`acceptance (${o.runs} run${o.runs === 1 ? '' : 's'}, finished in ${((Date.now() - started) / 60000).toFixed(1)} min):`);
  log(`takeout table export / psql \\copy | pigz -6 -p2 = ${ratio === undefined ? 'n/a' : `${ratio.toFixed(2)}×`} (target ≥ 1.0, > 1 means takeout is faster)${ratio === undefined ? '' : ratio >= 1.0 ? '  ok' : '  MISSED'}`);

  if (cluster) await cluster.stop();
  cluster = undefined;
  await rm(build.dir, { recursive: true, force: true });
  cleanupPaths.delete(build.dir);
  process.exitCode = tools.some((t) => results.get(t.name).failures.length > 0) ? 1 : 0;
}

async function runTool(tool, { url, bin, psqlEnv, tag, keep, inputBytes, rows }) {
  try {
    if (tool.kind === 'takeout') {
      const dest = path.join(OUT, `pg-export-takeout-${tag}`);
      await rm(dest, { recursive: true, force: true });
      cleanupPaths.add(dest);
      try {
        const r = await runMeasured(process.execPath, [bin, 'table', 'export', 'public.big', '--source', url, '--dest', dest, '--no-progress', '--json'], pgFreeEnv());
        const summary = parseSummary(r.stdout);
        if (r.code !== 0 || !summary) return { ok: false, error: `takeout exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
        if (summary.status !== 'complete' || summary.rows !== rows) return { ok: false, error: `takeout: status ${summary.status}, ${summary.rows} rows (expected ${rows})` };
        if (summary.rawBytes !== inputBytes) return { ok: false, error: `takeout read ${summary.rawBytes} bytes of CSV, psql printed ${inputBytes}` };
        return {
          ok: true,
          seconds: r.seconds,
          usage: r,
          outBytes: summary.bytes,
          internalMs: summary.durationMs,
          extra: `${summary.slices} slice${summary.slices === 1 ? '' : 's'} (${fmtMB(await folderBytes(dest))} with metadata), takeout says ${(summary.durationMs / 1000).toFixed(2)} s`,
        };
      } finally {
        if (!keep) {
          await rm(dest, { recursive: true, force: true });
          cleanupPaths.delete(dest);
        }
      }
    }
    const file = path.join(OUT, `pg-export-psql-${tag}.csv.gz`);
    cleanupPaths.add(file);
    try {
      // pipefail: a failing psql fails the measurement, not just pigz.
      const script = 'set -o pipefail; psql "$BENCH_URL" -X -q -v ON_ERROR_STOP=1 -c "$BENCH_COPY" | pigz -6 -p2 > "$BENCH_FILE"';
      const r = await runMeasured('bash', ['-c', script], { ...psqlEnv, BENCH_URL: url, BENCH_COPY: COPY, BENCH_FILE: file });
      if (r.code !== 0) return { ok: false, error: `psql | pigz exited ${r.code ?? r.signal}`, detail: tail(r.stderr) };
      const bytes = (await stat(file)).size;
      return { ok: true, seconds: r.seconds, usage: r, outBytes: bytes };
    } finally {
      if (!keep) {
        await rm(file, { force: true });
        cleanupPaths.delete(file);
      }
    }
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

main().catch(async (error) => {
  process.stderr.write(`bench/pg-export.mjs: ${error instanceof Error ? error.stack : String(error)}\n`);
  await cluster?.stop().catch(() => undefined);
  for (const p of cleanupPaths) await rm(p, { recursive: true, force: true });
  process.exit(1);
});
