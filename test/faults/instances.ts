import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connection.ts';
import { RadiusTimeoutError } from '../../src/radius/client.ts';
import { PacketCode } from '../../src/radius/packet.ts';
import { accountStates, dueCycles, moneyTotals, PASSWORD, passwordHash, seedNas, seedTopUps } from './db.ts';
import {
  adminApi,
  Expectations,
  expectAuditPasses,
  expectCleanStop,
  openRadiusClient,
  pool,
  randomInt,
  scenarioDatabase,
  scrapeMetrics,
  serviceEnv,
  ServiceProcess,
  waitFor,
  type Scenario,
} from './harness.ts';

const DAY_S = 86_400;
const FEE = 2000;
const NOW = new Date('2026-09-01T08:00:00Z');
const SECRET = 'dorm-bras-secret';
const INSTANCES = 4;

/**
 * The account groups, from the seed (fee 2000, 30-day cycles, threshold 2000, continuous renewal):
 * catchup: first cycle opened 365 days ago with money for 15 cycles; fresh: funded, no cycle, so the
 * first dorm login opens one; poor: 19.99 yuan, refused as arrears; closing: cycle opened 365 days ago
 * with money for 3, so it ends closed at 0 and refused; running: a cycle opened 10 days ago.
 */
type Group = 'catchup' | 'fresh' | 'poor' | 'closing' | 'running';

interface Expected {
  readonly accept: boolean;
  readonly settlements: number;
  readonly balanceFen: number;
  readonly running: number;
  readonly cycles: number;
}

function groupOf(g: number, n: number): Group {
  const share = g / n;
  if (share <= 0.375) return 'catchup';
  if (share <= 0.75) return 'fresh';
  if (share <= 0.85) return 'poor';
  if (share <= 0.95) return 'closing';
  return 'running';
}

function initialBalance(group: Group, g: number): number {
  switch (group) {
    case 'catchup':
      return FEE * 15 + 500;
    case 'fresh':
      return FEE + (g % 5) * 1000;
    case 'poor':
      return FEE - 1;
    case 'closing':
      return FEE * 3;
    case 'running':
      return FEE * 2;
  }
}

/**
 * What a login gets, and the account's state after it, in wave 1 (at NOW) and wave 2 (30 days on, every
 * account having logged in during wave 1), computed from the seed alone.
 */
function expected(group: Group, g: number, wave: 1 | 2): Expected {
  const b = initialBalance(group, g);
  switch (group) {
    case 'catchup': {
      // Anniversaries 365-30k days ago: 12 have passed at NOW, 13 thirty days on; money for 15.
      const k = wave === 1 ? 12 : 13;
      return { accept: true, settlements: k, balanceFen: b - k * FEE, running: 1, cycles: k + 1 };
    }
    case 'fresh': {
      // The wave-1 login opens a cycle at NOW; it is settled at NOW + 30 days and renewed if money is left.
      if (wave === 1) return { accept: true, settlements: 0, balanceFen: b, running: 1, cycles: 1 };
      const renewed = b - FEE >= FEE;
      return { accept: renewed, settlements: 1, balanceFen: b - FEE, running: renewed ? 1 : 0, cycles: renewed ? 2 : 1 };
    }
    case 'poor':
      return { accept: false, settlements: 0, balanceFen: b, running: 0, cycles: 0 };
    case 'closing':
      return { accept: false, settlements: 3, balanceFen: 0, running: 0, cycles: 3 };
    case 'running':
      return wave === 1
        ? { accept: true, settlements: 0, balanceFen: b, running: 1, cycles: 1 }
        : { accept: true, settlements: 1, balanceFen: b - FEE, running: 1, cycles: 2 };
  }
}

async function seed(db: Db, n: number, tariffId: number): Promise<void> {
  const hash = await passwordHash();
  const rows = Array.from({ length: n }, (_, i) => i + 1);
  const groups = rows.map((g) => groupOf(g, n));
  await db.transaction().execute(async (trx) => {
    await sql`
      INSERT INTO accounts (username, kind, password_hash, balance_fen)
      SELECT 'm' || g, 'student', ${hash}, b FROM unnest(${rows}::int[], ${rows.map((g, i) => initialBalance(groups[i]!, g))}::bigint[]) AS u(g, b)`.execute(trx);
    await seedTopUps(trx, new Date(NOW.getTime() - 400 * DAY_S * 1000));
    const startedDaysAgo = (group: Group) => (group === 'catchup' || group === 'closing' ? 365 : group === 'running' ? 10 : null);
    const withCycle = rows.filter((_, i) => startedDaysAgo(groups[i]!) !== null);
    await sql`
      INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
      SELECT a.id, 1, ${NOW}::timestamptz - u.days * interval '1 day' + (a.id % 3600) * interval '1 second',
             ${NOW}::timestamptz - u.days * interval '1 day' + interval '30 days' + (a.id % 3600) * interval '1 second', ${FEE}, ${tariffId}, 'login'
      FROM unnest(${withCycle}::int[], ${withCycle.map((g) => startedDaysAgo(groups[g - 1]!)!)}::int[]) AS u(g, days)
      JOIN accounts a ON a.username = 'm' || u.g`.execute(trx);
  });
  await seedNas(db, { name: 'dorm-bras', address: '127.0.0.1', secret: SECRET, area: 'dorm' });
  await sql`ANALYZE`.execute(db);
}

