import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { adminApi, Expectations, expectAuditPasses, expectCleanStop, pool, randomInt, scenarioDatabase, serviceEnv, ServiceProcess, type Scenario } from './harness.ts';

const NOW = new Date('2026-09-01T08:00:00Z');
const CHANNEL = 'wechat-work';
const ORDER = 'WX20260901-000042';
const AMOUNT = 3000;

interface Reply {
  readonly status: number;
  /** Tries it took: more than one when an instance died under the call or answered 5xx. */
  readonly attempts: number;
  /** From the first try to the answer. */
  readonly ms: number;
  readonly entryId: number | null;
  readonly replay: boolean | null;
  readonly balanceFen: number | null;
}

/**
 * Scenario 4: the payment platform calls back for one order 1,000 times, many at once, against two service
 * instances that are killed (SIGKILL) and stopped (SIGTERM) and started again while the calls go on. A call
 * that gets no HTTP answer is retried on another instance, as a platform retries until it hears back. The
 * order must be credited exactly once, every call must end with that one ledger entry, and a call for the
 * same order with another amount or account must be refused without a credit.
 */
export const paymentCallback: Scenario = {
  id: 'payment-callback',
  title: 'one payment callback sent 1,000 times, concurrently and across restarts',
  budgetMs: (quick) => (quick ? 90_000 : 150_000),
  async run(ctx, cleanup) {
    const calls = ctx.quick ? 300 : 1_000;
    const x = new Expectations();
    const { pg, db } = await scenarioDatabase(ctx, cleanup);
    await sql`INSERT INTO accounts (username, kind, password_hash) VALUES ('payer', 'student', 'x'), ('other', 'student', 'x')`.execute(db);

    const launch = (name: string) => ServiceProcess.start(name, serviceEnv(pg, NOW), path.join(ctx.dir, `service-${name}.log`));
    let generation = 0;
    const slots: ServiceProcess[] = await Promise.all(['a-0', 'b-0'].map(launch));
    cleanup.killAtEnd('services', () => slots);

    const post = async (username: string, amountFen: number): Promise<Reply> => {
      const t0 = performance.now();
      for (let attempt = 0; ; attempt++) {
        const live = slots.filter((s) => s.alive);
        const s = live[randomInt(ctx.random, 0, Math.max(0, live.length - 1))];
        if (s === undefined) {
          await sleep(50);
          continue;
        }
        try {
          const res = await adminApi(s, 'POST', `/accounts/${username}/top-ups`, { body: { channel: CHANNEL, orderId: ORDER, amountFen }, timeoutMs: 15_000 });
          const body = (await res.json()) as { entry?: { id: number }; replay?: boolean; balanceFen?: number };
          if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
          return { status: res.status, attempts: attempt + 1, ms: performance.now() - t0, entryId: body.entry?.id ?? null, replay: body.replay ?? null, balanceFen: body.balanceFen ?? null };
        } catch (e) {
          // No answer (the instance died under the call) or a 5xx: the platform calls again.
          if (attempt > 200) throw e;
          await sleep(randomInt(ctx.random, 5, 50));
        }
      }
    };

    const replies: Reply[] = [];
    let restarts = 0;
    // Restarts run one after another; the calls keep going meanwhile, on whatever instance is up.
    let restarting: Promise<void> = Promise.resolve();
    const restart = (i: number) => {
      const slot = i % 2;
      const how = Math.floor(i / 2) % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      restarting = restarting.then(async () => {
        const old = slots[slot]!;
        if (how === 'SIGKILL') await old.kill9();
        else await old.stop();
        generation++;
        const name = `${slot === 0 ? 'a' : 'b'}-${generation}`;
        slots[slot] = await launch(name);
        restarts++;
        ctx.log(`instance ${old.name} ended by ${how}, ${name} started`);
      });
    };

    // A burst of 200 identical calls before any credit exists, one instance killed under it; then the rest
    // 64 at a time, an instance ended (SIGKILL or SIGTERM, alternating instances) at a quarter, half and three quarters.
    const burst = Math.min(200, calls);
    const firstWave = Promise.all(Array.from({ length: burst }, () => post('payer', AMOUNT)));
    await sleep(randomInt(ctx.random, 1, 20));
    restart(0);
    replies.push(...(await firstWave));
    const rest = calls - burst;
    const restartAt = new Set([Math.floor(rest / 4), Math.floor(rest / 2), Math.floor((rest * 3) / 4)]);
    let restartNo = 1;
    await pool(
      Array.from({ length: rest }, (_, i) => i),
      64,
      async (i) => {
        if (restartAt.has(i)) restart(restartNo++);
        replies.push(await post('payer', AMOUNT));
      },
    );
    await restarting;
    const retried = replies.filter((r) => r.attempts > 1).length;
    // The same order with another amount, or for another account: refused, never a second credit.
    const conflicts = await Promise.all([...Array.from({ length: 10 }, () => post('payer', AMOUNT + 1)), ...Array.from({ length: 10 }, () => post('other', AMOUNT))]);

    const created = replies.filter((r) => r.status === 201).length;
    const replayed = replies.filter((r) => r.status === 200 && r.replay === true).length;
    const entryIds = new Set(replies.map((r) => r.entryId));
    x.eq(replies.length, calls, 'callbacks answered');
    x.ok(created <= 1, `${created} callbacks answered 201 Created (at most one may)`);
    x.eq(created + replayed, calls, 'callbacks answered 201 or 200 with replay: true');
    x.eq(entryIds.size, 1, 'distinct ledger entries named in the answers');
    x.ok(replies.every((r) => r.balanceFen === AMOUNT), 'every answer shows the balance of one credit');
    x.ok(conflicts.every((r) => r.status === 409), `conflicting callbacks answered ${[...new Set(conflicts.map((r) => r.status))].join(', ')}, expected 409`);

    for (const s of slots) await expectCleanStop(x, s, { named: true });
    const t = (
      await sql<{ entries: number; credited: number; payer: number; other: number; ledger: number }>`
        SELECT (SELECT count(*) FROM ledger_entries WHERE channel = ${CHANNEL} AND order_id = ${ORDER})::bigint AS entries,
               (SELECT coalesce(sum(amount_fen), 0) FROM ledger_entries WHERE kind = 'top-up')::bigint AS credited,
               (SELECT balance_fen FROM accounts WHERE username = 'payer') AS payer,
               (SELECT balance_fen FROM accounts WHERE username = 'other') AS other,
               (SELECT coalesce(sum(amount_fen), 0) FROM ledger_entries)::bigint AS ledger`.execute(db)
    ).rows[0]!;
    x.eq(t.entries, 1, 'ledger entries for the order');
    x.eq(t.credited, AMOUNT, 'fen credited in total');
    x.eq(t.payer, AMOUNT, "the payer's balance");
    x.eq(t.other, 0, "the other account's balance");
    x.eq(t.ledger, AMOUNT, 'sum of the ledger');
    const audit = await expectAuditPasses(x, pg, NOW);

    return {
      failures: x.failures,
      figures: {
        callbacks: calls,
        'answered 201 Created': created,
        'answered 200 replay': replayed,
        'calls retried (an instance died under them)': retried,
        'slowest call, first try to answer (ms)': Math.round(Math.max(...replies.map((r) => r.ms))),
        'conflicting callbacks refused (409)': conflicts.filter((r) => r.status === 409).length,
        'restarts survived': restarts,
        'ledger entries for the order': t.entries,
        'fen credited': t.credited,
        audit,
      },
    };
  },
};
