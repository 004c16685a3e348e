import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { ApiRole, ApiTokenRow, Database } from '../db/schema.ts';
import { recordAudit } from './audit-store.ts';

export const API_ROLES = ['admin', 'operator', 'payment', 'readonly'] as const satisfies readonly ApiRole[];

/** A token as staff see it: never the secret, which exists only in the creator's hands. */
export interface ApiToken {
  readonly id: number;
  readonly keyId: string;
  readonly name: string;
  readonly role: ApiRole;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

function toApiToken(r: ApiTokenRow): ApiToken {
  return {
    id: r.id,
    keyId: r.key_id,
    name: r.name,
    role: r.role,
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  };
}

/** Tokens look like `caaa_<12 hex key id>_<43 base64url chars: 256 random bits>`. */
const TOKEN_PATTERN = /^caaa_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function generateToken(): { token: string; keyId: string; hashHex: string } {
  const keyId = randomBytes(6).toString('hex');
  const token = `caaa_${keyId}_${randomBytes(32).toString('base64url')}`;
  return { token, keyId, hashHex: sha256(token).toString('hex') };
}

/** Constant-time comparison of two secrets of any length (their SHA-256 digests are compared). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export async function insertToken(
  db: Kysely<Database>,
  t: { name: string; role: ApiRole; createdBy: string; expiresAt?: Date | null },
): Promise<{ token: string; record: ApiToken }> {
  const g = generateToken();
  const row = await db
    .insertInto('api_tokens')
    .values({ key_id: g.keyId, token_hash: g.hashHex, name: t.name, role: t.role, created_by: t.createdBy, expires_at: t.expiresAt ?? null })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { token: g.token, record: toApiToken(row) };
}

/**
 * The live token a bearer string names, or null. The row is found by its public key id; the secret is
 * then compared in constant time, so response timing never tells how much of a guess was right.
 */
export async function verifyToken(db: Kysely<Database>, token: string, now: Date): Promise<ApiToken | null> {
  const m = TOKEN_PATTERN.exec(token);
  if (!m) return null;
  const row = await db.selectFrom('api_tokens').selectAll().where('key_id', '=', m[1]!).executeTakeFirst();
  if (!row) return null;
  if (!timingSafeEqual(sha256(token), Buffer.from(row.token_hash, 'hex'))) return null;
  if (row.revoked_at !== null) return null;
  if (row.expires_at !== null && row.expires_at.getTime() <= now.getTime()) return null;
  return toApiToken(row);
}

export async function getToken(db: Kysely<Database>, id: number): Promise<ApiToken | undefined> {
  const row = await db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toApiToken(row);
}

export async function listTokens(db: Kysely<Database>, opts: { includeRevoked: boolean }): Promise<ApiToken[]> {
  let q = db.selectFrom('api_tokens').selectAll().orderBy('id');
  if (!opts.includeRevoked) q = q.where('revoked_at', 'is', null);
  return (await q.execute()).map(toApiToken);
}

/** Revokes a token; returns it as it was before, or undefined when there is no such token. */
export async function revokeToken(db: Kysely<Database>, id: number, now: Date): Promise<{ before: ApiToken; after: ApiToken } | undefined> {
  const before = await db.selectFrom('api_tokens').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
  if (!before) return undefined;
  const after = await db
    .updateTable('api_tokens')
    .set({ revoked_at: before.revoked_at ?? now })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { before: toApiToken(before), after: toApiToken(after) };
}

/** Records use at most once a minute per token, so reads do not turn into a write per request. */
export async function touchToken(db: Kysely<Database>, id: number, now: Date): Promise<void> {
  await db
    .updateTable('api_tokens')
    .set({ last_used_at: now })
    .where('id', '=', id)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', new Date(now.getTime() - 60_000))]))
    .execute();
}

/**
 * On a fresh install (no token was ever created), creates the first admin token and returns its
 * secret for the caller to show once; null otherwise. An advisory lock makes instances starting
 * together create one.
 */
export async function ensureBootstrapToken(db: Kysely<Database>): Promise<{ token: string; record: ApiToken } | null> {
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(7263004)`.execute(trx);
    const any = await trx.selectFrom('api_tokens').select('id').limit(1).executeTakeFirst();
    if (any) return null;
    const created = await insertToken(trx, { name: 'bootstrap', role: 'admin', createdBy: 'first start' });
    await recordAudit(trx, {
      actor: 'system:first-start',
      action: 'token.create',
      targetType: 'token',
      targetId: created.record.id,
      after: { name: created.record.name, role: created.record.role },
    });
    return created;
  });
}
