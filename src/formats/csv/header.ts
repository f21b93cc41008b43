import { BOM_CODE } from './grammar.js';

/**
 * Read the header record of a CSV file's first bytes. Returns undefined when there is no complete record.
 * A header is short and read once per file, so this works on text, not bytes.
 */
export function parseHeader(head: Buffer): { columns: string[] } | undefined {
  let text = head.toString('utf8');
  if (text.charCodeAt(0) === BOM_CODE) text = text.slice(1);
  const columns: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  let started = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"' && !started) {
      quoted = true;
      started = true;
    } else if (c === ',') {
      columns.push(field);
      field = '';
      started = false;
    } else if (c === '\n' || c === '\r') {
      columns.push(field);
      return { columns };
    } else {
      field += c;
      started = true;
    }
    i++;
  }
  return undefined;
}
