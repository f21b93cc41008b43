// Records every module a Node process loads, for bench/export.mjs ("does --help load the AWS SDK?").
//
//   BENCH_MODULE_TRACE=/tmp/trace.txt node --import ./bench/module-trace.mjs bin/takeout.js --help
//
// On the main thread this file registers itself as a module-customization hook (module.register,
// Node >= 20.6); in the hooks thread its `load` hook appends each ES module URL (and CommonJS modules
// reached through `import`) to the trace file. CommonJS modules reached through require() bypass the
// hooks on Node 20, so at exit the main thread also appends every file in the require cache.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

let out = process.env.BENCH_MODULE_TRACE;

if (isMainThread && out) {
  register(import.meta.url, import.meta.url, { data: { out } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const files = Object.keys(require.cache);
    if (files.length > 0) appendFileSync(out, files.map((f) => `cjs ${f}\n`).join(''));
  });
}

/** Hooks thread: receives the trace file from register(). */
export function initialize(data) {
  out = data?.out;
}

export async function load(url, context, nextLoad) {
  if (out) appendFileSync(out, `esm ${url}\n`);
  return nextLoad(url, context);
}
