import { createHmac, hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { HmacMd5, HmacMd5Key, Md5, md5Of } from '../src/radius/md5.ts';

// Micro-benchmark: node:crypto MD5 / HMAC-MD5 against src/radius/md5.ts on a 120-byte RADIUS-sized packet.
// Run with `npx tsx bench/md5.ts [iterations]`. Prints per-call microseconds, the median of 5 runs.
const iterations = Number(process.argv[2] ?? 200_000);
const runs = 5;

const packet = Buffer.alloc(120);
for (let i = 0; i < packet.length; i++) packet[i] = (i * 131 + 7) & 0xff;
const secret = Buffer.from('0123456789abcdef'); // 16-byte key
// Five segments as in a Message-Authenticator check: header, authenticator, attributes, zeroed MA, rest.
const cuts = [0, 4, 20, 60, 78, 120];
const segments = cuts.slice(1).map((end, i) => packet.subarray(cuts[i], end));

const md5 = new Md5();
const key = new HmacMd5Key(secret);
const mac = new HmacMd5(key);
const out = Buffer.alloc(16);
let sink = 0;

const cases: [string, () => void][] = [
  ['node crypto.hash(md5), 120 B', () => (sink ^= hash('md5', packet, 'buffer')[0]!)],
  ['ours md5Of(), 120 B -> new Buffer', () => (sink ^= md5Of(packet)[0]!)],
  ['ours Md5.update+digestInto, 120 B', () => {
    md5.update(packet).digestInto(out, 0);
    sink ^= out[0]!;
  }],
  ['node createHmac(md5, 16 B key), 5 updates', () => {
    const h = createHmac('md5', secret);
    for (const segment of segments) h.update(segment);
    sink ^= h.digest()[0]!;
  }],
  ['ours HmacMd5 (precomputed key), 5 updates', () => {
    for (let i = 1; i < cuts.length; i++) mac.update(packet, cuts[i - 1], cuts[i]);
    mac.digestInto(out, 0);
    sink ^= out[0]!;
  }],
  ['ours HmacMd5Key build + 5 updates', () => {
    const m = new HmacMd5(new HmacMd5Key(secret));
    for (let i = 1; i < cuts.length; i++) m.update(packet, cuts[i - 1], cuts[i]);
    sink ^= m.digest()[0]!;
  }],
];

function perCallUs(fn: () => void): number {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  return ((performance.now() - start) * 1000) / iterations;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

// Sanity: both sides agree before timing anything.
const hmacCheck = createHmac('md5', secret).update(packet).digest();
if (!md5Of(packet).equals(hash('md5', packet, 'buffer')) || !mac.update(packet).digest().equals(hmacCheck)) {
  throw new Error('md5 bench: results differ from node:crypto');
}

for (const [, fn] of cases) perCallUs(fn); // warm up every case before measuring any
// Runs are interleaved across cases, so a slow patch of the machine hits all of them alike.
const samples = cases.map((): number[] => []);
for (let r = 0; r < runs; r++) cases.forEach(([, fn], i) => samples[i]!.push(perCallUs(fn)));
console.log(`${iterations} calls per run, median of ${runs} runs`);
console.log('case'.padEnd(46) + 'us/call');
cases.forEach(([name], i) => console.log(name.padEnd(46) + median(samples[i]!).toFixed(3)));
if (sink === 0x100) console.log(''); // keep `sink` observable
