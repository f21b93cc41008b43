import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parse } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { clevertapTs } from '../src/formats/clevertap.js';
import { clevertapWindow, eventMillis, fileEventName } from '../src/layouts/clevertap.js';
import { errorLines, localStore, removeTempFolders, runCli, s3Store, tempFolder, type Store, exportIdOf } from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * CleverTap's event export layout, read back by readers that share nothing with the writers: JSON.parse per
 * line, csv-parse, fast-xml-parser, DuckDB's Parquet reader; MD5 for the manifest; job records through the CLI.
 */

const endpoint = inject('s3Endpoint');
const pgUrl = inject('pgUrl');
const client = rawS3Client(endpoint);
const s3Args = s3CliArgs(endpoint);
const schema = `ct_${process.pid}`;
const DAY_MS = 86_400_000;

let db: pg.Client;
let duck: DuckDBInstance;
let duckdb: DuckDBConnection;
let scratch: string;

beforeAll(async () => {
  db = new pg.Client({ connectionString: pgUrl });
  await db.connect();
  await db.query(`CREATE SCHEMA ${schema}`);
  duck = await DuckDBInstance.create(':memory:');
  duckdb = await duck.connect();
  scratch = await tempFolder('ct-scratch');
});

afterAll(async () => {
  await db.query(`DROP SCHEMA ${schema} CASCADE`);
  await db.end();
  duckdb?.closeSync();
  duck?.closeSync();
  client.destroy();
  await removeTempFolders();
});

/** Event names with a space, a slash, a tab, emoji, a control character and a backslash, and what the rules make of them. */
const EVENTS: Record<string, string> = {
  'App Launched': 'App-Launched',
  Charged: 'Charged',
  'Added/Removed': 'Added-Removed',
  'tab\tname': 'tab-name',
  'Nákup 🎉': 'Nákup-🎉',
  'ctl\u0001x': 'ctl?x',
  'back\\slash': 'back\\slash',
};
const RAW_NAMES = Object.keys(EVENTS);
const md5Hex = (data: Buffer): string => createHash('md5').update(data).digest('hex');


interface JobFields {
  exportId: string;
  startTime: string;
  exportFromTime: string;
  exportToTime: string;
  status: string;
  exportType: string;
  options: Record<string, unknown>;
}

interface Manifest {
  layout: string;
  exportId: string;
  exportFormat: string;
  databaseId: string;
  runTimestamp: number;
  itemCount: number;
  window: { from: string; to: string };
  files: { name: string; event: string; index: number; rows: number; bytes: number; md5: string; sha256: string }[];
}

/** One event as every format is compared: profile fields '' and NULL alike (CSV cannot tell them apart). */
interface Event {
  n: number;
  event: string;
  ts: string;
  identity: string | null;
  email: string | null;
  phone: string | null;
  name: string | null;
  os: string | null;
  amount: number | null;
  paid: boolean | null;
  cart: unknown;
  note: string | null;
}

const blank = (v: unknown): string | null => (v === undefined || v === null || v === '' ? null : String(v));

interface ReadBack {
  job: JobFields;
  manifest: Manifest;
  /** Data files by name, in the manifest's order. */
  files: { name: string; event: string; index: number; bytes: number; events: Event[] }[];
  events: Event[];
}

/** Reads an export back: the job record, `_manifest.json` (checked against the files), and every data file by format. */
async function readBack(store: Store, stdout: string): Promise<ReadBack> {
  const exportId = exportIdOf(stdout);
  const job = JSON.parse((await store.get(`takeout-exports/${exportId}.json`)).toString()) as JobFields;
  const manifest = JSON.parse((await store.get(`${exportId}/_manifest.json`)).toString()) as Manifest;
  const present = (await store.list()).filter((k) => k.startsWith(`${exportId}/`) && !k.endsWith('/_manifest.json')).map((k) => k.slice(exportId.length + 1));
  expect(present.sort()).toEqual(manifest.files.map((f) => f.name).sort());
  const files: ReadBack['files'] = [];
  for (const f of manifest.files) {
    const body = await store.get(`${exportId}/${f.name}`);
    expect(body.length).toBe(f.bytes);
    expect(md5Hex(body)).toBe(f.md5);
    const events = await parseFile(manifest.exportFormat, body, f.event);
    expect(events).toHaveLength(f.rows);
    for (const e of events) expect(e.event).toBe(f.event);
    files.push({ name: f.name, event: f.event, index: f.index, bytes: f.bytes, events });
  }
  const events = files.flatMap((f) => f.events);
  expect(manifest.itemCount).toBe(events.length);
  return { job, manifest, files, events };
}

