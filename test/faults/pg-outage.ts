import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connection.ts';
import { RadiusTimeoutError } from '../../src/radius/client.ts';
import { PacketCode } from '../../src/radius/packet.ts';
import type { AttributeInput } from '../../src/radius/attributes.ts';
import { dueCycles, moneyTotals, PASSWORD, passwordHash, seedNas, seedTopUps } from './db.ts';
import {
  adminApi,
  Expectations,
  expectAuditPasses,
  expectCleanStop,
  openRadiusClient,
  randomInt,
  scenarioDatabase,
  scrapeMetrics,
  serviceEnv,
  startService,
  waitFor,
  type Scenario,
} from './harness.ts';

const NOW = new Date('2026-09-01T08:00:00Z');
const SECRET = 'dorm-bras-secret';
const BALANCE = 10_000;
/** Replies this long after PostgreSQL is down may still be for work committed before it went. */
const GRACE_MS = 250;

interface Window {
  readonly mode: 'fast' | 'immediate';
  /** pg_ctl stop has returned: the server is gone. */
  downAt: number;
  /** pg_ctl start is called: nothing can be stored before this. */
  startAt: number;
  /** pg_ctl start has returned. */
  upAt: number;
  answered: number;
  acked: number;
  sent: number;
  statusAnswered: boolean | null;
  recoveryMs: number | null;
}

interface Acked {
  start: boolean;
  interimOctets: number;
  stop: boolean;
}

/** Accounts whose cycle falls due when the clock moves two days on, in the middle of the first outage. */
const DUE_BALANCE = 5_000;

async function seed(db: Db, n: number, probes: number, due: number, tariffId: number): Promise<void> {
  const hash = await passwordHash();
  await sql`
    INSERT INTO accounts (username, kind, password_hash, balance_fen)
    SELECT 'o' || g, 'student', ${hash}, ${BALANCE}::bigint FROM generate_series(1, ${n}::int) g
    UNION ALL
    SELECT 'p' || g, 'student', ${hash}, ${BALANCE}::bigint FROM generate_series(1, ${probes}::int) g
    UNION ALL
    SELECT 'd' || g, 'student', ${hash}, ${DUE_BALANCE}::bigint FROM generate_series(1, ${due}::int) g`.execute(db);
  await seedTopUps(db, NOW);
  await sql`
    INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
    SELECT id, 1, ${NOW}::timestamptz - interval '29 days', ${NOW}::timestamptz + interval '1 day', 2000, ${tariffId}, 'login'
    FROM accounts WHERE username LIKE 'd%'`.execute(db);
  await seedNas(db, { name: 'dorm-bras', address: '127.0.0.1', secret: SECRET, area: 'dorm' });
}

/**
 * Scenario 3: PostgreSQL is stopped (once fast, once immediate, a crash) and started again under auth and
 * accounting load. While it is down the server must answer nothing (so the NAS fails over) and so
 * acknowledge no accounting it did not store; once it is back the same process must serve again, and
 * every accounting record it acknowledged, before, between or after, must be in the database.
 */
