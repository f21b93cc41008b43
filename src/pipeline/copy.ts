import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { BUCKETS_FILE } from '../keboola/layout.js';
import { parseManifestJson, readListedText, readManifestText } from '../manifests/read.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE, type TakeoutManifest } from '../manifests/takeout.js';
import { ListedBytesCheck } from '../manifests/listed-bytes.js';
import { expectedFiles, type ExpectedFile } from '../manifests/verify.js';
import { canCopyServerSide, canPreflight, isLocalFolder, whereIs, type Store } from '../stores/store.js';
import { mapLimitOrFail } from './chunks.js';
import type { CopySummary, Emit } from './events.js';
import { untilAborted } from './limit.js';

/**
 * `takeout copy`: a committed takeout from one store to another. Every file its manifest lists is copied,
 * server-side when the destination store can reach the source (same cloud, same account or endpoint, same
 * credentials), otherwise read and written through this machine with its sha256 checked before the object is
 * committed. Slice manifests, which name their slices by absolute URL in S3 and GCS, are rewritten for the
 * destination; the takeout manifest (destination, the rewritten files, `copiedFrom`) is written last, so an
 * interrupted copy leaves no takeout-manifest.json and is never mistaken for a takeout.
 */
export interface CopyTakeoutOptions {
  source: Store;
  destination: Store;
  /** The source's takeout manifest, status complete (the command checks it). */
  manifest: TakeoutManifest;
  /** Replace a takeout at the destination; otherwise one there is refused and every object is created, never replaced. */
  overwrite: boolean;
  /** Objects copied at once. */
  concurrency: number;
  /** Check and say what would be copied, and how (server-side or through this machine); write and remove nothing. */
  dryRun?: boolean;
  toolVersion: string;
  signal?: AbortSignal;
  emit: Emit;
}

interface Tally {
  objectsDone: number;
  bytesDone: number;
  serverSide: { objects: number; bytes: number };
  throughMachine: { objects: number; bytes: number };
}

/** A slice manifest of the layout (`manifests/<table>.manifest`): its entries name slices and are rewritten. */
function isSliceManifest(key: string): boolean {
  return key.startsWith(`${MANIFESTS_DIR}/`) && key.endsWith('.manifest');
}

/** Where a store is, for comparison: its folder, or its URL and endpoint (`s3://b/p/` and ` at http://…`). */
function place(store: Store): { path: string; where: string } {
  if (isLocalFolder(store)) return { path: `${store.localPath.replace(/[\\/]+$/, '')}${path.sep}`, where: 'local' };
  const at = store.description.indexOf(' at ');
  return at === -1 ? { path: store.description, where: '' } : { path: store.description.slice(0, at), where: store.description.slice(at) };
}

/**
 * The same place, or one inside the other (a folder in a folder, a prefix under a prefix of the same endpoint):
 * a copy there would be read back as extra files of the source by `verify`, or the source's by the copy's.
 */
function checkPlaces(source: Store, destination: Store): void {
  const hint = 'copy to a prefix or folder outside the source takeout (and not around it)';
  const from = place(source);
  const to = place(destination);
  if (from.where !== to.where) return;
  if (from.path === to.path) throw new TakeoutError('USAGE', `the destination ${destination.description} is the source`, { hint });
  if (to.path.startsWith(from.path) || from.path.startsWith(to.path)) {
    throw new TakeoutError('USAGE', `the destination ${destination.description} and the source ${source.description} overlap`, { hint });
  }
}

/**
 * As `run` does: a takeout at the destination is refused unless replaced (--overwrite); other files are not
 * refused but said. Returns the keys of the takeout being replaced, for removal of those the copy does not write.
 */
async function checkDestination(options: CopyTakeoutOptions): Promise<string[]> {
  const { destination, emit } = options;
  if (canPreflight(destination)) await untilAborted(destination.preflight({ readOnly: options.dryRun === true }), options.signal, `checking ${destination.description}`);
  const existing = (await destination.head(TAKEOUT_MANIFEST_FILE)) ?? (await destination.head(BUCKETS_FILE));
  if (existing && !options.overwrite) {
    throw new TakeoutError('EXISTS', `${destination.description} already holds a takeout (${existing.key})`, {
      hint: 'choose an empty destination, or pass --overwrite to replace it',
    });
  }
  if (!existing) {
    for await (const object of destination.list('')) {
      emit({ type: 'warning', message: `${destination.description} already holds files (${JSON.stringify(object.key)}): the takeout is copied beside them` });
      break;
    }
    return [];
  }
  const old = await oldTakeoutKeys(destination);
  // Until the new manifest lands, the destination must not look like a complete takeout.
  if (!options.dryRun) await destination.delete([TAKEOUT_MANIFEST_FILE]);
  return old;
}

