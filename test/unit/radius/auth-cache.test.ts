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

  /**
   * The Map in insertion order that the cache's typed arrays replaced, as the reference: store = delete,
   * drop expired entries and any at the cap from the old end, append.
   */
  class MapModel {
    readonly entries = new Map<string, { ok: boolean; expiresAt: number }>();
    constructor(readonly max: number) {}
    peek(key: string, now: number): boolean | undefined {
      const e = this.entries.get(key);
      if (e === undefined) return undefined;
      if (e.expiresAt <= now) {
        this.entries.delete(key);
        return undefined;
      }
      return e.ok;
    }
    store(key: string, ok: boolean, expiresAt: number, now: number): void {
      this.entries.delete(key);
      for (const [k, e] of this.entries) {
        if (e.expiresAt > now && this.entries.size < this.max) break;
        this.entries.delete(k);
      }
      this.entries.set(key, { ok, expiresAt });
    }
  }

  /**
   * Random logins and peeks over `users` accounts (right and wrong passwords, two hashes), time moving on
   * 0-2 ms a step; `onStep` sees each step with whether argon2 ran for it.
   */
  async function drive(
    o: { users: number; maxEntries: number; okTtlMs: number; failTtlMs: number; steps: number },
    onStep: (cache: CredentialCache, model: MapModel, key: string, args: [string, string, string], now: number, verified: boolean) => void,
  ): Promise<void> {
    let seed = o.users * 7919 + o.maxEntries;
    const rnd = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    const cache = new CredentialCache(async (_hash, password) => password === 'right', { okTtlMs: o.okTtlMs, failTtlMs: o.failTtlMs, maxEntries: o.maxEntries });
    const model = new MapModel(o.maxEntries);
    let now = 0;
    for (let step = 0; step < o.steps; step++) {
      now += rnd(3);
      const args: [string, string, string] = [`u${rnd(o.users)}`, rnd(4) === 0 ? 'wrong' : 'right', rnd(8) === 0 ? 'H2' : 'H1'];
      const key = args.join('\0');
      let verified = false;
      if (rnd(2) === 0) {
        const ok = args[1] === 'right';
        if (model.peek(key, now) === undefined) model.store(key, ok, now + (ok ? o.okTtlMs : o.failTtlMs), now);
        await cache.check(...args, () => now, () => (verified = true));
      }
      onStep(cache, model, key, args, now, verified);
    }
  }

  it('answers exactly as the Map it replaced while under its cap, through growth, expiry and reuse (random model test)', async () => {
    // Up to ~12k live verdicts: the table grows from 1,024 slots, and reclaims expired and replaced ones.
    await drive({ users: 3_000, maxEntries: 1_000_000, okTtlMs: 20_000, failTtlMs: 3_000, steps: 80_000 }, (cache, model, key, args, now) => {
      expect(cache.peek(...args, now)).toBe(model.peek(key, now));
      expect(cache.size).toBe(model.entries.size);
    });
  });

  it('at its cap, never holds more than maxEntries and never answers a wrong or expired verdict (random model test)', async () => {
    const storedAt = new Map<string, number>();
    await drive({ users: 400, maxEntries: 64, okTtlMs: 500, failTtlMs: 120, steps: 60_000 }, (cache, _model, key, args, now, verified) => {
      if (verified) storedAt.set(key, now);
      const verdict = cache.peek(...args, now);
      if (verdict !== undefined) {
        expect(verdict).toBe(args[1] === 'right');
        expect(now - storedAt.get(key)!).toBeLessThan(args[1] === 'right' ? 500 : 120);
      }
      expect(cache.size).toBeLessThanOrEqual(64);
    });
  });
});
