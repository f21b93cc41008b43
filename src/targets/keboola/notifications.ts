import { toTakeoutError } from '../../errors.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import { defaultBranchId, notificationUrl } from '../../sources/keboola/extras.js';
import type { RestoreExtra } from '../target.js';
import type { Json } from './api.js';

/**
 * Notification subscriptions as Keboola's restore engine creates them (php-kbc-project-restore Restore.php
 * restoreNotifications, through keboola/notification-client SubscriptionClient::createSubscription): in the stack's
 * notification service (found in the service index, as the source finds it; the token is sent there only over
 * https or to this machine), `POST project-subscriptions` with `{event, filters: [{field, value, operator}],
 * recipient: {channel: "email", address}}` (Requests/Subscription.php, EmailRecipient.php, Filter.php), the
 * `branch.id` filter's value the project's own default branch.
 *
 * A failure is a named warning, not an error: the engine has no handling (an exception ends its run), but
 * here the tables, configurations and triggers are already in the project, the notification service is a
 * service of its own (the source, too, goes on without it and says so), and a subscription is re-made by hand
 * in a minute, where a failed exit would leave the permanent files after it unrestored.
 */

export function subscriptionName(subscription: Json): string {
  const recipient = (subscription.recipient as Json | undefined) ?? {};
  return `${String(subscription.event)} → ${String(recipient.address ?? recipient.channel ?? '?')}`;
}

/** The subscription as notification-client sends it, its `branch.id` filter on `branchId`. */
export function subscriptionBody(subscription: Json, branchId: string): Json {
  const filters = Array.isArray(subscription.filters) ? (subscription.filters as Json[]) : [];
  const recipient = (subscription.recipient as Json | undefined) ?? {};
  return {
    event: subscription.event,
    filters: filters.map((f) => ({
      field: String(f.field),
      value: f.field === 'branch.id' ? branchId : String(f.value),
      ...(f.operator !== undefined && f.operator !== null ? { operator: String(f.operator) } : {}),
    })),
    recipient: { channel: 'email', address: recipient.address },
  };
}

export function planNotification(subscription: Json): RestoreExtra {
  return { kind: 'notification', name: subscriptionName(subscription), action: 'create' };
}

/** Creates every subscription; each one that fails (or all, when the stack has no notification service) is named. */
/** Where subscriptions go: the notification service and the project's default branch, or why nowhere. */
export type SubscriptionTarget = { url: string; branchId: string } | { reason: string };

export async function subscriptionTarget(client: StorageClient): Promise<SubscriptionTarget> {
  let url: string | undefined;
  try {
    url = await notificationUrl(client);
  } catch (error) {
    return { reason: toTakeoutError(error).message };
  }
  if (url === undefined) return { reason: 'the stack lists no notification service' };
  return { url, branchId: await defaultBranchId(client) };
}

/** Creates one subscription; answers what happened (a failure is named, not thrown: see above). */
export async function createSubscription(client: StorageClient, subscription: Json, target: SubscriptionTarget, warn: (message: string) => void): Promise<RestoreExtra> {
  const planned = planNotification(subscription);
  const skip = (reason: string): RestoreExtra => {
    warn(`notification ${planned.name} is not restored: ${reason}`);
    return { ...planned, action: 'skip', reason };
  };
  if ('reason' in target) return skip(target.reason);
  try {
    await client.requestService('POST', target.url, 'project-subscriptions', { body: subscriptionBody(subscription, target.branchId) });
    return planned;
  } catch (error) {
    const failure = toTakeoutError(error);
    if (failure.code === 'INTERRUPTED') throw failure;
    return skip(failure.message);
  }
}
