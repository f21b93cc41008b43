/**
 * The fault proxy (proxy.ts) in front of a DynamoDB emulator: rules name an operation
 * (`X-Amz-Target: DynamoDB_20120810.<Operation>`) and answer with a DynamoDB JSON error or reset the
 * connection; every request is recorded with its operation and parsed body (Segment, ExclusiveStartKey…).
 * Depends on nothing in src/.
 */
import { startFaultProxy, type FaultAction, type FaultProxy, type OperationRule, type RecordedRequest } from './proxy.js';

export { dynamoErrorType } from './proxy.js';

export type DynamoFault = Extract<FaultAction, { kind: 'error' | 'reset' }>;

export interface DynamoRule extends OperationRule {
  fault: DynamoFault;
}

export interface DynamoRequest extends RecordedRequest {
  body: Record<string, unknown>;
}

export interface DynamoProxy extends FaultProxy {
  of(operation: string): DynamoRequest[];
}

export async function startDynamoProxy(target: string): Promise<DynamoProxy> {
  return (await startFaultProxy(target, { protocol: 'dynamodb' })) as DynamoProxy;
}
