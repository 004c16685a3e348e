import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLedger } from '../../../src/billing/audit.ts';
import { Billing, type ClosedAccount } from '../../../src/billing/billing.ts';
import { SimulatedClock } from '../../../src/clock.ts';
import { createDb } from '../../../src/db/connection.ts';
import { AppError } from '../../../src/errors.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { DAY_S, defaultTerms, newAccount, newBilling } from '../../helpers/billing.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ poolMax: 60 });
});
afterAll(async () => {
  await t.drop();
});

describe('dormitory login against the database', () => {
  it('opens exactly one running cycle when 50 logins of one account race', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing, 5000);
    const results = await Promise.all(Array.from({ length: 50 }, () => billing.authorizeDormLogin({ username: a.username })));
    expect(results.every((r) => r.decision.kind === 'accept')).toBe(true);
    expect(new Set(results.map((r) => r.cycleId)).size).toBe(1);
    const cycles = await billing.cycles(a.username, { limit: 10 });
    expect(cycles).toHaveLength(1);
    expect(cycles[0]!.openedBy).toBe('login');
  });

  it('settles a passed cycle on the spot before deciding, without waiting for the worker', async () => {
    const { billing, clock } = await newBilling(t.db);
    const a = await newAccount(billing, 3000);
    await billing.authorizeDormLogin({ username: a.username });
    clock.advance(31 * DAY_S);
    const r = await billing.authorizeDormLogin({ username: a.username });
    expect(r.settledOnTheSpot).toBe(1);
    expect(r.decision).toMatchObject({ kind: 'reject', reason: 'arrears', balanceFen: 1000 });
    const [settlement] = await billing.ledger(a.username, { limit: 1 });
    expect(settlement).toMatchObject({ kind: 'settlement', amountFen: -2000 });
    // The worker, arriving late, finds nothing left to do for this account.
    const closed: ClosedAccount[] = [];
    await billing.settleDue(undefined, undefined, undefined, (batch) => closed.push(...batch));
    expect(closed.find((c) => c.username === a.username)).toBeUndefined();
  });

  it('refuses a login on a username that does not exist', async () => {
    const { billing } = await newBilling(t.db);
    await expect(billing.authorizeDormLogin({ username: 'nobody-here' })).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('settlement worker', () => {
  it('settles each due cycle exactly once when 4 workers with their own pools run at once', async () => {
    const start = new Date('2026-01-01T00:00:00Z');
    const { billing, clock } = await newBilling(t.db, start);
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
      const a = await newAccount(billing, 2000 + (i % 3) * 2000);
      names.push(a.username);
      await billing.authorizeDormLogin({ username: a.username });
    }
    clock.advance(95 * DAY_S);
    const pools = Array.from({ length: 4 }, () => createDb({ url: t.url, poolMax: 3 }));
    try {
      const workers = pools.map(({ db }) => new Billing(db, new SimulatedClock(clock.now())));
      await Promise.all(workers.map((w) => w.init(defaultTerms)));
      const closed: ClosedAccount[] = [];
      const reports = await Promise.all(workers.map((w) => w.settleDue(undefined, 37, 2, (batch) => closed.push(...batch))));
      const rows = await sql<{ settled: number; entries: number }>`
        SELECT count(*) FILTER (WHERE c.settled_at IS NOT NULL)::int AS settled,
               (SELECT count(*) FROM ledger_entries l JOIN accounts a ON a.id = l.account_id
                 WHERE l.kind = 'settlement' AND a.username = ANY(${names}))::int AS entries
        FROM cycles c JOIN accounts a ON a.id = c.account_id WHERE a.username = ANY(${names})`.execute(t.db);
      // 2000 fen: 1 cycle; 4000 fen: 2 cycles; 6000 fen: 3 cycles, all settled by day 95.
      const expected = 100 * 1 + 100 * 2 + 100 * 3;
      expect(reports.reduce((n, r) => n + r.settled, 0)).toBe(expected);
      expect(rows.rows[0]).toEqual({ settled: expected, entries: expected });
      // Each account's service closes once, handed over in the batch that closed it.
      expect(reports.reduce((n, r) => n + r.closed, 0)).toBe(300);
      expect(new Set(closed.map((c) => c.accountId)).size).toBe(300);
      expect(closed).toHaveLength(300);
      expect((await auditLedger(t.db, clock.now())).ok).toBe(true);
    } finally {
      await Promise.all(pools.map((p) => p.db.destroy()));
    }
  });

  it('catches up several missed cycles in order, each effective at its own anniversary', async () => {
    const { billing, clock } = await newBilling(t.db);
    const a = await newAccount(billing, 10_000);
    const login = clock.now();
    await billing.authorizeDormLogin({ username: a.username });
    clock.advance(100 * DAY_S);
    await billing.settleDue();
    const entries = (await billing.ledger(a.username, { limit: 10 })).filter((e) => e.kind === 'settlement').reverse();
    expect(entries.map((e) => (e.effectiveAt.getTime() - login.getTime()) / (DAY_S * 1000))).toEqual([30, 60, 90]);
    expect(entries.map((e) => e.balanceAfterFen)).toEqual([8000, 6000, 4000]);
    const running = (await billing.summary(a.username)).running;
    expect(running?.seq).toBe(4);
    expect(running && (running.startedAt.getTime() - login.getTime()) / (DAY_S * 1000)).toBe(90);
  });

  it('under on-login ends the cycle at the anniversary and opens the next at the next dorm login', async () => {
    const { billing, clock } = await newBilling(t.db, new Date('2026-03-01T00:00:00Z'), { ...defaultTerms, renewal: 'on-login' });
    const a = await newAccount(billing, 10_000);
    await billing.authorizeDormLogin({ username: a.username });
    clock.advance(45 * DAY_S);
    const closed: ClosedAccount[] = [];
    const report = await billing.settleDue(undefined, undefined, undefined, (batch) => closed.push(...batch));
    expect(report.closed).toBe(closed.length);
    expect(closed).toEqual(expect.arrayContaining([expect.objectContaining({ username: a.username, reason: 'ended', balanceFen: 8000 })]));
    expect((await billing.summary(a.username)).running).toBeNull();
    const back = await billing.authorizeDormLogin({ username: a.username });
    expect(back.decision).toMatchObject({ kind: 'accept', sessionTimeoutSeconds: 30 * DAY_S });
  });

  it('settles a running cycle at the fee it started with after the tariff changes', async () => {
    const { billing, clock } = await newBilling(t.db, new Date('2026-04-01T00:00:00Z'));
    const a = await newAccount(billing, 10_000);
    await billing.authorizeDormLogin({ username: a.username });
    clock.advance(10 * DAY_S);
    const raised = new Billing(t.db, clock);
    await raised.init({ ...defaultTerms, feeFen: 2500 });
    clock.advance(50 * DAY_S);
    await raised.settleDue();
    const settlements = (await raised.ledger(a.username, { limit: 10 })).filter((e) => e.kind === 'settlement').reverse();
    expect(settlements.map((e) => e.amountFen)).toEqual([-2000, -2500]);
    await new Billing(t.db, clock).init(defaultTerms);
  });
});

describe('top-ups, adjustments and refunds', () => {
  it('credits one payment callback sent 100 times concurrently exactly once', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing);
    const results = await Promise.all(
      Array.from({ length: 100 }, () => billing.topUp({ username: a.username, channel: 'wechat-work', orderId: `o-${a.username}`, amountFen: 3000 })),
    );
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(new Set(results.map((r) => r.entry.id)).size).toBe(1);
    expect((await billing.summary(a.username)).account.balanceFen).toBe(3000);
    expect(await billing.ledger(a.username, { limit: 10 })).toHaveLength(1);
  });

  it('refuses the same order with another amount as a conflict and credits nothing', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing);
    await billing.topUp({ username: a.username, channel: 'cwsf', orderId: `x-${a.username}`, amountFen: 2000 });
    await expect(billing.topUp({ username: a.username, channel: 'cwsf', orderId: `x-${a.username}`, amountFen: 5000 })).rejects.toMatchObject({ code: 'conflict' });
    expect((await billing.summary(a.username)).account.balanceFen).toBe(2000);
  });

  it('refuses an order already credited to another account', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing);
    const b = await newAccount(billing);
    await billing.topUp({ username: a.username, channel: 'cwsf', orderId: `shared-${a.username}`, amountFen: 2000 });
    await expect(billing.topUp({ username: b.username, channel: 'cwsf', orderId: `shared-${a.username}`, amountFen: 2000 })).rejects.toBeInstanceOf(AppError);
    expect((await billing.summary(b.username)).account.balanceFen).toBe(0);
  });

  it.each([0, -100, 1.5, Number.NaN, 2 ** 60])('refuses a top-up of %s fen', async (amountFen) => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing);
    await expect(billing.topUp({ username: a.username, channel: 'cash', orderId: 'bad', amountFen })).rejects.toMatchObject({ code: 'invalid' });
  });

  it('lets only a staff adjustment take a balance below zero, and a later top-up pays it first', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing, 1000);
    const adj = await billing.adjust({ username: a.username, amountFen: -1500, actor: 'staff:li', reason: 'duplicate manual credit' });
    expect(adj.balanceFen).toBe(-500);
    expect((await billing.authorizeDormLogin({ username: a.username })).decision).toMatchObject({ reason: 'arrears', shortfallFen: 2500 });
    const top = await billing.topUp({ username: a.username, channel: 'cash', orderId: `neg-${a.username}`, amountFen: 2500 });
    expect(top.balanceFen).toBe(2000);
    expect((await billing.authorizeDormLogin({ username: a.username })).decision.kind).toBe('accept');
  });

  it("refuses a refund that would take the running cycle's committed fee", async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing, 5000);
    await billing.authorizeDormLogin({ username: a.username });
    await expect(billing.refund({ username: a.username, amountFen: 3001, actor: 'staff:li', reason: 'graduation' })).rejects.toMatchObject({
      code: 'insufficient_funds',
      details: { refundableFen: 3000 },
    });
    const ok = await billing.refund({ username: a.username, amountFen: 3000, actor: 'staff:li', reason: 'graduation' });
    expect(ok.balanceFen).toBe(2000);
    expect(ok.entry).toMatchObject({ kind: 'refund', amountFen: -3000, actor: 'staff:li' });
  });
});