export const pgOutage: Scenario = {
  id: 'pg-outage',
  title: 'PostgreSQL stopped and restarted under auth and accounting load',
  budgetMs: (quick) => (quick ? 120_000 : 180_000),
  async run(ctx, cleanup) {
    const n = ctx.quick ? 500 : 2_000;
    const probes = 200;
    const outageMs = ctx.quick ? 3_000 : 5_000;
    const steadyMs = ctx.quick ? 2_000 : 4_000;
    const lanes = 8;
    const x = new Expectations();

    const { pg, db, tariffId } = await scenarioDatabase(ctx, cleanup);
    const dueAccounts = ctx.quick ? 1_000 : 3_000;
    await seed(db, n, probes, dueAccounts, tariffId);

    // Small settlement batches, one lane, a worker tick every 2 s: a pass takes long enough to be cut by the outage.
    const service = await startService(ctx, cleanup, serviceEnv(pg, NOW, { SETTLE_BATCH_SIZE: '25', SETTLE_CONCURRENCY: '1', SETTLE_CRON: '*/2 * * * * *' }));
    const client = await openRadiusClient(cleanup);

    const settledCount = async () => (await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM ledger_entries WHERE kind = 'settlement'`.execute(db)).rows[0]!.n;
    const windows: Window[] = [];
    const current = (): Window | undefined => windows.find((w) => w.downAt > 0 && w.startAt === 0);
    const noteAnswer = (sentAt: number, kind: 'auth' | 'acct') => {
      const at = Date.now();
      for (const w of windows) {
        if (w.downAt > 0 && at > w.downAt + GRACE_MS && (w.startAt === 0 || at < w.startAt)) {
          w.answered++;
          if (kind === 'acct') w.acked++;
        }
        if (w.upAt > 0 && w.recoveryMs === null && sentAt >= w.upAt) w.recoveryMs = at - w.upAt;
      }
    };

    let running = true;
    const stats = { auth: 0, authAnswered: 0, rejects: 0, acct: 0, acctAcked: 0, sessions: 0 };
    const rejectExamples: string[] = [];
    const accepted = new Set<number>();
    const acked = new Map<string, Acked>();

    const authLane = async () => {
      while (running) {
        const g = randomInt(ctx.random, 1, n);
        const sentAt = Date.now();
        const w = current();
        if (w) w.sent++;
        stats.auth++;
        try {
          const r = await client.request({
            host: '127.0.0.1',
            port: service.authPort,
            code: PacketCode.AccessRequest,
            attributes: [['User-Name', `o${g}`], ['User-Password', PASSWORD]],
            secret: SECRET,
            timeoutsMs: [250, 500],
          });
          stats.authAnswered++;
          noteAnswer(sentAt, 'auth');
          if (r.reply.code === PacketCode.AccessAccept) accepted.add(g);
          else {
            stats.rejects++;
            if (rejectExamples.length < 5) rejectExamples.push(`o${g}: ${String(r.reply.get('Reply-Message'))}`);
          }
        } catch (e) {
          if (!(e instanceof RadiusTimeoutError)) throw e;
          // The NAS fails over to its other server.
          await sleep(20);
        }
      }
    };

    const acctLane = async (lane: number) => {
      let k = 0;
      while (running) {
        const sessionId = `L${lane}-S${++k}`;
        const g = randomInt(ctx.random, 1, n);
        stats.sessions++;
        const record: Acked = { start: false, interimOctets: 0, stop: false };
        const steps: { status: string; octets: number }[] = [
          { status: 'Start', octets: 0 },
          { status: 'Interim-Update', octets: 1_000 },
          { status: 'Interim-Update', octets: 2_000 },
          { status: 'Stop', octets: 3_000 },
        ];
        for (const step of steps) {
          if (!running) break;
          const attributes: [string, AttributeInput][] = [
            ['User-Name', `o${g}`],
            ['Acct-Session-Id', sessionId],
            ['Acct-Status-Type', step.status],
            ['NAS-IP-Address', '127.0.0.1'],
            ['NAS-Port-Id', `dorm-${lane}`],
            ['Acct-Session-Time', step.octets / 10],
            ['Acct-Input-Octets', step.octets],
            ['Acct-Output-Octets', step.octets * 2],
          ];
          if (step.status === 'Stop') attributes.push(['Acct-Terminate-Cause', 'User-Request']);
          const sentAt = Date.now();
          const w = current();
          if (w) w.sent++;
          stats.acct++;
          try {
            await client.request({ host: '127.0.0.1', port: service.acctPort, code: PacketCode.AccountingRequest, attributes, secret: SECRET, timeoutsMs: [250, 500, 1_000] });
            stats.acctAcked++;
            noteAnswer(sentAt, 'acct');
            if (step.status === 'Start') record.start = true;
            else if (step.status === 'Stop') record.stop = true;
            else record.interimOctets = Math.max(record.interimOctets, step.octets);
            acked.set(sessionId, { ...record });
          } catch (e) {
            if (!(e instanceof RadiusTimeoutError)) throw e;
          }
        }
      }
    };

    const load = Promise.all([...Array.from({ length: lanes }, authLane), ...Array.from({ length: lanes }, (_, i) => acctLane(i))]);
    let probeNext = 1;
    const probeLogin = async (): Promise<boolean> => {
      // An account never seen before: its first dorm login must open a cycle in the database.
      const g = probeNext++;
      try {
        const r = await client.request({ host: '127.0.0.1', port: service.authPort, code: PacketCode.AccessRequest, attributes: [['User-Name', `p${g}`], ['User-Password', PASSWORD]], secret: SECRET, timeoutsMs: [300, 600] });
        return r.reply.code === PacketCode.AccessAccept;
      } catch {
        return false;
      }
    };
    const statusServer = async (): Promise<boolean> => {
      try {
        await client.request({ host: '127.0.0.1', port: service.authPort, code: PacketCode.StatusServer, attributes: [], secret: SECRET, timeoutsMs: [300] });
        return true;
      } catch {
        return false;
      }
    };

    const later = new Date(NOW.getTime() + 2 * 86_400_000);
    let settledBeforeOutage = 0;
    let advanceStatus = 0;
    try {
      await sleep(steadyMs);
      for (const mode of ['fast', 'immediate'] as const) {
        const w: Window = { mode, downAt: 0, startAt: 0, upAt: 0, answered: 0, acked: 0, sent: 0, statusAnswered: null, recoveryMs: null };
        windows.push(w);
        if (mode === 'fast') {
          // Two days on, the d-accounts' cycles fall due: the advance runs a settlement pass, cut by the stop.
          void adminApi(service, 'POST', '/clock/advance', { body: { seconds: 2 * 86_400 } }).then(
            (r) => (advanceStatus = r.status),
            () => (advanceStatus = -1),
          );
          await waitFor(async () => (settledBeforeOutage = await settledCount()) > 0, 10_000, 'the settlement pass to start', 5);
        }
        await pg.stop(mode);
        w.downAt = Date.now();
        ctx.log(`postgresql stopped (${mode}); outage of ${outageMs} ms under load`);
        await sleep(outageMs / 2);
        w.statusAnswered = await statusServer();
        await sleep(outageMs / 2);
        w.startAt = Date.now();
        await pg.start();
        w.upAt = Date.now();
        await waitFor(() => w.recoveryMs !== null, 30_000, `answers after the ${mode} restart`, 20);
        const probeOk = await waitFor(probeLogin, 30_000, 'a first login (a new cycle) after the restart', 100);
        x.ok(probeOk, `a new account's first login was not accepted after the ${mode} restart`);
        ctx.log(`postgresql back; service answering again after ${w.recoveryMs} ms`);
        await sleep(steadyMs);
      }
    } finally {
      running = false;
      await load;
    }
    x.ok(service.alive, 'the service process is still the one started before the outages');

    for (const w of windows) {
      x.eq(w.answered, 0, `answers received while PostgreSQL was down (${w.mode} stop)`);
      x.eq(w.acked, 0, `accounting acknowledged while PostgreSQL was down (${w.mode} stop)`);
      x.ok(w.recoveryMs !== null && w.recoveryMs < 20_000, `the service did not answer within 20 s of PostgreSQL's ${w.mode} restart`);
    }
    x.ok(stats.rejects === 0, `${stats.rejects} funded accounts were rejected, e.g. ${rejectExamples.join('; ')}`);

    // Every acknowledged record is stored, as acknowledged.
    const ids = [...acked.keys()];
    const rows = await sql<{ session_id: string; started_at: Date | null; stopped_at: Date | null; input_octets: number }>`
      SELECT session_id, started_at, stopped_at, input_octets FROM acct_sessions WHERE session_id = ANY(${ids}::text[])`.execute(db);
    const stored = new Map(rows.rows.map((r) => [r.session_id, r]));
    let lost = 0;
    let ackedRecords = 0;
    const lostExamples: string[] = [];
    for (const [id, a] of acked) {
      const r = stored.get(id);
      ackedRecords += (a.start ? 1 : 0) + (a.stop ? 1 : 0) + (a.interimOctets > 0 ? 1 : 0);
      const ok = r !== undefined && (!a.start || r.started_at !== null) && (!a.stop || r.stopped_at !== null) && r.input_octets >= a.interimOctets;
      if (!ok) {
        lost++;
        if (lostExamples.length < 5) lostExamples.push(`${id}: acked ${JSON.stringify(a)}, stored ${JSON.stringify(r ?? null)}`);
      }
    }
    x.ok(lost === 0, `${lost} acknowledged sessions are missing or behind in the database, e.g. ${lostExamples.join('; ')}`);

    const acceptedWithoutCycle = (
      await sql<{ n: number }>`
        SELECT count(*)::bigint AS n FROM accounts a WHERE a.username = ANY(${[...accepted].map((g) => `o${g}`)}::text[])
          AND NOT EXISTS (SELECT 1 FROM cycles c WHERE c.account_id = a.id AND c.settled_at IS NULL)`.execute(db)
    ).rows[0]!.n;
    x.eq(acceptedWithoutCycle, 0, 'accepted dorm accounts without a running cycle');
    x.eq((await moneyTotals(db)).twoRunning, 0, 'accounts with two running cycles');
    // The settlement the outage cut short is finished by the worker, without a restart: each d-account
    // settled once at 20.00 yuan and renewed; nobody else had anything due.
    await waitFor(async () => (await dueCycles(db, later)) === 0, 30_000, 'the worker to finish the settlement cut by the outage', 100);
    const wrongDue = (
      await sql<{ n: number }>`
        SELECT count(*)::bigint AS n FROM accounts a WHERE a.username LIKE 'd%' AND (a.balance_fen <> ${DUE_BALANCE - 2000}
          OR (SELECT count(*) FROM ledger_entries l WHERE l.account_id = a.id AND l.kind = 'settlement') <> 1
          OR (SELECT count(*) FROM cycles c WHERE c.account_id = a.id AND c.settled_at IS NULL) <> 1)`.execute(db)
    ).rows[0]!.n;
    const t = await moneyTotals(db);
    x.eq(wrongDue, 0, 'accounts due at the outage that were not settled exactly once and renewed');
    x.eq(t.settlements, dueAccounts, 'settlements in all (one per due account)');
    x.eq(t.balances, n * BALANCE + probes * BALANCE + dueAccounts * (DUE_BALANCE - 2000), 'fen held in balances vs the model');
    x.eq(t.ledger, t.balances, 'sum of the ledger vs the balances');

    const m = await scrapeMetrics(service.apiUrl);
    const dropped = m.byLabel('radius_dropped_total', 'reason');
    await expectCleanStop(x, service);
    const audit = await expectAuditPasses(x, pg, later);

    const figure = (mode: 'fast' | 'immediate') => windows.find((w) => w.mode === mode);
    return {
      failures: x.failures,
      figures: {
        outages: windows.length,
        'outage length (ms)': outageMs,
        'requests sent during the outages': windows.reduce((s, w) => s + w.sent, 0),
        'answers during the outages': windows.reduce((s, w) => s + w.answered, 0),
        'recovery after fast stop (ms)': figure('fast')?.recoveryMs ?? 'never',
        'recovery after immediate stop (ms)': figure('immediate')?.recoveryMs ?? 'never',
        'Status-Server answered during the outages': windows.map((w) => `${w.mode}: ${w.statusAnswered ? 'yes' : 'no'}`).join(', '),
        'Access-Requests (answered)': `${stats.auth} (${stats.authAnswered})`,
        'Accounting-Requests (acknowledged)': `${stats.acct} (${stats.acctAcked})`,
        'acknowledged records checked': ackedRecords,
        'cycles due at the first outage (settled before it)': `${dueAccounts} (${settledBeforeOutage})`,
        'clock advance (its settlement pass cut by the outage) answered': advanceStatus,
        'acknowledged but not stored': lost,
        'dropped as db_unavailable': dropped.db_unavailable ?? 0,
        'restarts of the service': 0,
        audit,
      },
    };
  },
};
