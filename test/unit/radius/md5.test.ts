import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacMd5, HmacMd5Key, Md5, md5Of } from '../../../src/radius/md5.ts';

/** Deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % n) | 0;
  };
}

function bytes(rand: (n: number) => number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = rand(256);
  return b;
}

/** Random cut points splitting [0, length) into 1..6 segments (some possibly empty). */
function splits(rand: (n: number) => number, length: number): number[] {
  const cuts = [0, length];
  const extra = rand(6);
  for (let i = 0; i < extra; i++) cuts.push(rand(length + 1));
  return cuts.sort((a, b) => a - b);
}

const nodeMd5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex');
const nodeHmac = (key: Uint8Array, data: Uint8Array): string => createHmac('md5', key).update(data).digest('hex');
const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('MD5 (RFC 1321)', () => {
  // RFC 1321 appendix A.5, "test suite".
  const suite: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['1234567890'.repeat(8), '57edf4a22be3c955ac49da2e2107b67a'],
  ];

  it.each(suite)('MD5(%j) is the RFC 1321 test-suite value', (message, digest) => {
    expect(md5Of(ascii(message)).toString('hex')).toBe(digest);
    expect(new Md5().update(ascii(message)).digest().toString('hex')).toBe(digest);
  });

  it('matches node:crypto for every length 0..300 and a few of 4096, fed in random segments', () => {
    const rand = prng(1321);
    const md5 = new Md5(); // one instance for every message: digest() must leave it reset
    const lengths = [...Array.from({ length: 301 }, (_, i) => i), 4096, 4096, 4096, 4095, 4097];
    for (const length of lengths) {
      const data = bytes(rand, length);
      const cuts = splits(rand, length);
      for (let i = 1; i < cuts.length; i++) md5.update(data, cuts[i - 1], cuts[i]);
      expect(md5.digest().toString('hex'), `length ${length}, cuts ${cuts.join(',')}`).toBe(nodeMd5(data));
    }
  });

  it('hashes the same with separate Uint8Array segments, byte by byte, and via md5Of(...parts)', () => {
    const rand = prng(7);
    for (let n = 0; n < 200; n++) {
      const data = bytes(rand, rand(300));
      const expected = nodeMd5(data);
      const cuts = splits(rand, data.length);
      const parts = cuts.slice(1).map((end, i) => new Uint8Array(data.subarray(cuts[i], end)));
      expect(md5Of(...parts).toString('hex')).toBe(expected);
      const md5 = new Md5();
      for (let i = 0; i < data.length; i++) md5.update(data, i, i + 1);
      expect(md5.digest().toString('hex')).toBe(expected);
    }
  });

  it('reads subranges of unaligned, pooled buffers (nonzero byteOffset)', () => {
    const rand = prng(99);
    const big = bytes(rand, 1000);
    const view = big.subarray(3, 997); // byteOffset 3
    for (let n = 0; n < 100; n++) {
      const start = rand(view.length);
      const end = start + rand(view.length - start + 1);
      expect(new Md5().update(view, start, end).digest().toString('hex')).toBe(nodeMd5(view.subarray(start, end)));
    }
  });

  it('digestInto writes exactly 16 bytes at the offset, and reset() discards a half-hashed message', () => {
    const out = Buffer.alloc(40, 0xee);
    const md5 = new Md5();
    md5.update(ascii('garbage that must be forgotten')).reset();
    md5.update(ascii('abc')).digestInto(out, 7);
    expect(out.subarray(0, 7).every((b) => b === 0xee)).toBe(true);
    expect(out.subarray(7, 23).toString('hex')).toBe('900150983cd24fb0d6963f7d28e17f72');
    expect(out.subarray(23).every((b) => b === 0xee)).toBe(true);
    // The instance reset itself: the next digest is of the next message only.
    expect(md5.update(ascii('a')).digest().toString('hex')).toBe('0cc175b9c0f1b6a831c399e269772661');
    expect(md5.digest().toString('hex')).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });

  it('rejects ranges outside the input and outputs without room', () => {
    const md5 = new Md5();
    const data = Buffer.alloc(10);
    expect(() => md5.update(data, 5, 11)).toThrow(RangeError);
    expect(() => md5.update(data, -1, 4)).toThrow(RangeError);
    expect(() => md5.update(data, 6, 5)).toThrow(RangeError);
    expect(() => md5.digestInto(Buffer.alloc(20), 5)).toThrow(RangeError);
    expect(() => md5.resetFrom(new Int32Array(4), 10)).toThrow(RangeError);
  });
});

