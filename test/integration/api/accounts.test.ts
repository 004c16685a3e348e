import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../../src/billing/password.ts';
import { openCredential } from '../../../src/radius/credential.ts';
import { auth, PHC, startTestApi, type TestApi } from './harness.ts';

const CREDENTIAL_KEY = Buffer.alloc(32, 7);

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ credentialKey: CREDENTIAL_KEY });
});
afterAll(async () => api?.close());

const admin = () => auth(api.tokens.admin);
const get = (url: string) => api.app.inject({ method: 'GET', url, headers: auth(api.tokens.readonly) });

describe('creating accounts', () => {
  it('creates an account with a password hashed by argon2id, answers 201 with its location, and audits it', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: { username: '2026100001', kind: 'student', password: 'first-pass', name: '赵六' } });
    expect(r.statusCode).toBe(201);
    expect(r.headers.location).toBe('/api/v1/accounts/2026100001');
    expect(r.json()).toMatchObject({ username: '2026100001', kind: 'student', name: '赵六', status: 'active', balanceFen: 0, balanceYuan: '0.00' });
    expect(r.body).not.toContain('first-pass');
    const row = await api.t.db.selectFrom('accounts').select('password_hash').where('username', '=', '2026100001').executeTakeFirstOrThrow();
    expect(await verifyPassword(row.password_hash, 'first-pass')).toBe(true);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'account.create').where('target_id', '=', '2026100001').executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ actor: expect.stringMatching(/^token:test admin#\d+$/), before: null, request_id: expect.any(String) });
    expect(JSON.stringify(audit.after)).not.toContain('first-pass');
  });

  it('answers 409 for a username that exists', async () => {
    const body = { username: 'dup1', kind: 'staff', passwordHash: PHC };
    expect((await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: body })).statusCode).toBe(201);
    const again = await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: body });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'conflict', detail: expect.stringContaining('账号已存在') });
  });

  it('lists each bad field of a new account', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: { username: 'has space', kind: 'professor', password: '123' } });
    expect(r.statusCode).toBe(400);
    expect(r.json().errors.map((e: { path: string }) => e.path).sort()).toEqual(['kind', 'password', 'username']);
  });

  it('takes a hash at any common argon2 cost and refuses one whose cost could exhaust the server at a login', async () => {
    const salt = 'c29tZXNhbHRzb21lc2FsdA';
    const digest = 'A'.repeat(43);
    const phc = (params: string) => `$argon2id$v=19$${params}$${salt}$${digest}`;
    let n = 0;
    const create = (passwordHash: string) =>
      api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: { username: `cost${n++}`, kind: 'staff', passwordHash } });
    // PHP's and argon2-cffi's defaults, libsodium's interactive and sensitive profiles.
    for (const ok of ['m=65536,t=4,p=1', 'm=65536,t=3,p=4', 'm=65536,t=2,p=1', 'm=1048576,t=4,p=1']) expect((await create(phc(ok))).statusCode).toBe(201);
    for (const bad of ['m=4194304,t=1,p=1', 'm=9999999,t=3,p=1', 'm=65536,t=200,p=1', 'm=65536,t=2,p=64', 'm=65536,t=0,p=1']) {
      const r = await create(phc(bad));
      expect(r.statusCode).toBe(400);
      expect(r.json().errors).toEqual([expect.objectContaining({ path: 'passwordHash', message: expect.stringMatching(/argon2 cost out of range.*哈希参数超出范围/) })]);
    }
  });

  it('refuses an account with both a password and a hash, or neither', async () => {
    for (const extra of [{ password: 'abcdef', passwordHash: PHC }, {}]) {
      const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: { username: 'pw1', kind: 'student', ...extra } });
      expect(r.statusCode).toBe(400);
    }
  });
});

