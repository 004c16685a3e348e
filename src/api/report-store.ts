import { sql, type Kysely } from 'kysely';
import type { AccountKind, Area, Database } from '../db/schema.ts';

/** The school's time zone: report days are Beijing days, whatever the server's zone. */
export const SCHOOL_TIME_ZONE = 'Asia/Shanghai' as const;

export interface RevenueDay {
  /** YYYY-MM-DD in Asia/Shanghai. */
  readonly day: string;
  readonly settlementFen: number;
  readonly settlements: number;
  readonly topUpFen: number;
  readonly topUps: number;
  readonly refundFen: number;
  readonly adjustmentFen: number;
}

/**
 * Settlement revenue (and the day's top-ups, refunds and adjustments) per Beijing day, every day of
 * [fromDay, toDay] listed, zero when nothing happened. Served by ledger_by_effective_at.
 */
export async function revenueDaily(db: Kysely<Database>, fromDay: string, toDay: string): Promise<RevenueDay[]> {
  const r = await sql<RevenueDay>`
    WITH days AS (
      SELECT d::date AS day FROM generate_series(${fromDay}::date, ${toDay}::date, interval '1 day') d
    ), sums AS (
      SELECT (effective_at AT TIME ZONE ${SCHOOL_TIME_ZONE})::date AS day,
             coalesce(sum(-amount_fen) FILTER (WHERE kind = 'settlement'), 0) AS settlement_fen,
             count(*) FILTER (WHERE kind = 'settlement') AS settlements,
             coalesce(sum(amount_fen) FILTER (WHERE kind = 'top-up'), 0) AS top_up_fen,
             count(*) FILTER (WHERE kind = 'top-up') AS top_ups,
             coalesce(sum(-amount_fen) FILTER (WHERE kind = 'refund'), 0) AS refund_fen,
             coalesce(sum(amount_fen) FILTER (WHERE kind = 'adjustment'), 0) AS adjustment_fen
      FROM ledger_entries
      WHERE effective_at >= (${fromDay}::date)::timestamp AT TIME ZONE ${SCHOOL_TIME_ZONE}
        AND effective_at < (${toDay}::date + 1)::timestamp AT TIME ZONE ${SCHOOL_TIME_ZONE}
      GROUP BY 1
    )
    SELECT to_char(days.day, 'YYYY-MM-DD') AS "day",
           coalesce(s.settlement_fen, 0) AS "settlementFen",
           coalesce(s.settlements, 0) AS "settlements",
           coalesce(s.top_up_fen, 0) AS "topUpFen",
           coalesce(s.top_ups, 0) AS "topUps",
           coalesce(s.refund_fen, 0) AS "refundFen",
           coalesce(s.adjustment_fen, 0) AS "adjustmentFen"
    FROM days LEFT JOIN sums s ON s.day = days.day
    ORDER BY days.day`.execute(db);
  return r.rows;
}

export interface ArrearsAccount {
  readonly id: number;
  readonly username: string;
  readonly kind: AccountKind;
  readonly displayName: string | null;
  readonly balanceFen: number;
  /** When its last cycle ended (its dorm service stopped); null when it never had one. */
  readonly lastCycleEndedAt: Date | null;
}

/**
 * Active accounts with no running cycle whose balance is below the threshold: a dorm login would be
 * refused with the arrears message. By default only accounts that have used the dorm network before.
 */
