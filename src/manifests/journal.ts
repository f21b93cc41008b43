import { whereIs, type Store } from '../stores/store.js';
import { TakeoutError } from '../errors.js';
import type { LandedSlice } from '../model.js';
import { readManifestText } from './read.js';
import type { ManifestTable } from './takeout.js';

/**
 * The resume journal: what an unfinished run has already landed, slice by slice. It lives at the
 * destination beside the data (`takeout-journal.json`), is rewritten atomically after each slice lands,
 * and is removed once the manifest of a complete run is written. A run that dies leaves it behind;
 * `--resume` reads it and writes only what is missing.
 */
export const JOURNAL_FILE = 'takeout-journal.json';
export const JOURNAL_VERSION = 1;

/** A landed slice: key, index, bytes, raw bytes, rows, sha256, and the ETag the store returned (a resume compares it to a HEAD). */
export type JournalSlice = LandedSlice;

export interface JournalTable {
  /** `complete`: every slice landed and `manifest` holds the table's manifest entry. */
  status: 'in-progress' | 'complete';
  slices: JournalSlice[];
  manifest?: ManifestTable;
}

export interface Journal {
  formatVersion: typeof JOURNAL_VERSION;
  kind: 'takeout-journal';
  /** The run that started the journal; resumed runs keep it. */
  runId: string;
  startedAt: string;
  updatedAt: string;
  /** Runs that have written to this journal, the first included. */
  attempts: number;
  /** Everything that decides the bytes of a slice; a resume with other values would write other slices. */
  fingerprint: Record<string, unknown>;
  tables: Record<string, JournalTable>;
}

const invalid = (origin: string, message: string): TakeoutError =>
  new TakeoutError('INTEGRITY', `${origin}: ${message}`, { hint: 'start over with --overwrite' });

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses and checks a journal; only ever throws TakeoutError. */
export function parseJournal(text: string, origin: string): Journal {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(origin, 'not valid JSON (a journal cut short?)');
  }
  if (!isRecord(value) || value.kind !== 'takeout-journal') throw invalid(origin, 'not a takeout journal');
  if (value.formatVersion !== JOURNAL_VERSION) throw invalid(origin, `journal format ${String(value.formatVersion)} is not one this version reads (${JOURNAL_VERSION})`);
  if (typeof value.runId !== 'string' || !isRecord(value.fingerprint) || !isRecord(value.tables)) throw invalid(origin, 'journal fields missing');
  for (const [id, table] of Object.entries(value.tables)) {
    if (!isRecord(table) || !Array.isArray(table.slices) || (table.status !== 'in-progress' && table.status !== 'complete')) {
      throw invalid(origin, `table ${id}: malformed entry`);
    }
    for (const slice of table.slices as unknown[]) {
      if (
        !isRecord(slice) ||
        typeof slice.key !== 'string' ||
        !isCount(slice.index) ||
        !isCount(slice.bytes) ||
        !isCount(slice.rawBytes) ||
        !isCount(slice.rows) ||
        typeof slice.sha256 !== 'string' ||
        !/^[0-9a-f]{64}$/.test(slice.sha256)
      ) {
        throw invalid(origin, `table ${id}: malformed slice entry`);
      }
    }
    if (table.status === 'complete' && !isRecord(table.manifest)) throw invalid(origin, `table ${id}: complete without its manifest entry`);
  }
  return value as unknown as Journal;
}

/** Option names as users type them, for "resume with the same options" messages. */
const FINGERPRINT_FLAGS: Record<string, string> = {
  source: '--source',
  sliceBytes: '--slice-size',
  sliceRows: '--slice-rows',
  compressionLevel: '--compression-level',
  lineEnding: '--line-ending',
  requote: '--quote-all',
  query: 'the export options (--columns, --where, --changed-*, --limit, --order-by)',
  layout: 'the layout',
};

/** The first option whose value differs between a journal and this run, as a flag name. */
export function fingerprintDifference(recorded: Record<string, unknown>, current: Record<string, unknown>): string | undefined {
  const keys = new Set([...Object.keys(recorded), ...Object.keys(current)]);
  for (const key of keys) {
    if (JSON.stringify(recorded[key] ?? null) !== JSON.stringify(current[key] ?? null)) return FINGERPRINT_FLAGS[key] ?? key;
  }
  return undefined;
}

/** Reads the journal at a destination, or undefined when there is none. Errors name the destination when it has a description. */
export async function readJournal(destination: Pick<Store, 'head' | 'get'> & { description?: string }, key = JOURNAL_FILE): Promise<Journal | undefined> {
  if (!(await destination.head(key))) return undefined;
  const origin = destination.description ? whereIs({ description: destination.description }, key) : key;
  return parseJournal(await readManifestText(await destination.get(key), origin), origin);
}
