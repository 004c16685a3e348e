import { describe, expect, it } from 'vitest';
import { CredentialCache } from '../../../src/radius/auth-cache.ts';

/** The compact entry layout of the credential cache: one number per verdict, keyed by a MAC that includes the hash. */
describe('CredentialCache entries', () => {
  const verifier = () => {
    let runs = 0;
    const verify = async (_hash: string, password: string) => {
      runs++;
      return password === 'right';
    };
    return { verify, runs: () => runs };
  };

  it('keeps ok and failed verdicts apart, at any clock value (negative and zero times included)', async () => {
    for (const t of [-5_000, -1, 0, 1, 1_790_000_000_123]) {
      const { verify } = verifier();
      const cache = new CredentialCache(verify, { okTtlMs: 10, failTtlMs: 7 });
      expect(await cache.check('u', 'right', 'H', () => t)).toBe(true);
      expect(await cache.check('u', 'wrong', 'H', () => t)).toBe(false);
      expect(cache.peek('u', 'right', 'H', t + 9)).toBe(true);
      expect(cache.peek('u', 'wrong', 'H', t + 6)).toBe(false);
      expect(cache.peek('u', 'right', 'H', t + 10)).toBeUndefined();
      expect(cache.peek('u', 'wrong', 'H', t + 7)).toBeUndefined();
    }
  });

  it('does not confuse fields that only differ in where one ends and the next begins', async () => {
    const { verify } = verifier();
    const cache = new CredentialCache(verify);
    await cache.check('ab', 'right', 'H', () => 0);
    expect(cache.peek('a', 'bright', 'H', 0)).toBeUndefined();
    expect(cache.peek('ab', 'righ', 'tH', 0)).toBeUndefined();
    expect(cache.peek('ab', 'right', 'H', 0)).toBe(true);
  });

  it('keys long and non-ASCII credentials exactly, beyond the size of its working buffer', async () => {
    const { verify } = verifier();
    const cache = new CredentialCache(verify);
    const long = '学'.repeat(700); // 2,100 bytes of UTF-8
    await cache.check(long, 'right', 'H', () => 0);
    expect(cache.peek(long, 'right', 'H', 0)).toBe(true);
    expect(cache.peek(`${long}x`, 'right', 'H', 0)).toBeUndefined();
    expect(cache.peek('学', 'right', 'H', 0)).toBeUndefined();
    await cache.check('u', 'right', 'H', () => 0);
    expect(cache.peek('u', 'right', 'H', 0)).toBe(true);
  });

  it('a changed hash misses; the old hash still hits until it expires (its verdict was reached against it)', async () => {
    const { verify, runs } = verifier();
    const cache = new CredentialCache(verify);
    await cache.check('u', 'right', 'H1', () => 0);
    await cache.check('u', 'right', 'H2', () => 0);
    expect(runs()).toBe(2);
    expect(cache.peek('u', 'right', 'H1', 0)).toBe(true);
    expect(cache.peek('u', 'right', 'H2', 0)).toBe(true);
  });

  it('never holds more than maxEntries, evicting the oldest first', async () => {
    const { verify } = verifier();
    const cache = new CredentialCache(verify, { maxEntries: 3 });
    for (const u of ['a', 'b', 'c', 'd']) await cache.check(u, 'right', 'H', () => 0);
    expect(cache.size).toBe(3);
    expect(cache.peek('a', 'right', 'H', 0)).toBeUndefined();
    for (const u of ['b', 'c', 'd']) expect(cache.peek(u, 'right', 'H', 0)).toBe(true);
  });

  it('drops expired entries as new ones arrive, so it does not sit at its cap with dead verdicts', async () => {
    const { verify } = verifier();
    const cache = new CredentialCache(verify, { okTtlMs: 100 });
    for (let i = 0; i < 50; i++) await cache.check(`old${i}`, 'right', 'H', () => 0);
    expect(cache.size).toBe(50);
    await cache.check('new', 'right', 'H', () => 100);
    expect(cache.size).toBe(1);
    expect(cache.peek('new', 'right', 'H', 100)).toBe(true);
  });
});
