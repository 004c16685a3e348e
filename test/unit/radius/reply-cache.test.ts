import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ReplyCache } from '../../../src/radius/reply-cache.ts';

const ADDRESS = '10.0.0.1';
const PORT = 50000;
const reply = Buffer.from('reply');

/** A request's first 20 octets: Code, Identifier, Length, Request Authenticator. */
function header(identifier: number, authenticator: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b[0] = 1;
  b[1] = identifier;
  b.writeUInt16BE(20, 2);
  authenticator.copy(b, 4);
  return b;
}

/** A distinct request per name (its authenticator is the name's MD5), from ADDRESS:PORT. */
const named = (name: string) => header(7, createHash('md5').update(name).digest());
const begin = (cache: ReplyCache, name: string, now: number) => cache.begin(ADDRESS, PORT, named(name), now);
const complete = (cache: ReplyCache, name: string, bytes: Buffer, now: number) => cache.complete(ADDRESS, PORT, named(name), bytes, now);

const request = header(7, Buffer.alloc(16, 1));

describe('ReplyCache (RFC 5080 §2.2.2)', () => {
  it('lets a first request through, drops a duplicate in progress, and replays the reply once done', () => {
    const cache = new ReplyCache();
    expect(cache.begin(ADDRESS, PORT, request, 0)).toEqual({ kind: 'new' });
    expect(cache.begin(ADDRESS, PORT, request, 100)).toEqual({ kind: 'in-progress' });
    cache.complete(ADDRESS, PORT, request, reply, 200);
    expect(cache.begin(ADDRESS, PORT, request, 300)).toEqual({ kind: 'replay', reply });
  });

  it('replays the exact bytes sent, every octet value, without holding the Buffer it was given', () => {
    const cache = new ReplyCache();
    const sent = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) % 256));
    cache.begin(ADDRESS, PORT, request, 0);
    cache.complete(ADDRESS, PORT, request, sent, 0);
    const copy = Buffer.from(sent);
    sent.fill(0);
    const replay = cache.begin(ADDRESS, PORT, request, 1);
    expect(replay.kind).toBe('replay');
    expect(replay.kind === 'replay' && replay.reply.equals(copy)).toBe(true);
  });

  it('keys on address, port, identifier and authenticator, so any difference is a new request', () => {
    const cache = new ReplyCache();
    cache.begin(ADDRESS, PORT, request, 0);
    cache.complete(ADDRESS, PORT, request, reply, 0);
    for (const [address, port, other] of [
      ['10.0.0.2', 50000, request],
      ['10.0.0.10', 50000, request],
      ['10.0.0.1', 50001, request],
      ['10.0.0.1', 50000, header(8, Buffer.alloc(16, 1))],
      ['10.0.0.1', 50000, header(7, Buffer.alloc(16, 2))],
    ] as const) {
      expect(cache.begin(address, port, other, 1)).toEqual({ kind: 'new' });
    }
    // Only the header is the key: the same header with other attributes is the same request (a retransmission).
    expect(cache.begin(ADDRESS, PORT, Buffer.concat([request, Buffer.from([1, 3, 0x61])]), 2)).toEqual({ kind: 'replay', reply });
  });

  it('keys IPv6 sources, zone included', () => {
    const cache = new ReplyCache();
    const v6 = 'fe80::1234:5678:9abc:def0%enp0s31f6';
    cache.begin(v6, PORT, request, 0);
    cache.complete(v6, PORT, request, reply, 0);
    expect(cache.begin(v6, PORT, request, 1)).toEqual({ kind: 'replay', reply });
    expect(cache.begin('fe80::1234:5678:9abc:def0%eth1', PORT, request, 1)).toEqual({ kind: 'new' });
    expect(cache.begin('fe80::1234:5678:9abc:def1%enp0s31f6', PORT, request, 1)).toEqual({ kind: 'new' });
  });

  it('takes an IPv4 source seen through a dual-stack socket (::ffff:a.b.c.d) for the same host', () => {
    const cache = new ReplyCache();
    cache.begin('::ffff:10.0.0.1', PORT, request, 0);
    cache.complete('::ffff:10.0.0.1', PORT, request, reply, 0);
    expect(cache.begin('::ffff:10.0.0.1', PORT, request, 1)).toEqual({ kind: 'replay', reply });
    expect(cache.begin('10.0.0.1', PORT, request, 1)).toEqual({ kind: 'replay', reply });
    expect(cache.begin('::ffff:10.0.0.2', PORT, request, 1)).toEqual({ kind: 'new' });
  });

  it('tells every source address apart, IPv4 and otherwise', () => {
    const cache = new ReplyCache();
    const addresses = ['0.0.0.0', '1.2.3.4', '1.2.3.40', '1.2.34.0', '12.3.4.0', '255.255.255.255', '1.2.3.4.5', '::1', '::ffff:1.2.3.5', '::ffff:1.2.3', '2001:db8::1', 'fe80::1%eth0'];
    for (const [i, address] of addresses.entries()) {
      cache.begin(address, PORT, request, 0);
      cache.complete(address, PORT, request, Buffer.from(`reply ${i}`), 0);
    }
    for (const [i, address] of addresses.entries()) {
      expect(cache.begin(address, PORT, request, 1)).toEqual({ kind: 'replay', reply: Buffer.from(`reply ${i}`) });
    }
    expect(cache.size).toBe(addresses.length);
  });

  it('processes a retransmission again after a failed attempt was abandoned (database down)', () => {
    const cache = new ReplyCache();
    cache.begin(ADDRESS, PORT, request, 0);
    cache.abandon(ADDRESS, PORT, request);
    expect(cache.begin(ADDRESS, PORT, request, 10)).toEqual({ kind: 'new' });
  });

  it('forgets a reply after the TTL counted from completion, default 5 s', () => {
    const cache = new ReplyCache();
    cache.begin(ADDRESS, PORT, request, 0);
    cache.complete(ADDRESS, PORT, request, reply, 1_000);
    expect(cache.begin(ADDRESS, PORT, request, 5_999)).toEqual({ kind: 'replay', reply });
    expect(cache.begin(ADDRESS, PORT, request, 6_000)).toEqual({ kind: 'new' });
  });

  it('keeps dropping duplicates of a slow request for the in-progress TTL, then lets one through', () => {
    const cache = new ReplyCache({ ttlMs: 5_000, inProgressTtlMs: 30_000 });
    cache.begin(ADDRESS, PORT, request, 0);
    expect(cache.begin(ADDRESS, PORT, request, 29_999)).toEqual({ kind: 'in-progress' });
    expect(cache.begin(ADDRESS, PORT, request, 30_000)).toEqual({ kind: 'new' });
  });

  it('sweeps expired entries, oldest first, and keeps young ones', () => {
    const cache = new ReplyCache({ ttlMs: 1_000, inProgressTtlMs: 10_000 });
    for (let i = 0; i < 5; i++) {
      begin(cache, `done-${i}`, i * 100);
      complete(cache, `done-${i}`, reply, i * 100);
    }
    begin(cache, 'slow', 0);
    expect(cache.size).toBe(6);
    expect(cache.sweep(1_250)).toBe(3);
    expect(cache.size).toBe(3);
    expect(begin(cache, 'done-4', 1_250)).toEqual({ kind: 'replay', reply });
    expect(begin(cache, 'slow', 1_250)).toEqual({ kind: 'in-progress' });
    expect(cache.sweep(20_000)).toBe(3);
    expect(cache.size).toBe(0);
  });

  it('drops expired entries as new requests arrive, so steady traffic leaves nothing for the sweep', () => {
    const cache = new ReplyCache({ ttlMs: 1_000, inProgressTtlMs: 10_000 });
    // 10 requests a millisecond for 5 seconds: at most one TTL's worth is ever held.
    for (let t = 0; t < 5_000; t++) {
      for (let j = 0; j < 10; j++) {
        begin(cache, `r-${t}-${j}`, t);
        complete(cache, `r-${t}-${j}`, reply, t);
      }
      expect(cache.size).toBeLessThanOrEqual(10_010);
    }
    expect(cache.sweep(4_999)).toBe(0);
    expect(cache.evictions).toBe(0);
    // Retransmissions within the TTL are still answered from the cache.
    expect(begin(cache, 'r-4000-3', 4_999)).toEqual({ kind: 'replay', reply });
  });

  it('grows instead of evicting while one TTL of traffic needs more slots, and keeps every reply', () => {
    const cache = new ReplyCache();
    expect(cache.capacity).toBe(4_096);
    for (let i = 0; i < 10_000; i++) {
      begin(cache, `g${i}`, 0);
      if (i % 2 === 0) complete(cache, `g${i}`, Buffer.from(`reply ${i}`), 0);
    }
    expect(cache.capacity).toBe(16_384);
    expect(cache.evictions).toBe(0);
    expect(cache.size).toBe(10_000);
    for (let i = 0; i < 10_000; i++) {
      expect(begin(cache, `g${i}`, 1)).toEqual(i % 2 === 0 ? { kind: 'replay', reply: Buffer.from(`reply ${i}`) } : { kind: 'in-progress' });
    }
  });

  it('stays small when steady traffic lets expired entries be overwritten', () => {
    const cache = new ReplyCache({ ttlMs: 1_000 });
    for (let t = 0; t < 20_000; t++) {
      begin(cache, `s${t}`, t);
      complete(cache, `s${t}`, reply, t);
    }
    expect(cache.capacity).toBe(4_096);
    expect(cache.evictions).toBe(0);
  });

  it('evicts the oldest entry when full and counts it', () => {
    const cache = new ReplyCache({ maxEntries: 2 });
    begin(cache, 'a', 0);
    begin(cache, 'b', 1);
    begin(cache, 'c', 2);
    expect(cache.size).toBe(2);
    expect(cache.evictions).toBe(1);
    expect(begin(cache, 'a', 3)).toEqual({ kind: 'new' });
    complete(cache, 'z', reply, 4);
    expect(cache.size).toBe(2);
  });

  it('stores a completion even if the entry was evicted meanwhile', () => {
    const cache = new ReplyCache({ maxEntries: 1 });
    begin(cache, 'a', 0);
    begin(cache, 'b', 1);
    complete(cache, 'a', reply, 2);
    expect(begin(cache, 'a', 3)).toEqual({ kind: 'replay', reply });
  });

  it('forgets a reply overwritten in the reply ring before its TTL, and keeps the newer one whole', () => {
    const cache = new ReplyCache({ replyBytes: 4096 });
    const big = (fill: number) => Buffer.alloc(3000, fill);
    begin(cache, 'first', 0);
    complete(cache, 'first', big(1), 0);
    begin(cache, 'second', 1);
    complete(cache, 'second', big(2), 1);
    expect(begin(cache, 'first', 2)).toEqual({ kind: 'new' });
    expect(begin(cache, 'second', 2)).toEqual({ kind: 'replay', reply: big(2) });
  });

  it.each([
    { maxEntries: 4_096, keys: 3_500 },
    { maxEntries: 16_384, keys: 12_000 },
  ])('agrees with a plain model through 200 000 random begins, completions and abandons ($keys keys, up to $maxEntries slots)', ({ maxEntries, keys }) => {
    // Many live keys for the slots: long probe runs in the index, removals that shift entries back through
    // them, and (in the second case) the ring growing from 4 096 slots while full of live entries. The model
    // takes slots the same way: in arrival order, doubling while below maxEntries, else evicting.
    const cache = new ReplyCache({ maxEntries, ttlMs: 1e12, inProgressTtlMs: 1e12 });
    const model = new Map<number, { reply: Buffer | undefined; seq: number }>();
    const bySeq = new Map<number, number>();
    let head = 0;
    let capacity = Math.min(maxEntries, 4_096);
    let evicted = 0;
    const live = (seq: number) => {
      const k = bySeq.get(seq);
      return k !== undefined && model.get(k)?.seq === seq ? k : undefined;
    };
    const take = (k: number, reply: Buffer | undefined) => {
      if (live(head - capacity) !== undefined && capacity < maxEntries) capacity = Math.min(maxEntries, capacity * 2);
      const victim = live(head - capacity);
      if (victim !== undefined) {
        model.delete(victim);
        evicted++;
      }
      bySeq.set(head, k);
      model.set(k, { reply, seq: head++ });
    };
    let seed = 42;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let step = 0; step < 200_000; step++) {
      const k = Math.floor(next() * keys);
      const name = `k${k}`;
      const op = next();
      const entry = model.get(k);
      if (op < 0.5) {
        const want = entry === undefined ? { kind: 'new' } : entry.reply === undefined ? { kind: 'in-progress' } : { kind: 'replay', reply: entry.reply };
        expect(begin(cache, name, step)).toEqual(want);
        if (entry === undefined) take(k, undefined);
      } else if (op < 0.8) {
        const bytes = Buffer.from(`reply ${k} at ${step}`);
        complete(cache, name, bytes, step);
        if (entry === undefined) take(k, bytes);
        else entry.reply = bytes;
      } else {
        cache.abandon(ADDRESS, PORT, named(name));
        model.delete(k);
      }
      expect(cache.size).toBe(model.size);
    }
    expect(cache.capacity).toBe(capacity);
    expect(evicted).toBeGreaterThan(0);
    expect(cache.evictions).toBe(evicted);
  });

  it('handles 100 000 requests in bounded memory', () => {
    const cache = new ReplyCache({ maxEntries: 10_000 });
    for (let i = 0; i < 100_000; i++) {
      begin(cache, `k${i}`, i);
      complete(cache, `k${i}`, reply, i);
      if (i % 1_000 === 0) cache.sweep(i);
    }
    expect(cache.size).toBeLessThanOrEqual(10_000);
  });

  it('refuses nonsensical sizing', () => {
    expect(() => new ReplyCache({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new ReplyCache({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new ReplyCache({ replyBytes: 100 })).toThrow(RangeError);
  });
});
