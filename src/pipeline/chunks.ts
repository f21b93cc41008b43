/** Stream helpers shared by the merge and the slice copy. */

/** Network reads arrive in 16–64 KiB pieces; feeding zlib 1 MiB at a time cuts its per-call cost ~20×. */
const COALESCE_BYTES = 1024 * 1024;

export async function* coalesce(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    if (size === 0 && chunk.length >= COALESCE_BYTES) {
      yield chunk;
      continue;
    }
    parts.push(chunk);
    size += chunk.length;
    if (size >= COALESCE_BYTES) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}

/** Runs tasks `concurrency` at a time in order of index; the first failure stops new ones and is thrown once all settle. */
export async function mapLimitOrFail<T>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        await task(items[index]!, index);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
