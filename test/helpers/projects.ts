import { randomBytes } from 'node:crypto';
import { cp, mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { DEMO_PROJECT, tempFolder, type CliResult } from './cli.js';

/** Rows per block written by demoWithBigTable: ~1 MB of poorly compressible CSV. */
const ROWS_PER_BLOCK = 12_000;

/**
 * The demo project plus `in.c-big.events`, ~1 MB of poorly compressible rows per block: big enough that a
 * run at a slow setting is still mid-table when a test acts on it.
 */
export async function demoWithBigTable(name: string, blocks: number, note: (i: number) => string = (i) => `"note ${i}"`): Promise<string> {
  const root = path.join(await tempFolder(name), 'project');
  await cp(DEMO_PROJECT, root, { recursive: true });
  await mkdir(path.join(root, 'in.c-big'), { recursive: true });
  const handle = await open(path.join(root, 'in.c-big', 'events.csv'), 'w');
  try {
    await handle.write('id,hash,note\n');
    for (let block = 0; block < blocks; block++) {
      const rows: string[] = [];
      for (let i = 0; i < ROWS_PER_BLOCK; i++) rows.push(`${block * ROWS_PER_BLOCK + i},${randomBytes(24).toString('hex')},${note(i)}\n`);
      await handle.write(rows.join(''));
    }
  } finally {
    await handle.close();
  }
  return root;
}

/**
 * A project of one table, `in.c-big.big`: 100,000 rows of 120 random hex characters, ~12 MB stored
 * uncompressed, so with --part-size 5MB one slice goes up as a multipart upload of 3 parts.
 */
export async function bigPayloadProject(name: string): Promise<string> {
  const root = await tempFolder(name);
  await mkdir(path.join(root, 'in.c-big'), { recursive: true });
  const rows = ['"id","payload"'];
  for (let i = 0; i < 100_000; i += 1) rows.push(`"${i}","${randomBytes(60).toString('hex')}"`);
  await writeFile(path.join(root, 'in.c-big', 'big.csv'), `${rows.join('\n')}\n`);
  return root;
}

/** Bytes of the block writeRepeatedCsv repeats. */
const REPEATED_BLOCK_BYTES = 1 << 20;

/**
 * A CSV file (header `id,hash,note`) of one ~1 MiB block of varied rows (`hexBytes` random bytes each, as hex)
 * written `blocks` times: hundreds of MB in well under a second.
 */
export async function writeRepeatedCsv(file: string, blocks: number, hexBytes = 24): Promise<void> {
  const rows: string[] = [];
  let size = 0;
  for (let i = 0; size < REPEATED_BLOCK_BYTES; i++) {
    const row = `${i},${randomBytes(hexBytes).toString('hex')},"note ${i}, with a comma"\n`;
    rows.push(row);
    size += row.length;
  }
  const block = Buffer.from(rows.join(''));
  const handle = await open(file, 'w');
  try {
    await handle.write('id,hash,note\n');
    for (let i = 0; i < blocks; i++) await handle.write(block);
  } finally {
    await handle.close();
  }
}

/** Exit 0, or fail showing what the command said. */
export function expectOk(result: CliResult): void {
  expect(result.code, `stdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr}`).toBe(0);
}

/**
 * The tricky test project: a folder whose tables are hard to carry byte for byte. Values with embedded
 * newlines (LF and CRLF), quotes, commas, a UTF-8 BOM, non-Latin text and emoji, a 200 KB field, a
 * header-only table, upper-case and gzipped extensions (`UPPER.CSV`, `t.csv.GZ`), a CSV at the folder's root
 * (bucket in.c-default), a table with 60 columns and one of 12,000 short rows that fills several slices at
 * 64KB. Returns the folder and the ids takeout gives its tables.
 */
/** The tricky project's tables and the source file each comes from (relative to its root). */
export const TRICKY_FILES: Record<string, string> = {
  'in.c-default.rooted': 'rooted.csv',
  'in.c-tricky.UPPER': 'in.c-tricky/UPPER.CSV',
  'in.c-tricky.header_only': 'in.c-tricky/header_only.csv',
  'in.c-tricky.text': 'in.c-tricky/text.csv',
  'out.c-Weird_Bucket-1.t': 'out.c-Weird_Bucket-1/t.csv.GZ',
  'out.c-Weird_Bucket-1.wide-table_1': 'out.c-Weird_Bucket-1/wide-table_1.csv',
};

export async function trickyProject(name: string): Promise<{ root: string; tables: string[] }> {
  const root = path.join(await tempFolder(name), 'project');
  await mkdir(path.join(root, 'in.c-tricky'), { recursive: true });
  await mkdir(path.join(root, 'out.c-Weird_Bucket-1'), { recursive: true });
  const { gzipSync } = await import('node:zlib');
  await writeFile(
    path.join(root, 'in.c-tricky', 'text.csv'),
    '\uFEFFid,value,note\r\n' +
      '1,"line one\nline two","a ""quoted"" word"\r\n' +
      '2,"crlf\r\ninside","comma, inside"\r\n' +
      '3,Zürich Ελληνικά 日本語 😀,"trailing space "\r\n' +
      '4,,""\r\n' +
      `5,${'x'.repeat(200_000)},long\r\n`,
  );
  await writeFile(path.join(root, 'in.c-tricky', 'header_only.csv'), 'a,b,c\n');
  await writeFile(path.join(root, 'in.c-tricky', 'UPPER.CSV'), 'ID,Name\n1,upper\n2,"case ""ext"""\n');
  const wide = Array.from({ length: 60 }, (_v, i) => `col_${i}`);
  const wideRows = Array.from({ length: 50 }, (_v, r) => wide.map((_c, i) => (i % 7 === 0 ? `"${r},${i}"` : String(r * i))).join(','));
  await writeFile(path.join(root, 'out.c-Weird_Bucket-1', 'wide-table_1.csv'), `${wide.join(',')}\n${wideRows.join('\n')}\n`);
  const many = ['n,hash'];
  for (let i = 0; i < 12_000; i++) many.push(`${i},${randomBytes(8).toString('hex')}`);
  await writeFile(path.join(root, 'out.c-Weird_Bucket-1', 't.csv.GZ'), gzipSync(`${many.join('\n')}\n`));
  await writeFile(path.join(root, 'rooted.csv'), 'k,v\nroot,"at the top"\n');
  return {
    root,
    tables: Object.keys(TRICKY_FILES),
  };
}
