import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AccountTable, type ViewAccount } from '../../../src/radius/account-view.ts';

function account(id: number, over: Partial<ViewAccount> = {}): ViewAccount {
  return {
    id,
    username: `u${id}`,
    status: 'active',
    passwordHash: `$argon2id$hash-of-${id}`,
    balanceFen: 100 * id,
    chapCredential: null,
    cycleId: null,
    cycleEndsAtMs: null,
    ...over,
  };
}

/** The column-wise account store behind AccountView: what goes in comes out, by name and by id. */
describe('AccountTable', () => {
  it('returns every field as put, by username and by id', () => {
    const t = new AccountTable();
    const a = account(7, { status: 'disabled', balanceFen: -250, cycleId: 2 ** 40, cycleEndsAtMs: 1_790_000_000_123, chapCredential: Buffer.from('sealed') });
    const b = account(2 ** 45);
    t.put(a);
    t.put(b);
    expect(t.byName('u7')).toEqual(a);
    expect(t.byId(7)).toEqual(a);
    expect(t.byName(b.username)).toEqual(b);
    expect(t.idOf('u7')).toBe(7);
    expect(t.size).toBe(2);
    expect(t.runningCycles).toBe(1);
    expect(t.byName('nobody')).toBeUndefined();
    expect(t.idOf('nobody')).toBeUndefined();
  });

  it('keeps its own copy of a CHAP credential (not a slice of a shared pool)', () => {
    const t = new AccountTable();
    const pooled = Buffer.from('a sealed credential');
    t.put(account(1, { chapCredential: pooled }));
    const kept = t.byId(1)!.chapCredential!;
    expect(kept.equals(pooled)).toBe(true);
    expect(kept.buffer).not.toBe(pooled.buffer);
    pooled.fill(0);
    expect(t.byId(1)!.chapCredential!.toString()).toBe('a sealed credential');
  });

  it('replaces an account in place, following a rename', () => {
    const t = new AccountTable();
    t.put(account(1));
    t.put(account(1, { username: 'renamed', balanceFen: 5, cycleId: 3, cycleEndsAtMs: 99 }));
    expect(t.byName('u1')).toBeUndefined();
    expect(t.byName('renamed')).toMatchObject({ id: 1, balanceFen: 5, cycleId: 3, cycleEndsAtMs: 99 });
    expect(t.size).toBe(1);
    t.put(account(1, { username: 'renamed' }));
    expect(t.byId(1)).toMatchObject({ cycleId: null, cycleEndsAtMs: null });
    expect(t.runningCycles).toBe(0);
  });

  it('sets the running cycle of known accounts only', () => {
    const t = new AccountTable();
    t.put(account(1));
    expect(t.setCycle(1, 10, 1_000)).toBe(true);
    expect(t.setCycle(2, 10, 1_000)).toBe(false);
    expect(t.byName('u1')).toMatchObject({ cycleId: 10, cycleEndsAtMs: 1_000 });
    expect(t.byId(2)).toBeUndefined();
  });

  it('removes accounts and reuses their slots; grows past its first capacity', () => {
    const t = new AccountTable();
    for (let id = 1; id <= 5_000; id++) t.put(account(id, { cycleId: id % 2 ? id : null, cycleEndsAtMs: id % 2 ? id * 1_000 : null }));
    expect(t.size).toBe(5_000);
    expect(t.runningCycles).toBe(2_500);
    for (let id = 1; id <= 5_000; id += 2) t.remove(id);
    t.remove(123_456);
    expect(t.size).toBe(2_500);
    expect(t.runningCycles).toBe(0);
    expect(t.byName('u1')).toBeUndefined();
    expect(t.byId(3)).toBeUndefined();
    for (let id = 10_001; id <= 12_500; id++) t.put(account(id));
    expect(t.size).toBe(5_000);
    for (let id = 2; id <= 5_000; id += 2) expect(t.byName(`u${id}`)).toEqual(account(id));
    for (let id = 10_001; id <= 12_500; id++) expect(t.byId(id)).toEqual(account(id));
    expect(t.ids().sort((a, b) => a - b)).toHaveLength(5_000);
  });

  it('gives back every password hash exactly as put, argon2 PHC strings packed or any other form as is', () => {
    const t = new AccountTable();
    const salt = Buffer.alloc(16, 0xa5).toString('base64').replace(/=+$/, '');
    const digest = Buffer.alloc(32, 0x5a).toString('base64').replace(/=+$/, '');
    const hashes = [
      `$argon2id$v=19$m=19456,t=2,p=1$${salt}$${digest}`,
      `$argon2id$v=19$m=1024,t=1,p=1$${salt}$${digest}`,
      `$argon2i$v=19$m=65536,t=3,p=4$${salt}$${digest}`,
      // Not canonical base64 (the salt's last character carries bits past the 16 bytes): kept as a string.
      `$argon2id$v=19$m=19456,t=2,p=1$${salt.slice(0, 21)}B$${digest}`,
      `$argon2id$v=19$m=19456,t=2,p=1$${salt}$${digest}=`,
      `$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$${digest}`,
      '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW',
      '',
    ];
    hashes.forEach((passwordHash, i) => t.put(account(i + 1, { passwordHash })));
    hashes.forEach((passwordHash, i) => expect(t.byId(i + 1)!.passwordHash).toBe(passwordHash));
    // A slot changes form both ways, and a reused slot does not keep its old hash.
    t.put(account(1, { passwordHash: 'plain' }));
    t.put(account(7, { passwordHash: hashes[0]! }));
    expect(t.byId(1)!.passwordHash).toBe('plain');
    expect(t.byId(7)!.passwordHash).toBe(hashes[0]);
    t.remove(2);
    t.put(account(100, { passwordHash: 'other' }));
    expect(t.byId(100)!.passwordHash).toBe('other');
    expect(t.byId(3)!.passwordHash).toBe(hashes[2]);
  });

  it('keeps random argon2 hashes exact across growth', () => {
    const t = new AccountTable();
    const b64 = (n: number) => randomBytes(n).toString('base64').replace(/=+$/, '');
    const hashes = Array.from({ length: 3_000 }, () => `$argon2id$v=19$m=19456,t=2,p=1$${b64(16)}$${b64(32)}`);
    hashes.forEach((passwordHash, i) => t.put(account(i + 1, { passwordHash })));
    hashes.forEach((passwordHash, i) => expect(t.byName(`u${i + 1}`)!.passwordHash).toBe(passwordHash));
  });

  it('a name handed from one account to another stays with the newer owner', () => {
    const t = new AccountTable();
    t.put(account(1, { username: 'shared' }));
    t.put(account(2, { username: 'shared' }));
    expect(t.byName('shared')?.id).toBe(2);
    t.remove(1);
    expect(t.byName('shared')?.id).toBe(2);
  });

  it('finds exactly what two Maps would through random puts, renames, name hand-overs and removals (random model test)', () => {
    // The reference: the Maps from username and id to the account the indexes replaced.
    const byId = new Map<number, ViewAccount>();
    const byName = new Map<string, number>();
    const t = new AccountTable();
    let seed = 11;
    const rnd = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    // Ids from a sparse range (up to 2^40) and a dense one; names from a pool smaller than the ids, so they collide.
    const idOf = () => (rnd(4) === 0 ? 1_000_000 + rnd(1_000) * 1_099_511 : 1 + rnd(3_000));
    for (let step = 0; step < 40_000; step++) {
      const id = idOf();
      if (rnd(5) === 0) {
        t.remove(id);
        const old = byId.get(id);
        if (old !== undefined) {
          byId.delete(id);
          if (byName.get(old.username) === id) byName.delete(old.username);
        }
      } else {
        const a = account(id, { username: `n${rnd(2_500)}`, balanceFen: step });
        t.put(a);
        const old = byId.get(id);
        if (old !== undefined && old.username !== a.username && byName.get(old.username) === id) byName.delete(old.username);
        byId.set(id, a);
        byName.set(a.username, id);
      }
      if (step % 1_999 === 0 || step === 39_999) {
        expect(t.size).toBe(byId.size);
        expect(t.ids().sort((x, y) => x - y)).toEqual([...byId.keys()].sort((x, y) => x - y));
        for (let n = 0; n < 2_500; n++) expect(t.idOf(`n${n}`)).toBe(byName.get(`n${n}`));
        for (const [i, a] of byId) {
          const got = t.byId(i)!;
          expect([got.id, got.username, got.balanceFen]).toEqual([i, a.username, a.balanceFen]);
        }
      }
    }
  });
});

