import { describe, expect, it } from 'vitest';
import { ReplyCache, replyCacheKey } from '../../../src/radius/reply-cache.ts';

const reply = Buffer.from('reply');
const key = replyCacheKey('10.0.0.1', 50000, 7, Buffer.alloc(16, 1));

describe('ReplyCache (RFC 5080 §2.2.2)', () => {
  it('lets a first request through, drops a duplicate in progress, and replays the reply once done', () => {
    const cache = new ReplyCache();
    expect(cache.begin(key, 0)).toEqual({ kind: 'new' });
    expect(cache.begin(key, 100)).toEqual({ kind: 'in-progress' });
    cache.complete(key, reply, 200);
    expect(cache.begin(key, 300)).toEqual({ kind: 'replay', reply });
  });

  it('replays the exact bytes sent, every octet value, without holding the Buffer it was given', () => {
    const cache = new ReplyCache();
    const sent = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) % 256));
    cache.begin(key, 0);
    cache.complete(key, sent, 0);
    const copy = Buffer.from(sent);
    sent.fill(0);
    const replay = cache.begin(key, 1);
    expect(replay.kind).toBe('replay');
    expect(replay.kind === 'replay' && replay.reply.equals(copy)).toBe(true);
  });

  it('keys on address, port, identifier and authenticator, so any difference is a new request', () => {
    const cache = new ReplyCache();
    cache.begin(key, 0);
    cache.complete(key, reply, 0);
    for (const other of [
      replyCacheKey('10.0.0.2', 50000, 7, Buffer.alloc(16, 1)),
      replyCacheKey('10.0.0.1', 50001, 7, Buffer.alloc(16, 1)),
      replyCacheKey('10.0.0.1', 50000, 8, Buffer.alloc(16, 1)),
      replyCacheKey('10.0.0.1', 50000, 7, Buffer.alloc(16, 2)),
    ]) {
      expect(cache.begin(other, 1)).toEqual({ kind: 'new' });
    }
  });

  it('processes a retransmission again after a failed attempt was abandoned (database down)', () => {
    const cache = new ReplyCache();
    cache.begin(key, 0);
    cache.abandon(key);
    expect(cache.begin(key, 10)).toEqual({ kind: 'new' });
  });

  it('forgets a reply after the TTL counted from completion, default 5 s', () => {
    const cache = new ReplyCache();
    cache.begin(key, 0);
    cache.complete(key, reply, 1_000);
    expect(cache.begin(key, 5_999)).toEqual({ kind: 'replay', reply });
    expect(cache.begin(key, 6_000)).toEqual({ kind: 'new' });
  });

  it('keeps dropping duplicates of a slow request for the in-progress TTL, then lets one through', () => {
    const cache = new ReplyCache({ ttlMs: 5_000, inProgressTtlMs: 30_000 });
    cache.begin(key, 0);
    expect(cache.begin(key, 29_999)).toEqual({ kind: 'in-progress' });
    expect(cache.begin(key, 30_000)).toEqual({ kind: 'new' });
  });

  it('sweeps expired entries, oldest first, and keeps young ones', () => {
    const cache = new ReplyCache({ ttlMs: 1_000, inProgressTtlMs: 10_000 });
    for (let i = 0; i < 5; i++) {
      const k = `done-${i}`;
      cache.begin(k, i * 100);
      cache.complete(k, reply, i * 100);
    }
    cache.begin('slow', 0);
    expect(cache.size).toBe(6);
    expect(cache.sweep(1_250)).toBe(3);
    expect(cache.size).toBe(3);
    expect(cache.begin('done-4', 1_250)).toEqual({ kind: 'replay', reply });
    expect(cache.begin('slow', 1_250)).toEqual({ kind: 'in-progress' });
    expect(cache.sweep(20_000)).toBe(3);
    expect(cache.size).toBe(0);
  });

  it('drops expired entries as new requests arrive, so steady traffic leaves nothing for the sweep', () => {
    const cache = new ReplyCache({ ttlMs: 1_000, inProgressTtlMs: 10_000 });
    // 10 requests a millisecond for 5 seconds: at most one TTL's worth is ever held.
    for (let t = 0; t < 5_000; t++) {
      for (let j = 0; j < 10; j++) {
        const k = `r-${t}-${j}`;
        cache.begin(k, t);
        cache.complete(k, reply, t);
      }
      expect(cache.size).toBeLessThanOrEqual(10_010);
    }
    expect(cache.sweep(4_999)).toBe(0);
    expect(cache.evictions).toBe(0);
    // Retransmissions within the TTL are still answered from the cache.
    expect(cache.begin('r-4000-3', 4_999)).toEqual({ kind: 'replay', reply });
  });

  it('evicts the oldest entry when full and counts it', () => {
    const cache = new ReplyCache({ maxEntries: 2 });
    cache.begin('a', 0);
    cache.begin('b', 1);
    cache.begin('c', 2);
    expect(cache.size).toBe(2);
    expect(cache.evictions).toBe(1);
    expect(cache.begin('a', 3)).toEqual({ kind: 'new' });
    cache.complete('z', reply, 4);
    expect(cache.size).toBe(2);
  });

  it('stores a completion even if the entry was evicted meanwhile', () => {
    const cache = new ReplyCache({ maxEntries: 1 });
    cache.begin('a', 0);
    cache.begin('b', 1);
    cache.complete('a', reply, 2);
    expect(cache.begin('a', 3)).toEqual({ kind: 'replay', reply });
  });

  it('handles 100 000 requests in bounded memory', () => {
    const cache = new ReplyCache({ maxEntries: 10_000 });
    for (let i = 0; i < 100_000; i++) {
      const k = `k${i}`;
      cache.begin(k, i);
      cache.complete(k, reply, i);
      if (i % 1_000 === 0) cache.sweep(i);
    }
    expect(cache.size).toBeLessThanOrEqual(10_000);
  });

  it('refuses nonsensical sizing', () => {
    expect(() => new ReplyCache({ ttlMs: 0 })).toThrow(RangeError);
    expect(() => new ReplyCache({ maxEntries: 0 })).toThrow(RangeError);
  });
});
