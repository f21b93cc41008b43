import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalStore } from '../src/stores/local/store.js';
import { TakeoutError } from '../src/errors.js';
import { writeTableSlices } from '../src/pipeline/table.js';
import type { Source } from '../src/sources/source.js';
import type { ProjectDescriptor } from '../src/model.js';

export interface SourceFixture {
  source: Source;
  /** Every table the source must list, with its records in order (values as strings; NULL as ''). */
  expected: Map<string, { columns: string[]; records: string[][] }>;
  /** The source gives rows in no defined order (a DynamoDB parallel scan): records are compared as a multiset. */
  unordered?: boolean;
  cleanup?(): Promise<void>;
}

/** Records in one fixed order, for sources that give them in none. */
function sortRecords(records: string[][]): string[][] {
  return records
    .map((record) => [JSON.stringify(record), record] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, record]) => record);
}

/** What the contract's tests share, filled in before the first of them runs (so read it inside a test, not when declaring one). */
export interface SourceContractContext {
  fixture: SourceFixture;
  /** The source's listing, made once. */
  project: ProjectDescriptor;
  /** A scratch folder, removed after the tests. */
  out: string;
}

export interface SourceContractOptions {
  /**
   * The source's own tests, declared inside the contract's block so they share its fixture and listing
   * (as unstorage's `testDriver` takes `additionalTests`).
   */
  additionalTests?: (context: SourceContractContext) => void;
}

/**
 * What every source must do, whatever it reads: list its tables with ids, buckets and columns, and give
 * each table a body that the one pipeline turns into slices holding exactly the table's records.
 */
export function describeSourceContract(name: string, factory: () => Promise<SourceFixture>, options: SourceContractOptions = {}): void {
  describe(`source contract: ${name}`, () => {
    const context = {} as SourceContractContext;
    let fixture: SourceFixture;
    let project: ProjectDescriptor;
    let out: string;

    beforeAll(async () => {
      fixture = context.fixture = await factory();
      project = context.project = await fixture.source.project();
      out = context.out = await mkdtemp(join(tmpdir(), 'takeout-source-contract-'));
    });
    afterAll(async () => {
      await fixture.source.close?.();
      await fixture.cleanup?.();
      await rm(out, { recursive: true, force: true });
    });

    it('lists every expected table, each in a listed bucket, with unique non-empty columns', () => {
      const ids = project.tables.map((t) => t.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of fixture.expected.keys()) expect(ids).toContain(id);
      const buckets = new Set(project.buckets.map((b) => b.id));
      for (const t of project.tables) {
        expect(buckets.has(t.bucketId)).toBe(true);
        expect(t.id).toBe(`${t.bucketId}.${t.name}`);
        expect(t.columns.length).toBeGreaterThan(0);
        expect(new Set(t.columns).size).toBe(t.columns.length);
        expect(t.columns.every((c) => c !== '')).toBe(true);
        for (const key of t.primaryKey) expect(t.columns).toContain(key);
      }
      for (const b of project.buckets) expect(b.id).toBe(`${b.stage}.${b.name}`);
    });

    it('gives every table a body that the pipeline writes as exactly its records', async () => {
      const destination = createLocalStore(out);
      for (const [id, want] of fixture.expected) {
        const table = project.tables.find((t) => t.id === id)!;
        expect(table.columns).toEqual(want.columns);
        const body = await fixture.source.openTable(table, {});
        const result = await writeTableSlices(table, body, {
          destination,
          keyFor: (i) => `${id}/part_${i}.csv.gz`,
          sliceBytes: 32 * 1024,
          compressionLevel: 1,
          lineEnding: '\n',
        });
        const text = Buffer.concat(
          await Promise.all(result.slices.map(async (s) => gunzipSync(await readFile(join(out, s.key))))),
        ).toString('utf8');
        const records = text === '' ? [] : (parse(text) as string[][]);
        const arranged = (rows: string[][]): string[][] => (fixture.unordered ? sortRecords(rows) : rows);
        expect(arranged(records)).toEqual(arranged(want.records));
        expect(result.rows).toBe(want.records.length);
      }
    });

    it('answers an unknown table with a typed error, not a crash', async () => {
      const ghost = { ...project.tables[0]!, id: 'in.c-nope.ghost', bucketId: 'in.c-nope', name: 'ghost' };
      const attempt = async (): Promise<void> => {
        const body = await fixture.source.openTable(ghost, {});
        await writeTableSlices(ghost, body, {
          destination: createLocalStore(out),
          keyFor: (i) => `ghost/part_${i}.csv.gz`,
          sliceBytes: 32 * 1024,
          compressionLevel: 1,
          lineEnding: '\n',
        });
      };
      // A source may also treat an unknown table as empty; it must never throw anything untyped.
      await attempt().catch((error: unknown) => expect(error).toBeInstanceOf(TakeoutError));
    });

    options.additionalTests?.(context);
  });
}
