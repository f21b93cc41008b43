#!/usr/bin/env node
// Dataset export benchmark: `takeout dataset export public.items --layout dynamodb` (DYNAMODB_JSON, to a local
// folder) from PostgreSQL, in items per second (target ≥ 100,000 items/s for 5 M rows), against the
// reference a user has without takeout: PostgreSQL itself building the DynamoDB JSON lines
// (`COPY (SELECT json_build_object('Item', …))` through psql, gzipped by `pigz -6 -p2`).
//
//   node bench/dataset-export.mjs [--rows N=5000000] [--runs N=3] [--url postgres://…]
//   (or BENCH_PG_ROWS, BENCH_RUNS, BENCH_PG_URL)
// Without --url it starts a throwaway cluster (bench/pg-cluster.mjs) and removes it at the end.
// The table has 8 typed columns (bigint key, text, numeric, boolean, timestamptz, integer, jsonb, nullable
// text). Throughput = rows / wall-clock seconds of the whole command (Node startup counts); medians.
import { spawnSync } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pgFreeEnv, startCluster } from './pg-cluster.mjs';
import { OUT, cleanupPaths, fmtMB, log, median, parseBenchArgs, run, snapshotBuild } from './lib.mjs';

const o = parseBenchArgs(process.argv.slice(2), {
  script: import.meta.url,
  spec: {
    '--rows': { key: 'rows', type: 'number', env: 'BENCH_PG_ROWS', default: 5_000_000 },
    '--runs': { key: 'runs', type: 'number', env: 'BENCH_RUNS', default: 3 },
    '--url': { key: 'url', type: 'string', env: 'BENCH_PG_URL', default: undefined },
  },
  check: (v) => (!(v.rows > 0) ? '--rows must be positive' : !(v.runs >= 1) ? '--runs must be at least 1' : undefined),
});

const TABLE = 'public.items';
const CREATE = (rows) => `
BEGIN;
DROP TABLE IF EXISTS ${TABLE};
CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2), active boolean, updated_at timestamptz NOT NULL,
  qty integer, attrs jsonb, note text);
INSERT INTO ${TABLE}
SELECT g, 'item ' || g, (g % 100000) / 100.0, g % 3 = 0, timestamptz '2025-01-01' + (g || ' seconds')::interval, g % 1000,
       CASE WHEN g % 4 = 0 THEN jsonb_build_object('color', 'c' || (g % 7), 'sizes', jsonb_build_array(g % 5, g % 9)) END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'note "' || (g % 97) || '"' END
  FROM generate_series(1, ${rows}) g;
COMMIT;`;

/** The reference: PostgreSQL builds each DynamoDB JSON line itself (jsonb columns as strings: JSON has no typed map). */
const REFERENCE_SQL = `COPY (SELECT json_build_object('Item', json_strip_nulls(json_build_object(
  'id', json_build_object('N', id::text), 'name', json_build_object('S', name), 'price', json_build_object('N', price::text),
  'active', json_build_object('BOOL', active), 'updated_at', json_build_object('S', updated_at::text), 'qty', json_build_object('N', qty::text),
  'attrs', CASE WHEN attrs IS NULL THEN json_build_object('NULL', true) ELSE json_build_object('S', attrs::text) END,
  'note', CASE WHEN note IS NULL THEN json_build_object('NULL', true) ELSE json_build_object('S', note) END)))::text FROM ${TABLE})
  TO STDOUT (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')`;

async function ensureTable(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const exists = await client.query(`SELECT to_regclass('${TABLE}') IS NOT NULL AS ok`);
    if (exists.rows[0].ok && Number((await client.query(`SELECT count(*)::bigint AS n FROM ${TABLE}`)).rows[0].n) === o.rows) return;
    process.stdout.write(`table: creating ${TABLE} with ${o.rows.toLocaleString('en-US')} rows … `);
    const t0 = performance.now();
    await client.query(CREATE(o.rows));
    await client.query(`VACUUM (ANALYZE, FREEZE) ${TABLE}`);
    log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    await client.end();
  }
}

async function folderSize(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath ?? entry.path, entry.name))).size;
  }
  return total;
}

async function main() {
  const { bin } = await snapshotBuild();
  let cluster;
  let url = o.url;
  if (!url) {
    cluster = await startCluster();
    url = cluster.url;
    log(`cluster: ${cluster.version ?? 'postgres'} (fsync off)`);
  }
  try {
    await ensureTable(url);
    const takeoutTimes = [];
    const referenceTimes = [];
    let items = 0;
    let bytes = 0;
    let referenceBytes = 0;
    for (let i = 0; i < o.runs; i++) {
      const dest = path.join(OUT, `dataset-export-${process.pid}`);
      await rm(dest, { recursive: true, force: true });
      cleanupPaths.add(dest);
      const t0 = performance.now();
      const result = await run(process.execPath, [bin, 'dataset', 'export', TABLE, '--source', url, '--dest', dest, '--layout', 'dynamodb', '--json', '--no-progress'], { env: pgFreeEnv() });
      takeoutTimes.push((performance.now() - t0) / 1000);
      if (result.code !== 0) throw new Error(`takeout failed (exit ${result.code}): ${result.stderr}`);
      const done = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === 'dataset:done');
      items = done.job.itemCount;
      bytes = await folderSize(dest);
      await rm(dest, { recursive: true, force: true });

      const file = path.join(OUT, `dataset-export-ref-${process.pid}.json.gz`);
      cleanupPaths.add(file);
      const t1 = performance.now();
      const ref = spawnSync('sh', ['-c', `psql "$URL" -X -q -c "$SQL" | pigz -6 -p2 > "$OUTFILE"`], { env: pgFreeEnv({ URL: url, SQL: REFERENCE_SQL.replace(/\n/g, ' '), OUTFILE: file }), encoding: 'utf8' });
      referenceTimes.push((performance.now() - t1) / 1000);
      if (ref.status !== 0) throw new Error(`reference failed: ${ref.stderr}`);
      referenceBytes = (await stat(file)).size;
      await rm(file, { force: true });
      log(`run ${i + 1}: takeout ${takeoutTimes.at(-1).toFixed(2)} s, psql json_build_object | pigz ${referenceTimes.at(-1).toFixed(2)} s`);
    }
    const t = median(takeoutTimes);
    const r = median(referenceTimes);
    log('');
    log(`takeout dataset export (DYNAMODB_JSON): ${items.toLocaleString('en-US')} items in ${t.toFixed(2)} s = ${Math.round(items / t).toLocaleString('en-US')} items/s (target ≥ 100,000) ${items / t >= 100_000 ? 'ok' : 'MISSED'}; ${fmtMB(bytes)} written`);
    log(`reference (PostgreSQL builds the JSON, pigz -6 -p2): ${r.toFixed(2)} s = ${Math.round(o.rows / r).toLocaleString('en-US')} rows/s; ${fmtMB(referenceBytes)}`);
    log(`ratio: takeout is ${(r / t).toFixed(2)}× the reference's speed`);
  } finally {
    await cluster?.stop();
  }
}

await main();
