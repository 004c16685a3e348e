import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

const SECRET = 'dorm-bras-shared-secret-1';
const send = (method: 'POST' | 'PATCH' | 'DELETE' | 'GET', url: string, payload?: object, token = api.tokens.admin) =>
  api.app.inject({ method, url, headers: auth(token), ...(payload ? { payload } : {}) });

describe('NAS clients', () => {
  it('adds a NAS, never returning its secret, and lists it', async () => {
    const r = await send('POST', '/api/v1/nas', { name: 'dorm-bras-1', address: '192.0.2.10', secret: SECRET, area: 'dorm' });
    expect(r.statusCode).toBe(201);
    expect(r.body).not.toContain(SECRET);
    const nas = r.json();
    expect(nas).toMatchObject({ name: 'dorm-bras-1', address: '192.0.2.10/32', area: 'dorm', coaPort: 3799, messageAuthenticator: 'require', enabled: true, source: 'api' });
    expect(nas).not.toHaveProperty('secret');
    expect(r.headers.location).toBe(`/api/v1/nas/${nas.id}`);

    const one = await send('GET', `/api/v1/nas/${nas.id}`, undefined, api.tokens.readonly);
    expect(one.json()).toEqual(nas);
    const list = await send('GET', '/api/v1/nas', undefined, api.tokens.readonly);
    expect(list.body).not.toContain(SECRET);
    expect(list.json().items).toContainEqual(nas);
    const stored = await api.t.db.selectFrom('nas_clients').select('secret').where('id', '=', nas.id).executeTakeFirstOrThrow();
    expect(stored.secret).toBe(SECRET);
  });

  it('changes a NAS, auditing before and after without the secret', async () => {
    const created = (await send('POST', '/api/v1/nas', { name: 'office-ac', address: '198.51.100.0/24', secret: SECRET, area: 'office' })).json();
    const r = await send('PATCH', `/api/v1/nas/${created.id}`, {
      secret: 'rotated-secret-2',
      areaRules: [{ attribute: 'NAS-Port-Id', pattern: '^vlan(1[0-9]{3})', area: 'dorm' }],
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ area: 'office', areaRules: [{ attribute: 'NAS-Port-Id', area: 'dorm' }] });
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'nas.update').where('target_id', '=', String(created.id)).executeTakeFirstOrThrow();
    expect(audit.before).toMatchObject({ areaRules: [] });
    expect(audit.after).toMatchObject({ secretChanged: true, areaRules: [{ attribute: 'NAS-Port-Id' }] });
    expect(JSON.stringify(audit)).not.toContain('rotated-secret-2');
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });

  it('answers 409 for a name or address another NAS holds', async () => {
    await send('POST', '/api/v1/nas', { name: 'dup-nas', address: '203.0.113.1', secret: SECRET, area: 'dorm' });
    const sameName = await send('POST', '/api/v1/nas', { name: 'dup-nas', address: '203.0.113.2', secret: SECRET, area: 'dorm' });
    expect(sameName.statusCode).toBe(409);
    const sameAddress = await send('POST', '/api/v1/nas', { name: 'dup-nas-2', address: '203.0.113.1', secret: SECRET, area: 'dorm' });
    expect(sameAddress.statusCode).toBe(409);
  });

  it('answers 400 for a bad address, an invalid rule pattern or a missing secret', async () => {
    const badAddress = await send('POST', '/api/v1/nas', { name: 'bad-1', address: '300.1.1.1', secret: SECRET, area: 'dorm' });
    expect(badAddress.statusCode).toBe(400);
    expect(badAddress.json().detail).toContain('address');
    const badRule = await send('POST', '/api/v1/nas', { name: 'bad-2', address: '10.9.9.9', secret: SECRET, area: 'dorm', areaRules: [{ attribute: 'NAS-Port-Id', pattern: '(', area: 'dorm' }] });
    expect(badRule.statusCode).toBe(400);
    const noSecret = await send('POST', '/api/v1/nas', { name: 'bad-3', address: '10.9.9.10', area: 'dorm' });
    expect(noSecret.statusCode).toBe(400);
    expect(noSecret.json().errors).toEqual([expect.objectContaining({ path: 'secret' })]);
  });

  it('refuses to change a NAS declared in NAS_CLIENTS_FILE', async () => {
    const row = await api.t.db
      .insertInto('nas_clients')
      .values({ name: 'from-file', address: '192.0.2.200/32', secret: SECRET, area: 'dorm', source: 'file' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const r = await send('PATCH', `/api/v1/nas/${row.id}`, { enabled: false });
    expect(r.statusCode).toBe(409);
    expect((await send('DELETE', `/api/v1/nas/${row.id}`)).statusCode).toBe(409);
  });

  it('removes a NAS with 204, then answers 404 for it', async () => {
    const created = (await send('POST', '/api/v1/nas', { name: 'temp-nas', address: '192.0.2.77', secret: SECRET, area: 'office' })).json();
    expect((await send('DELETE', `/api/v1/nas/${created.id}`)).statusCode).toBe(204);
    expect((await send('GET', `/api/v1/nas/${created.id}`)).statusCode).toBe(404);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'nas.delete').where('target_id', '=', String(created.id)).executeTakeFirstOrThrow();
    expect(audit.before).toMatchObject({ name: 'temp-nas' });
  });
});
