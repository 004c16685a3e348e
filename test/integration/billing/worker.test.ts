import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClosedAccount } from '../../../src/billing/billing.ts';
import { startSettlementWorker } from '../../../src/billing/worker.ts';
import { createLogger } from '../../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/db.ts';
import { DAY_S, newAccount, newBilling } from '../../helpers/billing.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t.drop();
});

async function settlementsOf(billing: Awaited<ReturnType<typeof newBilling>>['billing'], username: string): Promise<number> {
  const entries = await billing.ledger(username, { limit: 10 });
  return entries.filter((e) => e.kind === 'settlement').length;
}

async function waitUntil(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe('settlement worker on its SETTLE_CRON schedule', () => {
  it('settles a cycle that falls due while it runs, at the next scheduled pass, without being asked', async () => {
    const { billing, clock } = await newBilling(t.db);
    const a = await newAccount(billing, 3000);
    await billing.authorizeDormLogin({ username: a.username });
    const closed: ClosedAccount[] = [];
    const worker = startSettlementWorker(billing, {
      cron: '* * * * * *',
      batchSize: 100,
      concurrency: 1,
      onClosed: async (batch) => void closed.push(...batch),
      log: createLogger('silent'),
    });
    try {
      clock.advance(31 * DAY_S);
      expect(await waitUntil(async () => (await settlementsOf(billing, a.username)) === 1, 5_000)).toBe(true);
      expect(await waitUntil(async () => closed.some((c) => c.username === a.username), 2_000)).toBe(true);
    } finally {
      await worker.stop();
    }
  });

  it('runs no pass after stop(): a cycle falling due later waits for the next start', async () => {
    const { billing, clock } = await newBilling(t.db);
    const a = await newAccount(billing, 3000);
    await billing.authorizeDormLogin({ username: a.username });
    const worker = startSettlementWorker(billing, {
      cron: '* * * * * *',
      batchSize: 100,
      concurrency: 1,
      onClosed: async () => undefined,
      log: createLogger('silent'),
    });
    await worker.runOnce();
    await worker.stop();
    clock.advance(31 * DAY_S);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await settlementsOf(billing, a.username)).toBe(0);
  });
});