/** The files the takeout being replaced lists; none when its manifest is missing or unreadable (its files are then overwritten, not removed). */
async function oldTakeoutKeys(destination: Store): Promise<string[]> {
  try {
    const text = await readManifestText(await destination.get(TAKEOUT_MANIFEST_FILE), TAKEOUT_MANIFEST_FILE);
    return expectedFiles(parseManifestJson(text, TAKEOUT_MANIFEST_FILE) as TakeoutManifest).map((f) => f.key);
  } catch {
    return [];
  }
}

/**
 * --dry-run: what the copy would do, as its summary says it (`dryRun: true`): every object the manifest lists,
 * server-side where the destination reaches the source, the slice manifests (rewritten) and the takeout manifest
 * through this machine. The destination was checked as a copy checks it; nothing is written.
 */
function plannedCopy(options: CopyTakeoutOptions, files: readonly ExpectedFile[], serverSide: boolean, started: number): CopySummary {
  const inCloud = files.filter((f) => serverSide && !isSliceManifest(f.key));
  const through = files.filter((f) => !inCloud.includes(f));
  const sum = (list: readonly ExpectedFile[]): number => list.reduce((n, f) => n + f.bytes, 0);
  const summary: CopySummary = {
    source: options.source.description,
    destination: options.destination.description,
    dryRun: true,
    // The takeout manifest, written last, is one more object; its size is known only once it is written.
    objects: files.length + 1,
    bytes: sum(files),
    serverSide: { objects: inCloud.length, bytes: sum(inCloud) },
    throughMachine: { objects: through.length + 1, bytes: sum(through) },
    rewrittenManifests: files.filter((f) => isSliceManifest(f.key)).length,
    durationMs: Date.now() - started,
  };
  options.emit({ type: 'copy:done', summary });
  return summary;
}

/** A stream's bytes, counted and hashed on the way, into a writer; the size and sha256 are checked before the commit. */
async function streamObject(options: CopyTakeoutOptions, file: ExpectedFile, signal: AbortSignal, moved: (bytes: number) => void): Promise<void> {
  const { source, destination, overwrite } = options;
  const where = whereIs(source, file.key);
  const body: Readable = await source.get(file.key);
  const writer = await destination.writer(file.key, { contentLength: file.bytes, ifNoneMatch: !overwrite, signal });
  const check = new ListedBytesCheck(file, where, moved);
  body.on('error', (error) => check.destroy(error));
  try {
    // The check ends the stream with an error when the size or sha256 is not the manifest's: nothing is committed.
    for await (const chunk of body.pipe(check) as AsyncIterable<Buffer>) await writer.write(chunk);
    await writer.finish();
  } catch (error) {
    body.destroy();
    check.destroy();
    await writer.abort();
    throw toTakeoutError(error, where);
  }
}

/** Every entry of a slice manifest, renamed from the source's URL (or relative key) to the destination's. */
function rewriteSliceManifest(text: string, key: string, options: CopyTakeoutOptions, sliceKeys: ReadonlySet<string>): string {
  const { source, destination } = options;
  const byUrl = new Map<string, string>();
  for (const k of sliceKeys) {
    byUrl.set(k, k);
    const url = source.urlFor(k);
    if (url !== undefined) byUrl.set(url, k);
  }
  const value = parseManifestJson(text, key) as { entries?: unknown };
  if (!Array.isArray(value.entries)) throw new TakeoutError('INTEGRITY', `${source.description}${key}: a slice manifest without entries`);
  for (const entry of value.entries as { url?: unknown }[]) {
    const sliceKey = typeof entry.url === 'string' ? byUrl.get(entry.url) : undefined;
    if (sliceKey === undefined) {
      throw new TakeoutError('INTEGRITY', `${source.description}${key}: entry ${JSON.stringify(entry.url)} is not a slice of this takeout`, { hint: 'check the source with takeout verify' });
    }
    entry.url = destination.urlFor(sliceKey) ?? sliceKey;
  }
  return JSON.stringify(value);
}

