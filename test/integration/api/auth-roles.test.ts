import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertToken } from '../../../src/api/token-store.ts';
import type { ApiRole } from '../../../src/db/schema.ts';
import { ADMIN_TOKEN, auth, PHC, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
beforeAll(async () => {
  // Role checks run before any handler: no request here reaches the disconnector.
  api = await startTestApi();
});
afterAll(async () => api?.close());

type Need = 'read' | 'top-up' | 'adjust' | 'disconnect' | 'admin';

/** Who may do what, as the issue states it (not read from the routes). */
const allowed: Record<Need, ApiRole[]> = {
  read: ['admin', 'operator', 'readonly'],
  'top-up': ['admin', 'operator', 'payment'],
  adjust: ['admin', 'operator'],
  disconnect: ['admin', 'operator'],
  admin: ['admin'],
};

// Bodies are empty or the targets absent, so a permitted call stops at validation or 404 and changes nothing.
const endpoints: [string, string, Need][] = [
  ['GET', '/api/v1/accounts', 'read'],
  ['GET', '/api/v1/accounts/nobody', 'read'],
  ['POST', '/api/v1/accounts', 'admin'],
  ['POST', '/api/v1/accounts/import', 'admin'],
  ['POST', '/api/v1/accounts/nobody/disable', 'admin'],
  ['POST', '/api/v1/accounts/nobody/enable', 'admin'],
  ['PUT', '/api/v1/accounts/nobody/password', 'admin'],
  ['POST', '/api/v1/accounts/nobody/top-ups', 'top-up'],
  ['POST', '/api/v1/accounts/nobody/adjustments', 'adjust'],
  ['POST', '/api/v1/accounts/nobody/refunds', 'admin'],
  ['GET', '/api/v1/accounts/nobody/ledger', 'read'],
  ['GET', '/api/v1/accounts/nobody/cycles', 'read'],
  ['GET', '/api/v1/sessions', 'read'],
  ['GET', '/api/v1/sessions/999999', 'read'],
  ['POST', '/api/v1/sessions/999999/disconnect', 'disconnect'],
  ['GET', '/api/v1/nas', 'read'],
  ['GET', '/api/v1/nas/999999', 'read'],
  ['POST', '/api/v1/nas', 'admin'],
  ['PATCH', '/api/v1/nas/999999', 'admin'],
  ['DELETE', '/api/v1/nas/999999', 'admin'],
  ['GET', '/api/v1/reports/revenue-daily', 'read'],
  ['GET', '/api/v1/reports/arrears', 'read'],
  ['GET', '/api/v1/reports/cycles-due', 'read'],
  ['GET', '/api/v1/reports/online', 'read'],
  ['POST', '/api/v1/billing/settle', 'admin'],
  ['GET', '/api/v1/clock', 'read'],
  ['POST', '/api/v1/clock/advance', 'admin'],
  ['POST', '/api/v1/tokens', 'admin'],
  ['GET', '/api/v1/tokens', 'admin'],
  ['GET', '/api/v1/tokens/999999', 'admin'],
  ['DELETE', '/api/v1/tokens/999999', 'admin'],
  ['GET', '/api/v1/audit', 'admin'],
];

const cases = endpoints.flatMap(([method, url, need]) =>
  (['admin', 'operator', 'payment', 'readonly'] as const).map((role) => ({ method, url, role, need, ok: allowed[need].includes(role) })),
);

describe('roles', () => {
  it.each(cases)('$role: $method $url is allowed = $ok', async ({ method, url, role, ok }) => {
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    const r = await api.app.inject({
      method: method as 'GET',
      url,
      headers: auth(api.tokens[role]),
      ...(hasBody ? { payload: {} } : {}),
    });
    if (ok) {
      expect([401, 403]).not.toContain(r.statusCode);
      expect(r.statusCode).toBeLessThan(500);
    } else {
      expect(r.statusCode).toBe(403);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = r.json();
      expect(body).toMatchObject({ status: 403, code: 'forbidden', role });
      expect(body.detail).toContain(`role ${role} may not do this`);
    }
  });

  it('refuses a payment token everything but top-ups, even reading the account it credits', async () => {
    await api.billing.createAccount({ username: 'paid1', kind: 'student', passwordHash: 'x' });
    const pay = auth(api.tokens.payment);
    const topUp = await api.app.inject({ method: 'POST', url: '/api/v1/accounts/paid1/top-ups', headers: pay, payload: { channel: 'cwsf', orderId: 'R-1', amountFen: 100 } });
    expect(topUp.statusCode).toBe(201);
    const read = await api.app.inject({ method: 'GET', url: '/api/v1/accounts/paid1', headers: pay });
    expect(read.statusCode).toBe(403);
  });
});

describe('authentication', () => {
  it('answers 401 with a Bearer challenge when no token is sent', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/api/v1/accounts' });
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(r.json()).toMatchObject({ status: 401, code: 'unauthorized', type: 'urn:campus-aaa:problem:unauthorized' });
  });

  it('answers 401 to a made-up token, including one shaped like a real token', async () => {
    for (const token of ['nope', 'caaa_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', `${api.tokens.admin.slice(0, -1)}x`]) {
      const r = await api.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: auth(token) });
      expect(r.statusCode).toBe(401);
    }
  });

  it('accepts ADMIN_TOKEN as an admin and records it as the actor', async () => {
    const r = await api.app.inject({
      method: 'POST',
      url: '/api/v1/accounts',
      headers: auth(ADMIN_TOKEN),
      payload: { username: 'envmade', kind: 'staff', passwordHash: PHC },
    });
    expect(r.statusCode).toBe(201);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('target_id', '=', 'envmade').execute();
    expect(audit).toEqual([expect.objectContaining({ actor: 'env:ADMIN_TOKEN', action: 'account.create' })]);
  });

  it('rejects an expired token', async () => {
    const { token, record } = await insertToken(api.t.db, { name: 'short-lived', role: 'readonly', createdBy: 'test', expiresAt: new Date(Date.now() + 60_000) });
    expect((await api.app.inject({ method: 'GET', url: '/api/v1/clock', headers: auth(token) })).statusCode).toBe(200);
    await api.t.db.updateTable('api_tokens').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', record.id).execute();
    expect((await api.app.inject({ method: 'GET', url: '/api/v1/clock', headers: auth(token) })).statusCode).toBe(401);
  });

  it('creates a token through the API that works at once, lists it without its secret, and revokes it', async () => {
    const admin = auth(api.tokens.admin);
    const created = await api.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: admin, payload: { name: 'campus app', role: 'payment' } });
    expect(created.statusCode).toBe(201);
    const { id, token } = created.json();
    expect(token).toMatch(/^caaa_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);

    const one = await api.app.inject({ method: 'GET', url: `/api/v1/tokens/${id}`, headers: admin });
    expect(one.json()).toMatchObject({ id, name: 'campus app', role: 'payment', createdBy: expect.stringContaining('test admin') });
    expect(one.body).not.toContain(token);

    const list = await api.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: admin });
    expect(list.body).not.toContain(token);
    expect(list.body).not.toContain(token.slice(18));
    expect(list.json().items).toContainEqual(expect.objectContaining({ id, name: 'campus app', role: 'payment', revokedAt: null }));
    const stored = await api.t.db.selectFrom('api_tokens').select('token_hash').where('id', '=', id).executeTakeFirstOrThrow();
    expect(stored.token_hash).not.toContain(token.slice(18));

    await api.billing.createAccount({ username: 'tok1', kind: 'student', passwordHash: 'x' });
    const use = () => api.app.inject({ method: 'POST', url: '/api/v1/accounts/tok1/top-ups', headers: auth(token), payload: { channel: 'campus-app', orderId: `A-${Math.random()}`, amountFen: 1 } });
    expect((await use()).statusCode).toBe(201);

    const revoked = await api.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: admin });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().revokedAt).not.toBeNull();
    expect((await use()).statusCode).toBe(401);

    const audit = await api.t.db.selectFrom('audit_log').select(['action', 'actor']).where('target_type', '=', 'token').where('target_id', '=', String(id)).orderBy('id').execute();
    expect(audit.map((a) => a.action)).toEqual(['token.create', 'token.revoke']);
  });

  it('serves /healthz, /readyz and /metrics without a token', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      expect((await api.app.inject({ method: 'GET', url })).statusCode).toBe(200);
    }
  });
});
