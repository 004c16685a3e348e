import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.ts';
import {
  deleteNasClient,
  getNasClient,
  insertNasClient,
  listNasClients,
  syncFileNasClients,
  updateNasClient,
} from '../../../src/radius/nas-store.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof AppError) return e.code;
    throw e;
  }
}

describe('nas-store', () => {
  it('stores a NAS client with defaults and maps it to camelCase', async () => {
    const c = await insertNasClient(t.db, { name: 'bras-a', address: '192.0.2.10', secret: 's3cret', area: 'dorm' });
    expect(c).toMatchObject({
      name: 'bras-a',
      address: '192.0.2.10/32',
      secret: 's3cret',
      area: 'dorm',
      areaRules: [],
      coaPort: 3799,
      messageAuthenticator: 'require',
      source: 'api',
      enabled: true,
    });
    expect(await getNasClient(t.db, c.id)).toEqual(c);
    expect((await listNasClients(t.db)).map((x) => x.name)).toContain('bras-a');
  });

  it('accepts IPv6 ranges and area rules with valid regular expressions', async () => {
    const c = await insertNasClient(t.db, {
      name: 'bras-v6',
      address: '2001:DB8:0::/48',
      secret: 'x',
      area: 'office',
      coaPort: 1700,
      messageAuthenticator: 'auto',
      areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^vlan1[0-9]{3}$', area: 'dorm' }],
    });
    expect(c.address).toBe('2001:db8::/48');
    expect(c.areaRules).toEqual([{ attribute: 'NAS-Port-Id', pattern: '^vlan1[0-9]{3}$', area: 'dorm' }]);
    expect(c.coaPort).toBe(1700);
  });

  it.each([
    ['an address that is not an IP', { address: 'bras.example' }],
    ['a range with host bits set', { address: '10.1.2.3/16' }],
    ['a prefix longer than the family allows', { address: '10.0.0.0/33' }],
    ['an empty secret', { secret: '' }],
    ['a secret over 128 characters', { secret: 'x'.repeat(129) }],
    ['an unknown area', { area: 'library' }],
    ['a CoA port out of range', { coaPort: 70000 }],
    ['a bad Message-Authenticator policy', { messageAuthenticator: 'never' }],
    ['an area rule with a broken regular expression', { areaRules: [{ attribute: 'NAS-Port-Id', pattern: '([a-', area: 'dorm' }] }],
    ['an area rule with an unknown area', { areaRules: [{ attribute: 'NAS-Port-Id', pattern: 'x', area: 'moon' }] }],
  ])('refuses %s as invalid', async (_title, patch) => {
    const input = { name: `bad-${Math.random().toString(36).slice(2, 8)}`, address: '198.51.100.1', secret: 's', area: 'dorm', ...patch };
    expect(await code(insertNasClient(t.db, input as never))).toBe('invalid');
  });

  it('refuses a second client with the same name or address as a conflict', async () => {
    await insertNasClient(t.db, { name: 'dup', address: '203.0.113.0/24', secret: 's', area: 'dorm' });
    expect(await code(insertNasClient(t.db, { name: 'dup', address: '203.0.114.0/24', secret: 's', area: 'dorm' }))).toBe('conflict');
    expect(await code(insertNasClient(t.db, { name: 'dup2', address: '203.0.113.0/24', secret: 's', area: 'dorm' }))).toBe('conflict');
  });

  it('updates only the given fields and reports a missing client as not found', async () => {
    const c = await insertNasClient(t.db, { name: 'upd', address: '198.18.0.1', secret: 'old', area: 'dorm' });
    const u = await updateNasClient(t.db, c.id, { secret: 'new', area: 'office' });
    expect(u).toMatchObject({ name: 'upd', address: '198.18.0.1/32', secret: 'new', area: 'office', coaPort: 3799 });
    expect(await code(updateNasClient(t.db, 999_999, { secret: 'x' }))).toBe('not_found');
    expect(await code(updateNasClient(t.db, c.id, { address: 'nope' }))).toBe('invalid');
    await deleteNasClient(t.db, c.id);
    expect(await code(getNasClient(t.db, c.id))).toBe('not_found');
    expect(await code(deleteNasClient(t.db, c.id))).toBe('not_found');
  });

  it('syncs file-declared clients by name and refuses API changes to them', async () => {
    const first = await syncFileNasClients(t.db, [
      { name: 'file-a', address: '100.64.0.1', secret: 'a', area: 'dorm' },
      { name: 'file-b', address: '100.64.0.2', secret: 'b', area: 'office', areaRules: [{ attribute: 'Called-Station-Id', pattern: 'dorm', area: 'dorm' }] },
    ]);
    expect(first).toEqual({ inserted: 2, updated: 0, deleted: 0 });
    const again = await syncFileNasClients(t.db, [
      { name: 'file-b', address: '100.64.0.2', secret: 'b', area: 'office', areaRules: [{ attribute: 'Called-Station-Id', pattern: 'dorm', area: 'dorm' }] },
      { name: 'file-c', address: '100.64.0.3', secret: 'c', area: 'dorm' },
    ]);
    expect(again).toEqual({ inserted: 1, updated: 0, deleted: 1 });
    const b = (await listNasClients(t.db)).find((c) => c.name === 'file-b')!;
    expect(b.source).toBe('file');
    expect(await code(updateNasClient(t.db, b.id, { secret: 'z' }))).toBe('conflict');
    expect(await code(deleteNasClient(t.db, b.id))).toBe('conflict');
  });
});
