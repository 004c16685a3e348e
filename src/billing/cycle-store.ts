import { sql, type Kysely, type Transaction } from 'kysely';
import type { AccountStatus, CycleRow, Database } from '../db/schema.ts';
import type { CycleOpening, RunningCycle, SettlementPlan } from './rules.ts';

export interface Cycle {
  readonly id: number;
  readonly accountId: number;
  readonly seq: number;
  readonly startedAt: Date;
  readonly endsAt: Date;
  readonly feeFen: number;
  readonly tariffId: number;
  readonly openedBy: 'login' | 'renewal';
  readonly settledAt: Date | null;
}

export function toCycle(r: CycleRow): Cycle {
  return {
    id: r.id,
    accountId: r.account_id,
    seq: r.seq,
    startedAt: r.started_at,
    endsAt: r.ends_at,
    feeFen: r.fee_fen,
    tariffId: r.tariff_id,
    openedBy: r.opened_by,
    settledAt: r.settled_at,
  };
}

export function toRunning(c: Cycle): RunningCycle {
  return { id: c.id, seq: c.seq, startedAt: c.startedAt, endsAt: c.endsAt, feeFen: c.feeFen };
}

export async function findRunningCycle(db: Kysely<Database>, accountId: number): Promise<Cycle | undefined> {
  const row = await db.selectFrom('cycles').selectAll().where('account_id', '=', accountId).where('settled_at', 'is', null).executeTakeFirst();
  return row && toCycle(row);
}

export async function lastSeq(db: Kysely<Database>, accountId: number): Promise<number> {
  const row = await db
    .selectFrom('cycles')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  return row?.seq ?? 0;
}

export async function insertCycle(trx: Transaction<Database>, accountId: number, o: CycleOpening): Promise<Cycle> {
  const row = await trx
    .insertInto('cycles')
    .values({
      account_id: accountId,
      seq: o.seq,
      started_at: o.startedAt,
      ends_at: o.endsAt,
      fee_fen: o.feeFen,
      tariff_id: o.tariffId,
      opened_by: o.openedBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toCycle(row);
}

/** Marks a cycle settled at its anniversary; false when it already was (a lost race). */
export async function markSettled(trx: Transaction<Database>, cycleId: number): Promise<boolean> {
  const r = await trx
    .updateTable('cycles')
    .set((eb) => ({ settled_at: eb.ref('ends_at') }))
    .where('id', '=', cycleId)
    .where('settled_at', 'is', null)
    .executeTakeFirst();
  return r.numUpdatedRows === 1n;
}

export async function listCycles(db: Kysely<Database>, accountId: number, opts: { beforeSeq?: number | undefined; limit: number }): Promise<Cycle[]> {
  let q = db.selectFrom('cycles').selectAll().where('account_id', '=', accountId).orderBy('seq', 'desc').limit(opts.limit);
  if (opts.beforeSeq !== undefined) q = q.where('seq', '<', opts.beforeSeq);
  return (await q.execute()).map(toCycle);
}

/** A due cycle with its account, as locked for settlement. */
export interface DueCycle {
  readonly cycle: RunningCycle;
  readonly accountId: number;
  readonly username: string;
  readonly balanceFen: number;
  readonly status: AccountStatus;
}

/**
 * Takes up to `limit` due cycles in anniversary order, locking their accounts and skipping accounts
 * another worker or a login holds, so concurrent workers never wait for or double-settle each other.
 * One running cycle per account means the batch holds each account at most once.
 */
export async function takeDueBatch(trx: Transaction<Database>, now: Date, limit: number): Promise<DueCycle[]> {
  const rows = await sql<{
    id: number;
    seq: number;
    started_at: Date;
    ends_at: Date;
    fee_fen: number;
    account_id: number;
    username: string;
    balance_fen: number;
    status: AccountStatus;
  }>`
    SELECT c.id, c.seq, c.started_at, c.ends_at, c.fee_fen, a.id AS account_id, a.username, a.balance_fen, a.status
    FROM cycles c JOIN accounts a ON a.id = c.account_id
    WHERE c.settled_at IS NULL AND c.ends_at <= ${now}
    ORDER BY c.ends_at, c.id
    LIMIT ${limit}
    FOR UPDATE OF a SKIP LOCKED`.execute(trx);
  return rows.rows.map((r) => ({
    cycle: { id: r.id, seq: r.seq, startedAt: r.started_at, endsAt: r.ends_at, feeFen: r.fee_fen },
    accountId: r.account_id,
    username: r.username,
    balanceFen: r.balance_fen,
    status: r.status,
  }));
}

export class SettlementRaceError extends Error {
  constructor() {
    super('a cycle in the batch was settled concurrently; the batch is retried');
    this.name = 'SettlementRaceError';
  }
}

/**
 * Applies settlement plans set-wise (one statement per table) for accounts whose rows are locked:
 * cycles marked settled, one settlement entry each, balances written, renewals opened. Throws
 * SettlementRaceError, rolling the batch back, if any cycle turns out settled already.
 */
export async function applySettlements(
  trx: Transaction<Database>,
  items: readonly { accountId: number; plan: SettlementPlan }[],
  now: Date,
): Promise<void> {
  if (items.length === 0) return;
  const cycleIds = items.map((i) => i.plan.cycleId);
  const updated = await sql`
    UPDATE cycles SET settled_at = ends_at
    WHERE id = ANY(${cycleIds}::bigint[]) AND settled_at IS NULL`.execute(trx);
  if (Number(updated.numAffectedRows) !== items.length) throw new SettlementRaceError();

  const accountIds = items.map((i) => i.accountId);
  const amounts = items.map((i) => -i.plan.chargeFen);
  const after = items.map((i) => i.plan.balanceAfterFen);
  const effective = items.map((i) => i.plan.effectiveAt.toISOString());
  await sql`
    INSERT INTO ledger_entries (account_id, kind, amount_fen, balance_after_fen, cycle_id, effective_at)
    SELECT u.account_id, 'settlement', u.amount, u.after, u.cycle_id, u.effective_at
    FROM unnest(${accountIds}::bigint[], ${amounts}::bigint[], ${after}::bigint[], ${cycleIds}::bigint[], ${effective}::timestamptz[])
      AS u(account_id, amount, after, cycle_id, effective_at)`.execute(trx);
  await sql`
    UPDATE accounts a SET balance_fen = u.after, updated_at = ${now}
    FROM unnest(${accountIds}::bigint[], ${after}::bigint[]) AS u(id, after)
    WHERE a.id = u.id`.execute(trx);

  const renewals = items.filter((i) => i.plan.renewal !== null);
  if (renewals.length > 0) {
    const r = renewals.map((i) => i.plan.renewal!);
    await sql`
      INSERT INTO cycles (account_id, seq, started_at, ends_at, fee_fen, tariff_id, opened_by)
      SELECT u.account_id, u.seq, u.started_at, u.ends_at, u.fee_fen, u.tariff_id, 'renewal'
      FROM unnest(${renewals.map((i) => i.accountId)}::bigint[], ${r.map((x) => x.seq)}::int[],
                  ${r.map((x) => x.startedAt.toISOString())}::timestamptz[], ${r.map((x) => x.endsAt.toISOString())}::timestamptz[],
                  ${r.map((x) => x.feeFen)}::bigint[], ${r.map((x) => x.tariffId)}::bigint[])
        AS u(account_id, seq, started_at, ends_at, fee_fen, tariff_id)`.execute(trx);
  }
}
