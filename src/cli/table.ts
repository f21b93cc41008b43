import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import type { ObjectWriter } from '../stores/store.js';
import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { encodeHeader } from '../formats/csv/encode.js';
import { DEFAULT_COMPRESSION_LEVEL, NO_COMPRESSION } from '../pipeline/compress.js';
import { tableStart } from '../pipeline/events.js';
import { mergeSlices } from '../pipeline/merge.js';
import { runTakeout } from '../pipeline/run.js';
import { writeTableSlices } from '../pipeline/table.js';
import { nearest } from '../pipeline/suggest.js';
import { DURATION_FORMS, parseDuration } from '../pipeline/units.js';
import { openSource } from '../sources/registry.js';
import type { ProjectDescriptor, TableDescriptor, TableQuery } from '../model.js';
import type { CommandContext } from './context.js';
import { addOptions, COMMON_OPTIONS, GROUP, destinationOptions, DYNAMODB_OPTIONS, resolveOptions, S3_OPTIONS, sourceOptions, unthrottled, type OptionSpec, type Resolved } from './options.js';
import { addExamples } from './help.js';
import { noteDestination } from './interrupt.js';
import { checkOutputPath, openOutput } from './output.js';
import { assertResumeOrOverwrite, destinationWithPath, normalisePrefix, RUN_OPTIONS } from './run.js';

const OPERATORS: Record<string, NonNullable<TableQuery['where']>[number]['operator']> = {
  eq: 'eq', '=': 'eq', '==': 'eq',
  ne: 'ne', '!=': 'ne', '<>': 'ne',
  gt: 'gt', '>': 'gt',
  ge: 'ge', '>=': 'ge',
  lt: 'lt', '<': 'lt',
  le: 'le', '<=': 'le',
};

const pick = (keys: string[]): OptionSpec[] => RUN_OPTIONS.filter((o) => keys.includes(o.key));

/** The Storage API's export options: a subset of a table (also taken by dataset exports). */
export const TABLE_QUERY_OPTIONS: OptionSpec[] = [
  { key: 'columns', flags: '--columns <a,b,c>', description: 'only these columns, in this order', type: 'list', commaSeparated: true, group: GROUP.rows },
  { key: 'where', flags: '-w, --where <filter>', description: 'a filter "column op value[,value…]" with op eq ne gt ge lt le (eq/ne take several values); values are bound as parameters', type: 'list', group: GROUP.rows },
  { key: 'changedSince', flags: '--changed-since <time>', description: 'rows whose --changed-column is at or after this time (ISO 8601, unix seconds, or -2h / -3d)', type: 'string', group: GROUP.rows },
  { key: 'changedUntil', flags: '--changed-until <time>', description: 'rows whose --changed-column is before this time', type: 'string', group: GROUP.rows },
  { key: 'changedColumn', flags: '--changed-column <column>', description: 'the timestamp column --changed-since/--changed-until compare', type: 'string', group: GROUP.rows },
  { key: 'limit', flags: '--limit <n>', description: 'at most n rows', type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, group: GROUP.rows },
  { key: 'orderBy', flags: '--order-by <column[:desc]>', description: 'sort by a column (asc unless :desc)', type: 'list', group: GROUP.rows },
];

const TABLE_OPTIONS: OptionSpec[] = [
  // run's --dest defaults to a new folder; here there is no default: slices go to --dest, one file to -o.
  ...pick(['source', 'token', 'dest', 'path', 'sliceSize', 'sliceRows', 'compressionLevel', 'overwrite', 'resume', 'quoteAll', 'lineEnding']).map((spec) =>
    spec.key === 'dest' ? { ...spec, description: 'slices with a manifest into a local folder or s3://bucket/prefix (or -o for one file)' } : spec,
  ),
  { key: 'output', flags: '-o, --output <file>', description: "merge into one CSV file instead of slices ('-' for stdout)", type: 'string', group: GROUP.destination },
  ...TABLE_QUERY_OPTIONS,
  { key: 'header', flags: '--header', description: 'with -o: write one header row (default)', negatedDescription: 'with -o: write no header row', type: 'boolean', negatable: true, group: GROUP.format },
  { key: 'gzip', flags: '--gzip', description: 'with -o: gzip the merged file', type: 'boolean', default: false, group: GROUP.format },
];

const ALL = [...TABLE_OPTIONS, ...S3_OPTIONS, ...DYNAMODB_OPTIONS, ...COMMON_OPTIONS];