/** Reads a slice manifest (sha256 and size checked), writes it renamed; returns its new size and sha256. */
async function copySliceManifest(options: CopyTakeoutOptions, file: ExpectedFile, sliceKeys: ReadonlySet<string>, signal: AbortSignal): Promise<{ key: string; bytes: number; sha256: string }> {
  const text = await readListedText(options.source, file);
  const body = Buffer.from(rewriteSliceManifest(text, file.key, options, sliceKeys), 'utf8');
  await options.destination.put(file.key, body, { contentType: 'application/json', ifNoneMatch: !options.overwrite, signal });
  return { key: file.key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') };
}

export async function copyTakeout(options: CopyTakeoutOptions): Promise<CopySummary> {
  const { source, destination, manifest, emit } = options;
  const started = Date.now();
  checkPlaces(source, destination);
  const files = expectedFiles(manifest);
  const sliceKeys = new Set(manifest.tables.flatMap((t) => (t.slices ?? []).map((s) => s.key)));
  const replaced = await checkDestination(options);
  if (options.dryRun) return plannedCopy(options, files, canCopyServerSide(destination) && destination.canCopyFrom(source), started);
  const total = { objects: files.length + 1, bytes: files.reduce((n, f) => n + f.bytes, 0) };
  emit({ type: 'copy:start', source: source.description, destination: destination.description, objects: total.objects, bytes: total.bytes });
  const tally: Tally = { objectsDone: 0, bytesDone: 0, serverSide: { objects: 0, bytes: 0 }, throughMachine: { objects: 0, bytes: 0 } };
  const progress = (): void =>
    emit({ type: 'copy:progress', objects: total.objects, objectsDone: tally.objectsDone, bytes: total.bytes, bytesDone: tally.bytesDone, serverSideBytes: tally.serverSide.bytes });
  const serverSide = canCopyServerSide(destination) && destination.canCopyFrom(source) ? destination : undefined;
  // The first failure stops the other copies: what is in flight is aborted, nothing more starts.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const rewritten = new Map<string, { key: string; bytes: number; sha256: string }>();
  try {
    await mapLimitOrFail(files, options.concurrency, async (file) => {
      if (stop.signal.aborted) throw new TakeoutError('INTERRUPTED', `copy of ${file.key} was not started`);
      try {
        if (isSliceManifest(file.key)) {
          const written = await copySliceManifest(options, file, sliceKeys, stop.signal);
          rewritten.set(file.key, written);
          tally.throughMachine.objects++;
          tally.throughMachine.bytes += written.bytes;
        } else if (serverSide) {
          await serverSide.copyFrom(source, file.key, file.key, { size: file.bytes, ifNoneMatch: !options.overwrite, signal: stop.signal });
          tally.serverSide.objects++;
          tally.serverSide.bytes += file.bytes;
        } else {
          let streamed = 0;
          try {
            // A large slice through this machine reports its bytes as they go, not only when it is done.
            await streamObject(options, file, stop.signal, (bytes) => {
              streamed += bytes;
              tally.bytesDone += bytes;
              progress();
            });
          } finally {
            tally.bytesDone -= streamed;
          }
          tally.throughMachine.objects++;
          tally.throughMachine.bytes += file.bytes;
        }
      } catch (error) {
        stop.abort();
        throw error;
      }
      tally.objectsDone++;
      tally.bytesDone += file.bytes;
      progress();
    });
  } catch (error) {
    // An interrupt makes every store call fail one way or another: the interrupt is what is said.
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `copy to ${destination.description} was interrupted: no takeout-manifest.json was written`);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  const body = Buffer.from(`${JSON.stringify(copiedManifest(options, rewritten), null, 2)}\n`, 'utf8');
  await destination.put(TAKEOUT_MANIFEST_FILE, body, { contentType: 'application/json', ifNoneMatch: !options.overwrite, ...(options.signal ? { signal: options.signal } : {}) });
  tally.objectsDone++;
  tally.throughMachine.objects++;
  tally.throughMachine.bytes += body.length;
  progress();
  // What the replaced takeout had and this one does not would be read back as data (as run --overwrite removes it).
  const written = new Set(files.map((f) => f.key));
  const stale = replaced.filter((k) => !written.has(k));
  if (stale.length > 0) await destination.delete(stale);
  const summary: CopySummary = {
    source: source.description,
    destination: destination.description,
    dryRun: false,
    objects: tally.objectsDone,
    bytes: tally.serverSide.bytes + tally.throughMachine.bytes,
    serverSide: tally.serverSide,
    throughMachine: tally.throughMachine,
    rewrittenManifests: rewritten.size,
    durationMs: Date.now() - started,
  };
  emit({ type: 'copy:done', summary });
  return summary;
}

/** The source's manifest, now naming the destination, the rewritten slice manifests' sizes and sha256, and where it came from. */
function copiedManifest(options: CopyTakeoutOptions, rewritten: ReadonlyMap<string, { key: string; bytes: number; sha256: string }>): TakeoutManifest {
  const { manifest } = options;
  return {
    ...manifest,
    destination: options.destination.description,
    files: manifest.files.map((f) => rewritten.get(f.key) ?? f),
    copiedFrom: { source: options.source.description, runId: manifest.runId, copiedAt: new Date().toISOString(), tool: { name: 'takeout', version: options.toolVersion } },
  };
}
