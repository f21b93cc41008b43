#!/usr/bin/env node
// Writes a CSV of about SIZE bytes with mixed types and quoted fields holding commas, quotes and newlines.
// Usage: node bench/generate.mjs OUT.csv [SIZE_MB=500]   (deterministic: same size, same bytes)
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const [, , out = 'bench/out/data.csv', sizeArg = '500'] = process.argv;
const target = Number(sizeArg) * 1024 * 1024;

let seed = 0x2545f491;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const pick = (list) => list[Math.floor(rand() * list.length)];
const words = ['alpha', 'beta', 'gamma', 'delta', 'order', 'refund', 'Praha', 'Brno', 'Žlutý kůň', '東京', 'naïve', 'café', 'data', 'export', 'pipeline', 'customer', 'invoice', 'shipping'];
const statuses = ['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'];
const sentence = (n) => Array.from({ length: n }, () => pick(words)).join(' ');
const q = (s) => `"${s.replaceAll('"', '""')}"`;

const stream = createWriteStream(out);
stream.write('id,customer_id,created_at,status,amount,quantity,is_gift,email,city,comment\n');
let written = 0;
let id = 1;
const start = Date.UTC(2024, 0, 1);
while (written < target) {
  let batch = '';
  for (let i = 0; i < 2000; i++, id++) {
    const created = new Date(start + Math.floor(rand() * 3e10)).toISOString();
    const r = rand();
    const comment = r < 0.5 ? '' : r < 0.8 ? q(sentence(3 + Math.floor(rand() * 8))) : r < 0.95 ? q(`${sentence(4)}, "${pick(words)}", ${sentence(2)}`) : q(`${sentence(5)}\n${sentence(3)}\r\n${sentence(2)}`);
    batch += `${id},${Math.floor(rand() * 1e6)},${created},${pick(statuses)},${(rand() * 1000).toFixed(2)},${1 + Math.floor(rand() * 9)},${rand() < 0.1 ? 'true' : 'false'},user${Math.floor(rand() * 1e5)}@example.com,${q(pick(words))},${comment}\n`;
  }
  written += Buffer.byteLength(batch);
  if (!stream.write(batch)) await once(stream, 'drain');
}
stream.end();
await once(stream, 'finish');
console.error(`wrote ${out}: ${(written / 1048576).toFixed(0)} MiB, ${id - 1} rows`);
