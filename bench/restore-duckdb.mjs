#!/usr/bin/env node
// Restore benchmark: `takeout restore TAKEOUT --to duckdb:FILE` of a generated table against DuckDB's own
// limit on this machine, `INSERT INTO t SELECT * FROM read_csv('<the same slices, gunzipped beforehand>', …)`
// into the same empty table through @duckdb/node-api (the duckdb CLI is not a dependency), side by side.
//
//   node bench/restore-duckdb.mjs [--size MB=200] [--runs N=3] [--baseline DIR] [--no-wait]
//   (or BENCH_SIZE, BENCH_RUNS, BENCH_BASELINE, BENCH_NO_WAIT=1)
// The input is the export benchmark's generated CSV (bench/generate.mjs), taken out once (untimed) with default
// settings; every run restores into a new file. takeout streams each gzipped slice through its checks (size,
// sha256, rows against the manifest) into DuckDB's CSV reader and commits the table in one transaction; the
// reference reads plain CSV files gunzipped before the clock starts (untimed), with every option given, and
// checks nothing. `--baseline DIR` also times another build's `DIR/bin/takeout.js` (e.g. an older load path,
// built in a scratch folder), the same way. Interleaved, the order rotating; medians. MB = 10^6 bytes of CSV
// (the input file), wall-clock seconds of the whole command (Node's start-up included in both).
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import {
  cleanEnv, cleanupPaths, ensureInput, fmtMB, log, mb, measureQuietly, median, note, noteOutcome, OUT, parseBenchArgs, run, sizeRunsSpec, snapshotBuild, warnIfStaleBuild, withSpec,
} from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  ...withSpec(sizeRunsSpec(200), { '--baseline': { key: 'baseline', type: 'string', env: 'BENCH_BASELINE' } }),
});

const TABLE = 'in.c-bench.data';

/**
 * The reference, run as its own Node process like takeout: a new DuckDB file, the table (every column
 * VARCHAR, as takeout makes it without type metadata), one INSERT … FROM read_csv of the plain files in a
 * transaction; prints the rows it inserted.
 */
const REFERENCE = `
const [file, columnsJson, ...csvs] = process.argv.slice(1);
const { DuckDBInstance } = await import('@duckdb/node-api');
const columns = JSON.parse(columnsJson);
const q = (s) => '"' + s.replace(/"/g, '""') + '"';
const lit = (s) => "'" + s.replace(/'/g, "''") + "'";
const instance = await DuckDBInstance.create(file);
const c = await instance.connect();
await c.run('CREATE SCHEMA "in.c-bench"');
await c.run('CREATE TABLE "in.c-bench"."data" (' + columns.map((n) => q(n) + ' VARCHAR').join(', ') + ')');
await c.run('BEGIN TRANSACTION');
const spec = '{' + columns.map((n, i) => "'c" + i + "': 'VARCHAR'").join(', ') + '}';
const r = await c.run('INSERT INTO "in.c-bench"."data" SELECT * FROM read_csv([' + csvs.map(lit).join(', ') + "], header = false, auto_detect = false, columns = " + spec + ", delim = ',', quote = '\\"', escape = '\\"', allow_quoted_nulls = false)");
await c.run('COMMIT');
c.closeSync();
instance.closeSync();
process.stdout.write(String(r.rowsChanged));
`;

async function count(file) {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  try {
    const c = await instance.connect();
    const n = Number((await c.runAndReadAll('SELECT count(*) FROM "in.c-bench"."data"')).getRowsJson()[0][0]);
    c.closeSync();
    return n;
  } finally {
    instance.closeSync();
  }
}

