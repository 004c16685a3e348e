import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, PHC, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
const HOUR = 3600;
const DAY = 86_400;

beforeAll(async () => {
  api = await startTestApi();
  // The clock starts at 2026-09-01T08:00Z; logins at 17:00Z fall on the next day in Beijing (01:00).
  api.clock.advance(9 * HOUR);
  for (const [username, fen] of [
    ['rich', 10_000],
    ['poor', 2000],
  ] as const) {
    await api.billing.createAccount({ username, kind: 'student', passwordHash: PHC });
    await api.billing.topUp({ username, channel: 'cwsf', orderId: `${username}-1`, amountFen: fen });
    await api.billing.authorizeDormLogin({ username });
  }
  await api.billing.createAccount({ username: 'never', kind: 'student', passwordHash: PHC });
});
afterAll(async () => api?.close());

const get = (url: string) => api.app.inject({ method: 'GET', url, headers: auth(api.tokens.readonly) });

describe('reports', () => {
  it('lists cycles due in the next 24 hours, telling which will renew', async () => {
    api.clock.advance(30 * DAY - 12 * HOUR);
    const r = (await get('/api/v1/reports/cycles-due')).json();
    expect(r).toMatchObject({ total: 2, totalFeeFen: 4000, totalFeeYuan: '40.00', truncated: false });
    expect(r.items.map((c: { username: string; renews: boolean; endsAt: string }) => [c.username, c.renews, c.endsAt])).toEqual([
      ['rich', true, '2026-10-01T17:00:00.000Z'],
      ['poor', false, '2026-10-01T17:00:00.000Z'],
    ]);
    const soon = (await get('/api/v1/reports/cycles-due?hours=1')).json();
    expect(soon.total).toBe(0);
  });

  it('counts settlement revenue on the Beijing day it happened, not the UTC day', async () => {
    const adv = await api.app.inject({ method: 'POST', url: '/api/v1/clock/advance', headers: auth(api.tokens.admin), payload: { seconds: 12 * HOUR } });
    expect(adv.json().settlement).toMatchObject({ settled: 2, renewed: 1, closed: 1 });
    const r = (await get('/api/v1/reports/revenue-daily?from=2026-09-01&to=2026-10-02')).json();
    expect(r).toMatchObject({ timeZone: 'Asia/Shanghai', from: '2026-09-01', to: '2026-10-02', totalSettlementFen: 4000, totalSettlementYuan: '40.00' });
    expect(r.days).toHaveLength(32);
    const byDay = Object.fromEntries(r.days.map((d: { day: string }) => [d.day, d]));
    expect(byDay['2026-10-01']).toMatchObject({ settlementFen: 0, settlements: 0 });
    expect(byDay['2026-10-02']).toMatchObject({ settlementFen: 4000, settlementYuan: '40.00', settlements: 2 });
    expect(byDay['2026-09-01']).toMatchObject({ topUpFen: 0 });
    expect(byDay['2026-09-02']).toMatchObject({ topUpFen: 12_000, topUps: 2 });
  });

  it('refuses a reversed or too long revenue range', async () => {
    expect((await get('/api/v1/reports/revenue-daily?from=2026-10-02&to=2026-10-01')).statusCode).toBe(400);
    expect((await get('/api/v1/reports/revenue-daily?from=2025-01-01&to=2026-10-01')).statusCode).toBe(400);
    expect((await get('/api/v1/reports/revenue-daily?from=yesterday')).statusCode).toBe(400);
  });

  it('lists accounts in arrears that used the dorm network, and the never-used ones on request', async () => {
    const r = (await get('/api/v1/reports/arrears')).json();
    expect(r).toMatchObject({ thresholdFen: 2000, total: 1 });
    expect(r.items).toEqual([expect.objectContaining({ username: 'poor', balanceFen: 0, shortfallFen: 2000, shortfallYuan: '20.00', lastCycleEndedAt: '2026-10-01T17:00:00.000Z' })]);
    const all = (await get('/api/v1/reports/arrears?includeNeverUsed=true&limit=1')).json();
    expect(all.total).toBe(2);
    const next = (await get(`/api/v1/reports/arrears?includeNeverUsed=true&limit=1&cursor=${all.nextCursor}`)).json();
    expect([...all.items, ...next.items].map((a: { username: string }) => a.username)).toEqual(['poor', 'never']);
  });

  it('counts online sessions and accounts per area and per NAS', async () => {
    const nas = await api.t.db.insertInto('nas_clients').values({ name: 'bras-a', address: '192.0.2.1/32', secret: 's', area: 'dorm' }).returning('id').executeTakeFirstOrThrow();
    const now = api.clock.now();
    const s = (unique: string, username: string, area: 'dorm' | 'office', stopped = false) => ({
      unique_id: unique,
      session_id: unique,
      username,
      nas_id: nas.id,
      nas_ip: '192.0.2.1',
      area,
      updated_at: now,
      stopped_at: stopped ? now : null,
    });
    await api.t.db
      .insertInto('acct_sessions')
      .values([s('a', 'rich', 'dorm'), s('b', 'rich', 'dorm'), s('c', 'poor', 'dorm'), s('d', 'never', 'office'), s('e', 'poor', 'office', true)])
      .execute();
    const r = (await get('/api/v1/reports/online')).json();
    expect(r).toMatchObject({
      total: 4,
      areas: [
        { area: 'dorm', sessions: 3, accounts: 2 },
        { area: 'office', sessions: 1, accounts: 1 },
      ],
    });
    expect(r.byNas).toEqual([
      { nasId: nas.id, nasName: 'bras-a', nasIp: '192.0.2.1', area: 'dorm', sessions: 3 },
      { nasId: nas.id, nasName: 'bras-a', nasIp: '192.0.2.1', area: 'office', sessions: 1 },
    ]);
  });
});