/** `col op v1,v2` → a where filter. A value list may also be a JSON array, for values with commas. */
export function parseWhere(text: string): NonNullable<TableQuery['where']>[number] {
  const match = /^\s*("(?:[^"]|"")+"|[^\s=!<>]+)\s*(eq|ne|gt|ge|lt|le|==|=|!=|<>|>=|<=|>|<)\s*(.*)$/i.exec(text);
  const operator = match ? OPERATORS[match[2]!.toLowerCase()] : undefined;
  if (!match || !operator) {
    throw new TakeoutError('USAGE', `--where '${text}': expected "column op value[,value…]" with op eq, ne, gt, ge, lt or le`);
  }
  const rawColumn = match[1]!;
  const column = rawColumn.startsWith('"') ? rawColumn.slice(1, -1).replaceAll('""', '"') : rawColumn;
  const rest = match[3]!.trim();
  let values: string[];
  if (rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (!Array.isArray(parsed)) throw new Error('not an array');
      values = parsed.map((v) => String(v));
    } catch {
      throw new TakeoutError('USAGE', `--where '${text}': the value list is not a JSON array of strings`);
    }
  } else {
    values = rest === '' ? [''] : rest.split(',');
  }
  return { column, operator, values };
}

/** ISO 8601, unix seconds, or a time that long ago: `-` and a duration (-2h, -3d, -1w, -3 days; see parseDuration). */
export function parseTime(text: string, flag: string, now = Date.now()): Date {
  const t = text.trim();
  if (/^-\s*\d/.test(t)) {
    const ago = parseDuration(t.slice(1), flag);
    if (!ago.ok || ago.value === 0) throw new TakeoutError('USAGE', `${flag} '${text}' is not a time (ISO 8601, unix seconds, or -2h / -3d)`, { hint: `after the -, ${DURATION_FORMS}` });
    return new Date(now - ago.value);
  }
  if (/^\d{9,11}$/.test(t)) return new Date(Number(t) * 1000);
  const date = /^\d{4}-\d{2}-\d{2}/.test(t) ? new Date(t) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new TakeoutError('USAGE', `${flag} '${text}' is not a time (ISO 8601, unix seconds, or -2h / -3d)`);
  return date;
}

export function buildQuery(o: Resolved): TableQuery {
  const query: TableQuery = {};
  const columns = o.columns as string[] | undefined;
  if (columns?.length) {
    if (new Set(columns).size !== columns.length) throw new TakeoutError('USAGE', '--columns names a column twice');
    query.columns = columns;
  }
  const where = (o.where as string[] | undefined) ?? [];
  if (where.length) query.where = where.map(parseWhere);
  if (typeof o.changedSince === 'string') query.changedSince = parseTime(o.changedSince, '--changed-since');
  if (typeof o.changedUntil === 'string') query.changedUntil = parseTime(o.changedUntil, '--changed-until');
  if (typeof o.changedColumn === 'string') query.changedColumn = o.changedColumn;
  if (typeof o.limit === 'number') query.limit = o.limit;
  const orderBy = (o.orderBy as string[] | undefined) ?? [];
  if (orderBy.length) {
    query.orderBy = orderBy.map((spec) => {
      const m = /^(.+?)(?:[:\s]+(asc|desc))?$/i.exec(spec.trim());
      if (!m) throw new TakeoutError('USAGE', `--order-by '${spec}': expected column or column:desc`);
      return { column: m[1]!, order: m[2]?.toLowerCase() === 'desc' ? 'desc' : 'asc' };
    });
  }
  return query;
}

/** A table by its id (`in.c-main.orders`) or, for database sources, `schema.table`. */
export function findTable(project: ProjectDescriptor, id: string): TableDescriptor {
  const exact = project.tables.find((t) => t.id === id) ?? project.exportableSkipped?.find((t) => t.id === id);
  if (exact) return exact;
  const skipped = project.skipped?.find((s) => s.id === id);
  if (skipped) throw new TakeoutError('NOT_FOUND', `${id} is left out by the source (${skipped.reason}): it is not a table that can be exported`);
  const dot = id.indexOf('.');
  if (dot > 0 && id.indexOf('.', dot + 1) === -1) {
    const [schema, name] = [id.slice(0, dot), id.slice(dot + 1)];
    const byName = project.tables.filter((t) => {
      const bucket = project.buckets.find((b) => b.id === t.bucketId);
      return (t.displayName ?? t.name) === name && (bucket?.displayName === schema || t.bucketId === `in.c-${schema}`);
    });
    if (byName.length === 1) return byName[0]!;
  }
  // The ids a few edits away (a typo), else those that hold the table name (it in another bucket or schema).
  const ids = project.tables.map((t) => t.id);
  const typos = nearest(id, ids);
  const near = typos.length > 0 ? typos : ids.filter((t) => t.includes(id.split('.').pop() ?? id)).slice(0, 3);
  throw new TakeoutError('NOT_FOUND', `table ${id} does not exist in the source`, near.length ? { hint: `did you mean ${near.join(', ')}?` } : {});
}