async function main() {
  warnIfStaleBuild();
  const build = await snapshotBuild();
  const input = await ensureInput(o.size);
  const inputBytes = input.meta.bytes;
  const work = path.join(OUT, `restore-duckdb-${process.pid}`);
  cleanupPaths.add(work);
  const takeoutDir = path.join(work, 'takeout');
  const exported = await run(process.execPath, [build.bin, 'run', '--source', input.dir, '--dest', takeoutDir, '-q', '--no-progress'], { env: cleanEnv() });
  if (exported.code !== 0) throw new Error(`takeout run failed:\n${exported.stderr}`);
  const manifest = JSON.parse(await readFile(path.join(takeoutDir, 'takeout-manifest.json'), 'utf8'));
  const table = manifest.tables.find((t) => t.id === TABLE);
  const plain = [];
  for (const [i, s] of table.slices.entries()) {
    const file = path.join(work, `slice_${i}.csv`);
    await pipeline(createReadStream(path.join(takeoutDir, s.key)), createGunzip(), createWriteStream(file));
    plain.push(file);
  }
  log(`takeout: ${fmtMB(inputBytes)} CSV, ${table.rows.toLocaleString('en-US')} rows in ${table.slices.length} slices (${fmtMB(table.bytes)} stored); the reference reads them gunzipped`);
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const version = await DuckDBInstance.create(':memory:').then(async (i) => {
    const c = await i.connect();
    const v = (await c.runAndReadAll('SELECT version()')).getRowsJson()[0][0];
    c.closeSync();
    i.closeSync();
    return v;
  });
  log(`DuckDB ${version} through @duckdb/node-api; ${(await import('node:os')).availableParallelism()} cores`);

  const tools = ['takeout', 'reference', ...(o.baseline ? ['baseline'] : [])];
  const results = Object.fromEntries(tools.map((t) => [t, []]));
  let n = 0;
  try {
    for (let r = 0; r < o.runs; r++) {
      const order = tools.map((_, i) => tools[(i + r) % tools.length]);
      log(`run ${r + 1}/${o.runs}: ${order.join(' → ')}`);
      for (const tool of order) {
        const { outcome } = await measureQuietly(tool, async () => {
          const file = path.join(work, `db_${tool}_${n++}.duckdb`);
          let result;
          if (tool === 'reference') {
            result = await run(process.execPath, ['--input-type=module', '-e', REFERENCE, file, JSON.stringify(table.columns), ...plain], { measure: true });
          } else {
            const bin = tool === 'takeout' ? build.bin : path.join(path.resolve(o.baseline), 'bin', 'takeout.js');
            result = await run(process.execPath, [bin, 'restore', takeoutDir, '--to', `duckdb:${file}`, '--include', TABLE, '-q', '--no-progress'], { measure: true });
          }
          const rows = result.code === 0 ? await count(file) : 0;
          await rm(file, { force: true });
          await rm(`${file}.wal`, { force: true });
          if (result.code !== 0) return { ok: false, error: result.stderr.trim().split('\n').pop() };
          if (rows !== table.rows) return { ok: false, error: `${rows} rows loaded, ${table.rows} expected` };
          return { ok: true, seconds: result.seconds, usage: result };
        }, { noWait: o.noWait });
        noteOutcome(results, tool, outcome, mb(inputBytes));
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(build.dir, { recursive: true, force: true });
  }
  log();
  log(`results: ${fmtMB(inputBytes)} CSV into DuckDB, median of ${o.runs} run${o.runs === 1 ? '' : 's'}`);
  const t = median(results.takeout);
  const ref = median(results.reference);
  log(`  takeout restore              ${t.toFixed(2)} s  ${(mb(inputBytes) / t).toFixed(1)} MB/s`);
  log(`  read_csv of gunzipped files  ${ref.toFixed(2)} s  ${(mb(inputBytes) / ref).toFixed(1)} MB/s`);
  if (o.baseline) {
    const b = median(results.baseline);
    log(`  baseline (${o.baseline})  ${b.toFixed(2)} s  ${(mb(inputBytes) / b).toFixed(1)} MB/s`);
    log(`  takeout vs the baseline: ${(b / t).toFixed(2)}× as fast`);
  }
  log(`  takeout vs the reference: ${(ref / t).toFixed(2)}× the throughput (DuckDB's own limit here: 1×)`);
  note('"other" is the CPU the rest of the machine used meanwhile; DuckDB runs inside each process (its CPU is in "cpu")');
}

main().catch((error) => {
  process.stderr.write(`bench/restore-duckdb.mjs: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
