/**
 * Configurations (apiary.apib "Components and Configurations", branch/{id}/… or the deprecated URL without a
 * branch; JSON or form bodies with `configuration`/`state` as JSON strings): create (configurationId, name,
 * description, configuration, state, changeDescription, isDisabled; 201 at version 1), update (`PUT`, incl.
 * rowsSortOrder, a new version), state (`PUT …/state`, no new version), rows (create and update, each a new
 * version of the configuration and of the row), and configuration metadata (`POST|GET …/metadata`). The read
 * side lists them as the fixture's, with the versions kept here.
 */
import { randomBytes } from 'node:crypto';
import { HttpError, jsonField, kbcTime, readParams, required, truthy } from './http.js';
import type { Json } from './http.js';
import { upsertMetadata } from './write-context.js';
import type { WriteContext, WriteHandler, WriteRoute } from './write-context.js';

const C = 'components\\/([^/]+)\\/configs';
export const CONFIG_ROUTES: WriteRoute[] = [
  { method: 'POST', pattern: new RegExp(`^${C}$`), endpoint: 'POST components/{c}/configs' },
  { method: 'GET', pattern: new RegExp(`^${C}\\/([^/]+)$`), endpoint: 'GET components/{c}/configs/{id}' },
  { method: 'PUT', pattern: new RegExp(`^${C}\\/([^/]+)$`), endpoint: 'PUT components/{c}/configs/{id}' },
  { method: 'PUT', pattern: new RegExp(`^${C}\\/([^/]+)\\/state$`), endpoint: 'PUT components/{c}/configs/{id}/state' },
  { method: 'POST', pattern: new RegExp(`^${C}\\/([^/]+)\\/rows$`), endpoint: 'POST components/{c}/configs/{id}/rows' },
  { method: 'PUT', pattern: new RegExp(`^${C}\\/([^/]+)\\/rows\\/([^/]+)$`), endpoint: 'PUT components/{c}/configs/{id}/rows/{r}' },
  { method: 'PUT', pattern: new RegExp(`^${C}\\/([^/]+)\\/rows\\/([^/]+)\\/state$`), endpoint: 'PUT components/{c}/configs/{id}/rows/{r}/state' },
  { method: 'POST', pattern: new RegExp(`^${C}\\/([^/]+)\\/metadata$`), endpoint: 'POST components/{c}/configs/{id}/metadata' },
  { method: 'GET', pattern: new RegExp(`^${C}\\/([^/]+)\\/metadata$`), endpoint: 'GET components/{c}/configs/{id}/metadata' },
  // branch/{id}/metadata, the branch prefix taken off (apiary.apib "Development Branch Metadata").
  { method: 'POST', pattern: /^metadata$/, endpoint: 'POST branch/{id}/metadata' },
  { method: 'GET', pattern: /^metadata$/, endpoint: 'GET branch/{id}/metadata' },
  { method: 'DELETE', pattern: /^metadata\/([^/]+)$/, endpoint: 'DELETE branch/{id}/metadata/{m}' },
];

/** An object field: `[]` (PHP's empty object) and absent are `{}`. */
function objectField(value: unknown, name: string): Json {
  const parsed = jsonField(value, name);
  if (parsed === undefined || parsed === null || (Array.isArray(parsed) && parsed.length === 0)) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, `Invalid request: ${name} must be an object`, 'storage.validation');
  return parsed as Json;
}

function component(ctx: WriteContext, id: string, create: boolean): Json {
  let found = ctx.project.components.find((c) => c.id === id);
  const stack = ctx.stackComponent(id);
  if (!found && create && stack) {
    // The component's first configuration lists it (GET components lists components with configurations).
    found = { ...structuredClone(stack), uri: `${ctx.baseUrl()}/v2/storage/components/${id}`, configurations: [] };
    ctx.project.components.push(found);
  }
  if (!found) throw new HttpError(404, `Component "${id}" not found`, 'storage.components.notFound');
  return found;
}

function configOf(ctx: WriteContext, c: string, id: string): Json {
  const config = (component(ctx, c, false).configurations as Json[]).find((x) => x.id === id);
  if (!config) throw new HttpError(404, `Configuration ${id} not found`, 'storage.configuration.notFound');
  return config;
}