async function parseFile(format: string, body: Buffer, series: string): Promise<Event[]> {
  switch (format) {
    case 'JSON': {
      const lines = gunzipSync(body).toString().split('\n');
      expect(lines.pop()).toBe('');
      // "The first line of the file contains the event name."
      expect(lines.shift()).toBe(series);
      return lines.map((line) => {
        const o = JSON.parse(line) as { profile: Record<string, unknown>; ts: number; eventName: string; eventProps: Record<string, unknown>; deviceInfo: Record<string, unknown> };
        expect(Object.keys(o)).toEqual(['profile', 'ts', 'eventName', 'eventProps', 'deviceInfo']);
        expect(typeof o.ts).toBe('number');
        return {
          n: Number(o.eventProps.n),
          event: o.eventName,
          ts: String(o.ts),
          identity: o.profile.identity as string | null,
          email: blank(o.profile.email),
          phone: blank(o.profile.phone),
          name: blank(o.profile.name),
          os: blank(o.deviceInfo.os),
          amount: o.eventProps.amount as number | null,
          paid: o.eventProps.paid as boolean | null,
          cart: o.eventProps.cart,
          note: o.eventProps.note as string | null,
        };
      });
    }
    case 'CSV': {
      const [header, ...rows] = parse(gunzipSync(body)) as string[][];
      expect(header).toEqual(['eventName', 'ts', 'profile.identity', 'profile.email', 'profile.phone', 'profile.name', 'deviceInfo.os', 'eventProps.n', 'eventProps.amount', 'eventProps.paid', 'eventProps.cart', 'eventProps.note']);
      return rows.map((r) => ({
        n: Number(r[7]),
        event: r[0]!,
        ts: r[1]!,
        identity: blank(r[2]),
        email: blank(r[3]),
        phone: blank(r[4]),
        name: blank(r[5]),
        os: blank(r[6]),
        amount: r[8] === '' ? null : Number(r[8]),
        paid: r[9] === '' ? null : r[9] === 'true',
        cart: r[10] === '' ? null : (JSON.parse(r[10]!) as unknown),
        note: blank(r[11]),
      }));
    }
    case 'XML': {
      const xml = gunzipSync(body).toString();
      expect(XMLValidator.validate(xml)).toBe(true);
      const parser = new XMLParser({ parseTagValue: false, trimValues: false, isArray: (name) => name === 'Event' || name === 'entry' });
      type XmlEvent = { ts: string; eventName: string; profile: Record<string, string> | ''; deviceInfo: Record<string, string> | ''; eventProps: { entry?: { key: string; value: string }[] } | '' };
      const doc = parser.parse(xml) as { Events: { Event?: XmlEvent[] } };
      return (doc.Events.Event ?? []).map((e) => {
        const profile = e.profile === '' ? {} : e.profile;
        const device = e.deviceInfo === '' ? {} : e.deviceInfo;
        const props = new Map((e.eventProps === '' ? [] : (e.eventProps.entry ?? [])).map((x) => [x.key, x.value]));
        return {
          n: Number(props.get('n')),
          event: e.eventName,
          ts: e.ts,
          identity: profile.identity ?? null,
          email: blank(profile.email),
          phone: blank(profile.phone),
          name: blank(profile.name),
          os: blank(device.os),
          amount: props.has('amount') ? Number(props.get('amount')) : null,
          paid: props.has('paid') ? props.get('paid') === 'true' : null,
          cart: props.has('cart') ? (JSON.parse(props.get('cart')!) as unknown) : null,
          note: props.get('note') ?? null,
        };
      });
    }
    case 'PARQUET': {
      const file = path.join(scratch, `${createHash('sha256').update(body).digest('hex')}.parquet`);
      await writeFile(file, body);
      const codecs = await duckdb.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
      expect(codecs.getRows().map((r) => String(r[0]))).toEqual(['GZIP']);
      const result = await duckdb.runAndReadAll(`SELECT * FROM read_parquet('${file}')`);
      return result.getRowObjects().map((r) => ({
        n: Number(r['eventProps.n']),
        event: r.eventName as string,
        ts: String(r.ts),
        identity: r['profile.identity'] as string | null,
        email: blank(r['profile.email']),
        phone: blank(r['profile.phone']),
        name: blank(r['profile.name']),
        os: blank(r['deviceInfo.os']),
        amount: r['eventProps.amount'] as number | null,
        paid: r['eventProps.paid'] as boolean | null,
        cart: r['eventProps.cart'] === null ? null : (JSON.parse(r['eventProps.cart'] as string) as unknown),
        note: r['eventProps.note'] as string | null,
      }));
    }
    default:
      throw new Error(`no reader for ${format}`);
  }
}

