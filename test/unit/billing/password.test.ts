import { hash } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { hashPassword, needsRehash, verifyPassword } from '../../../src/billing/password.ts';

describe('password hashing', () => {
  it('hashes new passwords with argon2id at 7 MiB, t=5, p=1 and a fresh salt', async () => {
    const a = await hashPassword('学生-pass-1');
    const b = await hashPassword('学生-pass-1');
    expect(a).toMatch(/^\$argon2id\$v=19\$m=7168,t=5,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword(a, '学生-pass-1')).toBe(true);
    expect(await verifyPassword(a, '学生-pass-2')).toBe(false);
  });

  it('still verifies hashes made with the earlier 19 MiB profile or imported with other costs', async () => {
    const older = await hash('dorm-pass', { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    expect(older).toContain('$m=19456,t=2,p=1$');
    expect(await verifyPassword(older, 'dorm-pass')).toBe(true);
    expect(await verifyPassword(older, 'dorm-pasS')).toBe(false);
  });

  it('refuses, without throwing, a stored hash that is not argon2', async () => {
    expect(await verifyPassword('not-a-hash', 'x')).toBe(false);
    expect(await verifyPassword('$2b$10$abcdefghijklmnopqrstuu', 'x')).toBe(false);
  });

  it('asks for a re-hash of anything but the current profile, and not of its own hashes', async () => {
    expect(needsRehash(await hashPassword('x'))).toBe(false);
    const salt = 'c29tZXNhbHRzb21lc2FsdA';
    const digest = '0'.repeat(43);
    expect(needsRehash(`$argon2id$v=19$m=7168,t=5,p=1$${salt}$${digest}`)).toBe(false);
    expect(needsRehash(`$argon2id$v=19$m=19456,t=2,p=1$${salt}$${digest}`)).toBe(true);
    expect(needsRehash(`$argon2id$v=19$m=7168,t=4,p=1$${salt}$${digest}`)).toBe(true);
    expect(needsRehash(`$argon2id$v=19$m=7168,t=5,p=4$${salt}$${digest}`)).toBe(true);
    expect(needsRehash(`$argon2id$v=19$m=71680,t=5,p=1$${salt}$${digest}`)).toBe(true);
    expect(needsRehash(`$argon2i$v=19$m=7168,t=5,p=1$${salt}$${digest}`)).toBe(true);
    expect(needsRehash('x')).toBe(true);
  });
});