describe('reading an account', () => {
  it('shows arrears with the shortfall, then ready after a top-up, then open with the running cycle and forecast after a dorm login', async () => {
    await api.billing.createAccount({ username: 'life1', kind: 'student', passwordHash: PHC });
    const a0 = (await get('/api/v1/accounts/life1')).json();
    expect(a0.dorm).toMatchObject({ status: 'arrears', shortfallFen: 2000, shortfallYuan: '20.00', runningCycle: null, thresholdFen: 2000, feeFen: 2000 });
    expect(a0.dorm.message).toContain('欠费');

    await api.billing.topUp({ username: 'life1', channel: 'cash', orderId: 'life1-1', amountFen: 5000 });
    const a1 = (await get('/api/v1/accounts/life1')).json();
    expect(a1.dorm).toMatchObject({ status: 'ready', shortfallFen: 0 });
    expect(a1.account).toMatchObject({ balanceFen: 5000, balanceYuan: '50.00' });

    await api.billing.authorizeDormLogin({ username: 'life1' });
    const a2 = (await get('/api/v1/accounts/life1')).json();
    const start = api.clock.now();
    const end = new Date(start.getTime() + 30 * 86_400_000).toISOString();
    expect(a2.dorm).toMatchObject({ status: 'open', runningUntil: end, runningCycle: { seq: 1, status: 'running', endsAt: end } });
    // 50.00 pays the running cycle and one renewal: service stops at the end of cycle 2 with 10.00 left.
    expect(a2.forecast).toMatchObject({ serviceUntil: new Date(start.getTime() + 60 * 86_400_000).toISOString(), cyclesAfterRunning: 1, balanceLeftFen: 1000, balanceLeftYuan: '10.00' });
    expect(a2.refundableFen).toBe(3000);
  });

  it('lists the account’s online sessions and not its stopped ones', async () => {
    const acct = await api.billing.createAccount({ username: 'online1', kind: 'student', passwordHash: PHC });
    const now = api.clock.now();
    const base = { username: 'online1', account_id: acct.id, nas_ip: '192.0.2.10', updated_at: now, started_at: now };
    await api.t.db
      .insertInto('acct_sessions')
      .values([
        { ...base, unique_id: 'on-1', session_id: 'S1', area: 'dorm', framed_ip: '10.20.0.5' },
        { ...base, unique_id: 'on-2', session_id: 'S2', area: 'office', stopped_at: now },
      ])
      .execute();
    const r = (await get('/api/v1/accounts/online1')).json();
    expect(r.onlineSessions).toEqual([expect.objectContaining({ sessionId: 'S1', area: 'dorm', framedIp: '10.20.0.5', online: true })]);
  });

  it('answers 404 in Chinese and English for an unknown account', async () => {
    const r = await get('/api/v1/accounts/nobody-here');
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'not_found', detail: expect.stringContaining('账号不存在') });
  });
});

