/**
 * DynamoDB tables as takeout tables: all in bucket `in.c-dynamodb`, their columns the key attributes
 * (partition key, then sort key) and the whole item.
 */
import type { TableDescription } from '@aws-sdk/client-dynamodb';
import { TakeoutError } from '../../errors.js';
import { where, type Place } from './errors.js';
import type { BucketDescriptor, MetadataEntry, TableDescriptor, TableQuery } from '../../model.js';

/** The name of the column that holds the whole item (a key attribute of that name pushes it to `_item`). */
const ITEM_COLUMN = 'item';
export const BUCKET: BucketDescriptor = { id: 'in.c-dynamodb', stage: 'in', name: 'c-dynamodb', displayName: 'dynamodb' };
/** DynamoDB's table names: 3–255 of these characters. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
/** Table states a Scan can read. */
export const SCANNABLE = new Set(['ACTIVE', 'UPDATING']);

export interface KeyAttribute {
  name: string;
  /** S, N or B. */
  type: string;
}

export interface DynamoTable extends TableDescriptor {
  tableName: string;
  keys: KeyAttribute[];
  itemColumn: string;
}

/** `dynamodb:orders` → `orders`; `dynamodb:` → undefined (every table). */
export function dynamodbTableName(uri: string): string | undefined {
  const name = uri.replace(/^dynamodb:/i, '');
  if (name === '') return undefined;
  if (!TABLE_NAME.test(name)) {
    // Not echoed: a mistyped URI may carry anything, credentials included.
    throw new TakeoutError('USAGE', '--source dynamodb:TABLE: not a DynamoDB table name (3 to 255 letters, digits, _ . -)', {
      hint: 'use dynamodb:TABLE for one table, or dynamodb: for every table of the region',
    });
  }
  return name;
}

/** A table's id part: DynamoDB allows `.` in names, Keboola ids do not. */
export function dynamodbTableId(tableName: string): string {
  return `${BUCKET.id}.${tableName.replaceAll('.', '_')}`;
}

/** A described table as a takeout table: its keys and the item column, typed in column metadata; counts are DynamoDB's estimates. */
export function descriptor(place: Place, table: TableDescription, tableName: string): DynamoTable {
  const types = new Map((table.AttributeDefinitions ?? []).map((a) => [a.AttributeName ?? '', a.AttributeType ?? 'S']));
  const schema = table.KeySchema ?? [];
  const keys: KeyAttribute[] = ['HASH', 'RANGE']
    .map((kind) => schema.find((k) => k.KeyType === kind)?.AttributeName)
    .filter((name): name is string => name !== undefined)
    .map((name) => ({ name, type: types.get(name) ?? 'S' }));
  if (keys.length === 0) throw new TakeoutError('FAILED', `DescribeTable dynamodb table ${tableName} answered without a key schema (${where(place)})`);
  let itemColumn = ITEM_COLUMN;
  while (keys.some((k) => k.name === itemColumn)) itemColumn = `_${itemColumn}`;
  const columnMetadata: Record<string, MetadataEntry[]> = {};
  for (const key of keys) {
    columnMetadata[key.name] = [
      { key: 'KBC.datatype.type', value: key.type, provider: 'takeout' },
      { key: 'KBC.datatype.nullable', value: '0', provider: 'takeout' },
      { key: 'KBC.datatype.basetype', value: key.type === 'N' ? 'NUMERIC' : 'STRING', provider: 'takeout' },
    ];
  }
  columnMetadata[itemColumn] = [
    { key: 'KBC.datatype.type', value: 'dynamodb-item', provider: 'takeout' },
    { key: 'KBC.datatype.nullable', value: '0', provider: 'takeout' },
    { key: 'KBC.datatype.basetype', value: 'STRING', provider: 'takeout' },
  ];
  const id = dynamodbTableId(tableName);
  return {
    id,
    bucketId: BUCKET.id,
    name: id.slice(BUCKET.id.length + 1),
    displayName: tableName,
    tableName,
    keys,
    itemColumn,
    columns: [...keys.map((k) => k.name), itemColumn],
    primaryKey: keys.map((k) => k.name),
    ...(table.CreationDateTime ? { created: table.CreationDateTime.toISOString() } : {}),
    // DynamoDB refreshes both about every six hours: estimates for --dry-run, not counts.
    ...(table.ItemCount !== undefined ? { rowsCount: Number(table.ItemCount) } : {}),
    ...(table.TableSizeBytes !== undefined ? { dataSizeBytes: Number(table.TableSizeBytes) } : {}),
    columnMetadata,
  };
}

/** The columns a scan gives for a query: a scan filters nothing, so any filter but --columns and --limit is refused. */
export function plannedColumns(description: string, table: DynamoTable, query: TableQuery | undefined): string[] {
  if (query?.where?.length || query?.changedSince || query?.changedUntil || query?.changedColumn || query?.orderBy?.length) {
    throw new TakeoutError('USAGE', `${description}: a DynamoDB scan takes --columns and --limit only; --where, --changed-* and --order-by need a database source`);
  }
  if (!query?.columns?.length) return table.columns;
  for (const column of query.columns) {
    if (!table.columns.includes(column)) {
      throw new TakeoutError('USAGE', `--columns: table ${table.id} has no column "${column}"`, { hint: `columns: ${table.columns.join(', ')}` });
    }
  }
  return query.columns;
}
