import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { joinInside, keyProblem } from '../src/stores/keys.js';
import { parseEntryUrl, parseManifestJson, readRedshiftManifest, readTakeoutManifest, takeoutTablePlan } from '../src/manifests/read.js';
import { TAKEOUT_MANIFEST_VERSION } from '../src/manifests/takeout.js';
import { TakeoutError } from '../src/errors.js';

/**
 * Properties of the code that handles untrusted input: keys from layouts, manifests and remote
 * listings, and manifest files. Each holds for ~1000 generated inputs.
 */

const RUNS = { numRuns: 1000 };
const ROOT = path.resolve('/tmp/takeout-root');

/** Pieces hostile keys are made of. */
const hostilePiece = fc.oneof(
  fc.constantFrom(
    '..', '.', '', '/', '\\', '\u0000', '\n', '\r', '\t', '\u001f', '\u007f', 'C:', 'c:\\', 'C:/', '\\\\server\\share',
    '//server/share', 'con', 'CON.txt', 'aux.csv', 'nul.tar.gz', 'com1', 'LPT9.log', 'prn', 'a.', 'a ', ' ', '...',
    '..\\..', '%2e%2e', '\u2024\u2024', '\uFF0E\uFF0E', '🎉', 'Žluťoučký', '\u202E', '\uFEFF', 'a'.repeat(300), '~', '$HOME',
  ),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.stringMatching(/^[a-z0-9._-]{1,10}$/),
);

const hostileKey = fc.oneof(
  fc.array(hostilePiece, { maxLength: 8 }).map((parts) => parts.join('/')),
  fc.array(hostilePiece, { maxLength: 8 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
);

/** Keys that are probably safe, so the "safe ⇒ join succeeds" direction is exercised too. */
const plausibleKey = fc
  .array(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._ -]{0,20}[A-Za-z0-9_]$/), { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join('/'));

const anyKey = fc.oneof(hostileKey, plausibleKey);

function isOutside(root: string, p: string): boolean {
  const relative = path.relative(root, p);
  return relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
}

describe('joinInside (path sanitiser)', () => {
  it('either throws a TakeoutError or returns a path strictly inside the root', () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        let p: string;
        try {
          p = joinInside(ROOT, key);
        } catch (error) {
          expect(error).toBeInstanceOf(TakeoutError);
          expect((error as TakeoutError).code).toBe('USAGE');
          return;
        }
        expect(isOutside(ROOT, p), `${JSON.stringify(key)} → ${p}`).toBe(false);
        expect(path.isAbsolute(p)).toBe(true);
      }),
      RUNS,
    );
  });

  it('succeeds for every key keyProblem accepts, and throws for every key it refuses', () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        const problem = keyProblem(key);
        if (problem === undefined) {
          expect(() => joinInside(ROOT, key)).not.toThrow();
        } else {
          expect(() => joinInside(ROOT, key)).toThrow(TakeoutError);
        }
      }),
      RUNS,
    );
  });

  it('accepts enough plausible keys for the property above to mean something', () => {
    const samples = fc.sample(plausibleKey, { numRuns: 500, seed: 42 });
    const accepted = samples.filter((key) => keyProblem(key) === undefined).length;
    expect(accepted).toBeGreaterThan(250);
  });

  it('does not treat a sibling folder with the root as a prefix as inside', () => {
    expect(() => joinInside('/data', '../data-evil/x')).toThrow(TakeoutError);
    expect(isOutside('/data', path.resolve('/data-evil/x'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Manifest readers

/** Call `fn`; pass when it returns or throws a TakeoutError, fail (with the error) otherwise. */
function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof TakeoutError)) {
      throw new Error(`threw ${(error as Error)?.constructor?.name ?? typeof error}, not TakeoutError: ${String(error)}`, { cause: error });
    }
  }
}

/** Everything a caller does with a parsed manifest value. */
function readAll(value: unknown, tableId: string): void {
  onlyTyped(() => readRedshiftManifest(value, 'm.manifest'));
  onlyTyped(() => {
    const manifest = readTakeoutManifest(value, 'takeout-manifest.json');
    takeoutTablePlan(manifest, tableId, 'takeout-manifest.json');
  });
}

/** Manifests are JSON files, so the readers see what JSON.parse makes: JSON values only. */
const anything = fc.jsonValue({ maxDepth: 3 });

const entryLike = fc.record(
  {
    url: fc.oneof(hostileKey, fc.constantFrom('s3://b/k', 's3://b/', 's3:///k', 's3://b/../k', 'https://x/y', 'file:///etc/passwd', 'C:\\x'), anything),
    mandatory: fc.oneof(fc.boolean(), anything),
    meta: fc.oneof(
      fc.record({ content_length: fc.oneof(fc.integer(), fc.double(), anything), record_count: fc.oneof(fc.nat(), anything) }, { requiredKeys: [] }),
      anything,
    ),
  },
  { requiredKeys: [] },
);

const sliceLike = fc.record(
  {
    key: fc.oneof(hostileKey, plausibleKey, anything),
    bytes: fc.oneof(fc.nat(), fc.double(), anything),
    rawBytes: fc.oneof(fc.nat(), anything),
    rows: fc.oneof(fc.nat(), fc.integer(), anything),
    sha256: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), anything),
  },
  { requiredKeys: [] },
);

