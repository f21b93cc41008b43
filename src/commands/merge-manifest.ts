import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { AzureOptions, Store } from '../stores/store.js';
import { isAzureUrl, parseAzureUrl } from '../stores/azure/url.js';
import { resolveAzureAuth } from '../stores/azure/credentials.js';
import { parseGcsUrl } from '../stores/gcs/url.js';
import { mistypedUrl } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import {
  parseManifestJson,
  readManifestFile,
  readManifestDocument,
  readManifestText,
  readTakeoutManifest,
  redshiftPlan,
  takeoutTablePlan,
  type EntryLocation,
  type MergePlan,
} from '../manifests/read.js';
import { plural } from '../units.js';

/** Where a manifest was read from, and how its relative entries and s3:// entries are reached. */
export interface ManifestSource {
  plan: MergePlan;
  /** Relative entries are keys under this base. */
  base: { dest: string; prefix: string };
  /** The buckets and containers whose entries may be read, as `containerOf` names them. */
  allowedBuckets: Set<string>;
  origin: string;
}

/**
 * The bucket or container an entry lies in, as one comparable name: `s3://BUCKET`, `gs://BUCKET`,
 * `azure://ACCOUNT/CONTAINER`; undefined for a relative key.
 */
export function containerOf(location: EntryLocation): string | undefined {
  if (location.kind === 'relative') return undefined;
  if (location.kind === 'azure') return `azure://${location.account}/${location.container}`;
  return `${location.kind}://${location.bucket}`;
}

/**
 * `--allow-bucket` values as `containerOf` names them: a bare name is an S3 or GCS bucket (both are buckets),
 * `ACCOUNT/CONTAINER` an Azure container; `s3://B`, `gs://B` and `azure://ACCOUNT[.blob…]/CONTAINER` say which.
 */
export function allowedContainers(values: readonly string[]): Set<string> {
  const allowed = new Set<string>();
  for (const raw of values) {
    const value = raw.replace(/\/+$/, '');
    const azure = /^(?:azure:\/\/)?([a-z0-9]{3,24})(?:\.blob\.core\.[a-z0-9.-]+)?\/([a-z0-9$][a-z0-9-]*)$/i.exec(value);
    if (/^(?:s3|gs):\/\/[^/]+$/i.test(value)) allowed.add(value.replace(/^[a-z0-9]+/i, (s) => s.toLowerCase()));
    else if (azure) allowed.add(`azure://${azure[1]!.toLowerCase()}/${azure[2]!}`);
    else if (!value.includes('/') && !value.includes(':')) {
      allowed.add(`s3://${value}`);
      allowed.add(`gs://${value}`);
    } else throw new TakeoutError('USAGE', `--allow-bucket ${JSON.stringify(raw)} is not a bucket name, ACCOUNT/CONTAINER, s3://B, gs://B or azure://ACCOUNT/CONTAINER`);
  }
  return allowed;
}

function splitS3(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.*)$/.exec(url);
  if (!match || !match[2]) throw new TakeoutError('USAGE', `${url} is not s3://bucket/key`);
  return { bucket: match[1]!, key: match[2] };
}

/** A slice manifest inside a takeout (`<root>/manifests/<tableId>.manifest`) is read with the takeout's checksums. */
function takeoutRootOf(manifestKey: string): string | undefined {
  const dir = manifestKey.includes('/') ? manifestKey.slice(0, manifestKey.lastIndexOf('/')) : '';
  const name = dir.slice(dir.lastIndexOf('/') + 1);
  if (name !== MANIFESTS_DIR) return undefined;
  return dir.slice(0, Math.max(0, dir.length - MANIFESTS_DIR.length)).replace(/\/$/, '');
}

