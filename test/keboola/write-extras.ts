/**
 * What a restore writes after the tables (keboola/php-kbc-project-restore Restore.php restoreTriggers,
 * restoreNotifications): tokens (apiary.apib L294 "Create token": description, canManageBuckets,
 * canReadAllFileUploads, expiresIn…; 201 with the token's `id` and secret `token`; L151 "List all tokens", L372
 * "Token detail", L519 "Delete Token": 204, not a token a trigger runs with), triggers (apiary.apib L10158 "Create": runWithTokenId, component, configurationId,
 * coolDownPeriodMinutes, tableIds all required; 201 with `tables: [{tableId}]` and the creator token; L10213
 * "List", L10245 "Get detail"), and the notification service's subscriptions (keboola/notification-client
 * SubscriptionClient::createSubscription: `POST project-subscriptions` `{event, filters: [{field, value,
 * operator?}], recipient: {channel: "email", address}}`, answered with the subscription and its id, 200 as the
 * client's own test mocks it). The read side (`GET triggers`, `GET project-subscriptions`) serves what was written.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpError, kbcTime, readParams, truthy } from './http.js';
import type { Json } from './http.js';
import type { Project, WriteContext, WriteHandler, WriteRoute } from './write-context.js';

export const EXTRA_ROUTES: WriteRoute[] = [
  { method: 'POST', pattern: /^tokens$/, endpoint: 'POST tokens' },
  { method: 'GET', pattern: /^tokens$/, endpoint: 'GET tokens' },
  { method: 'GET', pattern: /^tokens\/(\d+)$/, endpoint: 'GET tokens/{id}' },
  { method: 'DELETE', pattern: /^tokens\/(\d+)$/, endpoint: 'DELETE tokens/{id}' },
  { method: 'POST', pattern: /^triggers$/, endpoint: 'POST triggers' },
  { method: 'GET', pattern: /^triggers\/(\d+)$/, endpoint: 'GET triggers/{id}' },
  { method: 'POST', pattern: /^notification:project-subscriptions$/, endpoint: 'POST notification project-subscriptions' },
];

/** notification-client Requests/Subscription.php checkEventType: the event types the service takes. */
const EVENTS = [
  'job-failed',
  'job-succeeded',
  'job-succeeded-with-warning',
  'job-processing-long',
  'phase-job-failed',
  'phase-job-succeeded',
  'phase-job-succeeded-with-warning',
  'phase-job-processing-long',
];

/** Tokens created in a project (the fixture's own token is `tokens/verify`'s). */
const TOKENS = new WeakMap<Project, Json[]>();
let nextTokenId = 600_001;
let nextTriggerId = 400_001;

function tokensOf(project: Project): Json[] {
  let list = TOKENS.get(project);
  if (!list) TOKENS.set(project, (list = []));
  return list;
}

function validation(message: string): HttpError {
  return new HttpError(400, message, 'storage.validation');
}

function createToken(ctx: WriteContext, params: Json): Json {
  const id = String(nextTokenId++);
  const token: Json = {
    id,
    token: `${ctx.projectId}-${id}-${randomBytes(20).toString('hex')}`,
    created: kbcTime(),
    refreshed: kbcTime(),
    description: typeof params.description === 'string' ? params.description : '',
    uri: `${ctx.baseUrl()}/v2/storage/tokens/${id}`,
    isMasterToken: false,
    canManageBuckets: truthy(params.canManageBuckets),
    canManageTokens: false,
    canReadAllFileUploads: truthy(params.canReadAllFileUploads),
    canPurgeTrash: truthy(params.canPurgeTrash),
    expires: typeof params.expiresIn === 'number' ? new Date(Date.now() + params.expiresIn * 1000).toISOString() : null,
    isExpired: false,
    isDisabled: false,
    dailyCapacity: 5,
    creatorToken: ctx.creatorToken,
    bucketPermissions: typeof params.bucketPermissions === 'object' && params.bucketPermissions !== null ? params.bucketPermissions : {},
    componentAccess: Array.isArray(params.componentAccess) ? params.componentAccess : [],
  };
  tokensOf(ctx.project).push(token);
  return token;
}

