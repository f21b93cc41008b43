import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetLayout, LayoutContext } from '../src/layouts/dataset-layout.js';
import { jobKey, type JobRecord } from '../src/manifests/jobs.js';
import type { Row, TableDescriptor } from '../src/model.js';
import type { PipelineEvent } from '../src/pipeline/events.js';
import { runDatasetExport, type DatasetExportOptions } from '../src/pipeline/dataset-export.js';
import type { Source } from '../src/sources/source.js';
import { createLocalStore } from '../src/stores/local/store.js';
import type { ObjectWriter, Store, WriteOptions } from '../src/stores/store.js';

/**
 * The behaviour every dataset export layout promises, run against each one through the real runner and a
 * real local store in a temp folder (as unstorage's `testDriver` runs every driver through one suite):
 * - its keys are unique and safe: no `..` or `.` segment, no leading `/`, no backslash, every one under the
 *   export's own prefix;
 * - its commit record (`manifestKey`) and every finishing file land after every data file, and the job
 *   record's COMPLETED write is the very last;
 * - its own files (`_started`, `_SUCCESS`, sidecars …) are there.
 * A layout's own checks come in through `additionalTests`.
 */

/** One layout, set up as its command would: what the runner needs of it, and the files it must write. */
export interface LayoutSubject {
  layoutName: string;
  layoutOptions: Record<string, unknown>;
  buildLayout(ctx: LayoutContext): DatasetLayout;
  exportType?: DatasetExportOptions['exportType'];
  windowColumn?: string;
  windowInSource?: boolean;
  exportFromTime?: Date;
  exportToTime?: Date;
  /** Small enough that the fixture's rows make several files per series. */
  maxFileBytes?: number;
  /** The layout's files besides its data, relative to the destination (its manifest is checked anyway). */
  ownFiles(exportId: string): string[];
}

export type LayoutFactory = () => LayoutSubject;

/** What `additionalTests` get: the finished export, for checks of the layout's own. */
export interface LayoutRun {
  job: JobRecord;
  store: Store;
  /** Every landed write in order (put, or a writer's finish), and deletes. */
  writes: readonly RecordedWrite[];
  events: readonly PipelineEvent[];
  root: string;
}

export interface LayoutContractOptions {
  additionalTests?: (run: () => LayoutRun) => void;
}

export interface RecordedWrite {
  op: 'put' | 'write' | 'delete';
  key: string;
}

/** Events from many series with names that would be unsafe in a key as they are. */
const EVENTS = ['view', 'buy', 'a/b', '../up', 'x\\y', 'sp ace'];
/** Partition values to the same end (plain's --partition-by). */
const COUNTRIES: (string | null)[] = ['CZ', 'DE', null, '../x', 'a/b', '', 'x.', '..'];
const ROW_COUNT = 1200;

/** A table every layout can export: Personalize's interaction fields, CleverTap's event fields, a partition column. */
export const CONTRACT_TABLE: TableDescriptor = {
  id: 'in.c-shop.events',
  bucketId: 'in.c-shop',
  name: 'events',
  columns: ['USER_ID', 'ITEM_ID', 'TIMESTAMP', 'eventName', 'ts', 'email', 'country', 'note'],
  primaryKey: ['USER_ID', 'ITEM_ID', 'TIMESTAMP'],
};

export const CONTRACT_ROWS: Row[] = Array.from({ length: ROW_COUNT }, (_, i) => [
  `u${i % 17}`,
  `i${i}`,
  String(1_767_225_600 + i * 60),
  EVENTS[i % EVENTS.length]!,
  new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
  i % 3 === 0 ? null : `user${i}@example.com`,
  COUNTRIES[i % COUNTRIES.length]!,
  // Digests do not compress away: the files are cut at --max-file-size several times.
  `${i % 4 === 0 ? `say "hi", ${i}\nbye ` : `note ${i} `}${createHash('sha256').update(String(i)).digest('hex')}`,
]);

/** A source of the one table above, as rows. */
function rowsSource(): Source {
  return {
    description: 'memory:layout-contract',
    project: () => Promise.resolve({ buckets: [], tables: [CONTRACT_TABLE], components: [] }),
    openTable: () =>
      Promise.resolve({
        kind: 'rows',
        rows: (async function* () {
          yield* CONTRACT_ROWS;
        })(),
      }),
  };
}