export function tableCommand(context: CommandContext): Command {
  const table = new Command('table').summary('export one table').description('Export one table, whole or filtered: as slices with a manifest, or as one file.');
  addExamples(table, [
    ['the paid orders, as one CSV file', 'takeout table export public.orders -s postgres://reader@db/shop \\\n      -w "status eq paid" -o paid.csv'],
    ['one table of a folder project as slices in S3', 'takeout table export in.c-main.orders -s ./project -d s3://exports/orders/'],
  ]);
  const exportCommand = new Command('export')
    .argument('<table-id>', 'the table: in.c-bucket.table, or schema.table for a database source')
    .summary('export one table, whole or filtered, as slices with a manifest or merged into one file')
    .description(
      "Export one table with the Storage API's export options: --columns, --where, --changed-since/--changed-until, " +
        '--limit, --order-by.\n\n' +
        'With --dest it writes the takeout layout for that table (slices, manifests/<id>.manifest, ' +
        'takeout-manifest.json); with -o it writes one CSV file with one header row (or - for stdout).',
    );
  addOptions(exportCommand, ALL);
  addExamples(exportCommand, [
    ['the paid and shipped orders, as one CSV file', "takeout table export public.orders -s postgres://reader@db/shop \\\n      --where 'status eq paid,shipped' -o paid.csv"],
    ['what changed in the last day, as slices in S3', 'takeout table export public.events -s postgres://reader@db/shop \\\n      --changed-column updated_at --changed-since -1d -d s3://exports/events/'],
    ['the first 10 rows to the terminal', 'takeout table export in.c-main.orders -s ./project --limit 10 -o -'],
  ]);
  exportCommand.action(async (tableId: string) => {
    const o = resolveOptions(exportCommand, ALL);
    await context.configure(o);
    if (o.output !== undefined && o.dest !== undefined) throw new TakeoutError('USAGE', 'give either --dest (slices) or -o (one file), not both');
    if (o.output !== undefined && o.resume === true) throw new TakeoutError('USAGE', '--resume goes on with sliced exports (--dest); a file given with -o is written whole');
    assertResumeOrOverwrite(o);
    const query = buildQuery(o);
    // Usage errors before the source is reached: a mistyped --dest or -o, no --source (no demo default here).
    const destWithPrefix = o.output === undefined && typeof o.dest === 'string' ? destinationWithPath(o.dest, normalisePrefix(o.path as string | undefined)) : undefined;
    checkOutputPath(o);
    const source = await openSource(o.source as string | undefined, { ...sourceOptions(o, o.output === undefined ? unthrottled(context.network) : context.network), onWarning: (message) => context.reporter.emit({ type: 'warning', message }) });
    context.onClose(async () => source.close?.());
    const project = await source.project(context.signal ? { signal: context.signal } : {});
    const found = findTable(project, tableId);
    const leftOut = project.tables.includes(found) ? undefined : project.skipped?.find((s) => s.id === found.id);
    if (leftOut) context.reporter.emit({ type: 'warning', message: `takeout run leaves ${found.id} out: ${leftOut.reason}; exported here as the source serves it` });

    if (o.output === undefined) {
      if (!destWithPrefix) throw new TakeoutError('USAGE', 'give --dest DIR|s3://… for slices, or -o FILE for one file');
      const destination = await openStore(destWithPrefix, destinationOptions(o, context.network));
      noteDestination(destination);
      context.onClose(async () => destination.close?.());
      // The project is listed once already; hand the same listing to the run.
      // A table that run leaves out is, for this export, a table like any other, and its bucket (linked,
      // external) is written to buckets.json as the API describes it in the table (include=buckets).
      const rawBucket = found.raw?.bucket as Record<string, unknown> | undefined;
      const buckets =
        leftOut && rawBucket && !project.buckets.some((b) => b.id === found.bucketId)
          ? [...project.buckets, { id: found.bucketId, stage: String(rawBucket.stage), name: String(rawBucket.name), raw: rawBucket }]
          : project.buckets;
      const listed: typeof source = {
        ...source,
        project: async () =>
          leftOut ? { ...project, buckets, tables: [...project.tables, found], skipped: (project.skipped ?? []).filter((s) => s !== leftOut) } : project,
      };
      await runTakeout({
        source: listed,
        destination,
        structureOnly: false,
        include: [found.id],
        exclude: [],
        sliceBytes: o.sliceSize as number,
        ...(typeof o.sliceRows === 'number' ? { sliceRows: o.sliceRows } : {}),
        compressionLevel: o.compressionLevel as number,
        lineEnding: o.lineEnding === 'crlf' ? '\r\n' : '\n',
        requote: o.quoteAll === true,
        concurrency: 1,
        overwrite: o.overwrite === true,
        resume: o.resume === true,
        dryRun: false,
        failFast: true,
        partBytes: 0,
        partConcurrency: 0,
        toolVersion: context.version,
        recordedOptions: { table: found.id, query: { ...query, changedSince: query.changedSince?.toISOString(), changedUntil: query.changedUntil?.toISOString() } },
        query,
        configurations: false,
        command: 'table export',
        signal: context.signal,
        emit: (event) => context.reporter.emit(event),
      });
      return;
    }

    // One file: header, then the rows, plain or gzip; written beside the target and renamed when complete.
    for (const message of project.warnings ?? []) context.reporter.emit({ type: 'warning', message });
    const narrowed: TableDescriptor = query.columns ? { ...found, columns: query.columns } : found;
    const { writer, label } = await openOutput(o, context.io);
    const gzip = o.gzip === true;
    const t0 = Date.now();
    try {
      const body = await source.openTable(found, { signal: context.signal, query });
      if (body.kind === 'gzip-slices') {
        // Already gzipped slices (Storage API exports): the sliced-download merge, members kept as they are with --gzip.
        // Its progress is the slices' stored bytes fetched, against their listed sizes when every one has one.
        const sizes = body.slices.map((slice) => slice.bytes);
        const listed = sizes.every((n) => n !== undefined) ? sizes.reduce<number>((a, n) => a + (n ?? 0), 0) : undefined;
        context.reporter.emit({ type: 'table:start', table: found.id, ...(listed !== undefined ? { estimatedBytes: listed, measure: 'bytes' } : {}) });
        let fetched = 0;
        let written = 0;
        const byLabel = new Map(body.slices.map((slice) => [slice.origin, slice]));
        const merged = await mergeSlices({
          plan: { form: 'redshift', entries: body.slices.map((slice) => ({ location: { kind: 'relative', key: slice.origin }, label: slice.origin, mandatory: true })) },
          open: (entry) => byLabel.get(entry.label)!.open(),
          output: writer,
          gzipOutput: gzip,
          ...(o.header !== false ? { header: narrowed.columns } : {}),
          concurrency: 2,
          signal: context.signal,
          onProgress: (p) => {
            context.reporter.emit({ type: 'table:progress', table: found.id, readBytes: p.bytes - fetched, rawBytes: 0, bytes: p.outputBytes - written, rows: 0 });
            fetched = p.bytes;
            written = p.outputBytes;
          },
        });
        await writer.finish();
        context.reporter.emit({ type: 'table:done', table: found.id, rows: 0, rawBytes: merged.outputBytes, bytes: merged.bytes, slices: 1, durationMs: Date.now() - t0 });
        return;
      }
      context.reporter.emit(tableStart(found));
      if (o.header !== false) {
        const line = Buffer.from(encodeHeader(narrowed.columns));
        await writer.write(gzip ? gzipSync(line) : line);
      }
      let opened = false;
      const single = {
        writer: async (): Promise<ObjectWriter> => {
          opened = true;
          return writer;
        },
        delete: async () => undefined,
      };
      const result = await writeTableSlices(narrowed, body, {
        destination: single,
        keyFor: () => label,
        sliceBytes: Number.MAX_SAFE_INTEGER,
        compressionLevel: gzip ? DEFAULT_COMPRESSION_LEVEL : NO_COMPRESSION,
        lineEnding: o.lineEnding === 'crlf' ? '\r\n' : '\n',
        requote: o.quoteAll === true,
        signal: context.signal,
        onProgress: (delta) => context.reporter.emit({ type: 'table:progress', table: found.id, ...delta }),
      });
      if (!opened) await writer.finish();
      context.reporter.emit({ type: 'table:done', table: found.id, rows: result.rows, rawBytes: result.rawBytes, bytes: result.bytes, slices: 1, durationMs: Date.now() - t0 });
    } catch (error) {
      await writer.abort();
      throw error;
    }
  });
  table.addCommand(exportCommand);
  return table;
}