function createTrigger(ctx: WriteContext, params: Json): Json {
  for (const field of ['runWithTokenId', 'component', 'configurationId', 'coolDownPeriodMinutes', 'tableIds']) {
    if (params[field] === undefined || params[field] === null || params[field] === '') throw validation(`Invalid request: ${field} is required`);
  }
  const runWith = String(params.runWithTokenId);
  if (!tokensOf(ctx.project).some((t) => t.id === runWith) && runWith !== String(ctx.project.token.id)) throw validation(`Token ${runWith} not found`);
  const cooldown = Number(params.coolDownPeriodMinutes);
  if (!Number.isInteger(cooldown) || cooldown < 1) throw validation('Invalid request: coolDownPeriodMinutes must be at least 1');
  if (!Array.isArray(params.tableIds) || params.tableIds.length === 0) throw validation('Invalid request: tableIds must be a non-empty list');
  const tableIds = (params.tableIds as unknown[]).map(String);
  for (const id of tableIds) {
    if (!ctx.project.tables.some((t) => t.id === id)) throw new HttpError(404, `Table ${id} not found`, 'storage.tables.notFound');
  }
  // apiary.apib documents component 'orchestration' only; stacks answer triggers of 'keboola.orchestrator' (flows) too.
  const trigger: Json = {
    id: String(nextTriggerId++),
    runWithTokenId: Number(params.runWithTokenId),
    component: String(params.component),
    configurationId: String(params.configurationId),
    lastRun: null,
    creatorToken: ctx.creatorToken,
    coolDownPeriodMinutes: cooldown,
    tables: tableIds.map((tableId) => ({ tableId })),
  };
  ctx.project.triggers.push(trigger);
  return trigger;
}

function createSubscription(ctx: WriteContext, params: Json): Json {
  const event = String(params.event ?? '');
  if (!EVENTS.includes(event)) throw validation(`Invalid event type "${event}", valid types are: "${EVENTS.join(', ')}".`);
  const recipient = (params.recipient ?? {}) as Json;
  if (recipient.channel !== 'email' || typeof recipient.address !== 'string' || !recipient.address.includes('@')) throw validation('Invalid recipient: an email channel and address are required');
  if (!Array.isArray(params.filters)) throw validation('Invalid request: filters must be a list');
  const filters = (params.filters as Json[]).map((f) => {
    if (typeof f.field !== 'string' || typeof f.value !== 'string') throw validation('Invalid filter: field and value are strings');
    return { field: f.field, value: f.value, operator: typeof f.operator === 'string' ? f.operator : '==' };
  });
  const subscription: Json = { id: randomUUID(), event, filters, recipient: { channel: 'email', address: recipient.address } };
  ctx.project.notifications.push(subscription);
  return subscription;
}

export const handleExtras: WriteHandler = async (ctx, endpoint, arg, _url, req) => {
  switch (endpoint) {
    case 'POST tokens':
      return [201, createToken(ctx, await readParams(req))];
    case 'GET tokens':
      return [200, tokensOf(ctx.project)];
    case 'GET tokens/{id}': {
      const token = tokensOf(ctx.project).find((t) => t.id === arg(1));
      if (!token) throw new HttpError(404, `Token ${arg(1)} not found`, 'storage.tokens.notFound');
      return [200, token];
    }
    case 'DELETE tokens/{id}': {
      const list = tokensOf(ctx.project);
      const index = list.findIndex((t) => t.id === arg(1));
      if (index === -1) throw new HttpError(404, `Token ${arg(1)} not found`, 'storage.tokens.notFound');
      if (ctx.project.triggers.some((t) => String(t.runWithTokenId) === arg(1))) throw validation(`Token ${arg(1)} is used by a trigger`);
      list.splice(index, 1);
      return [204, undefined];
    }
    case 'POST triggers':
      return [201, createTrigger(ctx, await readParams(req))];
    case 'GET triggers/{id}': {
      const trigger = ctx.project.triggers.find((t) => t.id === arg(1));
      if (!trigger) throw new HttpError(404, `Trigger ${arg(1)} not found`, 'storage.triggers.notFound');
      return [200, trigger];
    }
    default:
      return [200, createSubscription(ctx, await readParams(req))];
  }
};