function rowOf(config: Json, id: string): Json {
  const row = (config.rows as Json[]).find((r) => r.id === id);
  if (!row) throw new HttpError(404, `Row ${id} not found`, 'storage.components.configurations.rows.notFound');
  return row;
}

const versionIdentifier = (): string => randomBytes(13).toString('hex').toUpperCase().slice(0, 26);

/** A new version of a configuration or a row: recorded newest first, as `GET …/versions` lists them. */
function bump(ctx: WriteContext, key: string, target: Json, changeDescription: string, extra: Json = {}): void {
  const created = kbcTime();
  target.version = Number(target.version ?? 0) + 1;
  target.changeDescription = changeDescription;
  const identifier = versionIdentifier();
  target.currentVersion = { created, creatorToken: ctx.creatorToken, changeDescription, versionIdentifier: identifier };
  const version: Json = {
    version: target.version,
    created,
    versionIdentifier: identifier,
    creatorToken: ctx.creatorToken,
    changeDescription,
    isDeleted: false,
    name: target.name,
    description: target.description,
    configuration: target.configuration,
    state: target.state,
    isDisabled: target.isDisabled,
    ...extra,
  };
  ctx.versions.set(key, [structuredClone(version), ...(ctx.versions.get(key) ?? [])]);
}

const configVersion = (ctx: WriteContext, c: string, config: Json, change: string): void =>
  bump(ctx, `${c}/${String(config.id)}`, config, change, { rows: structuredClone(config.rows) });

function setFields(target: Json, params: Json): void {
  if (typeof params.name === 'string') target.name = params.name;
  if (typeof params.description === 'string') target.description = params.description;
  if (params.configuration !== undefined) target.configuration = objectField(params.configuration, 'configuration');
  if (params.isDisabled !== undefined && params.isDisabled !== null) target.isDisabled = truthy(params.isDisabled);
}

const changeOf = (params: Json, fallback: string): string =>
  typeof params.changeDescription === 'string' && params.changeDescription ? params.changeDescription : fallback;

function createConfig(ctx: WriteContext, c: string, params: Json): Json {
  const name = required(params, 'name');
  const id = params.configurationId === undefined || params.configurationId === null || params.configurationId === '' ? String(ctx.newId()) : String(params.configurationId);
  const owner = component(ctx, c, true);
  if ((owner.configurations as Json[]).some((x) => x.id === id)) {
    throw new HttpError(400, `Configuration ${id} already exists.`, 'configurationAlreadyExists');
  }
  const config: Json = {
    id,
    name,
    description: typeof params.description === 'string' ? params.description : '',
    created: kbcTime(),
    creatorToken: ctx.creatorToken,
    version: 0,
    changeDescription: '',
    isDeleted: false,
    isDisabled: truthy(params.isDisabled),
    configuration: objectField(params.configuration, 'configuration'),
    rowsSortOrder: [],
    rows: [],
    state: objectField(params.state, 'state'),
  };
  configVersion(ctx, c, config, changeOf(params, ''));
  (owner.configurations as Json[]).push(config);
  return config;
}

function updateConfig(ctx: WriteContext, c: string, config: Json, params: Json): Json {
  setFields(config, params);
  if (params.rowsSortOrder !== undefined) {
    const order = (Array.isArray(params.rowsSortOrder) ? params.rowsSortOrder : []).map(String);
    const ids = (config.rows as Json[]).map((r) => String(r.id));
    // "you have to specify all row ids" (apiary.apib "Update Configuration", rowsSortOrder).
    if (order.length > 0 && (order.length !== ids.length || ids.some((id) => !order.includes(id)))) {
      throw new HttpError(400, `rowsSortOrder must list every row id of configuration ${String(config.id)} (${ids.join(', ')})`, 'storage.validation');
    }
    config.rowsSortOrder = order;
  }
  configVersion(ctx, c, config, changeOf(params, 'Configuration updated'));
  return config;
}

