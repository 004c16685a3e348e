import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connection.ts';
import { accountStates, dueCycles, moneyTotals, seedTopUps } from './db.ts';
import { Expectations, expectAuditPasses, randomInt, scenarioDatabase, serviceEnv, ServiceProcess, waitFor, type Scenario } from './harness.ts';

const DAY_MS = 86_400_000;
const CYCLE_MS = 30 * DAY_MS;
const FEE = 2000;
const T0 = new Date('2026-01-01T00:00:00Z');

/** Round r runs with the clock 2 h past the r-th anniversary of every account (start offsets are < 1 h). */
function clockOfRound(r: number): Date {
  return new Date(T0.getTime() + r * CYCLE_MS + 2 * 3_600_000);
}

/**
 * The money each account starts with, by its number g: most can pay for 200 cycles (never close here);
 * a tenth run out after 1-7 cycles at exactly 0, a tenth after 1-5 cycles with a remainder below the fee.
 */
function initialBalance(g: number): number {
  if (g % 10 === 8) return FEE * (1 + (g % 7));
  if (g % 10 === 9) return FEE * (1 + (g % 5)) + (g % 1999) + 1;
  return FEE * 200;
}

async function seed(db: Db, accounts: number, tariffId: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const g = sql.raw('g');
    const balance = sql`CASE WHEN ${g} % 10 = 8 THEN ${FEE} * (1 + ${g} % 7)
                             WHEN ${g} % 10 = 9 THEN ${FEE} * (1 + ${g} % 5) + (${g} % 1999) + 1
                             ELSE ${FEE} * 200 END`;
    await sql`
      INSERT INTO accounts (username, kind, password_hash, balance_fen)
      SELECT 'k' || g, 'student', 'x', ${balance} FROM generate_series(1, ${accounts}::int) g`.execute(trx);
    await seedTopUps(trx, T0);
    // The first cycle opened at a login within the first hour after T0.
    await sql`
      INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
      SELECT id, 1, ${T0}::timestamptz + (id % 3600) * interval '1 second',
             ${T0}::timestamptz + interval '30 days' + (id % 3600) * interval '1 second', ${FEE}, ${tariffId}, 'login'
      FROM accounts`.execute(trx);
  });
  await sql`ANALYZE`.execute(db);
}

async function maxLedgerId(db: Db): Promise<number> {
  const r = await sql<{ id: number | null }>`SELECT max(id) AS id FROM ledger_entries`.execute(db);
  return r.rows[0]?.id ?? 0;
}