const tableLike = fc.record(
  {
    id: fc.oneof(fc.constantFrom('in.c-main.t', 'x'), anything),
    status: fc.oneof(fc.constantFrom('complete', 'failed', 'skipped'), anything),
    error: fc.oneof(fc.record({ message: fc.string() }), anything),
    columns: fc.oneof(fc.array(fc.string()), anything),
    slices: fc.oneof(fc.array(fc.oneof(sliceLike, anything), { maxLength: 5 }), anything),
  },
  { requiredKeys: [] },
);

const redshiftLike = fc.record(
  {
    entries: fc.oneof(fc.array(fc.oneof(entryLike, anything), { maxLength: 6 }), anything),
    schema: fc.oneof(fc.record({ elements: fc.oneof(fc.array(fc.oneof(fc.record({ name: fc.oneof(fc.string(), anything) }), anything)), anything) }), anything),
  },
  { requiredKeys: [] },
);

const takeoutLike = fc.record(
  {
    kind: fc.oneof(fc.constant('takeout'), anything),
    formatVersion: fc.oneof(fc.constant(TAKEOUT_MANIFEST_VERSION), anything),
    tables: fc.oneof(fc.array(tableLike, { maxLength: 5 }), anything),
  },
  { requiredKeys: [] },
);

const tableIdArb = fc.oneof(fc.constantFrom('in.c-main.t', 'x', '', 'constructor', '__proto__'), fc.string());

