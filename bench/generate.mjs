#!/usr/bin/env node
// Writes a deterministic CSV of about SIZE MiB that looks like a real table export: UUID and hex ids,
// ISO timestamps, floats with varied precision, emails, short enums, phone numbers, empty values,
// non-ASCII names and cities, and free-text comments with commas, doubled quotes and embedded LF and
// CRLF newlines inside quoted fields. Rows end with LF. gzip -6 compresses it about 3-4x.
//
// Usage: node bench/generate.mjs OUT.csv [SIZE_MB=500]
// Same SIZE_MB, same bytes (the output stops at the first 1000-row batch that reaches SIZE_MB MiB);
// bench/export.mjs regenerates its cached inputs whenever this file changes (it hashes it).
// Also importable: `import { generateCsv } from './generate.mjs'`.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const COLUMNS = [
  'id', 'order_number', 'customer_id', 'email', 'phone', 'country', 'city', 'latitude', 'longitude', 'session_id',
  'created_at', 'updated_at', 'status', 'channel', 'currency', 'sku', 'product_name', 'unit_price', 'quantity', 'amount',
  'tax_rate', 'discount', 'weight_kg', 'is_gift', 'payment_method', 'shipping_method', 'language', 'utm_source', 'tags',
  'user_agent', 'comment', '_timestamp',
];

const ROWS_PER_BATCH = 1000;

function makeRandom(seed) {
  // xorshift32: fast and deterministic (Math.random is neither seedable nor reproducible).
  let s = seed >>> 0 || 1;
  const u32 = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  return { u32, rand: () => u32() / 4294967296, int: (n) => Math.floor((u32() / 4294967296) * n) };
}

const HEX4 = Array.from({ length: 65536 }, (_, i) => i.toString(16).padStart(4, '0'));
const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

