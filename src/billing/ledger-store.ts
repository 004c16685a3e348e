import type { Kysely, Transaction } from 'kysely';
import type { Database, LedgerKind, LedgerRow } from '../db/schema.ts';

export interface LedgerEntry {
  readonly id: number;
  readonly accountId: number;
  readonly kind: LedgerKind;
  readonly amountFen: number;
  readonly balanceAfterFen: number;
  readonly channel: string | null;
  readonly orderId: string | null;
  readonly cycleId: number | null;
  readonly actor: string | null;
  readonly reason: string | null;
  readonly effectiveAt: Date;
  readonly createdAt: Date;
}

export function toLedgerEntry(r: LedgerRow): LedgerEntry {
  return {
    id: r.id,
    accountId: r.account_id,
    kind: r.kind,
    amountFen: r.amount_fen,
    balanceAfterFen: r.balance_after_fen,
    channel: r.channel,
    orderId: r.order_id,
    cycleId: r.cycle_id,
    actor: r.actor,
    reason: r.reason,
    effectiveAt: r.effective_at,
    createdAt: r.created_at,
  };
}

export interface NewLedgerEntry {
  readonly accountId: number;
  readonly kind: LedgerKind;
  readonly amountFen: number;
  readonly balanceAfterFen: number;
  readonly effectiveAt: Date;
  readonly channel?: string;
  readonly orderId?: string;
  readonly cycleId?: number;
  readonly actor?: string;
  readonly reason?: string;
}

function toRow(e: NewLedgerEntry) {
  return {
    account_id: e.accountId,
    kind: e.kind,
    amount_fen: e.amountFen,
    balance_after_fen: e.balanceAfterFen,
    effective_at: e.effectiveAt,
    channel: e.channel ?? null,
    order_id: e.orderId ?? null,
    cycle_id: e.cycleId ?? null,
    actor: e.actor ?? null,
    reason: e.reason ?? null,
  };
}

/** Appends an entry; the caller holds the account lock and writes the balance in the same transaction. */
export async function appendEntry(trx: Transaction<Database>, e: NewLedgerEntry): Promise<LedgerEntry> {
  return toLedgerEntry(await trx.insertInto('ledger_entries').values(toRow(e)).returningAll().executeTakeFirstOrThrow());
}

/** Appends a top-up unless its (channel, order id) was credited before; null means "already there". */
export async function appendTopUpOnce(trx: Transaction<Database>, e: NewLedgerEntry): Promise<LedgerEntry | null> {
  const row = await trx
    .insertInto('ledger_entries')
    .values(toRow(e))
    .onConflict((oc) => oc.columns(['channel', 'order_id']).where('kind', '=', 'top-up').doNothing())
    .returningAll()
    .executeTakeFirst();
  return row ? toLedgerEntry(row) : null;
}

export async function findTopUp(db: Kysely<Database>, channel: string, orderId: string): Promise<LedgerEntry | undefined> {
  const row = await db
    .selectFrom('ledger_entries')
    .selectAll()
    .where('kind', '=', 'top-up')
    .where('channel', '=', channel)
    .where('order_id', '=', orderId)
    .executeTakeFirst();
  return row && toLedgerEntry(row);
}

/** An account's entries newest first; `beforeId` is the keyset cursor, stable while rows are added. */
export async function listEntries(
  db: Kysely<Database>,
  accountId: number,
  opts: { beforeId?: number | undefined; limit: number },
): Promise<LedgerEntry[]> {
  let q = db.selectFrom('ledger_entries').selectAll().where('account_id', '=', accountId).orderBy('id', 'desc').limit(opts.limit);
  if (opts.beforeId !== undefined) q = q.where('id', '<', opts.beforeId);
  return (await q.execute()).map(toLedgerEntry);
}