function createRow(ctx: WriteContext, c: string, config: Json, params: Json): Json {
  const id = params.rowId === undefined || params.rowId === null || params.rowId === '' ? String(ctx.newId()) : String(params.rowId);
  if ((config.rows as Json[]).some((r) => r.id === id)) throw new HttpError(400, `Row ${id} already exists.`, 'storage.validation');
  const row: Json = {
    id,
    name: typeof params.name === 'string' ? params.name : '',
    description: typeof params.description === 'string' ? params.description : '',
    isDisabled: truthy(params.isDisabled),
    version: 0,
    created: kbcTime(),
    creatorToken: ctx.creatorToken,
    changeDescription: '',
    configuration: objectField(params.configuration, 'configuration'),
    state: objectField(params.state, 'state'),
  };
  const change = changeOf(params, `Row ${id} added`);
  bump(ctx, `${c}/${String(config.id)}/rows/${id}`, row, change, {});
  delete row.currentVersion;
  (config.rows as Json[]).push(row);
  configVersion(ctx, c, config, change);
  return row;
}

const withoutProvider = (list: Json[]): Json[] => list.map(({ provider: _p, ...item }) => item);

export const handleConfigs: WriteHandler = async (ctx, endpoint, arg, _url, req) => {
  const params = endpoint.startsWith('GET') ? {} : await readParams(req);
  if (endpoint === 'POST components/{c}/configs') return [201, createConfig(ctx, arg(1), params)];
  if (endpoint === 'DELETE branch/{id}/metadata/{m}') {
    const list = ctx.configMetadata.get('branch') ?? [];
    if (!list.some((m) => m.id === arg(1))) throw new HttpError(404, `Metadata ${arg(1)} not found`, 'storage.metadata.notFound');
    ctx.configMetadata.set('branch', list.filter((m) => m.id !== arg(1)));
    return [204, undefined];
  }
  if (endpoint.endsWith('branch/{id}/metadata')) {
    if (endpoint.startsWith('GET')) return [200, withoutProvider(ctx.configMetadata.get('branch') ?? [])];
    if (!Array.isArray(params.metadata)) throw new HttpError(400, 'Invalid request: metadata - This value should not be blank.', 'storage.metadata.validation');
    ctx.configMetadata.set('branch', upsertMetadata(ctx, ctx.configMetadata.get('branch') ?? [], '', params.metadata, kbcTime()));
    return [201, withoutProvider(ctx.configMetadata.get('branch') ?? [])];
  }
  const config = configOf(ctx, arg(1), arg(2));
  const key = `${arg(1)}/${arg(2)}`;
  switch (endpoint) {
    case 'GET components/{c}/configs/{id}':
      return [200, config];
    case 'PUT components/{c}/configs/{id}':
      return [200, updateConfig(ctx, arg(1), config, params)];
    case 'PUT components/{c}/configs/{id}/state':
      if (params.state === undefined) throw new HttpError(400, 'Invalid request: state - This value should not be blank.', 'storage.validation');
      config.state = objectField(params.state, 'state');
      return [200, config];
    case 'POST components/{c}/configs/{id}/rows':
      return [201, createRow(ctx, arg(1), config, params)];
    case 'PUT components/{c}/configs/{id}/rows/{r}': {
      const row = rowOf(config, arg(3));
      setFields(row, params);
      const change = changeOf(params, `Row ${arg(3)} changed`);
      bump(ctx, `${key}/rows/${arg(3)}`, row, change, {});
      delete row.currentVersion;
      configVersion(ctx, arg(1), config, change);
      return [200, row];
    }
    case 'PUT components/{c}/configs/{id}/rows/{r}/state': {
      const row = rowOf(config, arg(3));
      if (params.state === undefined) throw new HttpError(400, 'Invalid request: state - This value should not be blank.', 'storage.validation');
      row.state = objectField(params.state, 'state');
      return [200, row];
    }
    case 'GET components/{c}/configs/{id}/metadata':
      return [200, withoutProvider(ctx.configMetadata.get(key) ?? [])];
    default: {
      if (!Array.isArray(params.metadata)) throw new HttpError(400, 'Invalid request: metadata - This value should not be blank.', 'storage.metadata.validation');
      // Configuration metadata has no provider (apiary.apib "Configuration Metadata": items {key, value}).
      const list = upsertMetadata(ctx, ctx.configMetadata.get(key) ?? [], '', params.metadata, kbcTime());
      ctx.configMetadata.set(key, list);
      return [201, withoutProvider(list)];
    }
  }
};