// Vocabulary: common words plus a few thousand deterministic pseudo-words, so free text is neither
// random noise nor a handful of repeating phrases.
const COMMON = (
  'the a an and or but of to in on for with at by from as is was are were be been not no yes this that it ' +
  'order item package delivery customer refund invoice payment card shipping address please thanks thank you ' +
  'late early damaged missing wrong size colour color box door call email phone again tomorrow today week ' +
  'return exchange discount coupon price total tax support ticket urgent asap gift wrap note leave neighbour ' +
  'Praha Brno Ostrava Plzeň München Zürich Kraków Wien Paris Lisboa São Paulo Montréal Tōkyō'
).split(' ');
const SYLLABLES = ['ka', 'lo', 're', 'mi', 'tan', 'sor', 'vel', 'qui', 'ne', 'dra', 'po', 'lis', 'ven', 'tor', 'ab', 'ex', 'um', 'is', 'cor', 'fa', 'gri', 'hu', 'jo', 'ze', 'ný', 'čé', 'šu', 'ře'];
const NAMES_FIRST = ['jan', 'petr', 'eva', 'anna', 'lukas', 'tomas', 'marie', 'john', 'mary', 'li', 'wei', 'sofia', 'lucas', 'emma', 'noah', 'olga', 'ivan', 'jiri', 'zuzana', 'martin', 'ana', 'jose', 'maria', 'kenji', 'yuki', 'fatima', 'omar', 'lena', 'max', 'paul'];
const NAMES_LAST = ['novak', 'svoboda', 'dvorak', 'cerny', 'smith', 'jones', 'muller', 'schmidt', 'garcia', 'silva', 'kowalski', 'nowak', 'wang', 'zhang', 'tanaka', 'sato', 'rossi', 'bianchi', 'dubois', 'martin', 'horvat', 'nagy', 'popescu', 'ivanov', 'larsen', 'jensen', 'obrien', 'murphy', 'kim', 'lee'];
const DOMAINS = ['gmail.com', 'seznam.cz', 'outlook.com', 'yahoo.com', 'example.com', 'email.cz', 'icloud.com', 'proton.me', 'web.de', 'acme-corp.io', 'keboola.com', 'centrum.cz'];
const STATUSES = ['new', 'paid', 'paid', 'paid', 'shipped', 'shipped', 'delivered', 'delivered', 'delivered', 'cancelled', 'refunded', 'on_hold'];
const CHANNELS = ['web', 'web', 'ios', 'android', 'pos', 'api', 'marketplace'];
const CURRENCIES = ['CZK', 'CZK', 'EUR', 'EUR', 'USD', 'GBP', 'PLN', 'JPY'];
const TAX_RATES = ['0.21', '0.15', '0.12', '0.19', '0.2', '0.0', '0.23', '0.1'];
const PLACES = [
  ['CZ', 'Praha', 50.08, 14.43], ['CZ', 'Brno', 49.19, 16.61], ['CZ', 'Ostrava', 49.82, 18.26], ['CZ', 'Plzeň', 49.74, 13.37],
  ['CZ', 'České Budějovice', 48.97, 14.47], ['CZ', 'Ústí nad Labem', 50.66, 14.03], ['DE', 'München', 48.14, 11.58],
  ['DE', 'Köln', 50.94, 6.96], ['DE', 'Berlin', 52.52, 13.4], ['AT', 'Wien', 48.21, 16.37], ['CH', 'Zürich', 47.38, 8.54],
  ['PL', 'Kraków', 50.06, 19.94], ['PL', 'Łódź', 51.76, 19.46], ['FR', 'Paris', 48.86, 2.35], ['FR', 'Besançon', 47.24, 6.02],
  ['ES', 'A Coruña', 43.36, -8.41], ['PT', 'Lisboa', 38.72, -9.14], ['BR', 'São Paulo', -23.55, -46.63], ['CA', 'Montréal', 45.5, -73.57],
  ['JP', '東京', 35.68, 139.69], ['JP', '大阪', 34.69, 135.5], ['CN', '上海', 31.23, 121.47], ['GR', 'Αθήνα', 37.98, 23.73],
  ['RU', 'Москва', 55.76, 37.62], ['US', 'New York', 40.71, -74.01], ['US', 'San Francisco', 37.77, -122.42],
  ['GB', 'London', 51.51, -0.13], ['IE', 'Dublin', 53.35, -6.26], ['IS', 'Reykjavík', 64.15, -21.94], ['TR', 'İstanbul', 41.01, 28.98],
];
const CANNED = [
  'Please leave at the door', 'Call before delivery', 'Gift - no invoice in the box please', 'Deliver after 5pm',
  'Nechte prosím u sousedů', 'Zvonek nefunguje, volejte', 'Bitte beim Nachbarn abgeben', 'Fragile, handle with care',
  'Same as last order', 'Invoice to company: ACME s.r.o., IČO 12345678', 'Customer asked for refund, "item arrived damaged"',
  'Wrong size, exchange for L', 'Promo code did not apply', 'Duplicate order, cancel one', 'VIP - expedite',
];
const TAGS = ['vip', 'b2b', 'first_order', 'promo', 'newsletter', 'fragile', 'express', 'gift', 'wholesale', 'returning', 'flagged', 'eu'];
const PAYMENT = ['card', 'card', 'card', 'bank_transfer', 'paypal', 'apple_pay', 'google_pay', 'cash_on_delivery', 'gift_card'];
const SHIPPING = ['ppl', 'dpd', 'zasilkovna', 'ceska_posta', 'gls', 'dhl_express', 'ups', 'pickup_in_store'];
const LANGUAGES = ['cs-CZ', 'cs-CZ', 'cs-CZ', 'sk-SK', 'en-US', 'en-GB', 'de-DE', 'de-AT', 'pl-PL', 'fr-FR', 'ja-JP'];
const UTM = ['', '', '', '', 'google', 'facebook', 'newsletter', 'instagram', 'heureka.cz', 'zbozi.cz', 'tiktok', 'affiliate-7731'];
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:124.0) Gecko/20100101 Firefox/124.0',
  'Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.99 Mobile Safari/537.36',
  'MyShopApp/4.12.0 (iOS 17.4; iPhone15,2)',
  'MyShopApp/4.11.3 (Android 14; Pixel 8)',
  'okhttp/4.12.0',
  'python-requests/2.31.0',
];
const EMOJI = ['🙂', '👍', '📦', '🚚', '⚠️', '✅'];