describe('manifest readers only ever throw TakeoutError', () => {
  it('for arbitrary strings parsed as JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json(), fc.constantFrom('', 'null', '[]', '{}', '{"entries":', '\uFEFF{}')), tableIdArb, (text, tableId) => {
        let value: unknown;
        try {
          value = parseManifestJson(text, 'm.manifest');
        } catch (error) {
          expect(error).toBeInstanceOf(TakeoutError);
          return;
        }
        readAll(value, tableId);
      }),
      RUNS,
    );
  });

  it('for arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), tableIdArb, (value, tableId) => readAll(value, tableId)),
      RUNS,
    );
  });

  it('for redshift-shaped objects (entries arrays of random objects)', () => {
    fc.assert(
      fc.property(redshiftLike, tableIdArb, (value, tableId) => readAll(value, tableId)),
      RUNS,
    );
  });

  it('for takeout-shaped objects (tables arrays of random objects), through JSON and as is', () => {
    fc.assert(
      fc.property(takeoutLike, fc.oneof(tableIdArb, fc.constant('in.c-main.t')), (value, tableId) => {
        readAll(value, tableId);
        let text: string | undefined;
        try {
          text = JSON.stringify(value);
        } catch {
          return; // BigInt and friends: not something a file can hold
        }
        if (text !== undefined) readAll(parseManifestJson(text, 'm'), tableId);
      }),
      RUNS,
    );
  });

  // A `null` entry in "tables" (valid JSON, found by the property above) is an INTEGRITY error, not a
  // TypeError from looking up a table in it.
  it('refuses a takeout manifest with a null table entry with a TakeoutError', () => {
    const value = parseManifestJson(`{"kind":"takeout","formatVersion":${TAKEOUT_MANIFEST_VERSION},"tables":[null]}`, 'm');
    expect(() => takeoutTablePlan(readTakeoutManifest(value, 'm'), 'in.c-main.t', 'm')).toThrow(TakeoutError);
  });

  it('reads a well-formed takeout manifest (sanity check for the generators)', () => {
    const manifest = readTakeoutManifest(
      { kind: 'takeout', formatVersion: TAKEOUT_MANIFEST_VERSION, tables: [{ id: 't', status: 'complete', columns: ['a'], slices: [{ key: 'in/c/t.part_0.csv.gz', bytes: 3 }] }] },
      'm',
    );
    expect(takeoutTablePlan(manifest, 't', 'm').entries).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// parseEntryUrl

describe('parseEntryUrl', () => {
  const scheme = fc.constantFrom('http', 'https', 'file', 'HTTP', 'Https', 'FILE', 'hTtPs');
  const rest = fc.oneof(fc.string(), fc.constantFrom('//host/key', '///etc/passwd', '//b/k.csv.gz', '/x', 'x'));

  it("reads the three clouds' entries as Keboola's sliced files write them, and refuses malformed ones", () => {
    expect(parseEntryUrl('s3://kbc-files/exp-2/1.csv.gz0000_part_00', 'm')).toEqual({ kind: 's3', bucket: 'kbc-files', key: 'exp-2/1.csv.gz0000_part_00' });
    expect(parseEntryUrl('gs://kbc-files/exp-2/1.csv.gz0000_part_00', 'm')).toEqual({ kind: 'gs', bucket: 'kbc-files', key: 'exp-2/1.csv.gz0000_part_00' });
    expect(parseEntryUrl('azure://KbcFiles.blob.core.windows.net/exp-2-export/1.csv.gz0000_part_00', 'm')).toEqual({
      kind: 'azure',
      account: 'kbcfiles',
      container: 'exp-2-export',
      key: '1.csv.gz0000_part_00',
    });
    for (const bad of ['gs://bucket', 'gs:///key', 'azure://account/container/blob', 'azure://a.blob.core.windows.net/c', 'azure://a.blob.core.windows.net/c/../x', 'gs://b/./k']) {
      expect(() => parseEntryUrl(bad, 'm'), bad).toThrow(TakeoutError);
    }
    // The https form of a blob URL is not an entry form: https stays refused, whatever the host.
    expect(() => parseEntryUrl('https://a.blob.core.windows.net/c/k', 'm')).toThrow(TakeoutError);
  });

  it('never accepts http:, https: or file: URLs', () => {
    fc.assert(
      fc.property(scheme, rest, (s, r) => {
        expect(() => parseEntryUrl(`${s}:${r}`, 'm')).toThrow(TakeoutError);
      }),
      RUNS,
    );
  });

  const segment = fc.oneof(fc.stringMatching(/^[a-z0-9._-]{1,8}$/), hostilePiece);
  const withDotDot = fc
    .tuple(fc.array(segment, { maxLength: 4 }), fc.array(segment, { maxLength: 4 }))
    .map(([before, after]) => [...before, '..', ...after].join('/'));

  it('never accepts a key with a ".." segment, relative or s3://', () => {
    fc.assert(
      fc.property(withDotDot, fc.stringMatching(/^[a-z0-9.-]{1,12}$/), (key, bucket) => {
        expect(() => parseEntryUrl(key, 'm')).toThrow(TakeoutError);
        expect(() => parseEntryUrl(`s3://${bucket}/${key}`, 'm')).toThrow(TakeoutError);
      }),
      RUNS,
    );
  });

  it('returns only s3 locations or safe relative keys, and otherwise throws TakeoutError', () => {
    fc.assert(
      fc.property(fc.oneof(hostileKey, fc.string(), scheme.chain((s) => rest.map((r) => `${s}:${r}`))), (url) => {
        let location;
        try {
          location = parseEntryUrl(url, 'm');
        } catch (error) {
          expect(error).toBeInstanceOf(TakeoutError);
          return;
        }
        if (location.kind === 'relative') expect(keyProblem(location.key)).toBeUndefined();
        else {
          expect(url.toLowerCase().startsWith(`${location.kind}://`)).toBe(true);
          expect(location.key.split('/')).not.toContain('..');
        }
      }),
      RUNS,
    );
  });
});
