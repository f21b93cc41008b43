/**
 * `node --import ./test/faults/faulty-register.mjs bin/takeout.js …`: the real CLI, with its local folder
 * destination wrapped by faulty-local.mjs (which fails the writes TAKEOUT_TEST_FAULT names). Test-only.
 */
import { register } from 'node:module';

register('./faulty-hooks.mjs', import.meta.url);
