import js from '@eslint/js';
import tseslint from 'typescript-eslint';


/**
 * The layers, top to bottom (README "Development"): a module imports only from its own layer or those below,
 * so adapters never reach up into the pipeline or the terminal. Relative imports are matched by folder name.
 */
const LAYERS = [
  ['cli'],
  ['commands'],
  ['reporting'],
  ['pipeline'],
  ['sources', 'layouts', 'targets'],
  ['keboola'],
  ['manifests'],
  ['stores', 'formats'],
  ['aws'],
];

function layerRule(index) {
  const above = LAYERS.slice(0, index).flat();
  return {
    files: index < LAYERS.length ? LAYERS[index].map((folder) => `src/${folder}/**/*.ts`) : ['src/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: `(^|/)(${above.join('|')})/`, message: `Upward import: this layer may not import ${above.join(', ')} (see README "Development").` }] },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
      ],
    },
  },
  {
    // Tool config files are read through their default export.
    files: ['*.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'exit', message: 'Only src/cli may exit the process.' }],
      'no-console': 'error',
    },
  },
  ...[...LAYERS.keys()].slice(1).map(layerRule),
  layerRule(LAYERS.length),
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', Buffer: 'readonly' } },
  },
);
