// Lists source files over FILE_LIMIT lines and functions over FUNCTION_LIMIT lines, from the TypeScript AST.
// `--check` exits 1 when it lists anything (npm run lint runs it). A byte scanner whose loop must stay in one
// function may say so with a comment `size-exempt: <why>` in its file; it is then not listed.
import ts from 'typescript';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const FILE_LIMIT = Number(process.env.FILE_LIMIT ?? 500);
const FUNCTION_LIMIT = Number(process.env.FUNCTION_LIMIT ?? 120);
const check = process.argv.includes('--check');
let listed = 0;
const files = execFileSync('git', ['ls-files', 'src'], { encoding: 'utf8' }).split('\n').filter((f) => f.endsWith('.ts'));
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  if (/size-exempt: \S/.test(text)) continue;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines = sf.getLineAndCharacterOfPosition(text.length).line + 1;
  if (lines > FILE_LIMIT) {
    console.log(`${file}: ${lines} lines (limit ${FILE_LIMIT})`);
    listed += 1;
  }
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = sf.getLineAndCharacterOfPosition(node.end).line;
      if (end - start + 1 > FUNCTION_LIMIT) {
        const name = node.name?.getText() ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText() : '(anonymous)');
        console.log(`${file}:${start + 1}: function ${name} ${end - start + 1} lines (limit ${FUNCTION_LIMIT})`);
        listed += 1;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
if (check && listed > 0) {
  console.log('split these by concern (README "Development"), or mark a byte scanner with a size-exempt comment');
  process.exitCode = 1;
}
