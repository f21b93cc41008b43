/** Module hooks: every import of dist/stores/local/store.js gets faulty-local.mjs, except faulty-local.mjs's own. */
const WRAPPER = new URL('./faulty-local.mjs', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  if (result.url.endsWith('/dist/stores/local/store.js') && context.parentURL !== WRAPPER) return { ...result, url: WRAPPER, shortCircuit: true };
  return result;
}