export async function loadManifest(
  arg: string,
  o: { allowBucket: readonly string[]; table: string | undefined },
  open: (dest: string) => Promise<Store>,
  azureOptions?: AzureOptions,
): Promise<ManifestSource> {
  const allowed = allowedContainers(o.allowBucket);
  let fetch: (key: string) => Promise<string | undefined>;
  let baseDest: string;
  let manifestKey: string;
  if (/^s3:\/\//i.test(arg)) {
    const { bucket, key } = splitS3(`s3://${arg.slice('s3://'.length)}`);
    allowed.add(`s3://${bucket}`);
    baseDest = `s3://${bucket}/`;
    manifestKey = key;
    const store = await open(baseDest);
    fetch = async (k) => ((await store.head(k)) ? readManifestText(await store.get(k), `s3://${bucket}/${k}`) : undefined);
  } else if (isAzureUrl(arg)) {
    // Relative entries are read from the same container; a takeout in Azure lists only relative keys.
    const location = parseAzureUrl(arg);
    manifestKey = location.prefix.replace(/\/$/, '');
    if (manifestKey === '') throw new TakeoutError('USAGE', `${arg} names a container, not a manifest`);
    baseDest = `azure://${location.endpoint === undefined ? '' : `${new URL(location.endpoint).host}/`}${location.container}/`;
    const store = await open(baseDest);
    // Entries may name the manifest's own container by its account (Keboola's manifests do); without an
    // account in the URL, the account is the credentials' (as the store itself resolves it).
    const account = location.account ?? resolveAzureAuth(location, azureOptions).account;
    if (account !== undefined) allowed.add(`azure://${account}/${location.container}`);
    fetch = async (k) => ((await store.head(k)) ? readManifestText(await store.get(k), `azure://${location.container}/${k}`) : undefined);
  } else if (/^gs:\/\//i.test(arg)) {
    const location = parseGcsUrl(arg);
    manifestKey = location.prefix.replace(/\/$/, '');
    if (manifestKey === '') throw new TakeoutError('USAGE', `${arg} names a bucket, not a manifest`);
    allowed.add(`gs://${location.bucket}`);
    baseDest = `gs://${location.bucket}/`;
    const store = await open(baseDest);
    fetch = async (k) => ((await store.head(k)) ? readManifestText(await store.get(k), `gs://${location.bucket}/${k}`) : undefined);
  } else {
    // A mistyped URL (`s3:/b/m.manifest`) is a usage error, not a missing local file.
    const mistyped = /^[a-z][a-z0-9+.-]*:\/\//i.test(arg) ? new TakeoutError('USAGE', `manifest ${JSON.stringify(arg)}: only s3://, azure:// and gs:// URLs and local paths are read`) : mistypedUrl(arg, 'manifest');
    if (mistyped) throw mistyped;
    const file = resolve(arg);
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new TakeoutError('NOT_FOUND', `manifest ${arg} does not exist`);
    if (info.isDirectory()) throw new TakeoutError('USAGE', `manifest ${arg} is a folder; give its takeout-manifest.json or a manifests/<table>.manifest`);
    baseDest = '/';
    manifestKey = file.slice(1);
    fetch = async (k) => readManifestFile(`/${k}`, k === manifestKey ? arg : `/${k}`);
  }
  const origin = arg;
  const text = await fetch(manifestKey);
  if (text === undefined) throw new TakeoutError('NOT_FOUND', `manifest ${arg} does not exist`);
  const document = readManifestDocument(text, origin);
  const value = document.value;
  const folder = manifestKey.includes('/') ? manifestKey.slice(0, manifestKey.lastIndexOf('/')) : '';
  const table = o.table;

  if (typeof value === 'object' && value !== null && 'kind' in value && value.kind === 'takeout') {
    if (!table) throw new TakeoutError('USAGE', `${origin} is a takeout manifest: name the table with --table <id>`);
    const plan = takeoutTablePlan(readTakeoutManifest(value, origin), table, origin);
    return { plan, base: { dest: baseDest, prefix: folder }, allowedBuckets: allowed, origin };
  }
  if (table) throw new TakeoutError('USAGE', '--table applies only to a takeout manifest (takeout-manifest.json)');
  const root = takeoutRootOf(manifestKey);
  if (root !== undefined) {
    // A takeout's slice manifest: prefer the takeout manifest beside it, which has sha256 and raw sizes.
    const tableId = basename(manifestKey).replace(/\.manifest$/, '');
    const outer = await fetch(root ? `${root}/${TAKEOUT_MANIFEST_FILE}` : TAKEOUT_MANIFEST_FILE);
    if (outer !== undefined) {
      const takeout = readTakeoutManifest(parseManifestJson(outer, `${TAKEOUT_MANIFEST_FILE} beside ${origin}`), TAKEOUT_MANIFEST_FILE);
      if (takeout.tables.some((t) => t.id === tableId)) {
        const fromTakeout = takeoutTablePlan(takeout, tableId, TAKEOUT_MANIFEST_FILE);
        const own = redshiftPlan(document, origin);
        // The two must list the same slices; a slice manifest that disagrees is not trusted.
        if (own.entries.length !== fromTakeout.entries.length) {
          throw new TakeoutError('INTEGRITY', `${origin} lists ${plural(own.entries.length, 'slice')}, ${TAKEOUT_MANIFEST_FILE} ${fromTakeout.entries.length}`);
        }
        return { plan: fromTakeout, base: { dest: baseDest, prefix: root }, allowedBuckets: allowed, origin };
      }
    }
    return { plan: redshiftPlan(document, origin), base: { dest: baseDest, prefix: root }, allowedBuckets: allowed, origin };
  }
  return { plan: redshiftPlan(document, origin), base: { dest: baseDest, prefix: folder }, allowedBuckets: allowed, origin };
}
