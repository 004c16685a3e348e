import { sql } from 'kysely';
import type { AttributeInput } from '../../src/radius/attributes.ts';
import { RadiusTimeoutError } from '../../src/radius/client.ts';
import { PacketCode } from '../../src/radius/packet.ts';
import { seedNas } from './db.ts';
import { Expectations, openRadiusClient, randomInt, scenarioDatabase, scrapeMetrics, serviceEnv, startService, type Scenario } from './harness.ts';

const NOW = new Date('2026-09-01T08:00:00Z');
const SECRET = 'dorm-bras-secret';

/**
 * A regression guard for a finding fixed in 02feb0f (see docs/faults.md): Accounting-On from one NAS, interleaved with
 * Interim-Updates for a few hundred of that NAS's sessions, with PostgreSQL healthy. The group-commit writer
 * runs several transactions at once; one that holds an Accounting-On barrier and upserts locks its rows in
 * two sorted runs, so two of them can deadlock, and a batch that loses three times is dropped as
 * db_unavailable: what this scenario found. Multi-statement batches now run alone. Passes when no deadlock
 * is logged and nothing is dropped.
 */
export const accountingOnStorm: Scenario = {
  id: 'accounting-on-storm',
  title: 'Accounting-On interleaved with Interim-Updates of the same NAS, database healthy',
  budgetMs: () => 60_000,
  async run(ctx, cleanup) {
    const sessions = 300;
    const seconds = ctx.quick ? 5 : 10;
    const x = new Expectations();
    const { pg, db } = await scenarioDatabase(ctx, cleanup);
    await seedNas(db, { name: 'bras', address: '127.0.0.1', secret: SECRET, area: 'dorm' });
    const service = await startService(ctx, cleanup, serviceEnv(pg, NOW));
    const client = await openRadiusClient(cleanup);
    const acct = (attributes: [string, AttributeInput][]) =>
      client.request({ host: '127.0.0.1', port: service.acctPort, code: PacketCode.AccountingRequest, attributes, secret: SECRET, timeoutsMs: [1_000, 2_000, 4_000] });
    const session = (k: number): [string, AttributeInput][] => [['User-Name', `u${k}`], ['Acct-Session-Id', `s-${k}`], ['NAS-IP-Address', '127.0.0.1'], ['NAS-Port', k]];

    for (let k = 0; k < sessions; k++) await acct([...session(k), ['Acct-Status-Type', 'Start']]);
    let sent = 0;
    let unanswered = 0;
    let retried = 0;
    const until = Date.now() + seconds * 1_000;
    let counter = 0;
    const lane = async (on: boolean) => {
      while (Date.now() < until) {
        sent++;
        try {
          const r = on
            ? await acct([['Acct-Status-Type', 'Accounting-On'], ['NAS-IP-Address', '127.0.0.1'], ['Acct-Session-Id', `on-${++counter}`]])
            : await acct([...session(randomInt(ctx.random, 0, sessions - 1)), ['Acct-Status-Type', 'Interim-Update'], ['Acct-Input-Octets', ++counter]]);
          if (r.attempts > 1) retried++;
        } catch (e) {
          if (!(e instanceof RadiusTimeoutError)) throw e;
          unanswered++;
        }
      }
    };
    await Promise.all([lane(true), lane(true), ...Array.from({ length: 30 }, () => lane(false))]);
    const m = await scrapeMetrics(service.apiUrl);
    const unavailable = m.sum('radius_dropped_total', { reason: 'db_unavailable' });
    const deadlocks = pg.logCount(/deadlock detected/);
    x.eq(deadlocks, 0, 'deadlocks PostgreSQL logged');
    x.eq(unavailable, 0, 'accounting dropped as db_unavailable with the database up');
    x.eq(unanswered, 0, 'Accounting-Requests never answered');
    const stored = (await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM acct_sessions`.execute(db)).rows[0]!.n;
    const stopped = await service.stop();
    x.eq(stopped.code, 0, 'exit code of the graceful stop');
    return {
      failures: x.failures,
      figures: {
        'Accounting-Requests': sent,
        'answered only after a retransmission': retried,
        unanswered,
        'dropped as db_unavailable': unavailable,
        'deadlocks PostgreSQL logged': deadlocks,
        'sessions stored': stored,
      },
    };
  },
};
