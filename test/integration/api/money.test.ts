import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, PHC, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
let n = 0;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

async function newStudent(): Promise<string> {
  const username = `m${++n}`;
  await api.billing.createAccount({ username, kind: 'student', passwordHash: PHC });
  return username;
}

const post = (url: string, payload: unknown, token = api.tokens.admin) => api.app.inject({ method: 'POST', url, headers: auth(token), payload: payload as object });
const get = (url: string, token = api.tokens.readonly) => api.app.inject({ method: 'GET', url, headers: auth(token) });

describe('top-ups', () => {
  it('credits a payment with 201, and answers the same order again with 200, the first result and a replay flag', async () => {
    const u = await newStudent();
    const first = await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cwsf', orderId: 'CW-1001', amountFen: 5000 }, api.tokens.payment);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ replay: false, balanceFen: 5000, balanceYuan: '50.00', entry: { kind: 'top-up', amountFen: 5000, amountYuan: '50.00', balanceAfterFen: 5000, channel: 'cwsf', orderId: 'CW-1001' } });

    const again = await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cwsf', orderId: 'CW-1001', amountFen: 5000 }, api.tokens.payment);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toMatchObject({ replay: true, balanceFen: 5000, entry: { id: first.json().entry.id } });

    const ledger = await get(`/api/v1/accounts/${u}/ledger`);
    expect(ledger.json().items).toHaveLength(1);
  });

  it('answers 409 when an order comes back with another amount, and credits nothing', async () => {
    const u = await newStudent();
    expect((await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'wechat-work', orderId: 'W-1', amountFen: 3000 })).statusCode).toBe(201);
    const r = await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'wechat-work', orderId: 'W-1', amountFen: 9000 });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({ code: 'conflict', creditedFen: 3000 });
    expect((await get(`/api/v1/accounts/${u}`)).json().account.balanceFen).toBe(3000);
  });

  it('credits 100 concurrent identical top-ups once: one 201, 99 replays, one ledger entry', async () => {
    const u = await newStudent();
    const results = await Promise.all(
      Array.from({ length: 100 }, () => post(`/api/v1/accounts/${u}/top-ups`, { channel: 'campus-app', orderId: 'APP-777', amountFen: 2000 }, api.tokens.payment)),
    );
    const codes = results.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    expect(codes.filter((c) => c === 200)).toHaveLength(99);
    expect(new Set(results.map((r) => r.json().entry.id)).size).toBe(1);
    const detail = (await get(`/api/v1/accounts/${u}`)).json();
    expect(detail.account.balanceFen).toBe(2000);
    const ledger = (await get(`/api/v1/accounts/${u}/ledger`)).json();
    expect(ledger.items).toHaveLength(1);
    const audits = await api.t.db.selectFrom('audit_log').select('id').where('action', '=', 'top-up.create').where('target_id', '=', u).execute();
    expect(audits).toHaveLength(1);
  });

  it.each([
    ['a decimal', 50.5],
    ['a string', '5000'],
    ['zero', 0],
    ['a negative amount', -100],
    ['more than a million yuan', 100_000_001],
    ['beyond the safe integer range', 2 ** 60],
  ])('rejects %s as amountFen with 400 naming the field', async (_what, amountFen) => {
    const u = await newStudent();
    const r = await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cash', orderId: 'C-1', amountFen });
    expect(r.statusCode).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.json()).toMatchObject({ status: 400, code: 'invalid', errors: expect.arrayContaining([expect.objectContaining({ in: 'body', path: 'amountFen' })]) });
    expect((await get(`/api/v1/accounts/${u}/ledger`)).json().items).toEqual([]);
  });

  it('lists every bad field of a request at once', async () => {
    const u = await newStudent();
    const r = await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'Bad Channel!', amountFen: 1.5, extra: true });
    expect(r.statusCode).toBe(400);
    const paths = r.json().errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(expect.arrayContaining(['amountFen', 'channel', 'orderId']));
  });

  it('answers 404 for a top-up to an account that does not exist', async () => {
    const r = await post('/api/v1/accounts/ghost/top-ups', { channel: 'cash', orderId: 'G-1', amountFen: 100 });
    expect(r.statusCode).toBe(404);
    expect(r.json().code).toBe('not_found');
  });
});

