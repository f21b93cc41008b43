/** The tables a `dynamodb:` source takes: ListTables (every table of the region) or the one named, each described. */
import { DescribeTableCommand, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient, TableDescription } from '@aws-sdk/client-dynamodb';
import { TakeoutError } from '../../errors.js';
import { redact } from '../../secrets.js';
import { where } from './errors.js';
import { call } from './retry.js';
import { connect, type DynamoDbState } from './state.js';
import { BUCKET, SCANNABLE, descriptor, dynamodbTableId } from './table.js';
import type { ProjectDescriptor } from '../../model.js';

/** ListTables returns at most 100 names per page. */
const LIST_PAGE_SIZE = 100;
/** DescribeTable calls in flight while listing every table of an account. */
const DESCRIBE_CONCURRENCY = 8;

async function describe(state: DynamoDbState, c: DynamoDBClient, tableName: string, signal: AbortSignal | undefined): Promise<TableDescription> {
  const answer = await call(state, { operation: 'DescribeTable', table: tableName }, (abortSignal) => c.send(new DescribeTableCommand({ TableName: tableName }), abortSignal ? { abortSignal } : {}), signal);
  if (!answer.Table) throw new TakeoutError('FAILED', `DescribeTable dynamodb table ${tableName} answered without a table (${where(state)})`);
  return answer.Table;
}

async function listTableNames(state: DynamoDbState, c: DynamoDBClient, signal: AbortSignal | undefined): Promise<string[]> {
  const names: string[] = [];
  let start: string | undefined;
  do {
    const page = await call(
      state,
      { operation: 'ListTables' },
      (abortSignal) => c.send(new ListTablesCommand({ Limit: LIST_PAGE_SIZE, ...(start ? { ExclusiveStartTableName: start } : {}) }), abortSignal ? { abortSignal } : {}),
      signal,
    );
    names.push(...(page.TableNames ?? []));
    start = page.LastEvaluatedTableName;
  } while (start);
  return names;
}

/** Every named table described, DESCRIBE_CONCURRENCY at a time, in the order of the names. */
async function describeAll(state: DynamoDbState, c: DynamoDBClient, names: string[], signal: AbortSignal | undefined): Promise<(TableDescription | undefined)[]> {
  const described: (TableDescription | undefined)[] = new Array<TableDescription | undefined>(names.length);
  let next = 0;
  const describeNext = async (): Promise<void> => {
    while (next < names.length) {
      const index = next++;
      described[index] = await describe(state, c, names[index]!, signal);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, names.length) }, describeNext));
  return described;
}

/** The project: the tables a scan can read (remembered in `state.tables`), the others named in `skipped`. */
export async function listProject(state: DynamoDbState, signal: AbortSignal | undefined): Promise<ProjectDescriptor> {
  const { description, only, tables } = state;
  const c = await connect(state);
  const names = only === undefined ? await listTableNames(state, c, signal) : [only];
  const described = await describeAll(state, c, names, signal);

  tables.clear();
  const skipped: { id: string; reason: string }[] = [];
  for (const [index, tableName] of names.entries()) {
    const table = described[index]!;
    const status = table.TableStatus ?? 'ACTIVE';
    if (!SCANNABLE.has(status)) {
      if (only !== undefined) {
        throw new TakeoutError('FAILED', `dynamodb table ${tableName} is ${status} and cannot be scanned (${where(state)})`, { hint: 'run again when the table is ACTIVE' });
      }
      skipped.push({ id: dynamodbTableId(tableName), reason: `table status ${status}` });
      continue;
    }
    const made = descriptor(state, table, tableName);
    const other = tables.get(made.id);
    if (other) throw new TakeoutError('INVALID_INPUT', `${description}: tables ${tableName} and ${other.tableName} both map to ${made.id}`);
    tables.set(made.id, made);
  }
  return {
    name: `DynamoDB ${state.region}`,
    buckets: [{ ...BUCKET, description: `DynamoDB tables in ${state.region}` }],
    tables: [...tables.values()],
    components: [],
    ...(skipped.length ? { skipped } : {}),
    meta: {
      region: state.region,
      ...(state.endpoint ? { endpoint: redact(state.endpoint) } : {}),
      listedAt: new Date().toISOString(),
      segments: state.segments,
      consistentRead: state.consistentRead,
      isolation: 'none: a parallel scan, not a point-in-time snapshot; items written during the scan may or may not be included',
    },
  };
}
