/** `project.yaml` of a CSV project folder: the project's name, ignored entries, and what CSV files cannot say (keys, metadata, configurations). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { parse as parseYaml } from 'yaml';
import { TakeoutError, toTakeoutError } from '../../errors.js';
import type { BucketDescriptor, ComponentDescriptor, ConfigurationDescriptor, ConfigurationRowDescriptor, MetadataEntry } from '../../model.js';

export const PROJECT_FILE = 'project.yaml';

export interface ProjectYaml {
  project?: { id?: string | number; name?: string };
  /** Entries of the folder that are not part of the project (README.md, docs/): globs on their path in the folder. */
  ignore?: string[];
  buckets?: Record<string, Partial<BucketDescriptor>>;
  tables?: Record<string, { primaryKey?: string[]; description?: string; displayName?: string; metadata?: MetadataEntry[]; columnMetadata?: Record<string, MetadataEntry[]> }>;
  components?: YamlComponent[];
}

export interface YamlComponent {
  id: string;
  type: string;
  name: string;
  configurations?: (Omit<ConfigurationDescriptor, 'rows'> & { rows?: ConfigurationRowDescriptor[] })[];
  [extra: string]: unknown;
}

export async function readProjectYaml(folder: string, label: string): Promise<ProjectYaml> {
  let text: string;
  try {
    text = await readFile(join(folder, PROJECT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw toTakeoutError(error, `${label}/${PROJECT_FILE}`);
  }
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a mapping at the top level');
    return parsed as ProjectYaml;
  } catch (error) {
    // `file:line:column: message`, as for --config files: the parser's message without its own position.
    const at = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    const message = (error as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}${at ? `:${at.line}:${at.col}: not valid YAML` : ''}: ${message}`);
  }
}

export function toComponents(list: YamlComponent[] | undefined, label: string): ComponentDescriptor[] {
  return (list ?? []).map((c, i) => {
    if (!c || typeof c.id !== 'string' || typeof c.type !== 'string' || typeof c.name !== 'string') {
      throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: component #${i + 1} needs id, type and name`);
    }
    const { id, type, name, configurations, ...extra } = c;
    return {
      id,
      type,
      name,
      extra,
      configurations: (configurations ?? []).map((config) => {
        if (config.id === undefined || config.id === null) {
          throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: a configuration of ${id} has no id`);
        }
        return {
          ...config,
          id: String(config.id),
          name: config.name ?? '',
          configuration: config.configuration ?? {},
          rows: (config.rows ?? []).map((row) => ({ ...row, id: String(row.id), configuration: row.configuration ?? {} })),
        };
      }),
    };
  });
}

/** project.yaml's `ignore` globs as one test on a path in the folder; such entries are neither taken nor named. */
export function ignoreMatcher(yaml: ProjectYaml, label: string): (rel: string) => boolean {
  const patterns = yaml.ignore ?? [];
  if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== 'string' || p === '')) {
    throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: ignore must be a list of globs (README.md, docs/**)`);
  }
  const tests = patterns.map((p) => picomatch(p.replace(/\/+$/, ''), { dot: true }));
  return (rel) => tests.some((test) => test(rel));
}