describe('adjustments and refunds', () => {
  it('lets an operator adjust a balance below zero with a reason; a later top-up pays the debt first', async () => {
    const u = await newStudent();
    const adj = await post(`/api/v1/accounts/${u}/adjustments`, { amountFen: -500, reason: 'double credit reversed' }, api.tokens.operator);
    expect(adj.statusCode).toBe(201);
    expect(adj.json()).toMatchObject({ balanceFen: -500, balanceYuan: '-5.00', entry: { kind: 'adjustment', actor: expect.stringContaining('test operator'), reason: 'double credit reversed' } });
    const top = await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cash', orderId: `${u}-1`, amountFen: 2500 });
    expect(top.json().balanceFen).toBe(2000);
    const audit = await api.t.db.selectFrom('audit_log').selectAll().where('action', '=', 'adjustment.create').where('target_id', '=', u).executeTakeFirstOrThrow();
    expect(audit.before).toEqual({ balanceFen: 0 });
    expect(audit.after).toMatchObject({ balanceFen: -500, amountFen: -500, reason: 'double credit reversed' });
  });

  it('requires a reason for an adjustment', async () => {
    const u = await newStudent();
    const r = await post(`/api/v1/accounts/${u}/adjustments`, { amountFen: 100, reason: '  ' });
    expect(r.statusCode).toBe(400);
    expect(r.json().errors[0].path).toBe('reason');
  });

  it('refuses a refund that would take the running cycle’s fee with 422 and the refundable amount', async () => {
    const u = await newStudent();
    await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cash', orderId: `${u}-1`, amountFen: 5000 });
    await api.billing.authorizeDormLogin({ username: u });
    const r = await post(`/api/v1/accounts/${u}/refunds`, { amountFen: 4000, reason: 'graduating' });
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ code: 'insufficient_funds', refundableFen: 3000 });
    const ok = await post(`/api/v1/accounts/${u}/refunds`, { amountFen: 3000, reason: 'graduating' });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ balanceFen: 2000, entry: { kind: 'refund', amountFen: -3000 } });
  });
});

describe('ledger and cycles', () => {
  it('lists the ledger newest first with the balance after each entry, page by page', async () => {
    const u = await newStudent();
    for (let i = 1; i <= 5; i++) await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'selfaaa', orderId: `${u}-${i}`, amountFen: i * 100 });
    const p1 = (await get(`/api/v1/accounts/${u}/ledger?limit=2`)).json();
    expect(p1.items.map((e: { amountFen: number; balanceAfterFen: number }) => [e.amountFen, e.balanceAfterFen])).toEqual([
      [500, 1500],
      [400, 1000],
    ]);
    const p2 = (await get(`/api/v1/accounts/${u}/ledger?limit=2&cursor=${p1.nextCursor}`)).json();
    const p3 = (await get(`/api/v1/accounts/${u}/ledger?limit=2&cursor=${p2.nextCursor}`)).json();
    expect(p2.items.map((e: { amountFen: number }) => e.amountFen)).toEqual([300, 200]);
    expect(p3.items.map((e: { amountFen: number }) => e.amountFen)).toEqual([100]);
    expect(p3.nextCursor).toBeNull();
  });

  it('rejects a cursor it never issued', async () => {
    const u = await newStudent();
    const r = await get(`/api/v1/accounts/${u}/ledger?cursor=bm9wZQ`);
    expect(r.statusCode).toBe(400);
  });

  it('exports the ledger as CSV with amounts in fen and yuan and Beijing time', async () => {
    const u = await newStudent();
    await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cash', orderId: '=HYPERLINK("x")', amountFen: 1234 });
    await post(`/api/v1/accounts/${u}/adjustments`, { amountFen: -34, reason: 'rounding, "as agreed"' });
    const r = await get(`/api/v1/accounts/${u}/ledger?format=csv`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toContain(`ledger-${u}.csv`);
    const lines = r.body.replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toBe('id,effective_at,effective_at_beijing,kind,amount_fen,amount_yuan,balance_after_fen,balance_after_yuan,channel,order_id,cycle_id,actor,reason');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(',adjustment,-34,-0.34,1200,12.00,');
    expect(lines[1]).toContain('"rounding, ""as agreed"""');
    // 2026-09-01T08:00:00Z is 16:00 in Beijing.
    expect(lines[2]).toContain(',2026-09-01 16:00:00,top-up,1234,12.34,1234,12.34,cash,');
    expect(lines[2]).toContain(`"'=HYPERLINK(""x"")"`);
  });

  it('shows cycles newest first with their settlement status as simulated time passes', async () => {
    const u = await newStudent();
    await post(`/api/v1/accounts/${u}/top-ups`, { channel: 'cash', orderId: `${u}-1`, amountFen: 5000 });
    await api.billing.authorizeDormLogin({ username: u });
    const running = (await get(`/api/v1/accounts/${u}/cycles`)).json();
    expect(running.items).toEqual([expect.objectContaining({ seq: 1, status: 'running', feeFen: 2000, feeYuan: '20.00', openedBy: 'login', settledAt: null })]);

    const adv = await post('/api/v1/clock/advance', { seconds: 30 * 86_400 });
    expect(adv.statusCode).toBe(200);
    expect(adv.json().settlement.settled).toBeGreaterThanOrEqual(1);
    const after = (await get(`/api/v1/accounts/${u}/cycles`)).json();
    expect(after.items.map((c: { seq: number; status: string; openedBy: string }) => [c.seq, c.status, c.openedBy])).toEqual([
      [2, 'running', 'renewal'],
      [1, 'settled', 'login'],
    ]);
    const ledger = (await get(`/api/v1/accounts/${u}/ledger`)).json();
    expect(ledger.items[0]).toMatchObject({ kind: 'settlement', amountFen: -2000, balanceAfterFen: 3000, cycleId: after.items[1].id });
  });
});