/** Entries committed after `base` (ids burnt by rolled-back transactions leave gaps, so count, not subtract). */
async function entriesAfter(db: Db, base: number): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM ledger_entries WHERE id > ${base}`.execute(db);
  return r.rows[0]!.n;
}

/**
 * Scenario 1: the service (a real child process running start()) is killed with SIGKILL at random points
 * while its worker settles 10k due cycles, and restarted; each restart moves the simulated clock one
 * anniversary on, so every round has ~10k cycles due. Afterwards the ledger is compared account by account
 * with a model computed from the seed alone.
 */
export const killSettlement: Scenario = {
  id: 'kill-settlement',
  title: 'kill -9 of the service during settlement, restarted each time',
  budgetMs: (quick) => (quick ? 120_000 : 480_000),
  async run(ctx, cleanup) {
    const accounts = ctx.quick ? 2_000 : 10_000;
    const kills = ctx.quick ? 8 : 50;
    const maxRounds = kills + 15;
    const x = new Expectations();

    const { pg, db, tariffId } = await scenarioDatabase(ctx, cleanup);
    await seed(db, accounts, tariffId);
    ctx.log(`seeded ${accounts} accounts, each with a running cycle`);

    let round = 0;
    let killsMidSettlement = 0;
    let killsLate = 0;
    let restarts = 0;
    let current: ServiceProcess | null = null;
    cleanup.killAtEnd('service', () => [current]);
    const killPoints: number[] = [];
    let fatal = 0;
    const batchSizes = [200, 500, 1000, 5000];

    while (killsMidSettlement < kills && round < maxRounds) {
      round++;
      const now = clockOfRound(round);
      // Cycles due at this round's clock (renewals of interrupted catch-ups fall due again as they are opened).
      const due = await dueCycles(db, now);
      const base = await maxLedgerId(db);
      const env = serviceEnv(pg, now, {
        SETTLE_CRON: '*/2 * * * * *',
        SETTLE_BATCH_SIZE: String(batchSizes[randomInt(ctx.random, 0, batchSizes.length - 1)]),
        SETTLE_CONCURRENCY: String(randomInt(ctx.random, 1, 4)),
      });
      const service: ServiceProcess = ServiceProcess.spawn(`round-${round}`, env, path.join(ctx.dir, `service-${round}.log`));
      current = service;
      if (round > 1) restarts++;
      // Kill once a random share of this round's settlements has committed, plus a random delay, so the
      // SIGKILL lands inside a batch transaction, between batches, or in the renewal insert.
      const target = randomInt(ctx.random, 1, Math.max(1, Math.floor(due * 0.9)));
      await waitFor(
        async () => {
          if (!service.alive) throw new Error(`the service died by itself in round ${round}:\n${service.tail()}`);
          return (await entriesAfter(db, base)) >= target;
        },
        60_000,
        `settlement progress in round ${round}`,
        10,
      );
      await sleep(randomInt(ctx.random, 0, 30));
      await service.kill9();
      fatal += service.fatalEvents().length;
      const committed = await entriesAfter(db, base);
      // Cycles still due at the kill: the settlement was interrupted, not finished.
      const left = await dueCycles(db, now);
      if (left > 0) {
        killsMidSettlement++;
        killPoints.push(committed);
      } else {
        killsLate++;
      }
      if (round % 10 === 0) ctx.log(`round ${round}: ${killsMidSettlement} kills mid-settlement so far`);
    }
    x.eq(killsMidSettlement, kills, 'kills that landed while cycles were still due');

    // The last restart runs to the end: the worker catches up, then a graceful stop.
    round++;
    const finalClock = clockOfRound(round);
    const last = ServiceProcess.spawn('final', serviceEnv(pg, finalClock, { SETTLE_CRON: '*/2 * * * * *' }), path.join(ctx.dir, 'service-final.log'));
    current = last;
    restarts++;
    await last.ready(60_000);
    await waitFor(async () => (await dueCycles(db, finalClock)) === 0, 60_000, 'the final catch-up', 50);
    ctx.log(`final catch-up done after round ${round}`);
    const stopped = await last.stop();
    x.eq(stopped.code, 0, 'exit code of the final graceful stop');
    x.eq(fatal + last.fatalEvents().length, 0, 'unhandled rejections or exceptions reported by the services');

    // The model, from the seed alone: every account saw `round` anniversaries.
    const m = round;
    const rows = await accountStates(db);
    let mismatched = 0;
    let modelTopUps = 0;
    let modelSettled = 0;
    const examples: string[] = [];
    for (const r of rows) {
      const b = initialBalance(r.g);
      const settled = Math.min(m, Math.floor(b / FEE));
      const running = settled < Math.floor(b / FEE) ? 1 : 0;
      modelTopUps += b;
      modelSettled += settled * FEE;
      const ok =
        r.balance_fen === b - settled * FEE &&
        r.settlements === settled &&
        r.settled_fen === settled * FEE &&
        r.running === running &&
        r.cycles === settled + running &&
        r.top_ups === b;
      if (!ok) {
        mismatched++;
        if (examples.length < 5) examples.push(`k${r.g}: ${JSON.stringify(r)}, expected ${settled} settlements, balance ${b - settled * FEE}, running ${running}`);
      }
    }
    x.eq(rows.length, accounts, 'accounts in the database');
    x.ok(mismatched === 0, `${mismatched} accounts differ from the model, e.g. ${examples.join('; ')}`);

    const totals = await moneyTotals(db);
    x.eq(totals.topUps, modelTopUps, 'fen topped up (ledger vs seed)');
    x.eq(totals.settledFen, modelSettled, 'fen settled (ledger vs model)');
    x.eq(totals.balances, modelTopUps - modelSettled, 'fen held in balances vs top-ups minus settlements (model)');
    x.eq(totals.doubleSettled, 0, 'cycles with more than one settlement entry');
    x.eq(totals.unpaidSettled, 0, 'cycles marked settled without a settlement entry');
    x.eq(totals.twoRunning, 0, 'accounts with two running cycles');

    const audit = await expectAuditPasses(x, pg, finalClock);

    killPoints.sort((a, b) => a - b);
    const at = (q: number) => killPoints[Math.floor(q * (killPoints.length - 1))] ?? 0;
    return {
      failures: x.failures,
      figures: {
        accounts,
        rounds: round,
        'kills (SIGKILL)': killsMidSettlement + killsLate,
        'kills mid-settlement': killsMidSettlement,
        'settlements committed in a round before its kill (min/median/max)': `${at(0)}/${at(0.5)}/${at(1)}`,
        'restarts survived': restarts,
        'cycles settled': totals.settlements,
        'fen settled': totals.settledFen,
        'accounts differing from the model': mismatched,
        audit,
      },
    };
  },
};
