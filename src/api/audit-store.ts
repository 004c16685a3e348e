import type { Kysely } from 'kysely';
import type { AuditLogRow, Database } from '../db/schema.ts';

/** One write through the API: who, what, on what, the state before and after, and the request. */
export interface AuditInput {
  readonly actor: string;
  /** `<resource>.<verb>`, e.g. `account.disable`. */
  readonly action: string;
  readonly targetType: string;
  readonly targetId?: string | number | null;
  readonly before?: unknown;
  readonly after?: unknown;
  readonly requestId?: string | null;
}

export interface AuditRecord {
  readonly id: number;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly targetType: string;
  readonly targetId: string | null;
  readonly before: unknown;
  readonly after: unknown;
  readonly requestId: string | null;
}

function toAuditRecord(r: AuditLogRow): AuditRecord {
  return {
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    before: r.before ?? null,
    after: r.after ?? null,
    requestId: r.request_id,
  };
}

function json(v: unknown): string | null {
  return v === undefined || v === null ? null : JSON.stringify(v);
}

/** Appends an audit record; pass the transaction that makes the change so both commit or neither. */
export async function recordAudit(db: Kysely<Database>, a: AuditInput): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      actor: a.actor,
      action: a.action,
      target_type: a.targetType,
      target_id: a.targetId === undefined || a.targetId === null ? null : String(a.targetId),
      before: json(a.before),
      after: json(a.after),
      request_id: a.requestId ?? null,
    })
    .execute();
}

/** Audit records newest first with a keyset cursor on id, optionally for one target or actor. */
export async function listAudit(
  db: Kysely<Database>,
  opts: { targetType?: string | undefined; targetId?: string | undefined; actor?: string | undefined; action?: string | undefined; beforeId?: number | undefined; limit: number },
): Promise<AuditRecord[]> {
  let q = db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(opts.limit);
  if (opts.beforeId !== undefined) q = q.where('id', '<', opts.beforeId);
  if (opts.targetType) q = q.where('target_type', '=', opts.targetType);
  if (opts.targetId) q = q.where('target_id', '=', opts.targetId);
  if (opts.actor) q = q.where('actor', '=', opts.actor);
  if (opts.action) q = q.where('action', '=', opts.action);
  return (await q.execute()).map(toAuditRecord);
}
