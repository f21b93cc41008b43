/** What S3's response headers say, read the same way by the store and the writer. */

/** `"abc"` → `abc`: S3 quotes ETags; manifests and comparisons use the bare value. */
export function stripQuotes(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^"|"$/g, '');
}

/** `bytes 0-99/1234` → `{start: 0, total: 1234}`; `*` total → undefined; anything else → undefined. */
export function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}