/** The store, with every landed write recorded in order: a put when it resolves, a writer when it finishes. */
export function recordingStore(store: Store, writes: RecordedWrite[]): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'put') {
        return async (key: string, body: Buffer | string, options?: WriteOptions) => {
          const written = await target.put(key, body, options);
          writes.push({ op: 'put', key });
          return written;
        };
      }
      if (property === 'writer') {
        return async (key: string, options?: WriteOptions): Promise<ObjectWriter> => {
          const writer = await target.writer(key, options);
          return new Proxy(writer, {
            get(w, p, r) {
              if (p === 'finish') {
                return async () => {
                  const written = await w.finish();
                  writes.push({ op: 'write', key });
                  return written;
                };
              }
              const value: unknown = Reflect.get(w, p, r);
              return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(w) : value;
            },
          });
        };
      }
      if (property === 'delete') {
        return async (keys: readonly string[]) => {
          await target.delete(keys);
          for (const key of keys) writes.push({ op: 'delete', key });
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Why a key is not safe to write under a destination's prefix, or undefined. */
export function unsafeKey(key: string, prefix: string): string | undefined {
  if (key.startsWith('/')) return 'leading /';
  if (key.includes('\\')) return 'backslash';
  if (key.split('/').some((segment) => segment === '..' || segment === '.')) return '. or .. segment';
  if (!key.startsWith(prefix)) return `not under ${prefix}`;
  return undefined;
}

export function describeLayoutContract(name: string, factory: LayoutFactory, options: LayoutContractOptions = {}): void {
  describe(`layout contract: ${name}`, () => {
    let root: string;
    let subject: LayoutSubject;
    let run: LayoutRun | undefined;
    /** The layout the runner built, to ask for its start files. */
    let built: DatasetLayout | undefined;
    const finished = (): LayoutRun => {
      if (!run) throw new Error('the export did not run');
      return run;
    };

    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), `takeout-layout-${name}-`));
      subject = factory();
      const buildLayout = (ctx: LayoutContext): DatasetLayout => (built = subject.buildLayout(ctx));
      const writes: RecordedWrite[] = [];
      const events: PipelineEvent[] = [];
      const store = createLocalStore(root);
      const job = await runDatasetExport({
        source: rowsSource(),
        destination: recordingStore(store, writes),
        table: CONTRACT_TABLE,
        layoutName: subject.layoutName,
        layoutOptions: subject.layoutOptions,
        buildLayout,
        exportType: subject.exportType ?? 'FULL_EXPORT',
        ...(subject.windowColumn ? { windowColumn: subject.windowColumn } : {}),
        ...(subject.windowInSource === false ? { windowInSource: false } : {}),
        ...(subject.exportFromTime ? { exportFromTime: subject.exportFromTime } : {}),
        ...(subject.exportToTime ? { exportToTime: subject.exportToTime } : {}),
        recurring: false,
        maxFileBytes: subject.maxFileBytes ?? 16 * 1024,
        compressionLevel: 6,
        bucket: null,
        prefix: '',
        exportArn: (exportId) => `arn:takeout:test:${exportId}`,
        toolVersion: '0.0.0-contract',
        recordedOptions: {},
        emit: (event) => events.push(event),
      });
      run = { job, store, writes, events, root };
    });

    afterAll(async () => {
      if (root) await rm(root, { recursive: true, force: true });
    });

    const layoutKeys = (job: JobRecord): string[] => [...(job.dataFiles ?? []).map((f) => f.key), ...(job.layoutFiles ?? []).map((f) => f.key)];

    it('completes, with data files and its manifest recorded in the job', () => {
      const { job } = finished();
      expect(job.status).toBe('COMPLETED');
      expect(job.dataFiles?.length).toBeGreaterThan(1);
      expect(job.itemCount).toBeGreaterThan(0);
      expect(job.layoutFiles?.map((f) => f.key)).toContain(job.manifest);
    });

    it('writes unique keys, each once', () => {
      const { job, writes } = finished();
      const keys = layoutKeys(job);
      expect(new Set(keys).size).toBe(keys.length);
      const own = new Set(keys);
      const landed = writes.filter((w) => w.op !== 'delete' && own.has(w.key)).map((w) => w.key);
      expect(landed.sort()).toEqual([...keys].sort());
    });

    it('writes safe keys, all under the export prefix', () => {
      const { job } = finished();
      const unsafe = layoutKeys(job).flatMap((key) => {
        const why = unsafeKey(key, job.outputPrefix);
        return why ? [`${key}: ${why}`] : [];
      });
      expect(unsafe).toEqual([]);
      expect(unsafeKey(job.outputPrefix, '')).toBeUndefined();
    });

    it('writes its manifest and finishing files after every data file, and the COMPLETED record last', async () => {
      const { job, writes, store } = finished();
      const order = new Map<string, number>();
      writes.forEach((w, i) => {
        if (w.op !== 'delete') order.set(w.key, i);
      });
      const dataAt = (job.dataFiles ?? []).map((f) => order.get(f.key)!);
      const firstData = Math.min(...dataAt);
      const lastData = Math.max(...dataAt);
      const startKeys = new Set(built?.startFiles?.().map((f) => f.key) ?? []);
      for (const file of job.layoutFiles ?? []) {
        if (startKeys.has(file.key)) expect(order.get(file.key)!, file.key).toBeLessThan(firstData);
        else expect(order.get(file.key)!, file.key).toBeGreaterThan(lastData);
      }
      expect(order.get(job.manifest!)).toBeGreaterThan(lastData);
      // The job record is written again last, COMPLETED: the export's commit.
      const last = writes.filter((w) => w.op !== 'delete').at(-1)!;
      expect(last.key).toBe(jobKey(job.exportId));
      const record = JSON.parse(await text(store, last.key)) as JobRecord;
      expect(record.status).toBe('COMPLETED');
    });

    it('leaves its own files in place', async () => {
      const { job, store } = finished();
      for (const key of [job.manifest!, ...subject.ownFiles(job.exportId)]) expect(await store.head(key), key).toBeDefined();
      for (const file of job.dataFiles ?? []) expect((await store.head(file.key))?.size, file.key).toBe(file.bytes);
    });

    options.additionalTests?.(finished);
  });
}

async function text(store: Store, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