describe('listing accounts', () => {
  it('searches by part of a username or name', async () => {
    await api.billing.createAccount({ username: 'search-a1', kind: 'student', displayName: '钱七', passwordHash: PHC });
    await api.billing.createAccount({ username: 'search-b2', kind: 'staff', displayName: 'Qian Ba', passwordHash: PHC });
    const byName = (await get(`/api/v1/accounts?q=${encodeURIComponent('钱')}`)).json();
    expect(byName.items.map((a: { username: string }) => a.username)).toEqual(['search-a1']);
    const byKind = (await get('/api/v1/accounts?q=search-&kind=staff')).json();
    expect(byKind.items.map((a: { username: string }) => a.username)).toEqual(['search-b2']);
  });

  it('pages through every account exactly once while accounts are being added', async () => {
    for (let i = 0; i < 25; i++) await api.billing.createAccount({ username: `page${String(i).padStart(2, '0')}`, kind: 'student', passwordHash: PHC });
    const seen: string[] = [];
    let cursor: string | null = null;
    let added = 0;
    do {
      const url: string = `/api/v1/accounts?q=page&limit=7${cursor ? `&cursor=${cursor}` : ''}`;
      const p = (await get(url)).json();
      seen.push(...p.items.map((a: { username: string }) => a.username));
      cursor = p.nextCursor;
      // Accounts created between pages: they come after every existing one, nothing shifts.
      await api.billing.createAccount({ username: `pagenew${added++}`, kind: 'student', passwordHash: PHC });
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (let i = 0; i < 25; i++) expect(seen).toContain(`page${String(i).padStart(2, '0')}`);
    expect(seen.slice(0, 25)).toEqual(Array.from({ length: 25 }, (_, i) => `page${String(i).padStart(2, '0')}`));
  });
});

describe('status and password', () => {
  it('enables a disabled account, and answers changed=false when it already was active', async () => {
    const a = await api.billing.createAccount({ username: 'en1', kind: 'student', passwordHash: PHC });
    await api.t.db.updateTable('accounts').set({ status: 'disabled' }).where('id', '=', a.id).execute();
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts/en1/enable', headers: admin() });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ changed: true, account: { status: 'active' }, disconnects: [] });
    const again = await api.app.inject({ method: 'POST', url: '/api/v1/accounts/en1/enable', headers: admin() });
    expect(again.json().changed).toBe(false);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'account.enable').where('target_id', '=', 'en1').execute();
    expect(audit).toEqual([expect.objectContaining({ before: { status: 'disabled' }, after: { status: 'active' } })]);
  });

  it('sets a new password that verifies, and never records it', async () => {
    await api.billing.createAccount({ username: 'pw2', kind: 'student', passwordHash: PHC });
    const r = await api.app.inject({ method: 'PUT', url: '/api/v1/accounts/pw2/password', headers: admin(), payload: { password: 'brand-new-secret' } });
    expect(r.statusCode).toBe(204);
    const row = await api.t.db.selectFrom('accounts').select('password_hash').where('username', '=', 'pw2').executeTakeFirstOrThrow();
    expect(await verifyPassword(row.password_hash, 'brand-new-secret')).toBe(true);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'account.set-password').where('target_id', '=', 'pw2').executeTakeFirstOrThrow();
    expect(JSON.stringify(audit)).not.toContain('brand-new-secret');
    const missing = await api.app.inject({ method: 'PUT', url: '/api/v1/accounts/ghost/password', headers: admin(), payload: { password: 'brand-new-secret' } });
    expect(missing.statusCode).toBe(404);
  });
});

describe('CHAP credentials', () => {
  async function credentialOf(username: string): Promise<string | null> {
    const row = await api.t.db.selectFrom('accounts').select(['id', 'password_hash', 'chap_credential']).where('username', '=', username).executeTakeFirstOrThrow();
    if (!row.chap_credential) return null;
    return openCredential(CREDENTIAL_KEY, row.id, row.password_hash, row.chap_credential)?.toString() ?? null;
  }

  it('seals a plaintext password for CHAP when the account is created, and drops it when the password is set from a hash', async () => {
    await api.app.inject({ method: 'POST', url: '/api/v1/accounts', headers: admin(), payload: { username: 'chap1', kind: 'student', password: 'chap-secret' } });
    expect(await credentialOf('chap1')).toBe('chap-secret');
    await api.app.inject({ method: 'PUT', url: '/api/v1/accounts/chap1/password', headers: admin(), payload: { password: 'chap-secret-2' } });
    expect(await credentialOf('chap1')).toBe('chap-secret-2');
    await api.app.inject({ method: 'PUT', url: '/api/v1/accounts/chap1/password', headers: admin(), payload: { passwordHash: PHC } });
    expect(await credentialOf('chap1')).toBeNull();
  });

  it('seals the plaintext passwords of imported rows, and none for pre-hashed ones', async () => {
    const body = JSON.stringify([
      { username: 'chapimp1', kind: 'student', password: 'imported-pw' },
      { username: 'chapimp2', kind: 'student', passwordHash: PHC },
    ]);
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/accounts/import', headers: { ...admin(), 'content-type': 'application/json' }, payload: body });
    expect(r.statusCode).toBe(201);
    expect(await credentialOf('chapimp1')).toBe('imported-pw');
    expect(await credentialOf('chapimp2')).toBeNull();
  });
});
