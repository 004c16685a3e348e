import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLedger } from '../../../src/billing/audit.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import type { ClosedAccount } from '../../../src/billing/billing.ts';
import { DAY_S, newAccount, newBilling } from '../../helpers/billing.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

describe("the guide's story on the simulated clock", () => {
  it('walks one account from 50.00 yuan through two cycles, arrears, a top-up and cycle 3', async () => {
    const { billing, clock } = await newBilling(t.db);
    const acct = await newAccount(billing, 5000);
    const day0 = clock.now();

    const login1 = await billing.authorizeDormLogin({ username: acct.username });
    expect(login1.decision).toMatchObject({ kind: 'accept', sessionTimeoutSeconds: 30 * DAY_S });

    clock.advance(30 * DAY_S);
    const r30 = await billing.settleDue();
    expect(r30).toMatchObject({ settled: 1, renewed: 1, closed: 0 });
    expect((await billing.summary(acct.username)).account.balanceFen).toBe(3000);

    clock.advance(30 * DAY_S);
    const closed: ClosedAccount[] = [];
    const r60 = await billing.settleDue(undefined, undefined, undefined, (batch) => closed.push(...batch));
    expect(r60).toMatchObject({ settled: 1, closed: 1 });
    expect(closed).toEqual([expect.objectContaining({ username: acct.username, reason: 'arrears', balanceFen: 1000 })]);

    clock.advance(3600);
    const refused = await billing.authorizeDormLogin({ username: acct.username });
    expect(refused.decision).toEqual({ kind: 'reject', reason: 'arrears', balanceFen: 1000, neededFen: 2000, shortfallFen: 1000 });

    await billing.topUp({ username: acct.username, channel: 'cwsf', orderId: 'guide-1', amountFen: 1000 });
    clock.advance(600);
    const login3 = await billing.authorizeDormLogin({ username: acct.username });
    expect(login3.decision.kind).toBe('accept');

    const cycles = await billing.cycles(acct.username, { limit: 10 });
    expect(cycles.map((c) => [c.seq, c.startedAt.getTime() - day0.getTime(), c.settledAt !== null])).toEqual([
      [3, (60 * DAY_S + 3600 + 600) * 1000, false],
      [2, 30 * DAY_S * 1000, true],
      [1, 0, true],
    ]);

    const ledger = await billing.ledger(acct.username, { limit: 10 });
    expect(ledger.map((e) => [e.kind, e.amountFen, e.balanceAfterFen])).toEqual([
      ['top-up', 1000, 2000],
      ['settlement', -2000, 1000],
      ['settlement', -2000, 3000],
      ['top-up', 5000, 5000],
    ]);
    expect(ledger[1]!.effectiveAt.getTime() - day0.getTime()).toBe(60 * DAY_S * 1000);

    const audit = await auditLedger(t.db, clock.now());
    expect(audit.ok).toBe(true);
  });
});