describe('HMAC-MD5 (RFC 2104, RFC 2202)', () => {
  const range = (from: number, to: number): Buffer => Buffer.from(Array.from({ length: to - from + 1 }, (_, i) => from + i));
  // RFC 2202 section 2; cases 1..3 are also the RFC 2104 appendix examples; 6 and 7 use an 80-byte key.
  const cases: [string, Buffer, Buffer, string][] = [
    ['1', Buffer.alloc(16, 0x0b), ascii('Hi There'), '9294727a3638bb1c13f48ef8158bfc9d'],
    ['2', ascii('Jefe'), ascii('what do ya want for nothing?'), '750c783e6ab0b503eaa86e310a5db738'],
    ['3', Buffer.alloc(16, 0xaa), Buffer.alloc(50, 0xdd), '56be34521d144c88dbb8c733f0e8b3f6'],
    ['4', range(0x01, 0x19), Buffer.alloc(50, 0xcd), '697eaf0aca3a3aea3a75164746ffaa79'],
    ['5', Buffer.alloc(16, 0x0c), ascii('Test With Truncation'), '56461ef2342edc00f9bab995690efd4c'],
    ['6', Buffer.alloc(80, 0xaa), ascii('Test Using Larger Than Block-Size Key - Hash Key First'), '6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd'],
    [
      '7',
      Buffer.alloc(80, 0xaa),
      ascii('Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data'),
      '6f630fad67cda0ee1fb1f562db3aa53e',
    ],
  ];

  it.each(cases)('RFC 2202 test case %s', (_name, key, data, mac) => {
    expect(new HmacMd5(new HmacMd5Key(key)).update(data).digest().toString('hex')).toBe(mac);
    const out = Buffer.alloc(16);
    new HmacMd5(new HmacMd5Key(key)).update(data, 0, 3).update(data, 3).digestInto(out);
    expect(out.toString('hex')).toBe(mac);
  });

  it('matches node:crypto for keys of 0..100 bytes and messages of 0..300 bytes in random segments', () => {
    const rand = prng(2104);
    for (let keyLength = 0; keyLength <= 100; keyLength++) {
      const key = bytes(rand, keyLength);
      const mac = new HmacMd5(new HmacMd5Key(key)); // one context per key, reused across messages
      for (let n = 0; n < 12; n++) {
        const data = bytes(rand, n === 0 ? 4096 : rand(301));
        const cuts = splits(rand, data.length);
        for (let i = 1; i < cuts.length; i++) mac.update(data, cuts[i - 1], cuts[i]);
        expect(mac.digest().toString('hex'), `key ${keyLength} B, message ${data.length} B`).toBe(nodeHmac(key, data));
      }
    }
  });

  it('covers every message length 0..300 under one key, with one context switching between keys', () => {
    const rand = prng(2202);
    const keys = [bytes(rand, 16), bytes(rand, 64), bytes(rand, 65), Buffer.alloc(0)];
    const prepared = keys.map((key) => new HmacMd5Key(key));
    const mac = new HmacMd5(prepared[0]!);
    const out = Buffer.alloc(18);
    for (let length = 0; length <= 300; length++) {
      const data = bytes(rand, length);
      const k = rand(keys.length);
      mac.reset(prepared[k]);
      const cuts = splits(rand, length);
      for (let i = 1; i < cuts.length; i++) mac.update(data, cuts[i - 1], cuts[i]);
      mac.digestInto(out, 2);
      expect(out.subarray(2).toString('hex'), `length ${length}, key ${k}`).toBe(nodeHmac(keys[k]!, data));
    }
  });

  it('restarts under the same key after a digest, and reset() drops a half-fed message', () => {
    const key = new HmacMd5Key(ascii('Jefe'));
    const mac = new HmacMd5(key);
    const expected = '750c783e6ab0b503eaa86e310a5db738';
    expect(mac.update(ascii('what do ya want for nothing?')).digest().toString('hex')).toBe(expected);
    expect(mac.update(ascii('what do ya want for nothing?')).digest().toString('hex')).toBe(expected);
    mac.update(ascii('noise')).reset();
    expect(mac.update(ascii('what do ya want for nothing?')).digest().toString('hex')).toBe(expected);
    expect(mac.digest().toString('hex')).toBe(nodeHmac(ascii('Jefe'), Buffer.alloc(0)));
  });

  it('does not keep a reference to the key bytes', () => {
    const secret = ascii('radius-secret');
    const key = new HmacMd5Key(secret);
    secret.fill(0);
    expect(new HmacMd5(key).update(ascii('x')).digest().toString('hex')).toBe(nodeHmac(ascii('radius-secret'), ascii('x')));
  });
});