describe('dataset export --layout clevertap from PostgreSQL', () => {
  const table = `${schema}.events`;
  /** What each row must read back as, from PostgreSQL's own text of it (not through takeout). */
  let expected: Map<number, Event>;

  beforeAll(async () => {
    await db.query(`CREATE TABLE ${table} (n integer, "EventName" text NOT NULL, event_time timestamptz NOT NULL, identity text, email text, phone text, name text, os text, amount numeric(10,2), paid boolean, cart jsonb, note text)`);
    // 140 recent events over the 7 names; identity missing on every 4th, email '' on every 8th, phone on every 16th.
    await db.query(
      `INSERT INTO ${table}
       SELECT i, ($1::text[])[i % 7 + 1], now() - i * interval '7 minutes',
              CASE WHEN i % 4 = 0 THEN NULL ELSE 'user' || i END,
              CASE WHEN i % 8 = 0 THEN '' ELSE 'u' || i || '@example.com' END,
              CASE WHEN i % 16 = 0 THEN NULL ELSE '+1555' || i END,
              'Name ' || i, CASE WHEN i % 2 = 0 THEN 'ios' ELSE 'android' END,
              i * 1.25, i % 3 = 0, CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('items', jsonb_build_array(i, 'x')) END,
              'say "hi", ' || i || E'\\nline 2'
       FROM generate_series(0, 139) i`,
      [RAW_NAMES],
    );
    // Older than CleverTap's 60 days: only --no-limit reaches them.
    await db.query(`INSERT INTO ${table} SELECT i, 'Old Event', now() - interval '90 days' - (i - 1000) * interval '1 hour', 'old' || i, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM generate_series(1000, 1004) i`);
    const rows = await db.query<{ n: number; EventName: string; ts: string; identity: string | null; email: string | null; phone: string | null; name: string | null; os: string | null; amount: string | null; paid: boolean | null; cart: unknown; note: string | null }>(
      `SELECT n, "EventName", to_char(event_time AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') AS ts, identity, email, phone, name, os, amount::text, paid, cart, note FROM ${table}`,
    );
    expected = new Map(
      rows.rows.map((r) => [
        r.n,
        {
          n: r.n,
          event: EVENTS[r.EventName] ?? r.EventName.replace(/\s/g, '-'),
          ts: r.ts,
          // The first non-empty of identity, email, phone.
          identity: [r.identity, r.email, r.phone].find((v) => v !== null && v.trim() !== '') ?? null,
          email: blank(r.email),
          phone: blank(r.phone),
          name: r.name,
          os: r.os,
          amount: r.amount === null ? null : Number(r.amount),
          paid: r.paid,
          cart: r.cart,
          note: r.note,
        },
      ]),
    );
  });

  const base = (dest: string, ...extra: string[]): string[] => [
    'dataset', 'export', table, '--source', pgUrl, '--dest', dest, '--layout', 'clevertap', '--ts-column', 'EVENT_TIME', '--device-columns', 'os', '--profile-columns', 'name', '--json', ...extra,
  ];

  it('JSON to S3: files per event named by the template, first line the event name, then one event per line', async () => {
    const prefix = uniquePrefix('ct-json');
    const result = await runCli(base(`s3://${TEST_BUCKET}/${prefix}`, '--database-id', 'app_1', ...s3Args));
    expect(result.code, result.stderr).toBe(0);
    const store = s3Store(client, TEST_BUCKET, prefix);
    const { job, manifest, files, events } = await readBack(store, result.stdout);

    // <export request id>-<timestamp of run>-<event name>-<yyyymmdd>-<file index>-<database-id>.json.gz
    const run = Math.floor(Date.parse(job.startTime) / 1000);
    const day = job.startTime.slice(0, 10).replaceAll('-', '');
    expect(manifest).toMatchObject({ layout: 'clevertap', exportId: job.exportId, exportFormat: 'JSON', databaseId: 'app_1', runTimestamp: run });
    const template = new RegExp(`^${job.exportId}-${run}-(.+)-${day}-(\\d+)-app_1\\.json\\.gz$`, 'u');
    const names = new Map<string, string>();
    for (const f of files) {
      const m = template.exec(f.name);
      expect(m, f.name).not.toBeNull();
      expect(m![2]).toBe(String(f.index));
      names.set(f.event, m![1]!);
    }
    // One series per event name; the rules applied to the names; a backslash made safe for keys, with a hash.
    expect([...names.keys()].sort()).toEqual(Object.values(EVENTS).sort());
    expect(names.get('App-Launched')).toBe('App-Launched');
    expect(names.get('Added-Removed')).toBe('Added-Removed');
    expect(names.get('tab-name')).toBe('tab-name');
    expect(names.get('Nákup-🎉')).toBe('Nákup-🎉');
    expect(names.get('ctl?x')).toBe('ctl?x');
    expect(names.get('back\\slash')).toMatch(/^back-slash~[0-9a-f]{8}$/);

    // Every recent event once, none of the old ones (60 days back by default), each as PostgreSQL has it.
    expect(events.map((e) => e.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 140 }, (_, i) => i));
    for (const e of events) expect(e, `n=${e.n}`).toEqual(expected.get(e.n));
    // Identity priority: identity, else email (not ''), else phone, else null (kept).
    expect(events.find((e) => e.n === 1)!.identity).toBe('user1');
    expect(events.find((e) => e.n === 4)!.identity).toBe('u4@example.com');
    expect(events.find((e) => e.n === 8)!.identity).toBe('+15558');
    expect(events.find((e) => e.n === 16)!.identity).toBeNull();

    // The job record: an INCREMENTAL_EXPORT window from 60 days back to the start, the layout's 100 MB default.
    expect(job).toMatchObject({ status: 'COMPLETED', exportType: 'INCREMENTAL_EXPORT', exportToTime: job.startTime });
    expect(Date.parse(job.startTime) - Date.parse(job.exportFromTime)).toBeGreaterThan(60 * DAY_MS);
    expect(Date.parse(job.startTime) - Date.parse(job.exportFromTime)).toBeLessThanOrEqual(61 * DAY_MS);
    expect(job.exportFromTime).toMatch(/T00:00:00\.000Z$/);
    expect(job.options.maxFileSize).toBe(100 * 1024 * 1024);
    const described = await runCli(['dataset', 'exports', 'describe', job.exportId, '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--json', ...s3Args]);
    expect(described.code, described.stderr).toBe(0);
    expect((JSON.parse(described.stdout) as { ExportDescription: Record<string, unknown> }).ExportDescription).toMatchObject({ ExportStatus: 'COMPLETED', ClevertapStatus: 'DONE', ExportFormat: 'JSON', ItemCount: 140 });
    const plain = await runCli(['dataset', 'exports', 'describe', job.exportId, '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args]);
    expect(plain.stdout).toContain('COMPLETED (clevertap: DONE)');
  });

  for (const format of ['CSV', 'XML', 'PARQUET']) {
    it(`${format}: every event read back by an independent reader, the same as JSON`, async () => {
      const out = path.join(await tempFolder(`ct-${format}`), 'out');
      const result = await runCli(base(out, '--export-format', format));
      expect(result.code, result.stderr).toBe(0);
      const { manifest, files, events } = await readBack(localStore(out), result.stdout);
      const extension = { CSV: 'csv.gz', XML: 'xml.gz', PARQUET: 'parquet.gzip' }[format]!;
      // The default database id: a short hash of the source.
      expect(manifest.databaseId).toMatch(/^[0-9a-f]{8}$/);
      for (const f of files) expect(f.name.endsWith(`-${f.index}-${manifest.databaseId}.${extension}`), f.name).toBe(true);
      expect(new Set(files.map((f) => f.event)).size).toBe(7);
      expect(events).toHaveLength(140);
      for (const e of events) expect(e, `n=${e.n}`).toEqual(expected.get(e.n));
    });
  }

  it('--from/--until are UTC days (until inclusive); at most 60 days back unless --no-limit', async () => {
    const out = path.join(await tempFolder('ct-window'), 'out');
    const today = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS);
    const dayOf = (offset: number): string => new Date(today.getTime() + offset * DAY_MS).toISOString().slice(0, 10);

    const tooOld = await runCli(base(out, '--from', dayOf(-61)));
    expect(tooOld.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(tooOld.stderr)[0]).toContain(`--from ${dayOf(-61)} is more than 60 days back: CleverTap's one-time exports start at most 60 days before today (${dayOf(-60)} at the earliest)`);
    expect(tooOld.stderr).toContain('--no-limit');

    const all = await runCli(base(out, '--no-limit'));
    expect(all.code, all.stderr).toBe(0);
    const everything = await readBack(localStore(out), all.stdout);
    expect(everything.events).toHaveLength(145);
    expect(everything.files.filter((f) => f.event === 'Old-Event').flatMap((f) => f.events.map((e) => e.n)).sort()).toEqual([1000, 1001, 1002, 1003, 1004]);

    const old = await runCli(base(out, '--no-limit', '--from', dayOf(-100), '--until', dayOf(-80)));
    expect(old.code, old.stderr).toBe(0);
    const back = await readBack(localStore(out), old.stdout);
    expect(back.events.map((e) => e.n).sort()).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(back.job).toMatchObject({ exportFromTime: `${dayOf(-100)}T00:00:00.000Z`, exportToTime: `${dayOf(-79)}T00:00:00.000Z` });

    // --until takes its whole day: up to yesterday, today's events are left out.
    const upToYesterday = await runCli(base(out, '--from', dayOf(-30), '--until', dayOf(-1)));
    expect(upToYesterday.code, upToYesterday.stderr).toBe(0);
    const before = (await readBack(localStore(out), upToYesterday.stdout)).events.map((e) => e.n);
    const wanted = [...expected.values()].filter((e) => e.n < 1000 && e.ts < dayOf(0).replaceAll('-', '')).map((e) => e.n);
    expect(before.sort((a, b) => a - b)).toEqual(wanted.sort((a, b) => a - b));

    const backwards = await runCli(base(out, '--from', dayOf(-2), '--until', dayOf(-3)));
    expect(backwards.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(backwards.stderr)[0]).toContain(`--until ${dayOf(-3)} is before --from ${dayOf(-2)}`);
  });

  it('refuses options that do not fit: unknown columns, no identity column, DynamoDB\'s window flags, bad dates', async () => {
    const out = path.join(await tempFolder('ct-usage'), 'out');
    const cases: [string[], string][] = [
      [['--event-column', 'nope'], '--event-column nope'],
      [['--identity-priority', 'user_id,login'], '--identity-priority user_id,login'],
      [['--export-from-time', '2024-01-01T00:00:00Z'], '--export-from-time: the clevertap layout takes --from and --until'],
      [['--from', '2024-02-30'], "--from '2024-02-30' is not a date"],
      [['--recurring', '--until', '2030-01-01'], '--until does not go with --recurring'],
      [['--database-id', 'a/b'], "--database-id 'a/b'"],
      [['--export-format', 'ION'], '--export-format ION: the clevertap layout writes JSON or CSV or XML or PARQUET'],
      [['--device-columns', 'email'], '--device-columns email: the column is already taken by --identity-priority'],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(base(out, ...args));
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(ERROR_CODES.USAGE);
      expect(errorLines(result.stderr)[0]).toContain(message);
    }
  });
});

