/**
 * What the fault suite writes to and reads from a scenario's database: the seed (cheap password hashes, the
 * tariff, NAS clients, opening top-ups) and the figures and invariants the closing checks compare with a model.
 */
import { hash } from '@node-rs/argon2';
import { sql } from 'kysely';
import type { Db } from '../../src/db/connection.ts';

export const PASSWORD = 'Campus-2026';

let cheapHash: Promise<string> | null = null;

/**
 * An argon2id hash of PASSWORD at the smallest cost argon2 allows: the service verifies it exactly as a real
 * one (the parameters live in the hash), but thousands of first logins do not cost minutes of KDF time.
 */
export function passwordHash(): Promise<string> {
  cheapHash ??= hash(PASSWORD, { algorithm: 2, memoryCost: 8, timeCost: 1, parallelism: 1 });
  return cheapHash;
}

/** Records the tariff the service will run with (the defaults), so seeded cycles can name it. */
export async function seedTariff(db: Db, from: Date): Promise<number> {
  const r = await sql<{ id: number }>`
    INSERT INTO tariffs (fee_fen, cycle_seconds, threshold_fen, renewal, effective_from)
    VALUES (2000, ${30 * 86_400}, 2000, 'continuous', ${from}) RETURNING id`.execute(db);
  return r.rows[0]!.id;
}

export async function seedNas(
  db: Db,
  nas: { name: string; address: string; secret: string; area: 'dorm' | 'office'; messageAuthenticator?: 'require' | 'auto'; areaRules?: unknown[] },
): Promise<void> {
  await sql`
    INSERT INTO nas_clients (name, address, secret, area, message_authenticator, area_rules)
    VALUES (${nas.name}, ${nas.address}::cidr, ${nas.secret}, ${nas.area}, ${nas.messageAuthenticator ?? 'require'}, ${JSON.stringify(nas.areaRules ?? [])}::jsonb)`.execute(db);
}

/** Records every account's balance as a seed top-up at `at`, so the ledger adds up to the balances. */
export async function seedTopUps(db: Db, at: Date): Promise<void> {
  await sql`
    INSERT INTO ledger_entries (account_id, kind, amount_fen, balance_after_fen, channel, order_id, effective_at)
    SELECT id, 'top-up', balance_fen, balance_fen, 'seed', username, ${at} FROM accounts`.execute(db);
}

/** Cycles still running whose end is at or before `at`: what a settlement pass at `at` has left to do. */
export async function dueCycles(db: Db, at: Date): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM cycles WHERE settled_at IS NULL AND ends_at <= ${at}`.execute(db);
  return r.rows[0]!.n;
}

/** The money as the database holds it, in fen and entries, and the invariants no race may break. */
export interface MoneyTotals {
  readonly balances: number;
  readonly ledger: number;
  readonly topUps: number;
  readonly settledFen: number;
  /** Settlement entries. */
  readonly settlements: number;
  /** Cycles with more than one settlement entry. */
  readonly doubleSettled: number;
  /** Cycles marked settled without a settlement entry. */
  readonly unpaidSettled: number;
  /** Accounts with more than one running cycle. */
  readonly twoRunning: number;
}

export async function moneyTotals(db: Db): Promise<MoneyTotals> {
  const r = await sql<{ balances: number; ledger: number; top_ups: number; settled_fen: number; settlements: number; double_settled: number; unpaid_settled: number; two_running: number }>`
    SELECT (SELECT coalesce(sum(balance_fen), 0) FROM accounts)::bigint AS balances,
           (SELECT coalesce(sum(amount_fen), 0) FROM ledger_entries)::bigint AS ledger,
           (SELECT coalesce(sum(amount_fen), 0) FROM ledger_entries WHERE kind = 'top-up')::bigint AS top_ups,
           (SELECT coalesce(-sum(amount_fen), 0) FROM ledger_entries WHERE kind = 'settlement')::bigint AS settled_fen,
           (SELECT count(*) FROM ledger_entries WHERE kind = 'settlement')::bigint AS settlements,
           (SELECT count(*) FROM (SELECT cycle_id FROM ledger_entries WHERE kind = 'settlement' GROUP BY cycle_id HAVING count(*) > 1) d)::bigint AS double_settled,
           (SELECT count(*) FROM cycles c WHERE c.settled_at IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.cycle_id = c.id AND l.kind = 'settlement'))::bigint AS unpaid_settled,
           (SELECT count(*) FROM (SELECT account_id FROM cycles WHERE settled_at IS NULL GROUP BY account_id HAVING count(*) > 1) r)::bigint AS two_running`.execute(db);
  const t = r.rows[0]!;
  return {
    balances: t.balances,
    ledger: t.ledger,
    topUps: t.top_ups,
    settledFen: t.settled_fen,
    settlements: t.settlements,
    doubleSettled: t.double_settled,
    unpaidSettled: t.unpaid_settled,
    twoRunning: t.two_running,
  };
}

/** One account as the database holds it; `g` is its username after the one-letter prefix. */
export interface AccountState {
  readonly g: number;
  readonly balance_fen: number;
  readonly settlements: number;
  readonly settled_fen: number;
  readonly running: number;
  readonly cycles: number;
  readonly top_ups: number;
}

/** Every account's state, to compare with a scenario's model (after ANALYZE: the tables grew since the seed). */
export async function accountStates(db: Db): Promise<AccountState[]> {
  await sql`ANALYZE`.execute(db);
  const r = await sql<AccountState>`
    SELECT substr(a.username, 2)::int AS g, a.balance_fen,
           (SELECT count(*) FROM ledger_entries l WHERE l.account_id = a.id AND l.kind = 'settlement')::bigint AS settlements,
           (SELECT coalesce(-sum(amount_fen), 0) FROM ledger_entries l WHERE l.account_id = a.id AND l.kind = 'settlement')::bigint AS settled_fen,
           (SELECT count(*) FROM cycles c WHERE c.account_id = a.id AND c.settled_at IS NULL)::bigint AS running,
           (SELECT count(*) FROM cycles c WHERE c.account_id = a.id)::bigint AS cycles,
           (SELECT coalesce(sum(amount_fen), 0) FROM ledger_entries l WHERE l.account_id = a.id AND l.kind = 'top-up')::bigint AS top_ups
    FROM accounts a`.execute(db);
  return r.rows;
}
