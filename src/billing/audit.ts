import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

export interface AuditCheck {
  readonly name: string;
  readonly checked: number;
  readonly mismatches: number;
  /** Up to ten offending ids, for a human to look at. */
  readonly examples: readonly (string | number)[];
}

export interface AuditReport {
  readonly ok: boolean;
  readonly checks: readonly AuditCheck[];
}

async function count(db: Kysely<Database>, table: 'accounts' | 'cycles' | 'ledger_entries'): Promise<number> {
  const r = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

async function check(db: Kysely<Database>, name: string, checked: number, query: ReturnType<typeof sql<{ id: number }>>): Promise<AuditCheck> {
  const rows = await sql<{ id: number; total: number }>`
    SELECT q.id, count(*) OVER ()::bigint AS total FROM (${query}) q ORDER BY q.id LIMIT 10`.execute(db);
  return { name, checked, mismatches: rows.rows[0]?.total ?? 0, examples: rows.rows.map((r) => r.id) };
}

/**
 * Proves the ledger on a live database: every balance equals the sum of its entries and each
 * entry's balance_after chains from the previous one; every ended cycle older than `graceSeconds`
 * is settled, and every settled cycle has exactly one settlement entry of its fee (and no other).
 */
export async function auditLedger(db: Kysely<Database>, now: Date, graceSeconds = 3600): Promise<AuditReport> {
  const accounts = await count(db, 'accounts');
  const cycles = await count(db, 'cycles');
  const entries = await count(db, 'ledger_entries');
  const dueBefore = new Date(now.getTime() - graceSeconds * 1000);
  const checks = [
    await check(db, 'balance equals the sum of ledger entries', accounts, sql<{ id: number }>`
      SELECT a.id FROM accounts a
      LEFT JOIN (SELECT account_id, sum(amount_fen) AS s FROM ledger_entries GROUP BY account_id) l ON l.account_id = a.id
      WHERE a.balance_fen <> coalesce(l.s, 0)`),
    await check(db, 'each entry balance_after chains from the previous entry', entries, sql<{ id: number }>`
      SELECT id FROM (
        SELECT id, balance_after_fen, amount_fen,
               lag(balance_after_fen, 1, 0::bigint) OVER (PARTITION BY account_id ORDER BY id) AS prev
        FROM ledger_entries) e
      WHERE e.balance_after_fen <> e.prev + e.amount_fen`),
    await check(db, 'latest balance_after equals the balance', accounts, sql<{ id: number }>`
      SELECT a.id FROM accounts a
      JOIN LATERAL (SELECT balance_after_fen FROM ledger_entries WHERE account_id = a.id ORDER BY id DESC LIMIT 1) l ON true
      WHERE l.balance_after_fen <> a.balance_fen`),
    await check(db, 'every settled cycle has exactly one settlement entry of its fee', cycles, sql<{ id: number }>`
      SELECT c.id FROM cycles c
      LEFT JOIN (
        SELECT cycle_id, count(*) AS n, min(-amount_fen) AS lo, max(-amount_fen) AS hi
        FROM ledger_entries WHERE kind = 'settlement' GROUP BY cycle_id) l ON l.cycle_id = c.id
      WHERE c.settled_at IS NOT NULL AND (l.n IS DISTINCT FROM 1 OR l.lo <> c.fee_fen OR l.hi <> c.fee_fen)`),
    await check(db, 'no settlement entry for a running cycle', cycles, sql<{ id: number }>`
      SELECT c.id FROM cycles c JOIN ledger_entries l ON l.cycle_id = c.id AND l.kind = 'settlement'
      WHERE c.settled_at IS NULL`),
    await check(db, 'settlement entries take effect at their cycle\'s anniversary', entries, sql<{ id: number }>`
      SELECT l.id FROM ledger_entries l JOIN cycles c ON c.id = l.cycle_id
      WHERE l.kind = 'settlement' AND (l.effective_at <> c.ends_at OR l.account_id <> c.account_id)`),
    await check(db, `every cycle ended before ${dueBefore.toISOString()} is settled`, cycles, sql<{ id: number }>`
      SELECT id FROM cycles WHERE settled_at IS NULL AND ends_at <= ${dueBefore}`),
    await check(db, 'an account\'s cycles follow each other without overlap', cycles, sql<{ id: number }>`
      SELECT id FROM (
        SELECT id, seq, started_at, lag(ends_at) OVER w AS prev_end, lag(seq) OVER w AS prev_seq
        FROM cycles WINDOW w AS (PARTITION BY account_id ORDER BY seq)) c
      WHERE c.prev_end IS NOT NULL AND (c.started_at < c.prev_end OR c.seq <> c.prev_seq + 1)`),
  ];
  return { ok: checks.every((c) => c.mismatches === 0), checks };
}

export function formatAudit(r: AuditReport): string {
  const lines = r.checks.map(
    (c) => `${c.mismatches === 0 ? 'ok  ' : 'FAIL'} ${c.name}: ${c.checked} checked, ${c.mismatches} mismatched${c.examples.length ? ` (e.g. ${c.examples.join(', ')})` : ''}`,
  );
  lines.push(r.ok ? 'audit passed' : 'audit FAILED');
  return lines.join('\n');
}
