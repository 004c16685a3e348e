import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { CredentialCache, defaultVerifyConcurrency, VerifyOverloadError } from '../../../src/radius/auth-cache.ts';
import { formatShanghai, replyAttributes, replyMessage, sessionTimeout, type AuthDecision } from '../../../src/radius/auth.ts';
import { openCredential, sealCredential } from '../../../src/radius/credential.ts';

describe('replyMessage', () => {
  it.each<[string, AuthDecision, string]>([
    ['arrears at 10.00', { kind: 'reject', reason: 'arrears', balanceFen: 1000, neededFen: 2000 }, '账户欠费：余额 10.00 元，需 20.00 元 / Account in arrears: balance 10.00 yuan, 20.00 needed'],
    ['arrears at zero', { kind: 'reject', reason: 'arrears', balanceFen: 0, neededFen: 2000 }, '账户欠费：余额 0.00 元，需 20.00 元 / Account in arrears: balance 0.00 yuan, 20.00 needed'],
    ['arrears below zero', { kind: 'reject', reason: 'arrears', balanceFen: -5, neededFen: 2000 }, '账户欠费：余额 -0.05 元，需 20.00 元 / Account in arrears: balance -0.05 yuan, 20.00 needed'],
    ['a wrong password', { kind: 'reject', reason: 'bad_credentials' }, '用户名或密码错误 / Wrong username or password'],
    ['an unknown user', { kind: 'reject', reason: 'unknown_user' }, '用户名或密码错误 / Wrong username or password'],
    ['no password at all', { kind: 'reject', reason: 'no_credentials' }, '用户名或密码错误 / Wrong username or password'],
    ['a disabled account', { kind: 'reject', reason: 'disabled' }, '账号已停用 / Account disabled'],
    ['an office accept', { kind: 'accept', area: 'office', sessionTimeoutSeconds: null, endsAtMs: null }, '认证成功：教学办公区免费 / Welcome: the office area is free of charge'],
    [
      'a dorm accept',
      { kind: 'accept', area: 'dorm', sessionTimeoutSeconds: 60, endsAtMs: Date.parse('2026-10-01T08:00:00Z') },
      '认证成功：宿舍区本周期至 2026-10-01 16:00 / Welcome: dormitory cycle paid until 2026-10-01 16:00 (UTC+8)',
    ],
  ])('tells the user about %s in Chinese, then English', (_what, decision, text) => {
    expect(replyMessage(decision)).toBe(text);
  });

  it('fits every message in one Reply-Message attribute (253 octets)', () => {
    const d: AuthDecision = { kind: 'reject', reason: 'arrears', balanceFen: -99_999_999_99, neededFen: 100_000_000 };
    expect(Buffer.byteLength(replyMessage(d))).toBeLessThanOrEqual(253);
  });
});

describe('replyAttributes', () => {
  it('carries Session-Timeout only on a dorm accept, and the interim interval on every accept', () => {
    expect(replyAttributes({ kind: 'accept', area: 'dorm', sessionTimeoutSeconds: 42, endsAtMs: 0 }, 600)).toEqual([
      ['Reply-Message', expect.any(Buffer)],
      ['Session-Timeout', 42],
      ['Acct-Interim-Interval', 600],
    ]);
    expect(replyAttributes({ kind: 'accept', area: 'office', sessionTimeoutSeconds: null, endsAtMs: null }, 600).map(([n]) => n)).toEqual(['Reply-Message', 'Acct-Interim-Interval']);
    expect(replyAttributes({ kind: 'reject', reason: 'disabled' }, 600).map(([n]) => n)).toEqual(['Reply-Message']);
  });
});

describe('sessionTimeout', () => {
  it.each([
    [30 * 86_400_000, 0, 2_592_000],
    [1_500, 0, 2],
    [1, 0, 1],
    [0, 0, 1],
    [2 ** 45, 0, 0xffffffff],
  ])('gives the seconds to the cycle end (%i ms from %i), rounded up, at least 1', (endsAtMs, nowMs, seconds) => {
    expect(sessionTimeout(endsAtMs, nowMs)).toBe(seconds);
  });

  it('formats instants in the school time zone', () => {
    expect(formatShanghai(Date.parse('2026-12-31T16:30:00Z'))).toBe('2027-01-01 00:30');
  });
});