export async function arrears(
  db: Kysely<Database>,
  opts: { thresholdFen: number; now: Date; includeNeverUsed: boolean; afterId?: number | undefined; limit: number },
): Promise<{ items: ArrearsAccount[]; total: number }> {
  const where = sql`
    a.status = 'active' AND a.balance_fen < ${opts.thresholdFen}
    AND NOT EXISTS (SELECT 1 FROM cycles r WHERE r.account_id = a.id AND r.settled_at IS NULL AND r.ends_at > ${opts.now})
    AND (${opts.includeNeverUsed} OR lc.ends_at IS NOT NULL)`;
  const last = sql`LEFT JOIN LATERAL (SELECT ends_at FROM cycles c WHERE c.account_id = a.id ORDER BY seq DESC LIMIT 1) lc ON true`;
  const rows = await sql<ArrearsAccount>`
    SELECT a.id, a.username, a.kind, a.display_name AS "displayName", a.balance_fen AS "balanceFen", lc.ends_at AS "lastCycleEndedAt"
    FROM accounts a ${last}
    WHERE ${where} AND a.id > ${opts.afterId ?? 0}
    ORDER BY a.id
    LIMIT ${opts.limit}`.execute(db);
  const total = await sql<{ n: number }>`SELECT count(*) AS n FROM accounts a ${last} WHERE ${where}`.execute(db);
  return { items: rows.rows, total: Number(total.rows[0]?.n ?? 0) };
}

export interface DueCycle {
  readonly cycleId: number;
  readonly seq: number;
  readonly accountId: number;
  readonly username: string;
  readonly balanceFen: number;
  readonly feeFen: number;
  readonly startedAt: Date;
  readonly endsAt: Date;
}

/** Running cycles whose anniversary falls before `until` (overdue ones first), served by cycles_due. */
export async function cyclesDue(db: Kysely<Database>, until: Date, limit: number): Promise<{ items: DueCycle[]; total: number; feeFen: number }> {
  const rows = await sql<DueCycle>`
    SELECT c.id AS "cycleId", c.seq, a.id AS "accountId", a.username, a.balance_fen AS "balanceFen",
           c.fee_fen AS "feeFen", c.started_at AS "startedAt", c.ends_at AS "endsAt"
    FROM cycles c JOIN accounts a ON a.id = c.account_id
    WHERE c.settled_at IS NULL AND c.ends_at < ${until}
    ORDER BY c.ends_at, c.id
    LIMIT ${limit}`.execute(db);
  const totals = await sql<{ n: number; fee: number }>`
    SELECT count(*) AS n, coalesce(sum(fee_fen), 0) AS fee FROM cycles WHERE settled_at IS NULL AND ends_at < ${until}`.execute(db);
  return { items: rows.rows, total: Number(totals.rows[0]?.n ?? 0), feeFen: Number(totals.rows[0]?.fee ?? 0) };
}

export interface OnlineCount {
  readonly area: Area;
  readonly sessions: number;
  readonly accounts: number;
}

export interface OnlineByNas {
  readonly nasId: number | null;
  readonly nasName: string | null;
  readonly nasIp: string;
  readonly area: Area;
  readonly sessions: number;
}

/** Open sessions per area and per NAS (acct_sessions_online_by_nas). */
export async function onlineCounts(db: Kysely<Database>): Promise<{ areas: OnlineCount[]; byNas: OnlineByNas[] }> {
  const areas = await sql<OnlineCount>`
    SELECT area, count(*) AS sessions, count(DISTINCT coalesce(account_id::text, username)) AS accounts
    FROM acct_sessions WHERE stopped_at IS NULL GROUP BY area ORDER BY area`.execute(db);
  const byNas = await sql<OnlineByNas>`
    SELECT s.nas_id AS "nasId", n.name AS "nasName", host(s.nas_ip) AS "nasIp", s.area, count(*) AS sessions
    FROM acct_sessions s LEFT JOIN nas_clients n ON n.id = s.nas_id
    WHERE s.stopped_at IS NULL
    GROUP BY s.nas_id, n.name, s.nas_ip, s.area
    ORDER BY sessions DESC, "nasIp"`.execute(db);
  const byArea = new Map(areas.rows.map((r) => [r.area, r]));
  const all: OnlineCount[] = (['dorm', 'office'] as const).map((area) => ({
    area,
    sessions: Number(byArea.get(area)?.sessions ?? 0),
    accounts: Number(byArea.get(area)?.accounts ?? 0),
  }));
  return { areas: all, byNas: byNas.rows.map((r) => ({ ...r, sessions: Number(r.sessions) })) };
}