function vocabulary() {
  const { int } = makeRandom(0x5eed1234);
  const words = [...COMMON];
  const seen = new Set(words);
  while (words.length < 2000) {
    let w = '';
    const n = 2 + int(3);
    for (let i = 0; i < n; i++) w += SYLLABLES[int(SYLLABLES.length)];
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

/** Writes the CSV to `out`; resolves to { bytes, rows } (bytes include the header row). */
export async function generateCsv(out, sizeMb) {
  const target = Number(sizeMb) * 1024 * 1024;
  if (!(target > 0)) throw new Error(`bad size ${sizeMb}`);
  const { u32, rand, int } = makeRandom(0x2545f491);
  const words = vocabulary();
  // Zipf-ish word choice: common words come up far more often than rare ones.
  const word = () => {
    const r = rand();
    return words[Math.floor(r * r * r * r * words.length)];
  };
  const pick = (list) => list[int(list.length)];
  const uuid = () => {
    const a = u32();
    const b = u32();
    const c = u32();
    const d = u32();
    return `${HEX4[a >>> 16]}${HEX4[a & 0xffff]}-${HEX4[b >>> 16]}-4${HEX4[b & 0xffff].slice(1)}-${HEX4[(c >>> 16 & 0x3fff) | 0x8000]}-${HEX4[c & 0xffff]}${HEX4[d >>> 16]}${HEX4[d & 0xffff]}`;
  };
  const hex16 = () => {
    const a = u32();
    const b = u32();
    return `${HEX4[a >>> 16]}${HEX4[a & 0xffff]}${HEX4[b >>> 16]}${HEX4[b & 0xffff]}`;
  };
  const q = (s) => `"${s.replaceAll('"', '""')}"`;
  const sentence = (n) => {
    let s = word();
    for (let i = 1; i < n; i++) s += (int(12) === 0 ? ', ' : ' ') + word();
    return s;
  };
  const comment = () => {
    const r = rand();
    if (r < 0.45) return '';
    if (r < 0.6) return pick(CANNED);
    if (r < 0.7) return sentence(2 + int(10));
    if (r < 0.8) return `${sentence(3 + int(5))}, "${word()} ${word()}", ${sentence(2 + int(4))}.`;
    if (r < 0.86) return `${sentence(4 + int(6))}.\n${sentence(3 + int(8))}`;
    if (r < 0.91) return `${sentence(3 + int(6))}\r\n\r\n${sentence(2 + int(6))}\r\n-- ${pick(NAMES_FIRST)}`;
    if (r < 0.95) return `${sentence(6 + int(20))}. ${sentence(6 + int(20))}; ${sentence(4 + int(10))}? ${pick(EMOJI)}`;
    if (r < 0.98) return `Customer said: "${sentence(3 + int(5))}" ${word()}`;
    return `${word()},${word()},,${int(1000)}`;
  };
  // Floats with varied precision, like values from different systems.
  const float = (max) => {
    const v = rand() * max;
    const r = int(10);
    if (r < 4) return v.toFixed(2);
    if (r < 6) return v.toFixed(4);
    if (r < 7) return String(Math.round(v));
    if (r < 8) return v.toFixed(1);
    if (r < 9) return String(v); // full double precision, e.g. 12.345678901234567
    return v.toExponential(3);
  };
  const start = Date.UTC(2021, 0, 1) / 1000;
  // Date objects per row are slow: day prefixes are cached, the time of day is computed.
  const days = [];
  const iso = (secs) => {
    const day = Math.floor(secs / 86400);
    const prefix = (days[day] ??= `${new Date((start + day * 86400) * 1000).toISOString().slice(0, 10)}T`);
    const t = secs - day * 86400;
    const h = Math.floor(t / 3600);
    const m = Math.floor((t - h * 3600) / 60);
    return `${prefix}${PAD2[h]}:${PAD2[m]}:${PAD2[t - h * 3600 - m * 60]}`;
  };

  // A customer's contact columns are fixed once drawn; 40% of orders come from the last 64 customers.
  const customerColumns = () => {
    const id = 1 + int(2_000_000);
    const [country, city, baseLat, baseLon] = pick(PLACES);
    const first = pick(NAMES_FIRST);
    const last = pick(NAMES_LAST);
    const email = int(5) === 0 ? `${first}${int(10000)}@${pick(DOMAINS)}` : `${first}.${last}${int(3) === 0 ? int(100) : ''}@${pick(DOMAINS)}`;
    const phone = rand() < 0.3 ? '' : `+${pick(['420', '421', '49', '1', '44', '48'])} ${100 + int(900)} ${PAD3[int(1000)]} ${PAD3[int(1000)]}`;
    const digits = int(3) === 0 ? 6 : 4;
    const lat = (baseLat + rand() * 0.2 - 0.1).toFixed(digits);
    const lon = (baseLon + rand() * 0.2 - 0.1).toFixed(digits);
    const cityField = int(3) === 0 || city.includes(' ') ? q(city) : city;
    return `${id},${email},${phone},${country},${cityField},${lat},${lon}`;
  };
  // A catalogue of products with fixed prices and weights, ordered with a skewed popularity.
  const products = Array.from({ length: 5000 }, (_, i) => {
    const sku = int(3) === 0 ? `${HEX4[int(65536)]}${HEX4[int(65536)]}` : `SKU-${10000 + i * 7}`;
    const price = int(5) === 0 ? `${99 + int(50) * 100}.90` : float(1000);
    const weight = rand() < 0.1 ? '' : float(30);
    return { sku, price, weight, name: `${word()} ${word()}` };
  });

  const stream = createWriteStream(out, { highWaterMark: 4 << 20 });
  stream.write(`${COLUMNS.join(',')}\n`);
  let written = 0;
  let rows = 0;
  let orderNo = 100000;
  let clock = 0;
  let importedAt = '';
  const recent = Array.from({ length: 64 }, customerColumns);
  while (written < target) {
    let batch = '';
    for (let i = 0; i < ROWS_PER_BATCH; i++) {
      rows++;
      orderNo += 1 + int(3);
      clock += int(240);
      const created = `${iso(clock)}.${PAD3[int(1000)]}Z`;
      const updated = rand() < 0.2 ? '' : `${iso(clock + int(8e6))}Z`;
      const customer = int(10) < 4 ? recent[int(recent.length)] : (recent[int(recent.length)] = customerColumns());
      const r = rand();
      const product = products[Math.floor(r * r * r * products.length)];
      const qty = 1 + int(int(4) === 0 ? 50 : 5);
      const tags = rand() < 0.55 ? '' : rand() < 0.5 ? pick(TAGS) : q(`${pick(TAGS)},${pick(TAGS)}${int(3) === 0 ? `,${pick(TAGS)}` : ''}`);
      const text = comment();
      if (rows % 5000 === 1) importedAt = `${iso(clock + 3600 + int(600))}Z`;
      const agent = rand() < 0.35 ? '' : USER_AGENTS[Math.floor(rand() * rand() * USER_AGENTS.length)];
      batch +=
        `${uuid()},ORD-${orderNo},${customer},${int(10) < 7 ? '' : hex16()},${created},${updated},${pick(STATUSES)},${pick(CHANNELS)},${pick(CURRENCIES)},` +
        `${product.sku},${product.name},${product.price},${qty},${(rand() * 5000).toFixed(2)},${pick(TAX_RATES)},${rand() < 0.6 ? '' : float(100)},${product.weight},` +
        `${int(10) === 0 ? 'true' : 'false'},${pick(PAYMENT)},${pick(SHIPPING)},${pick(LANGUAGES)},${pick(UTM)},${tags},` +
        `${agent === '' ? '' : q(agent)},${text === '' ? '' : q(text)},${importedAt}\n`;
    }
    const chunk = Buffer.from(batch);
    written += chunk.length;
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
  await once(stream, 'finish');
  return { bytes: written + Buffer.byteLength(`${COLUMNS.join(',')}\n`), rows };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [, , out = 'bench/out/data.csv', sizeArg = '500'] = process.argv;
  const t0 = performance.now();
  const { bytes, rows } = await generateCsv(out, sizeArg);
  const secs = (performance.now() - t0) / 1000;
  console.error(`wrote ${out}: ${(bytes / 1048576).toFixed(0)} MiB, ${rows} rows, ${secs.toFixed(1)} s (${(bytes / 1e6 / secs).toFixed(0)} MB/s)`);
}
