import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLedger } from '../../../src/billing/audit.ts';
import { isAppError } from '../../../src/errors.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { newAccount, newBilling } from '../../helpers/billing.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

type Op =
  | { op: 'login' }
  | { op: 'topUp'; fen: number; order: number }
  | { op: 'refund'; fen: number }
  | { op: 'adjust'; fen: number }
  | { op: 'advance'; seconds: number }
  | { op: 'settle' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ op: 'login' as const }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('topUp' as const), fen: fc.integer({ min: 1, max: 9000 }), order: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('refund' as const), fen: fc.integer({ min: 1, max: 6000 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('adjust' as const), fen: fc.integer({ min: -5000, max: 5000 }).filter((n) => n !== 0) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 70 * 86_400 }) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'settle' as const }) },
);

describe('ledger invariants over random histories', () => {
  it('keeps balance = sum of entries, settles every ended cycle once and never overlaps cycles', async () => {
    const { billing, clock } = await newBilling(t.db, new Date('2026-01-01T00:00:00Z'));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.boolean(), async (ops, _) => {
        run++;
        const a = await newAccount(billing);
        let credited = 0;
        const orders = new Map<number, number>();
        for (const o of ops) {
          try {
            switch (o.op) {
              case 'login':
                await billing.authorizeDormLogin({ username: a.username });
                break;
              case 'topUp': {
                const first = orders.get(o.order);
                const r = await billing.topUp({ username: a.username, channel: 'prop', orderId: `${run}-${a.username}-${o.order}`, amountFen: first ?? o.fen });
                if (first === undefined) {
                  orders.set(o.order, o.fen);
                  credited += o.fen;
                  expect(r.duplicate).toBe(false);
                } else {
                  expect(r.duplicate).toBe(true);
                }
                break;
              }
              case 'refund':
                await billing.refund({ username: a.username, amountFen: o.fen, actor: 'prop', reason: 'test' });
                break;
              case 'adjust':
                await billing.adjust({ username: a.username, amountFen: o.fen, actor: 'prop', reason: 'test' });
                break;
              case 'advance':
                clock.advance(o.seconds);
                break;
              case 'settle':
                await billing.settleDue();
                break;
            }
          } catch (e) {
            if (!(isAppError(e) && e.code === 'insufficient_funds')) throw e;
          }
        }
        await billing.settleDue();
        const topUps = await sql<{ s: number }>`
          SELECT coalesce(sum(amount_fen), 0)::bigint AS s FROM ledger_entries WHERE account_id = ${a.id} AND kind = 'top-up'`.execute(t.db);
        expect(topUps.rows[0]!.s).toBe(credited);
        const running = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM cycles WHERE account_id = ${a.id} AND settled_at IS NULL AND ends_at <= ${clock.now()}`.execute(t.db);
        expect(running.rows[0]!.n).toBe(0);
      }),
      { numRuns: 40 },
    );
    const audit = await auditLedger(t.db, clock.now(), 0);
    expect(audit.checks.filter((c) => c.mismatches > 0)).toEqual([]);
  });
});