describe('dataset export --layout clevertap: files capped at --max-file-size', () => {
  const table = `${schema}.many`;

  beforeAll(async () => {
    // 3 events × 8,000, interleaved, with notes that do not compress away.
    await db.query(`CREATE TABLE ${table} (n integer, "eventName" text, ts timestamptz, email text, note text)`);
    await db.query(`INSERT INTO ${table} SELECT i, (ARRAY['Viewed','Charged','App Launched'])[i % 3 + 1], now() - i * interval '1 second', 'u' || i || '@example.com', md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 24000) i`);
  });

  for (const [format, cap, capBytes] of [
    ['JSON', '16KB', 16 * 1024],
    ['XML', '16KB', 16 * 1024],
    ['PARQUET', '256KB', 256 * 1024],
    // Rows go into a file one at a time: a batch of thousands added at once made 185 KB files at 16 KB.
    ['PARQUET', '16KB', 16 * 1024],
  ] as const) {
    it(`${format}: each event in several files, none over ${cap}, file indexes 0…n-1, every event once`, async () => {
      const out = path.join(await tempFolder(`ct-cap-${format}`), 'out');
      const result = await runCli(['dataset', 'export', table, '--source', pgUrl, '--dest', out, '--layout', 'clevertap', '--export-format', format, '--max-file-size', cap, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const store = localStore(out);
      const exportId = exportIdOf(result.stdout);
      const manifest = JSON.parse((await store.get(`${exportId}/_manifest.json`)).toString()) as Manifest;
      for (const event of ['Viewed', 'Charged', 'App-Launched']) {
        const files = manifest.files.filter((f) => f.event === event);
        expect(files.length, event).toBeGreaterThan(1);
        expect(files.map((f) => f.index)).toEqual(files.map((_, i) => i));
        expect(files.reduce((n, f) => n + f.rows, 0)).toBe(8000);
        for (const f of files) expect(f.bytes, f.name).toBeLessThanOrEqual(capBytes);
      }
      const ns: number[] = [];
      for (const f of manifest.files) {
        const body = await store.get(`${exportId}/${f.name}`);
        expect(body.length).toBe(f.bytes);
        if (format === 'PARQUET') {
          const file = path.join(scratch, `${exportId}-${f.index}-${f.event}.parquet`);
          await writeFile(file, body);
          const rows = await duckdb.runAndReadAll(`SELECT "eventProps.n" AS n, eventName FROM read_parquet('${file}')`);
          for (const r of rows.getRowObjects()) {
            expect(r.eventName).toBe(f.event);
            ns.push(Number(r.n));
          }
        } else {
          const text = gunzipSync(body).toString();
          const found = format === 'JSON' ? text.split('\n').slice(1, -1).map((l) => (JSON.parse(l) as { eventProps: { n: number } }).eventProps.n) : [...text.matchAll(/<key>n<\/key><value>(\d+)<\/value>/g)].map((m) => Number(m[1]));
          expect(found).toHaveLength(f.rows);
          ns.push(...found);
        }
      }
      expect(ns.sort((a, b) => a - b)).toEqual(Array.from({ length: 24000 }, (_, i) => i + 1));
    });
  }
});

describe('dataset export --layout clevertap --recurring', () => {
  /** Three runs with new events between them: each holds exactly the new ones, and the windows chain. */
  async function threeRuns(args: string[], addEvents: (batch: number) => Promise<void>): Promise<void> {
    const out = args[args.indexOf('--dest') + 1]!;
    const runs: { job: JobFields; events: Event[]; manifest: Manifest }[] = [];
    for (let batch = 1; batch <= 3; batch++) {
      await addEvents(batch);
      // The next window starts at this run's start: let the clock pass the new events' times.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const result = await runCli(args);
      expect(result.code, result.stderr).toBe(0);
      runs.push(await readBack(localStore(out), result.stdout));
    }
    expect(runs[1]!.job.exportFromTime).toBe(runs[0]!.job.exportToTime);
    expect(runs[2]!.job.exportFromTime).toBe(runs[1]!.job.exportToTime);
    for (const [i, run] of runs.entries()) {
      expect(run.job.exportToTime).toBe(run.job.startTime);
      expect(run.manifest.databaseId).toBe(runs[0]!.manifest.databaseId);
      const batch = i + 1;
      expect(run.events.map((e) => e.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 * batch }, (_, k) => batch * 1000 + k));
    }
  }

  it('PostgreSQL (the source filters the window): no gaps, no duplicates', async () => {
    const table = `${schema}.stream`;
    await db.query(`CREATE TABLE ${table} (n integer, "eventName" text, ts timestamptz, identity text)`);
    const out = path.join(await tempFolder('ct-rec-pg'), 'out');
    await threeRuns(['dataset', 'export', table, '--source', pgUrl, '--dest', out, '--layout', 'clevertap', '--recurring', '--json'], async (batch) => {
      await db.query(`INSERT INTO ${table} SELECT $1::int * 1000 + k, (ARRAY['Charged','App Launched'])[k % 2 + 1], clock_timestamp(), 'u' || k FROM generate_series(0, $1::int * 50 - 1) k`, [batch]);
    });
  });

  it('a project folder with epoch-millisecond times (the layout filters the window): no gaps, no duplicates', async () => {
    const root = await tempFolder('ct-rec-dir');
    const source = path.join(root, 'project');
    await mkdir(path.join(source, 'in.c-app'), { recursive: true });
    const file = path.join(source, 'in.c-app', 'events.csv');
    await writeFile(file, '"n","eventName","ts","email"\n');
    const out = path.join(root, 'out');
    await threeRuns(['dataset', 'export', 'in.c-app.events', '--source', source, '--dest', out, '--layout', 'clevertap', '--recurring', '--json'], async (batch) => {
      let text = await readFile(file, 'utf8');
      for (let k = 0; k < 50 * batch; k++) text += `"${batch * 1000 + k}","${k % 2 ? 'Charged' : 'App Launched'}","${Date.now()}","u${k}@example.com"\n`;
      await writeFile(file, text);
    });
  });
});

describe('clevertap layout pieces', () => {
  it('event names in file names: safe for keys, cut long, and never two names on one file name', () => {
    expect(fileEventName('App-Launched')).toBe('App-Launched');
    expect(fileEventName('a\\b')).toMatch(/^a-b~[0-9a-f]{8}$/);
    expect(fileEventName('a\\b')).not.toBe(fileEventName('a-b'));
    const long = 'é'.repeat(200);
    expect(Buffer.byteLength(fileEventName(long))).toBeLessThanOrEqual(128);
    expect(fileEventName(long)).not.toBe(fileEventName(`${long}x`));
  });

  it('reads times as clevertapTs does, to the millisecond', () => {
    for (const text of ['20240501103000', '2024-05-01 10:30:00+02', '2024-05-01', '1714559400', '1714559400123', '2024-05-01T10:30:00.123456Z']) {
      const ms = eventMillis(text, 'ts');
      expect(clevertapTs(text, 'ts')).toBe(clevertapTs(String(Math.floor(ms / 1000)), 'ts'));
    }
    expect(eventMillis('1714559400123', 'ts')).toBe(1714559400123);
    expect(() => eventMillis('soon', 'in.c-app.events: column ts')).toThrow(/column ts: 'soon' is not a time/);
  });

  it('windows: 60 days back by default, everything with --no-limit, --until through the end of its day', () => {
    const now = new Date('2026-03-10T15:00:00Z');
    expect(clevertapWindow({ noLimit: false, recurring: false }, now)).toEqual({ from: new Date('2026-01-09T00:00:00Z') });
    expect(clevertapWindow({ noLimit: true, recurring: true }, now).from.toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(clevertapWindow({ from: '2026-01-09', until: '2026-01-31', noLimit: false, recurring: false }, now)).toEqual({ from: new Date('2026-01-09T00:00:00Z'), to: new Date('2026-02-01T00:00:00Z') });
    expect(() => clevertapWindow({ from: '2026-01-08', noLimit: false, recurring: false }, now)).toThrow(/more than 60 days back/);
    expect(clevertapWindow({ from: '2025-01-01', noLimit: true, recurring: false }, now).from.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(() => clevertapWindow({ from: '2026-03-11', noLimit: false, recurring: false }, now)).toThrow(/in the future/);
  });
});
