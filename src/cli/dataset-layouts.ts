import { TakeoutError } from '../errors.js';
import type { DatasetLayout, LayoutContext } from '../layouts/dataset.js';
import type { TableDescriptor } from '../sources/source.js';
import type { OptionSpec, Resolved } from './options.js';

/**
 * The layouts `takeout dataset export --layout` knows: each brings its own options and turns the
 * resolved options into a plan for the runner. Layout modules load only when used.
 */
export interface LayoutCli {
  /** Options only this layout takes; their descriptions start with the layout's name. */
  options: OptionSpec[];
  plan(o: Resolved, context: PlanContext): Promise<LayoutPlan>;
}

export interface PlanContext {
  table: TableDescriptor;
  /** --changed-column, when given. */
  changedColumn?: string;
  region: string;
  accountId: string;
  sse: 'AES256' | 'KMS' | null;
  sseKmsKeyId: string | null;
}

export interface LayoutPlan {
  layoutName: string;
  /** Every option that changes the files, for the export definition and the client token. */
  layoutOptions: Record<string, unknown>;
  buildLayout(ctx: LayoutContext): DatasetLayout;
  /** The column the export window is on (default: --changed-column). */
  windowColumn?: string;
  exportArn(exportId: string): string;
}

/** --export-format for a layout: one of `allowed`, or the layout's default. */
export function formatFor(o: Resolved, layout: string, allowed: readonly string[]): string {
  const format = typeof o.exportFormat === 'string' ? o.exportFormat.toUpperCase() : allowed[0]!;
  if (!allowed.includes(format)) throw new TakeoutError('USAGE', `--export-format ${String(o.exportFormat)}: the ${layout} layout writes ${allowed.join(' or ')}`);
  return format;
}

const dynamodb: LayoutCli = {
  options: [
    { key: 'exportViewType', flags: '--export-view-type <view>', description: 'dynamodb incremental exports: NEW_IMAGE or NEW_AND_OLD_IMAGES', type: 'string', default: 'NEW_AND_OLD_IMAGES', choices: ['NEW_IMAGE', 'NEW_AND_OLD_IMAGES'] },
    { key: 'deletedColumn', flags: '--deleted-column <column>', description: 'dynamodb incremental exports: a soft-delete column; rows where it is set are deletes', type: 'string' },
  ],
  async plan(o, context) {
    const { dynamodbLayout, exportArn } = await import('../layouts/dynamodb.js');
    const options = {
      format: formatFor(o, 'dynamodb', ['DYNAMODB_JSON', 'ION']) as 'DYNAMODB_JSON' | 'ION',
      type: o.exportType as 'FULL_EXPORT' | 'INCREMENTAL_EXPORT',
      view: o.exportViewType as 'NEW_IMAGE' | 'NEW_AND_OLD_IMAGES',
      ...(context.changedColumn ? { changedColumn: context.changedColumn } : {}),
      ...(typeof o.deletedColumn === 'string' ? { deletedColumn: o.deletedColumn } : {}),
      sse: context.sse,
      sseKmsKeyId: context.sseKmsKeyId,
      region: context.region,
      accountId: context.accountId,
    };
    return {
      layoutName: 'dynamodb',
      layoutOptions: { exportFormat: options.format, exportViewType: options.type === 'INCREMENTAL_EXPORT' ? options.view : null, deletedColumn: options.deletedColumn ?? null },
      buildLayout: (ctx) => dynamodbLayout(ctx, options),
      ...(context.changedColumn ? { windowColumn: context.changedColumn } : {}),
      exportArn: (exportId) => exportArn(context.table, options, exportId),
    };
  },
};

export const LAYOUTS: Record<string, LayoutCli> = { dynamodb };
