/** What one DynamoDB source holds between calls: its settings, its one client, the tables it listed and the scans under way. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TakeoutError } from '../../errors.js';
import { buildClient } from './client.js';
import { mapError } from './errors.js';
import type { DynamoDbSourceOptions } from './options.js';
import type { RetryPlace } from './retry.js';
import type { DynamoTable } from './table.js';

export interface DynamoDbState extends RetryPlace {
  /** `dynamodb:TABLE` or `dynamodb:`. */
  readonly description: string;
  /** The one table of `dynamodb:TABLE`; undefined for every table of the region. */
  readonly only: string | undefined;
  readonly options: DynamoDbSourceOptions;
  readonly segments: number;
  readonly consistentRead: boolean;
  /** Made on first use; its region is read then. */
  client: DynamoDBClient | undefined;
  closed: boolean;
  /** The tables of the last listing, by id. */
  readonly tables: Map<string, DynamoTable>;
  /** Every scan under way, so close() can stop them. */
  readonly scans: Set<AbortController>;
}

/** The source's client, made (and its region learnt) on first use. */
export async function connect(state: DynamoDbState): Promise<DynamoDBClient> {
  if (state.closed) throw new TakeoutError('FAILED', `${state.description}: the source is closed`);
  if (state.client) return state.client;
  const made = buildClient(state.options, state.endpoint);
  try {
    state.region = await made.config.region();
  } catch (error) {
    made.destroy();
    throw mapError(state, error, { operation: 'configuration' });
  }
  state.client = made;
  return made;
}
