/**
 * A table's rows from a parallel scan: `segments` Scan calls (Segment/TotalSegments), each paging with
 * ExclusiveStartKey, interleaved into one stream of rows in no particular order. Each segment reads at
 * most PAGES_AHEAD_PER_SEGMENT pages ahead of the reader, so memory stays bounded however large the table.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue, DynamoDBClient, ScanCommandInput, ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { TakeoutError } from '../../errors.js';
import { mapError } from './errors.js';
import { dynamodbJson, keyCell } from './json.js';
import { PAGES_AHEAD_PER_SEGMENT } from './options.js';
import { call } from './retry.js';
import type { DynamoDbState } from './state.js';
import type { DynamoTable } from './table.js';
import type { Row } from '../../model.js';

/** One page a segment has read, and how the reader tells the segment it has taken it. */
interface Page {
  items: Record<string, AttributeValue>[];
  taken: () => void;
}

/** What the segments of one scan and its reader share. */
interface ScanQueue {
  readonly ready: Page[];
  failure: TakeoutError | undefined;
  /** Segments still scanning. */
  running: number;
  /** The reader, when it waits for a page. */
  wake: (() => void) | undefined;
  readonly stop: AbortController;
}

function notify(queue: ScanQueue): void {
  const waiting = queue.wake;
  queue.wake = undefined;
  waiting?.();
}

/** One segment's pages, in order, each queued for the reader; the next Scan waits until the reader has taken enough. */
async function scanSegment(state: DynamoDbState, c: DynamoDBClient, tableName: string, queue: ScanQueue, input: (startKey: Record<string, AttributeValue> | undefined) => ScanCommandInput): Promise<void> {
  const { ready, stop } = queue;
  let startKey: Record<string, AttributeValue> | undefined;
  let queued = 0;
  let resume: (() => void) | undefined;
  try {
    do {
      const scanInput = input(startKey);
      const page: ScanCommandOutput = await call(
        state,
        { operation: 'Scan', table: tableName },
        (abortSignal) => c.send(new ScanCommand(scanInput), abortSignal ? { abortSignal } : {}),
        stop.signal,
      );
      startKey = page.LastEvaluatedKey;
      const items = page.Items ?? [];
      if (items.length === 0) continue;
      queued++;
      ready.push({
        items,
        taken: () => {
          queued--;
          const go = resume;
          resume = undefined;
          go?.();
        },
      });
      notify(queue);
      // The next Scan waits until the reader has taken enough of this segment's pages.
      if (queued >= PAGES_AHEAD_PER_SEGMENT) await new Promise<void>((go) => (resume = go));
    } while (startKey && !stop.signal.aborted);
  } catch (error) {
    queue.failure ??= mapError(state, error, { operation: 'Scan', table: tableName });
    stop.abort();
  } finally {
    queue.running--;
    notify(queue);
  }
}

/** The rows of `columns` of a table, at most `limit` of them, from a parallel scan. */
export async function* scanRows(state: DynamoDbState, c: DynamoDBClient, table: DynamoTable, columns: string[], limit: number | undefined, signal: AbortSignal | undefined): AsyncGenerator<Row> {
  if (limit === 0) return;

  const { segments, consistentRead } = state;
  const withItem = columns.includes(table.itemColumn);
  const keyIndex = new Map(table.keys.map((k) => [k.name, k]));
  // Without the item column only the keys travel: less to transfer (the read cost is the same).
  const projection: Partial<ScanCommandInput> = withItem
    ? {}
    : {
        ProjectionExpression: table.keys.map((_, i) => `#k${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(table.keys.map((k, i) => [`#k${i}`, k.name])),
      };
  const toRow = (item: Record<string, AttributeValue>): Row => columns.map((column) => (keyIndex.has(column) ? keyCell(item[column]) : dynamodbJson(item)));
  const input = (segment: number, startKey: Record<string, AttributeValue> | undefined): ScanCommandInput => ({
    TableName: table.tableName,
    ...(segments > 1 ? { Segment: segment, TotalSegments: segments } : {}),
    ...(consistentRead ? { ConsistentRead: true } : {}),
    ...(limit !== undefined ? { Limit: Math.min(limit, 2 ** 31 - 1) } : {}),
    ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    ...projection,
  });

  const queue: ScanQueue = { ready: [], failure: undefined, running: segments, wake: undefined, stop: new AbortController() };
  const { ready, stop } = queue;
  state.scans.add(stop);
  const onAbort = (): void => {
    stop.abort();
    notify(queue);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) stop.abort();

  const check = (): void => {
    if (signal?.aborted) throw new TakeoutError('INTERRUPTED', `Scan dynamodb table ${table.tableName} was interrupted`);
    if (state.closed) throw new TakeoutError('INTERRUPTED', `Scan dynamodb table ${table.tableName}: the source was closed while reading`);
    if (queue.failure) throw queue.failure;
  };
  const workers = Array.from({ length: segments }, (_, segment) => scanSegment(state, c, table.tableName, queue, (startKey) => input(segment, startKey)));
  let emitted = 0;
  try {
    for (;;) {
      check();
      const page = ready.shift();
      if (page) {
        page.taken();
        for (const item of page.items) {
          // A failed segment or an abort ends the table at once, not after the rest of this page.
          check();
          yield toRow(item);
          emitted++;
          if (limit !== undefined && emitted >= limit) return;
        }
        continue;
      }
      if (queue.running === 0) return;
      await new Promise<void>((resolve) => (queue.wake = resolve));
    }
  } finally {
    stop.abort();
    for (const page of ready.splice(0)) page.taken();
    signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled(workers);
    state.scans.delete(stop);
  }
}