describe('the ledger itself', () => {
  it('refuses to update or delete an entry: corrections are new entries', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing, 1000);
    await expect(sql`UPDATE ledger_entries SET amount_fen = 1 WHERE account_id = ${a.id}`.execute(t.db)).rejects.toThrow(/immutable/);
    await expect(sql`DELETE FROM ledger_entries WHERE account_id = ${a.id}`.execute(t.db)).rejects.toThrow(/immutable/);
  });

  it('refuses a second running cycle for one account at the database level', async () => {
    const { billing } = await newBilling(t.db);
    const a = await newAccount(billing, 5000);
    const r = await billing.authorizeDormLogin({ username: a.username });
    const tariffId = billing.tariffNow().id;
    await expect(
      sql`INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
          VALUES (${a.id}, 99, now(), now() + interval '1 day', 2000, ${tariffId}, 'login')`.execute(t.db),
    ).rejects.toThrow(/cycles_one_running/);
    expect(r.cycleId).not.toBeNull();
  });

  it('reports a balance that does not match its entries', async () => {
    const { billing, clock } = await newBilling(t.db);
    const a = await newAccount(billing, 1000);
    const balanceCheck = async () => (await auditLedger(t.db, clock.now())).checks.find((c) => c.name.startsWith('balance equals'))!;
    expect((await balanceCheck()).mismatches).toBe(0);
    await sql`UPDATE accounts SET balance_fen = balance_fen + 1 WHERE id = ${a.id}`.execute(t.db);
    const report = await auditLedger(t.db, clock.now());
    expect(report.ok).toBe(false);
    expect((await balanceCheck()).examples).toContain(a.id);
    await sql`UPDATE accounts SET balance_fen = balance_fen - 1 WHERE id = ${a.id}`.execute(t.db);
  });
});