describe('CredentialCache', () => {
  function counting(result = true) {
    const calls: string[] = [];
    const verify = async (hash: string, password: string) => {
      calls.push(`${hash}:${password}`);
      await new Promise((r) => setTimeout(r, 5));
      return result && password === 'right';
    };
    return { calls, verify };
  }
  const now = () => 1_000;

  it('runs argon2 once for repeated logins with the same credentials', async () => {
    const { calls, verify } = counting();
    const cache = new CredentialCache(verify);
    expect(await cache.check('alice', 'right', 'H1', now)).toBe(true);
    expect(await cache.check('alice', 'right', 'H1', now)).toBe(true);
    expect(cache.peek('alice', 'right', 'H1', 1_000)).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('shares one verification among concurrent identical logins (a login storm)', async () => {
    const { calls, verify } = counting();
    const cache = new CredentialCache(verify);
    const all = await Promise.all(Array.from({ length: 50 }, () => cache.check('bob', 'right', 'H1', now)));
    expect(all.every(Boolean)).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('forgets a verdict as soon as the stored password hash changes', async () => {
    const { calls, verify } = counting();
    const cache = new CredentialCache(verify);
    await cache.check('carol', 'right', 'H1', now);
    expect(cache.peek('carol', 'right', 'H2', 1_000)).toBeUndefined();
    await cache.check('carol', 'right', 'H2', now);
    expect(calls).toEqual(['H1:right', 'H2:right']);
  });

  it('remembers failures too, for a shorter time', async () => {
    const { calls, verify } = counting();
    const cache = new CredentialCache(verify, { failTtlMs: 100, okTtlMs: 10_000 });
    expect(await cache.check('dave', 'wrong', 'H1', () => 0)).toBe(false);
    expect(cache.peek('dave', 'wrong', 'H1', 50)).toBe(false);
    expect(cache.peek('dave', 'wrong', 'H1', 150)).toBeUndefined();
    expect(calls).toHaveLength(1);
  });

  it('keys entries by username and password together', async () => {
    const { verify } = counting();
    const cache = new CredentialCache(verify);
    await cache.check('erin', 'right', 'H1', now);
    expect(cache.peek('erin2', 'right', 'H1', 1_000)).toBeUndefined();
    expect(cache.peek('erin', 'right2', 'H1', 1_000)).toBeUndefined();
  });

  it('refuses new verifications beyond its queue instead of queueing without bound', async () => {
    const { verify } = counting();
    const cache = new CredentialCache(verify, { maxPending: 2, concurrency: 1 });
    const a = cache.check('u1', 'right', 'H', now);
    const b = cache.check('u2', 'right', 'H', now);
    await expect(cache.check('u3', 'right', 'H', now)).rejects.toBeInstanceOf(VerifyOverloadError);
    expect(await Promise.all([a, b])).toEqual([true, true]);
  });

  it('runs at most `concurrency` verifications at once', async () => {
    let running = 0;
    let peak = 0;
    const cache = new CredentialCache(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return true;
      },
      { concurrency: 3 },
    );
    await Promise.all(Array.from({ length: 20 }, (_, i) => cache.check(`u${i}`, 'p', 'H', now)));
    expect(peak).toBe(3);
  });

  it('runs one verification fewer at once than the process has CPUs unless told otherwise, at least one (each holds its memory cost)', async () => {
    let running = 0;
    let peak = 0;
    const cache = new CredentialCache(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      return true;
    });
    await Promise.all(Array.from({ length: 40 }, (_, i) => cache.check(`u${i}`, 'p', 'H', now)));
    expect(peak).toBe(Math.max(1, availableParallelism() - 1));
  });

  it('leaves the event loop a core: one fewer verification than CPUs, and one on a single CPU', () => {
    expect([1, 2, 4, 16].map((cpus) => defaultVerifyConcurrency(cpus))).toEqual([1, 1, 3, 15]);
  });
});

describe('sealed CHAP credentials', () => {
  const key = randomBytes(32);

  it('opens for the account and password hash it was sealed for', () => {
    const sealed = sealCredential(key, 7, 'HASH', 'pässword');
    expect(openCredential(key, 7, 'HASH', sealed)?.toString('utf8')).toBe('pässword');
  });

  it.each([
    ['another key', (s: Buffer) => openCredential(randomBytes(32), 7, 'HASH', s)],
    ['another account', (s: Buffer) => openCredential(key, 8, 'HASH', s)],
    ['a changed password hash', (s: Buffer) => openCredential(key, 7, 'HASH2', s)],
    ['a tampered ciphertext', (s: Buffer) => openCredential(key, 7, 'HASH', Buffer.concat([s.subarray(0, -1), Buffer.from([s[s.length - 1]! ^ 1])]))],
    ['a truncated value', (s: Buffer) => openCredential(key, 7, 'HASH', s.subarray(0, 10))],
  ])('does not open under %s', (_what, open) => {
    expect(open(sealCredential(key, 7, 'HASH', 'secret'))).toBeNull();
  });
});
