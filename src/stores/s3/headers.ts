/** What S3's ETag headers say, read the same way by the store and the writer. */

/** `"abc"` → `abc`: S3 quotes ETags; manifests and comparisons use the bare value. */
export function stripQuotes(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^"|"$/g, '');
}
