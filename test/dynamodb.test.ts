import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { BatchWriteItemCommand, CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue, CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { parse } from 'csv-parse/sync';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DYNAMODB_OPTIONS, sourceOptions } from '../src/commands/options.js';
import { TakeoutError } from '../src/errors.js';
import { dynamodbJson } from '../src/sources/dynamodb/json.js';
import { DEFAULT_SEGMENTS, MAX_SEGMENTS, RETRY_MAX_ATTEMPTS, type DynamoDbSourceOptions } from '../src/sources/dynamodb/options.js';
import { createDynamoDbSource } from '../src/sources/dynamodb/source.js';
import { dynamodbTableId, dynamodbTableName } from '../src/sources/dynamodb/table.js';
import { openSource } from '../src/sources/registry.js';
import type { Source } from '../src/sources/source.js';
import type { Row, TableBody, TableDescriptor } from '../src/model.js';
import { startDynamoProxy, type DynamoProxy } from './faults/dynamodb-proxy.js';
import { closedPort, jsonLines, runCli } from './helpers/cli.js';
import { describeSourceContract } from './source.contract.js';

/**
 * The DynamoDB source against dynalite (an in-memory DynamoDB emulator) on a loopback port: every
 * attribute type, composite, binary and oddly named keys, a 5,000-item table read by a parallel scan, and
 * faults (throttling, 5xx, refused credentials, a missing table, an unreachable endpoint) injected by a
 * JSON-protocol proxy. Expected values are read from dynalite's own wire answers, not through the SDK.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ACCESS_KEY_ID = 'AKIDDYNALITETEST';
const SECRET_ACCESS_KEY = 'dynalite-secret-canary-7f3a9c';
const REGION = 'eu-west-1';
const BIG_ITEMS = 5000;
/** ~2 KB per item: 10 MB in all, so every segment of a scan needs more than one 1 MB page. */
const BIG_PAD = 'x'.repeat(2000);

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

/** Every attribute type, nested, unicode and 38-digit numbers; numbers in the canonical form DynamoDB answers with. */
const KINDS: Record<string, AttributeValue>[] = [
  {
    pk: { S: 'scalars' },
    s: { S: 'plain' },
    n: { N: '42' },
    neg: { N: '-0.5' },
    b: { B: bytes(0, 255, 16) },
    yes: { BOOL: true },
    no: { BOOL: false },
    nothing: { NULL: true },
    empty: { S: '' },
  },
  { pk: { S: 'sets' }, ss: { SS: ['a', 'b, "quoted"', 'Ž'] }, ns: { NS: ['1', '2.5', '-3'] }, bs: { BS: [bytes(1), bytes(2, 3)] } },
  {
    pk: { S: 'nested' },
    l: { L: [{ S: 'x' }, { N: '1' }, { NULL: true }, { L: [] }, { M: {} }, { BOOL: false }, { B: bytes(9) }, { SS: ['in a list'] }] },
    m: { M: { deep: { M: { deeper: { L: [{ M: { leaf: { S: 'bottom' } } }] } } }, ns: { NS: ['7'] } } },
  },
  { pk: { S: 'Žluťoučký kůň 🎉 東京' }, 'attr "quoted", name': { S: 'line\nbreak and \r\n crlf, "quotes"' }, ключ: { S: '値' } },
  {
    pk: { S: 'big numbers' },
    max: { N: '12345678901234567890123456789012345678' },
    min: { N: '-12345678901234567890123456789012345678' },
    small: { N: '0.000000000000000000000000000000000001' },
    pi: { N: '3.14159265358979323846264338327950288' },
  },
  { pk: { S: 'item' }, item: { S: 'an attribute named item' } },
];

interface TableSpec {
  name: string;
  keys: [string, 'S' | 'N' | 'B'][];
  items: Record<string, AttributeValue>[];
}

const TABLES: TableSpec[] = [
  { name: 'kinds', keys: [['pk', 'S']], items: KINDS },
  {
    name: 'composite',
    keys: [['pk', 'S'], ['sk', 'N']],
    items: [
      { pk: { S: 'a' }, sk: { N: '1' }, v: { S: 'one' } },
      { pk: { S: 'a' }, sk: { N: '2' } },
      { pk: { S: 'b' }, sk: { N: '-12345678901234567890123456789012345678' }, v: { S: 'low' } },
    ],
  },
  {
    name: 'bin.keys',
    keys: [['pk', 'B']],
    items: [
      { pk: { B: bytes(0) }, v: { S: 'zero' } },
      { pk: { B: bytes(255, 254, 253) }, v: { S: 'high' } },
    ],
  },
  { name: 'item_keyed', keys: [['item', 'S'], ['n', 'N']], items: [{ item: { S: 'a' }, n: { N: '1' }, other: { BOOL: true } }] },
  { name: 'empty_table', keys: [['id', 'S']], items: [] },
];

