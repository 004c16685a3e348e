import type { Kysely, Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import type { AccountKind, AccountRow, AccountStatus, Database } from '../db/schema.ts';

export interface Account {
  readonly id: number;
  readonly username: string;
  readonly kind: AccountKind;
  readonly displayName: string | null;
  readonly status: AccountStatus;
  readonly balanceFen: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export function toAccount(r: AccountRow): Account {
  return {
    id: r.id,
    username: r.username,
    kind: r.kind,
    displayName: r.display_name,
    status: r.status,
    balanceFen: r.balance_fen,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface NewAccount {
  readonly username: string;
  readonly kind: AccountKind;
  readonly displayName?: string | null;
  readonly passwordHash: string;
}

function isUniqueViolation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: string }).code === '23505';
}

export async function insertAccount(db: Kysely<Database>, a: NewAccount): Promise<Account> {
  try {
    const row = await db
      .insertInto('accounts')
      .values({ username: a.username, kind: a.kind, display_name: a.displayName ?? null, password_hash: a.passwordHash })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toAccount(row);
  } catch (e) {
    if (isUniqueViolation(e)) throw new AppError('conflict', `account ${a.username} already exists / 账号已存在`);
    throw e;
  }
}

export async function findAccount(db: Kysely<Database>, username: string): Promise<Account | undefined> {
  const row = await db.selectFrom('accounts').selectAll().where('username', '=', username).executeTakeFirst();
  return row && toAccount(row);
}

export async function getAccount(db: Kysely<Database>, username: string): Promise<Account> {
  const a = await findAccount(db, username);
  if (!a) throw new AppError('not_found', `no account ${username} / 账号不存在`);
  return a;
}

/** Locks the account row: the one serialisation point for every change of its money and cycles. */
export async function lockAccount(trx: Transaction<Database>, by: { username: string } | { id: number }): Promise<Account> {
  let q = trx.selectFrom('accounts').selectAll();
  q = 'username' in by ? q.where('username', '=', by.username) : q.where('id', '=', by.id);
  const row = await q.forUpdate().executeTakeFirst();
  if (!row) throw new AppError('not_found', `no account ${'username' in by ? by.username : `#${by.id}`} / 账号不存在`);
  return toAccount(row);
}

export async function setBalance(trx: Transaction<Database>, accountId: number, balanceFen: number, now: Date): Promise<void> {
  await trx.updateTable('accounts').set({ balance_fen: balanceFen, updated_at: now }).where('id', '=', accountId).execute();
}

export async function setStatus(db: Kysely<Database>, username: string, status: AccountStatus, now: Date): Promise<Account> {
  const row = await db
    .updateTable('accounts')
    .set({ status, updated_at: now })
    .where('username', '=', username)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new AppError('not_found', `no account ${username} / 账号不存在`);
  return toAccount(row);
}

export async function setPasswordHash(db: Kysely<Database>, username: string, passwordHash: string, now: Date): Promise<void> {
  const r = await db
    .updateTable('accounts')
    .set({ password_hash: passwordHash, updated_at: now })
    .where('username', '=', username)
    .executeTakeFirst();
  if (r.numUpdatedRows === 0n) throw new AppError('not_found', `no account ${username} / 账号不存在`);
}

export async function getPasswordHash(db: Kysely<Database>, username: string): Promise<{ id: number; status: AccountStatus; passwordHash: string } | undefined> {
  const row = await db.selectFrom('accounts').select(['id', 'status', 'password_hash']).where('username', '=', username).executeTakeFirst();
  return row && { id: row.id, status: row.status, passwordHash: row.password_hash };
}

/** Accounts by username, optionally filtered by a prefix/substring, with a stable keyset cursor on id. */
export async function listAccounts(
  db: Kysely<Database>,
  opts: { q?: string | undefined; status?: AccountStatus | undefined; kind?: AccountKind | undefined; afterId?: number | undefined; limit: number },
): Promise<Account[]> {
  let q = db.selectFrom('accounts').selectAll().orderBy('id').limit(opts.limit);
  if (opts.afterId !== undefined) q = q.where('id', '>', opts.afterId);
  if (opts.q) {
    const pattern = `%${opts.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where((eb) => eb.or([eb('username', 'ilike', pattern), eb('display_name', 'ilike', pattern)]));
  }
  if (opts.status) q = q.where('status', '=', opts.status);
  if (opts.kind) q = q.where('kind', '=', opts.kind);
  return (await q.execute()).map(toAccount);
}