/**
 * Scenario 2: four service instances on one database settle and authorize at once. Wave 1: every account
 * logs in on two to four instances at the same moment while the workers catch up a year of missed cycles
 * and the settle API is called on every instance. Then the four simulated clocks are moved 30 days on
 * (each instance settles what fell due) and wave 2 logs everyone in again while that settlement runs.
 * Every Access-Request must be answered with the decision the seed implies; no cycle is settled twice, no
 * account ever holds two running cycles, and every account ends as the model says.
 */
export const fourInstances: Scenario = {
  id: 'four-instances',
  title: 'four service instances settling and authorizing on one database',
  budgetMs: (quick) => (quick ? 90_000 : 180_000),
  async run(ctx, cleanup) {
    const n = ctx.quick ? 1_000 : 4_000;
    const x = new Expectations();
    const { pg, db, tariffId } = await scenarioDatabase(ctx, cleanup);
    await seed(db, n, tariffId);
    ctx.log(`seeded ${n} accounts in five groups`);

    const env = (i: number) =>
      serviceEnv(pg, NOW, {
        SETTLE_CRON: '* * * * * *',
        SETTLE_BATCH_SIZE: String([50, 100, 250, 1000][i % 4]),
        SETTLE_CONCURRENCY: String(1 + (i % 3)),
        DB_POOL_MAX: '10',
      });
    const services = Array.from({ length: INSTANCES }, (_, i) => ServiceProcess.spawn(`instance-${i + 1}`, env(i), path.join(ctx.dir, `instance-${i + 1}.log`)));
    cleanup.killAtEnd('services', () => services);
    await Promise.all(services.map((s) => s.ready(60_000)));
    const dueAtStart = await dueCycles(db, NOW);
    ctx.log(`${INSTANCES} instances ready; ${dueAtStart} cycles still due`);

    const client = await openRadiusClient(cleanup);

    let requests = 0;
    let unanswered = 0;
    let retransmitted = 0;
    let wrong = 0;
    const wrongExamples: string[] = [];
    let loginSeconds = 0;
    const latencies: number[] = [];
    let settleCalls = 0;
    let settleErrors = 0;

    const wave = async (w: 1 | 2) => {
      // Meanwhile, settle passes are asked of every instance through the API, as staff would.
      let storming = true;
      const settleStorm = (async () => {
        while (storming) {
          await Promise.all(
            services.map(async (s) => {
              const res = await adminApi(s, 'POST', '/billing/settle', { timeoutMs: 60_000 }).catch(() => null);
              settleCalls++;
              if (res === null || res.status >= 500) settleErrors++;
              await res?.arrayBuffer().catch(() => undefined);
            }),
          );
          await sleep(100);
        }
      })();
      // Accounts with due cycles first, so logins race the workers' settlement.
      const order = Array.from({ length: n }, (_, i) => i + 1).sort((a, b) => {
        const rank = (g: number) => (['catchup', 'closing', 'running'].includes(groupOf(g, n)) ? 0 : 1);
        return rank(a) - rank(b) || a - b;
      });
      const t0 = performance.now();
      await pool(order, 48, async (g) => {
        const group = groupOf(g, n);
        const want = expected(group, g, w);
        const k = randomInt(ctx.random, 2, INSTANCES);
        const first = randomInt(ctx.random, 0, INSTANCES - 1);
        const targets = Array.from({ length: k }, (_, j) => services[(first + j) % INSTANCES]!);
        await Promise.all(
          targets.map(async (s) => {
            requests++;
            try {
              const r = await client.request({
                host: '127.0.0.1',
                port: s.authPort,
                code: PacketCode.AccessRequest,
                attributes: [['User-Name', `m${g}`], ['User-Password', PASSWORD], ['NAS-Port-Id', `dorm-${g % 48}`]],
                secret: SECRET,
                timeoutsMs: [2_000, 3_000, 5_000],
              });
              if (r.attempts > 1) retransmitted++;
              latencies.push(r.ms);
              const accepted = r.reply.code === PacketCode.AccessAccept;
              const message = String(r.reply.get('Reply-Message') ?? '');
              if (accepted !== want.accept || (!want.accept && !message.startsWith('账户欠费'))) {
                wrong++;
                if (wrongExamples.length < 5) wrongExamples.push(`wave ${w}: m${g} (${group}) on ${s.name}: ${accepted ? 'Accept' : 'Reject'} "${message}"`);
              }
            } catch (e) {
              if (!(e instanceof RadiusTimeoutError)) throw e;
              unanswered++;
            }
          }),
        );
      });
      loginSeconds += (performance.now() - t0) / 1000;
      storming = false;
      await settleStorm;
    };

    await wave(1);
    await waitFor(async () => (await dueCycles(db, NOW)) === 0, 30_000, 'the workers to settle every cycle due at NOW', 100);

    // Thirty days on, on every instance at once: each advance settles what fell due, racing the others
    // and the wave-2 logins, which start as soon as every clock has moved.
    const later = new Date(NOW.getTime() + 30 * DAY_S * 1000);
    const dueLater = await dueCycles(db, later);
    const advances = services.map((s) => adminApi(s, 'POST', '/clock/advance', { body: { seconds: 30 * DAY_S }, timeoutMs: 60_000 }).then((r) => r.status, () => 0));
    await waitFor(
      async () => {
        const clocks = await Promise.all(services.map((s) => adminApi(s, 'GET', '/clock', { timeoutMs: 60_000 }).then((r) => r.json() as Promise<{ now: string }>)));
        return clocks.every((c) => c.now === later.toISOString());
      },
      30_000,
      'every instance clock to move 30 days on',
      10,
    );
    const dueAtWave2 = await dueCycles(db, later);
    ctx.log(`clocks moved 30 days on; ${dueAtWave2} of ${dueLater} newly due cycles still unsettled as wave 2 starts`);
    await wave(2);
    const advanceStatus = await Promise.all(advances);
    x.ok(advanceStatus.every((st) => st === 200), `clock advances answered ${advanceStatus.join(', ')}`);
    await waitFor(async () => (await dueCycles(db, later)) === 0, 30_000, 'the workers to settle every cycle due 30 days on', 100);

    x.eq(unanswered, 0, 'Access-Requests never answered (after 3 tries)');
    x.ok(wrong === 0, `${wrong} Access-Requests got the wrong decision, e.g. ${wrongExamples.join('; ')}`);

    const dropped: Record<string, number> = {};
    let dbDecisions = 0;
    for (const s of services) {
      const m = await scrapeMetrics(s.apiUrl);
      for (const [reason, v] of Object.entries(m.byLabel('radius_dropped_total', 'reason'))) dropped[reason] = (dropped[reason] ?? 0) + v;
      dbDecisions += m.sum('radius_auth_decisions_total', { path: 'db' });
    }
    const passFailures = services.reduce((sum, s) => sum + s.logCount(/settlement pass failed/), 0);
    const requestFailures = services.reduce((sum, s) => sum + s.logCount(/"msg":"request failed"/), 0);
    for (const reason of ['internal_error', 'db_unavailable', 'overload']) x.eq(dropped[reason] ?? 0, 0, `Access-Requests dropped as ${reason}`);
    x.eq(requestFailures, 0, '"request failed" log lines (an error the server did not expect)');
    x.eq(passFailures, 0, 'settlement passes that failed after their retries');
    // Statements PostgreSQL refused on a unique index: races the money core lost and retried, never surfaced.
    const uniqueViolations = pg.logCount(/violates unique constraint/);
    x.eq(settleErrors, 0, 'settle API calls that failed (5xx or no answer)');

    for (const s of services) await expectCleanStop(x, s, { named: true });

    let mismatched = 0;
    const examples: string[] = [];
    let modelBalances = 0;
    for (const r of await accountStates(db)) {
      const want = expected(groupOf(r.g, n), r.g, 2);
      modelBalances += want.balanceFen;
      if (r.balance_fen !== want.balanceFen || r.settlements !== want.settlements || r.running !== want.running || r.cycles !== want.cycles) {
        mismatched++;
        if (examples.length < 5) examples.push(`m${r.g} (${groupOf(r.g, n)}): ${JSON.stringify(r)} vs ${JSON.stringify(want)}`);
      }
    }
    x.ok(mismatched === 0, `${mismatched} accounts differ from the model, e.g. ${examples.join('; ')}`);
    const t = await moneyTotals(db);
    x.eq(t.balances, modelBalances, 'fen held in balances vs the model');
    x.eq(t.ledger, t.balances, 'sum of the ledger vs the balances');
    x.eq(t.doubleSettled, 0, 'cycles settled twice');
    x.eq(t.twoRunning, 0, 'accounts with two running cycles');
    const audit = await expectAuditPasses(x, pg, later);

    return {
      failures: x.failures,
      figures: {
        instances: INSTANCES,
        accounts: n,
        'cycles due when the instances were ready (wave 1)': dueAtStart,
        'cycles due 30 days on, unsettled as wave 2 started': `${dueAtWave2} of ${dueLater}`,
        'Access-Requests': requests,
        'Access-Requests per second': Math.round(requests / loginSeconds),
        'answer time p50 / p99 / max (ms, first try to answer)': (() => {
          latencies.sort((a, b) => a - b);
          const q = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
          return `${q(0.5)} / ${q(0.99)} / ${q(1)}`;
        })(),
        'answered after a retransmission (no answer within 2 s)': retransmitted,
        unanswered,
        'wrong decisions': wrong,
        'decisions through the money core (db path)': dbDecisions,
        'settle API calls (failed)': `${settleCalls} (${settleErrors})`,
        'settlement passes that failed': passFailures,
        'unique-index violations PostgreSQL logged (lost races, retried)': uniqueViolations,
        'cycles settled': t.settlements,
        'accounts differing from the model': mismatched,
        audit,
      },
    };
  },
};