let server: Server;
let endpoint: string;
let admin: DynamoDBClient;

function options(extra: DynamoDbSourceOptions = {}): DynamoDbSourceOptions {
  return { endpointUrl: endpoint, region: REGION, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, ...extra };
}

const AUTH = ['--access-key-id', ACCESS_KEY_ID, '--secret-access-key', SECRET_ACCESS_KEY, '--region', REGION];

async function createTable(name: string, keys: [string, 'S' | 'N' | 'B'][]): Promise<void> {
  const input: CreateTableCommandInput = {
    TableName: name,
    KeySchema: keys.map(([attribute], i) => ({ AttributeName: attribute, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
    AttributeDefinitions: keys.map(([attribute, type]) => ({ AttributeName: attribute, AttributeType: type })),
    BillingMode: 'PAY_PER_REQUEST',
  };
  await admin.send(new CreateTableCommand(input));
}

type WireItem = Record<string, Record<string, unknown>>;

/** A Scan straight over HTTP: dynalite's own JSON, with no SDK in between (it checks that a signature is present, not that it is right). */
async function rawScan(table: string, url = endpoint): Promise<WireItem[]> {
  const items: WireItem[] = [];
  let start: unknown;
  do {
    const answer = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.Scan',
        'x-amz-date': '20260101T000000Z',
        authorization: `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/20260101/${REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify({ TableName: table, ...(start ? { ExclusiveStartKey: start } : {}) }),
    });
    const page = (await answer.json()) as { Items: WireItem[]; LastEvaluatedKey?: unknown };
    if (answer.status !== 200) throw new Error(`raw scan of ${table}: ${JSON.stringify(page)}`);
    items.push(...page.Items);
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** What a table exports as: the key cells (S, N as text, B as base64), then the item exactly as the wire has it. */
async function expectedTable(spec: TableSpec): Promise<{ columns: string[]; records: string[][] }> {
  const keys = spec.keys.map(([name]) => name);
  const itemColumn = keys.includes('item') ? '_item' : 'item';
  const items = await rawScan(spec.name);
  return {
    columns: [...keys, itemColumn],
    records: items.map((item) => [...keys.map((key) => String(Object.values(item[key]!)[0])), JSON.stringify(item)]),
  };
}

/** DynamoDB JSON from the wire → the SDK's AttributeValues (base64 → bytes), for unmarshall. */
function fromWire(value: Record<string, unknown>): AttributeValue {
  const [type, inner] = Object.entries(value)[0]!;
  const decode = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
  switch (type) {
    case 'B':
      return { B: decode(inner as string) };
    case 'BS':
      return { BS: (inner as string[]).map(decode) };
    case 'L':
      return { L: (inner as Record<string, unknown>[]).map(fromWire) };
    case 'M':
      return { M: wireItem(inner as WireItem) };
    default:
      return value as unknown as AttributeValue;
  }
}

function wireItem(item: WireItem): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, fromWire(value)]));
}

async function readRows(body: TableBody): Promise<Row[]> {
  if (body.kind !== 'rows') throw new Error(`expected rows, got ${body.kind}`);
  const rows: Row[] = [];
  for await (const row of body.rows) rows.push(row);
  return rows;
}

async function listed(source: Source, id: string): Promise<TableDescriptor> {
  const project = await source.project();
  const table = project.tables.find((t) => t.id === id);
  if (!table) throw new Error(`${id} is not listed`);
  return table;
}

beforeAll(async () => {
  server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  admin = new DynamoDBClient({ endpoint, region: REGION, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY } });
  for (const spec of TABLES) {
    await createTable(spec.name, spec.keys);
    for (const item of spec.items) await admin.send(new PutItemCommand({ TableName: spec.name, Item: item }));
  }
  await createTable('big', [['id', 'N']]);
  for (let first = 0; first < BIG_ITEMS; first += 25) {
    const puts = [];
    for (let id = first; id < Math.min(BIG_ITEMS, first + 25); id++) {
      puts.push({ PutRequest: { Item: { id: { N: String(id) }, pad: { S: BIG_PAD }, half: { N: String(id / 2) } } } });
    }
    const answer = await admin.send(new BatchWriteItemCommand({ RequestItems: { big: puts } }));
    expect(Object.keys(answer.UnprocessedItems ?? {})).toEqual([]);
  }
});

afterAll(async () => {
  admin?.destroy();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('DynamoDB helpers', () => {
  it('reads table names from URIs, refusing bad ones without echoing them, and maps names to ids', () => {
    expect(dynamodbTableName('dynamodb:orders')).toBe('orders');
    expect(dynamodbTableName('dynamodb:')).toBeUndefined();
    for (const bad of ['dynamodb:ab', 'dynamodb:orders?secret=hunter2-secret', 'dynamodb:a/b/c', `dynamodb:${'x'.repeat(256)}`]) {
      const error = (() => {
        try {
          dynamodbTableName(bad);
        } catch (e) {
          return e as TakeoutError;
        }
        return undefined;
      })();
      expect(error, bad).toBeInstanceOf(TakeoutError);
      expect(error!.code).toBe('USAGE');
      expect(error!.message).not.toContain('hunter2');
    }
    expect(dynamodbTableId('bin.keys')).toBe('in.c-dynamodb.bin_keys');
    expect(dynamodbTableId('Orders-2026_v2')).toBe('in.c-dynamodb.Orders-2026_v2');
  });

  it('writes items in DynamoDB JSON exactly as the wire has them', () => {
    const item: Record<string, AttributeValue> = {
      pk: { S: 'a "b"\n' },
      n: { N: '12345678901234567890123456789012345678' },
      b: { B: Buffer.from([0, 255]) },
      view: { B: new Uint8Array(Uint8Array.from([9, 1, 2, 3]).buffer, 1, 2) },
      bs: { BS: [bytes(1), bytes()] },
      ss: { SS: ['x', 'ž'] },
      ns: { NS: ['1', '-2.5'] },
      t: { BOOL: true },
      f: { BOOL: false },
      z: { NULL: true },
      l: { L: [{ M: { k: { L: [] } } }, { N: '0' }] },
      future: { $unknown: ['X', { raw: bytes(7) }] } as unknown as AttributeValue,
    };
    expect(dynamodbJson(item)).toBe(
      '{"pk":{"S":"a \\"b\\"\\n"},"n":{"N":"12345678901234567890123456789012345678"},"b":{"B":"AP8="},"view":{"B":"AQI="},' +
        '"bs":{"BS":["AQ==",""]},"ss":{"SS":["x","ž"]},"ns":{"NS":["1","-2.5"]},"t":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true},' +
        '"l":{"L":[{"M":{"k":{"L":[]}}},{"N":"0"}]},"future":{"X":{"raw":"Bw=="}}}',
    );
  });

  it('has the same segment limits in the CLI as in the source', () => {
    const segments = DYNAMODB_OPTIONS.find((o) => o.key === 'segments')!;
    expect(segments.default).toBe(DEFAULT_SEGMENTS);
    expect(segments.max).toBe(MAX_SEGMENTS);
    expect(() => createDynamoDbSource('dynamodb:x_y', { segments: 0 })).toThrow(/--segments/);
    expect(() => createDynamoDbSource('dynamodb:x_y', { segments: MAX_SEGMENTS + 1 })).toThrow(/--segments/);
  });

  it('builds source options: the S3 credentials, and --endpoint-url for DynamoDB unless the destination is S3', () => {
    const base = { region: 'eu-central-1', accessKeyId: 'AKID', secretAccessKey: 'secret', segments: 8, consistentRead: true, requestTimeout: 5000 };
    expect(sourceOptions({ ...base, endpointUrl: 'http://127.0.0.1:1', dest: '/tmp/out', schema: ['a'], token: 't' })).toEqual({
      schemas: ['a'],
      token: 't',
      dynamodb: { region: 'eu-central-1', accessKeyId: 'AKID', secretAccessKey: 'secret', endpointUrl: 'http://127.0.0.1:1', segments: 8, consistentRead: true, requestTimeoutMs: 5000 },
    });
    expect(sourceOptions({ endpointUrl: 'http://minio:9000', dest: 's3://bucket/x' }).dynamodb).toEqual({});
    expect(sourceOptions({ endpointUrl: 'http://minio:9000', dynamodbEndpointUrl: 'http://ddb:8000', dest: 's3://bucket/x' }).dynamodb).toEqual({ endpointUrl: 'http://ddb:8000' });
    expect(sourceOptions({ endpointUrl: 'http://a:1', dynamodbEndpointUrl: 'http://b:2' }).dynamodb?.endpointUrl).toBe('http://b:2');
  });

  it('is opened through the registry, loading the SDK only then', async () => {
    const source = await openSource('dynamodb:kinds', { dynamodb: options() });
    expect(source.description).toBe('dynamodb:kinds');
    expect((await openSource('dynamodb:', { dynamodb: options() })).description).toBe('dynamodb:');
    await expect(openSource('dynamodb:orders?secret=hunter2-secret')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(openSource('dynamodb:kinds', { dynamodb: { endpointUrl: 'ftp://x' } })).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describeSourceContract('dynamodb', async () => {
  const expected = new Map<string, { columns: string[]; records: string[][] }>();
  for (const spec of TABLES) expected.set(dynamodbTableId(spec.name), await expectedTable(spec));
  expected.set('in.c-dynamodb.big', await expectedTable({ name: 'big', keys: [['id', 'N']], items: [] }));
  return { source: createDynamoDbSource('dynamodb:', options({ segments: 3 })), expected, unordered: true };
});

describe('the DynamoDB source', () => {
  let proxy: DynamoProxy;
  beforeAll(async () => {
    proxy = await startDynamoProxy(endpoint);
  });
  afterAll(async () => proxy.stop());
  const viaProxy = (extra: DynamoDbSourceOptions = {}): DynamoDbSourceOptions => options({ endpointUrl: proxy.url, ...extra });
  const reset = (): void => {
    proxy.rules.length = 0;
    proxy.requests.length = 0;
  };

  it('lists tables in bucket in.c-dynamodb with key columns, the item column, types, and the scan settings', async () => {
    const source = createDynamoDbSource('dynamodb:', options({ segments: 5, consistentRead: true }));
    try {
      const project = await source.project();
      expect(project.buckets).toEqual([{ id: 'in.c-dynamodb', stage: 'in', name: 'c-dynamodb', displayName: 'dynamodb', description: `DynamoDB tables in ${REGION}` }]);
      expect(project.tables.map((t) => t.id).sort()).toEqual(
        ['big', 'bin_keys', 'composite', 'empty_table', 'item_keyed', 'kinds'].map((name) => `in.c-dynamodb.${name}`),
      );
      const byName = new Map(project.tables.map((t) => [t.displayName, t]));
      const composite = byName.get('composite')!;
      expect(composite.columns).toEqual(['pk', 'sk', 'item']);
      expect(composite.primaryKey).toEqual(['pk', 'sk']);
      expect(composite.rowsCount).toBe(0); // dynalite, like DynamoDB between its six-hourly refreshes
      expect(composite.created).toMatch(/^\d{4}-\d\d-\d\dT/);
      const meta = (column: string, key: string): string | undefined => composite.columnMetadata![column]!.find((m) => m.key === key)?.value;
      expect([meta('pk', 'KBC.datatype.type'), meta('pk', 'KBC.datatype.basetype'), meta('pk', 'KBC.datatype.nullable')]).toEqual(['S', 'STRING', '0']);
      expect([meta('sk', 'KBC.datatype.type'), meta('sk', 'KBC.datatype.basetype')]).toEqual(['N', 'NUMERIC']);
      expect([meta('item', 'KBC.datatype.type'), meta('item', 'KBC.datatype.basetype'), meta('item', 'KBC.datatype.nullable')]).toEqual(['dynamodb-item', 'STRING', '0']);
      expect(composite.columnMetadata!.item!.every((m) => m.provider === 'takeout')).toBe(true);
      const binary = byName.get('bin.keys')!;
      expect([binary.id, binary.name]).toEqual(['in.c-dynamodb.bin_keys', 'bin_keys']);
      expect(binary.columnMetadata!.pk!.find((m) => m.key === 'KBC.datatype.basetype')!.value).toBe('STRING');
      expect(binary.columnMetadata!.pk!.find((m) => m.key === 'KBC.datatype.type')!.value).toBe('B');
      // A key attribute named `item` pushes the item column aside.
      expect(byName.get('item_keyed')!.columns).toEqual(['item', 'n', '_item']);
      expect(project.meta).toMatchObject({ region: REGION, endpoint, segments: 5, consistentRead: true });
      expect(String(project.meta!.isolation)).toMatch(/not a point-in-time snapshot/);
    } finally {
      await source.close?.();
    }
  });

  it('lists only the named table, and a missing one is NOT_FOUND naming it and the region', async () => {
    const one = createDynamoDbSource('dynamodb:bin.keys', options());
    try {
      expect((await one.project()).tables.map((t) => t.id)).toEqual(['in.c-dynamodb.bin_keys']);
    } finally {
      await one.close?.();
    }
    const missing = createDynamoDbSource('dynamodb:no_such_table', options());
    await expect(missing.project()).rejects.toMatchObject({ code: 'NOT_FOUND', message: `dynamodb table no_such_table does not exist in ${REGION} (${endpoint})` });
    await missing.close?.();
  });

  it('lists every table across ListTables pages', async () => {
    reset();
    const names = Array.from({ length: 103 }, (_, i) => `paged_${String(i).padStart(3, '0')}`);
    const local = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(local.address() as AddressInfo).port}`;
    const client = new DynamoDBClient({ endpoint: url, region: REGION, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY } });
    try {
      for (const name of names) {
        await client.send(new CreateTableCommand({ TableName: name, KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }));
      }
      const source = createDynamoDbSource('dynamodb:', options({ endpointUrl: url }));
      const project = await source.project();
      expect(project.tables.map((t) => t.displayName).sort()).toEqual(names);
      await source.close?.();
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => local.close(() => resolve()));
    }
  });

  it('reads 5,000 items with a parallel scan of 7 segments: every item exactly once, paging each segment', async () => {
    reset();
    const source = createDynamoDbSource('dynamodb:big', viaProxy({ segments: 7 }));
    try {
      const rows = await readRows(await source.openTable(await listed(source, 'in.c-dynamodb.big'), {}));
      expect(rows).toHaveLength(BIG_ITEMS);
      const ids = rows.map((row) => Number(row[0]));
      expect(new Set(ids).size).toBe(BIG_ITEMS);
      expect(Math.min(...ids)).toBe(0);
      expect(Math.max(...ids)).toBe(BIG_ITEMS - 1);
      const sample = rows.find((row) => row[0] === '4321')!;
      expect(JSON.parse(sample[1]!)).toEqual({ id: { N: '4321' }, pad: { S: BIG_PAD }, half: { N: '2160.5' } });
      const scans = proxy.of('Scan');
      expect(new Set(scans.map((s) => s.body.TotalSegments))).toEqual(new Set([7]));
      expect(new Set(scans.map((s) => s.body.Segment))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6]));
      // Each segment holds ~1.4 MB: at least two pages each.
      for (let segment = 0; segment < 7; segment++) {
        expect(scans.filter((s) => s.body.Segment === segment && s.body.ExclusiveStartKey !== undefined).length, `segment ${segment}`).toBeGreaterThan(0);
      }
      expect(scans.every((s) => s.body.ConsistentRead === undefined)).toBe(true);
    } finally {
      await source.close?.();
    }
  });

  it('scans at most one page ahead per segment while the reader is busy', async () => {
    reset();
    const source = createDynamoDbSource('dynamodb:big', viaProxy({ segments: 2, consistentRead: true }));
    try {
      const body = await source.openTable(await listed(source, 'in.c-dynamodb.big'), {});
      if (body.kind !== 'rows') throw new Error('expected rows');
      const rows = body.rows[Symbol.asyncIterator]();
      await rows.next();
      await sleep(300);
      // Both segments' first pages, and the next page of the segment whose page the reader took; no more.
      expect(proxy.of('Scan').length).toBe(3);
      let count = 1;
      while (!(await rows.next()).done) count++;
      expect(count).toBe(BIG_ITEMS);
      expect(proxy.of('Scan').every((s) => s.body.ConsistentRead === true)).toBe(true);
    } finally {
      await source.close?.();
    }
  });

  it('--columns projects (only the keys travel without the item) and --limit stops the scan', async () => {
    reset();
    const source = createDynamoDbSource('dynamodb:', viaProxy());
    try {
      const project = await source.project();
      const table = (id: string): TableDescriptor => project.tables.find((t) => t.id === id)!;
      const keysOnly = await readRows(await source.openTable(table('in.c-dynamodb.composite'), { query: { columns: ['sk', 'pk'] } }));
      expect(keysOnly.map((r) => r.join('|')).sort()).toEqual(['-12345678901234567890123456789012345678|b', '1|a', '2|a']);
      const projected = proxy.of('Scan').at(-1)!.body;
      expect(projected.ProjectionExpression).toBe('#k0, #k1');
      expect(projected.ExpressionAttributeNames).toEqual({ '#k0': 'pk', '#k1': 'sk' });

      const items = await readRows(await source.openTable(table('in.c-dynamodb.bin_keys'), { query: { columns: ['item'] } }));
      expect(items.map((r) => JSON.parse(r[0]!) as unknown)).toContainEqual({ pk: { B: '//79' }, v: { S: 'high' } });

      const limited = await readRows(await source.openTable(table('in.c-dynamodb.big'), { query: { limit: 10 } }));
      expect(limited).toHaveLength(10);
      const before = proxy.of('Scan').length;
      expect(await readRows(await source.openTable(table('in.c-dynamodb.big'), { query: { limit: 0 } }))).toEqual([]);
      expect(proxy.of('Scan').length).toBe(before);

      const big = table('in.c-dynamodb.big');
      await expect(source.openTable(big, { query: { where: [{ column: 'id', operator: 'eq', values: ['1'] }] } })).rejects.toMatchObject({ code: 'USAGE' });
      await expect(source.openTable(big, { query: { changedSince: new Date(), changedColumn: 'id' } })).rejects.toThrow(/--changed-\*/);
      await expect(source.openTable(big, { query: { orderBy: [{ column: 'id', order: 'asc' }] } })).rejects.toThrow(/--order-by/);
      await expect(source.openTable(big, { query: { columns: ['pad'] } })).rejects.toThrow(/no column "pad"/);
      await expect(source.openTable({ ...big, id: 'in.c-dynamodb.ghost' }, {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await source.close?.();
    }
  });

  it('retries throttling and 5xx answers with backoff, counting every attempt', async () => {
    reset();
    proxy.rules.push(
      { operation: 'DescribeTable', times: 2, fault: { kind: 'error', status: 400, type: 'ThrottlingException' } },
      { operation: 'Scan', times: 3, fault: { kind: 'error', status: 400, type: 'ProvisionedThroughputExceededException', message: 'The level of configured provisioned throughput for the table was exceeded.' } },
      { operation: 'Scan', times: 1, fault: { kind: 'error', status: 500, type: 'InternalServerError' } },
      { operation: 'Scan', times: 1, fault: { kind: 'error', status: 400, type: 'RequestLimitExceeded' } },
      { operation: 'Scan', times: 1, fault: { kind: 'reset' } },
    );
    const source = createDynamoDbSource('dynamodb:kinds', viaProxy({ segments: 2, retry: { baseMs: 1, capMs: 5 } }));
    try {
      const rows = await readRows(await source.openTable(await listed(source, 'in.c-dynamodb.kinds'), {}));
      expect(rows).toHaveLength(KINDS.length);
      expect(proxy.of('DescribeTable').map((r) => r.fault ?? 'ok')).toEqual(['error', 'error', 'ok']);
      const scans = proxy.of('Scan');
      expect(scans.filter((s) => s.fault !== undefined)).toHaveLength(6);
      expect(scans.filter((s) => s.fault === undefined).length).toBeGreaterThanOrEqual(2);
    } finally {
      await source.close?.();
    }
  });

  it('gives up after the last attempt with NETWORK naming the table', async () => {
    reset();
    proxy.rules.push({ operation: 'Scan', fault: { kind: 'error', status: 400, type: 'ProvisionedThroughputExceededException' } });
    const source = createDynamoDbSource('dynamodb:kinds', viaProxy({ segments: 1, retry: { baseMs: 1, capMs: 2, maxAttempts: 4 } }));
    try {
      const error = await readRows(await source.openTable(await listed(source, 'in.c-dynamodb.kinds'), {})).catch((e: unknown) => e as TakeoutError);
      expect(error).toBeInstanceOf(TakeoutError);
      expect((error as TakeoutError).code).toBe('NETWORK');
      expect((error as TakeoutError).message).toMatch(/^dynamodb table kinds: Scan was still throttled after 4 attempts \(ProvisionedThroughputExceededException\)/);
      expect(proxy.of('Scan')).toHaveLength(4);
    } finally {
      await source.close?.();
    }
  });

  it('an abort or a close in the middle of a scan is INTERRUPTED, never a short table', async () => {
    const source = createDynamoDbSource('dynamodb:big', options({ segments: 3 }));
    const table = await listed(source, 'in.c-dynamodb.big');
    const controller = new AbortController();
    const body = await source.openTable(table, { signal: controller.signal });
    if (body.kind !== 'rows') throw new Error('expected rows');
    let read = 0;
    const drain = async (): Promise<void> => {
      for await (const _row of body.rows) if (++read === 100) controller.abort();
    };
    await expect(drain()).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(read).toBeLessThan(BIG_ITEMS);

    const second = await source.openTable(table, {});
    if (second.kind !== 'rows') throw new Error('expected rows');
    const rows = second.rows[Symbol.asyncIterator]();
    await rows.next();
    await source.close?.();
    const rest = async (): Promise<void> => {
      while (!(await rows.next()).done) read++;
    };
    await expect(rest()).rejects.toMatchObject({ code: 'INTERRUPTED' });
  });
});

describe('takeout with a DynamoDB source', () => {
  let out: string;
  let proxy: DynamoProxy;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'takeout-dynamodb-'));
    proxy = await startDynamoProxy(endpoint);
  });
  afterAll(async () => {
    await proxy.stop();
    await rm(out, { recursive: true, force: true });
  });

  it('takes out every table through the CLI; each item column unmarshalls to exactly what was put', async () => {
    const dest = join(out, 'all');
    const result = await runCli(['run', '--source', 'dynamodb:', '--dest', dest, '--endpoint-url', endpoint, ...AUTH, '--segments', '3', '-q']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const tables = JSON.parse(await readFile(join(dest, 'tables.json'), 'utf8')) as { id: string; primaryKey: string[]; columns: string[] }[];
    expect(tables.map((t) => t.id).sort()).toEqual(['big', 'bin_keys', 'composite', 'empty_table', 'item_keyed', 'kinds'].map((n) => `in.c-dynamodb.${n}`));
    expect(tables.find((t) => t.id === 'in.c-dynamodb.composite')!.primaryKey).toEqual(['pk', 'sk']);
    const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as {
      status: string;
      source: string;
      project: { meta: Record<string, unknown> };
      tables: { id: string; rows: number; slices: { key: string }[] }[];
    };
    expect(manifest.status).toBe('complete');
    expect(manifest.project.meta).toMatchObject({ region: REGION, segments: 3, consistentRead: false });
    expect(manifest.tables.find((t) => t.id === 'in.c-dynamodb.big')!.rows).toBe(BIG_ITEMS);

    const data = async (id: string): Promise<string[][]> => {
      const entry = manifest.tables.find((t) => t.id === id)!;
      const text = Buffer.concat(await Promise.all(entry.slices.map(async (s) => gunzipSync(await readFile(join(dest, s.key)))))).toString('utf8');
      return text === '' ? [] : (parse(text) as string[][]);
    };
    const kinds = await data('in.c-dynamodb.kinds');
    expect(kinds).toHaveLength(KINDS.length);
    for (const put of KINDS) {
      const pk = put.pk!.S!;
      const record = kinds.find((r) => r[0] === pk);
      expect(record, pk).toBeDefined();
      const back = wireItem(JSON.parse(record![1]!) as WireItem);
      expect(unmarshall(back, { wrapNumbers: true }), pk).toEqual(unmarshall(put, { wrapNumbers: true }));
    }
    const bin = await data('in.c-dynamodb.bin_keys');
    expect(bin.map((r) => r[0]).sort()).toEqual(['AA==', '//79'].sort());
    expect(await data('in.c-dynamodb.empty_table')).toEqual([]);
  });

  it('dataset export --layout dynamodb of a DynamoDB table writes every item exactly as it is (sets, binary, maps)', async () => {
    const dest = join(out, 'ddb-export');
    const result = await runCli(['dataset', 'export', 'in.c-dynamodb.kinds', '--source', 'dynamodb:kinds', '--dest', dest, '--endpoint-url', endpoint, ...AUTH, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const done = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; job?: { exportId: string } }).find((e) => e.type === 'dataset:done')!;
    const exportId = done.job!.exportId;
    const files = (await readFile(join(dest, `AWSDynamoDB/${exportId}/manifest-files.json`), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { dataFileS3Key: string });
    const items: Record<string, unknown>[] = [];
    for (const f of files) {
      const lines = gunzipSync(await readFile(join(dest, f.dataFileS3Key))).toString('utf8').split('\n').filter(Boolean);
      for (const line of lines) items.push(unmarshall(wireItem((JSON.parse(line) as { Item: WireItem }).Item), { wrapNumbers: true }));
    }
    expect(items).toHaveLength(KINDS.length);
    for (const put of KINDS) {
      const back = items.find((i) => i.pk === put.pk!.S);
      expect(back, put.pk!.S).toEqual(unmarshall(put, { wrapNumbers: true }));
    }
  });

  it('table export: one table by bucket.table, projected and limited, to stdout; filters it cannot apply are exit 2', async () => {
    const result = await runCli(
      ['table', 'export', 'dynamodb.composite', '--source', 'dynamodb:composite', '-o', '-', '-q', '--columns', 'sk,pk', '--limit', '2', ...AUTH],
      { env: { TAKEOUT_DYNAMODB_ENDPOINT_URL: endpoint } },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rows = parse(result.stdout) as string[][];
    expect(rows[0]).toEqual(['sk', 'pk']);
    expect(rows).toHaveLength(3);

    const viaSdkVariable = await runCli(['table', 'export', 'in.c-dynamodb.bin_keys', '--source', 'dynamodb:bin.keys', '-o', '-', '-q', '--no-header', ...AUTH], {
      env: { AWS_ENDPOINT_URL_DYNAMODB: endpoint },
    });
    expect(viaSdkVariable.code).toBe(0);
    expect((parse(viaSdkVariable.stdout) as string[][]).map((r) => r[0]).sort()).toEqual(['AA==', '//79'].sort());

    const where = await runCli(['table', 'export', 'dynamodb.composite', '--source', 'dynamodb:composite', '-o', '-', '--where', 'pk eq a', '--endpoint-url', endpoint, ...AUTH]);
    expect(where.code).toBe(2);
    expect(where.stderr).toMatch(/--where/);
    const segments = await runCli(['run', '--source', 'dynamodb:kinds', '--dest', join(out, 'bad'), '--segments', '0', '--endpoint-url', endpoint, ...AUTH]);
    expect(segments.code).toBe(2);
  });

  it('--dry-run lists the tables and writes nothing', async () => {
    const result = await runCli(['run', '--source', 'dynamodb:', '--dest', join(out, 'dry'), '--dry-run', '--json', '--endpoint-url', endpoint, ...AUTH]);
    expect(result.code).toBe(0);
    const plan = jsonLines(result.stdout).find((e) => e.type === 'run:plan')!.plan as { tables: { id: string }[] };
    expect(plan.tables.map((t) => t.id)).toContain('in.c-dynamodb.kinds');
  });

  it('throttled scans are retried and the export completes', async () => {
    proxy.rules.length = 0;
    proxy.requests.length = 0;
    proxy.rules.push({ operation: 'Scan', times: 5, fault: { kind: 'error', status: 400, type: 'ProvisionedThroughputExceededException', message: 'The level of configured provisioned throughput for the table was exceeded.' } });
    const dest = join(out, 'throttled');
    const result = await runCli(['run', '--source', 'dynamodb:big', '--dest', dest, '--dynamodb-endpoint-url', proxy.url, '--segments', '2', ...AUTH, '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const done = jsonLines(result.stdout).find((e) => e.type === 'table:done')!;
    expect(done.rows).toBe(BIG_ITEMS);
    expect(proxy.of('Scan').filter((s) => s.fault)).toHaveLength(5);
  });

  it('a persistent throttle ends with exit 8 naming the table, after exactly the retry budget', async () => {
    proxy.rules.length = 0;
    proxy.requests.length = 0;
    proxy.rules.push({ operation: 'Scan', fault: { kind: 'error', status: 400, type: 'ProvisionedThroughputExceededException' } });
    const result = await runCli(['run', '--source', 'dynamodb:kinds', '--dest', join(out, 'throttled-for-good'), '--dynamodb-endpoint-url', proxy.url, '--segments', '1', ...AUTH]);
    expect(result.code).toBe(8);
    expect(result.stderr).toMatch(/dynamodb table kinds: Scan was still throttled after \d+ attempts/);
    expect(proxy.of('Scan')).toHaveLength(RETRY_MAX_ATTEMPTS);
  });

  it('a missing table is exit 5, refused credentials exit 4 (secrets never printed), an unreachable endpoint exit 8', async () => {
    const missing = await runCli(['run', '--source', 'dynamodb:no_such_table', '--dest', join(out, 'missing'), '--endpoint-url', endpoint, ...AUTH]);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain(`dynamodb table no_such_table does not exist in ${REGION}`);

    proxy.rules.length = 0;
    proxy.rules.push({ operation: 'DescribeTable', fault: { kind: 'error', status: 400, type: 'UnrecognizedClientException', message: `The security token included in the request is invalid. ${SECRET_ACCESS_KEY}` } });
    const refused = await runCli(['run', '--source', 'dynamodb:kinds', '--dest', join(out, 'refused'), '--dynamodb-endpoint-url', proxy.url, ...AUTH, '--debug']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/DescribeTable on dynamodb table kinds was refused \(UnrecognizedClientException\)/);
    expect(refused.stderr).not.toContain(SECRET_ACCESS_KEY);
    proxy.rules.length = 0;

    const port = await closedPort();
    const unreachable = await runCli(['run', '--source', 'dynamodb:kinds', '--dest', join(out, 'unreachable'), '--dynamodb-endpoint-url', `http://127.0.0.1:${port}`, ...AUTH]);
    expect(unreachable.code).toBe(8);
    expect(unreachable.stderr).toContain(`cannot reach http://127.0.0.1:${port}`);
  });

  it('help and other sources never load the AWS SDK; a dynamodb: source does', async () => {
    const debug = { NODE_DEBUG: 'esm,module' };
    for (const args of [['--help'], ['run', '--help'], ['table', 'export', '--help']]) {
      const result = await runCli(args, { env: debug });
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stderr, args.join(' ')).not.toMatch(/@aws-sdk[\\/]/);
    }
    const used = await runCli(['run', '--source', 'dynamodb:no_such_table', '--dest', join(out, 'sdk'), '--endpoint-url', endpoint, ...AUTH], { env: debug });
    expect(used.code).toBe(5);
    expect(used.stderr).toMatch(/@aws-sdk[\\/]client-dynamodb/);
  });
});
