#!/usr/bin/env node
// Restore benchmark: `takeout restore TAKEOUT --to postgres://…` of a generated table against the reference the
// issue names, `gunzip -c <the same slices> | psql -c "\copy … from stdin csv"` into the same empty table, side by
// side in a throwaway cluster (fsync off, as bench/pg-cluster.mjs starts it).
//
//   node bench/restore-pg.mjs [--size MB=1024] [--runs N=3] [--no-wait]
//   (or BENCH_SIZE, BENCH_RUNS, BENCH_NO_WAIT=1)
// The input is the export benchmark's generated CSV (bench/generate.mjs), taken out once (untimed) with default
// settings; every run restores into a fresh database. takeout also checks each slice's size, sha256 and rows
// against the manifest and commits the table in one transaction; the reference checks nothing. Both are
// interleaved, their order alternating; medians. MB = 10^6 bytes of CSV (the input file), wall-clock seconds of
// the whole command (takeout's Node start-up included).
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { pgFreeEnv, startCluster } from './pg-cluster.mjs';
import {
  alternatingRuns, cleanEnv, cleanupPaths, ensureInput, firstLine, fmtMB, log, mb, measureQuietly, median, note, noteOutcome, OUT, parseBenchArgs, run, sizeRunsSpec, snapshotBuild, warnIfStaleBuild,
} from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  ...sizeRunsSpec(1024),
});

const TABLE = 'in.c-bench.data';
const QUALIFIED = '"in.c-bench"."data"';

async function sql(url, text) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

function databaseUrl(clusterUrl, name) {
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main() {
  warnIfStaleBuild();
  const build = await snapshotBuild();
  const input = await ensureInput(o.size);
  const inputBytes = input.meta.bytes;
  const takeoutDir = path.join(OUT, `restore-src-${o.size}`);
  cleanupPaths.add(takeoutDir);
  await rm(takeoutDir, { recursive: true, force: true });
  const exported = await run(process.execPath, [build.bin, 'run', '--source', input.dir, '--dest', takeoutDir, '-q', '--no-progress'], { env: cleanEnv() });
  if (exported.code !== 0) throw new Error(`takeout run failed:\n${exported.stderr}`);
  const manifest = JSON.parse(await readFile(path.join(takeoutDir, 'takeout-manifest.json'), 'utf8'));
  const table = manifest.tables.find((t) => t.id === TABLE);
  const slices = table.slices.map((s) => path.join(takeoutDir, s.key));
  const columns = table.columns;
  log(`takeout: ${fmtMB(inputBytes)} CSV, ${table.rows.toLocaleString('en-US')} rows in ${slices.length} slices (${fmtMB(table.bytes)} stored)`);

  const cluster = await startCluster();
  log(`cluster: ${cluster.version ?? 'postgres'} (fsync off); psql: ${firstLine('psql', ['--version']) ?? '?'}; gzip: ${firstLine('gzip', ['--version']) ?? '?'}`);
  const env = pgFreeEnv();
  const results = { takeout: [], reference: [] };
  let n = 0;
  try {
    for (const tool of alternatingRuns(o.runs, ['takeout', 'reference'])) {
      const { outcome } = await measureQuietly(tool, async () => {
        const name = `restore_${tool}_${n++}`;
        await sql(cluster.url, `CREATE DATABASE ${name}`);
        const url = databaseUrl(cluster.url, name);
        let result;
        if (tool === 'takeout') {
          result = await run(process.execPath, [build.bin, 'restore', takeoutDir, '--to', url, '--include', TABLE, '-q', '--no-progress'], { env, measure: true });
        } else {
          // The same empty table (every column text, as takeout makes it without type metadata), then the pipe.
          await sql(url, `CREATE SCHEMA "in.c-bench"; CREATE TABLE ${QUALIFIED} (${columns.map((c) => `"${c}" text`).join(', ')})`);
          const quoted = slices.map((s) => `'${s}'`).join(' ');
          result = await run('sh', ['-c', `gzip -dc ${quoted} | psql '${url}' -X -q -v ON_ERROR_STOP=1 -c '\\copy ${QUALIFIED.replace(/'/g, "'\\''")} from stdin csv'`], { env, measure: true });
        }
        const count = Number((await sql(url, `SELECT count(*) AS n FROM ${QUALIFIED}`)).rows[0].n);
        await sql(cluster.url, `DROP DATABASE ${name}`);
        if (result.code !== 0) return { ok: false, error: result.stderr.trim().split('\n').pop() };
        if (count !== table.rows) return { ok: false, error: `${count} rows loaded, ${table.rows} expected` };
        return { ok: true, seconds: result.seconds, usage: result };
      }, { noWait: o.noWait });
      noteOutcome(results, tool, outcome, mb(inputBytes));
    }
  } finally {
    await cluster.stop();
    await rm(takeoutDir, { recursive: true, force: true });
    await rm(build.dir, { recursive: true, force: true });
  }
  log();
  log(`results: ${fmtMB(inputBytes)} CSV into PostgreSQL, median of ${o.runs} run${o.runs === 1 ? '' : 's'}`);
  const t = median(results.takeout);
  const ref = median(results.reference);
  log(`  takeout restore          ${t.toFixed(2)} s  ${(mb(inputBytes) / t).toFixed(1)} MB/s`);
  log(`  gunzip | psql \\copy      ${ref.toFixed(2)} s  ${(mb(inputBytes) / ref).toFixed(1)} MB/s`);
  log(`  takeout vs the reference: ${(ref / t).toFixed(2)}× the throughput (target ≥ 0.8×)`);
  note('"other" is the CPU the rest of the machine (the PostgreSQL backend included) used meanwhile');
}

main().catch((error) => {
  process.stderr.write(`bench/restore-pg.mjs: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
