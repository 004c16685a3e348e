import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { auditLedger, formatAudit } from '../src/billing/audit.ts';
import { Billing } from '../src/billing/billing.ts';
import { SimulatedClock } from '../src/clock.ts';
import { createDb } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { benchDatabase } from './pg.ts';

/**
 * npm run bench:settle -- --cycles N [--batch B] [--concurrency C]
 * Creates N accounts, each with a running cycle whose anniversary has passed (a third of them funded
 * to renew), times Billing.settleDue over all of them, then audits the ledger.
 */
const { values } = parseArgs({
  options: { cycles: { type: 'string', default: '100000' }, batch: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '2' } },
});
const n = Number(values.cycles);
const TARGET_CYCLES = 1_000_000;
const TARGET_SECONDS = 60;
const batch = Number(values.batch);
const concurrency = Number(values.concurrency);
if (!Number.isSafeInteger(n) || n <= 0) throw new Error('--cycles must be a positive integer');

const target = await benchDatabase('bench_settle');
const { db } = createDb({ url: target.url, poolMax: 4 });
let failed = false;
try {
  await migrateToLatest(db);
  const start = new Date('2026-09-01T00:00:00Z');
  const clock = new SimulatedClock(start);
  const billing = new Billing(db, clock);
  await billing.init({ feeFen: 2000, cycleSeconds: 30 * 86_400, thresholdFen: 2000, renewal: 'continuous' });
  const tariffId = billing.tariffNow().id;

  const t0 = performance.now();
  const chunk = 200_000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await db.transaction().execute(async (trx) => {
      // Balances: 2000 (closes), 4000 (renews once), 3000 (closes with 10.00 left).
      await sql`
        INSERT INTO accounts (username, kind, password_hash, balance_fen)
        SELECT 'b' || g, 'student', 'x', (ARRAY[2000, 4000, 3000])[1 + g % 3]
        FROM generate_series(${from}::int, ${to}::int) g`.execute(trx);
      await sql`
        INSERT INTO ledger_entries (account_id, kind, amount_fen, balance_after_fen, channel, order_id, effective_at)
        SELECT a.id, 'top-up', a.balance_fen, a.balance_fen, 'bench', a.username, ${start}
        FROM accounts a WHERE a.id BETWEEN ${from} AND ${to}`.execute(trx);
      await sql`
        INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
        SELECT a.id, 1, ${start}::timestamptz + (a.id % 3600) * interval '1 second',
               ${start}::timestamptz + interval '30 days' + (a.id % 3600) * interval '1 second', 2000, ${tariffId}, 'login'
        FROM accounts a WHERE a.id BETWEEN ${from} AND ${to}`.execute(trx);
    });
  }
  await sql`ANALYZE`.execute(db);
  const setupS = (performance.now() - t0) / 1000;
  process.stderr.write(`set up ${n} due cycles in ${setupS.toFixed(1)} s\n`);

  // Day 31: every cycle is due; a third renew and their next cycle is not due yet.
  clock.advance(31 * 86_400);
  const rssBefore = process.memoryUsage().rss;
  const report = await billing.settleDue(clock.now(), batch, concurrency);
  const seconds = report.ms / 1000;
  await sql`ANALYZE`.execute(db);
  const audit = await auditLedger(db, clock.now(), 0);
  const lines = [
    `accounts with a due cycle: ${n} (set up in ${setupS.toFixed(1)} s)`,
    `settled: ${report.settled}, renewed: ${report.renewed}, closed: ${report.closed}, batches: ${report.batches} of ${batch}, ${concurrency} lanes`,
    `settleDue: ${seconds.toFixed(2)} s total, ${Math.round(report.settled / seconds)} settled/s`,
    `bench process RSS: ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB (before ${Math.round(rssBefore / 2 ** 20)} MiB)`,
    formatAudit(audit),
    // Issue 5: 1,000,000 due cycles in <= 60 s, i.e. at least 16,667 settled/s at any size.
    `target 1,000,000 cycles in <= 60 s (>= ${Math.ceil(TARGET_CYCLES / TARGET_SECONDS)} settled/s): ` +
      `${report.settled / seconds >= TARGET_CYCLES / TARGET_SECONDS ? 'met' : 'NOT met'}` +
      (n === TARGET_CYCLES ? '' : ` (at ${n} cycles; ${((seconds * TARGET_CYCLES) / n).toFixed(1)} s for 1,000,000 at this rate)`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (report.settled !== n || !audit.ok) {
    process.stderr.write(`FAILED: expected ${n} settlements and a clean audit\n`);
    failed = true;
  }
} finally {
  await db.destroy();
  await target.close();
}
process.exit(failed ? 1 : 0);
