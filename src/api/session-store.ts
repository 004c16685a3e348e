import type { Kysely } from 'kysely';
import type { AcctSessionRow, Area, Database } from '../db/schema.ts';

/** An accounting session (radacct row) as the API shows it. */
export interface Session {
  readonly id: number;
  readonly sessionId: string;
  readonly username: string;
  readonly accountId: number | null;
  readonly nasId: number | null;
  readonly nasIp: string;
  readonly nasIdentifier: string | null;
  readonly nasPortId: string | null;
  readonly area: Area;
  readonly framedIp: string | null;
  readonly callingStationId: string | null;
  readonly startedAt: Date | null;
  readonly updatedAt: Date;
  readonly stoppedAt: Date | null;
  readonly sessionSeconds: number;
  readonly inputOctets: number;
  readonly outputOctets: number;
  readonly terminateCause: string | null;
}

export function toSession(r: AcctSessionRow): Session {
  return {
    id: r.id,
    sessionId: r.session_id,
    username: r.username,
    accountId: r.account_id,
    nasId: r.nas_id,
    nasIp: r.nas_ip,
    nasIdentifier: r.nas_identifier,
    nasPortId: r.nas_port_id,
    area: r.area,
    framedIp: r.framed_ip,
    callingStationId: r.calling_station_id,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    stoppedAt: r.stopped_at,
    sessionSeconds: r.session_seconds,
    inputOctets: r.input_octets,
    outputOctets: r.output_octets,
    terminateCause: r.terminate_cause,
  };
}

export interface SessionFilter {
  readonly state: 'online' | 'stopped' | 'all';
  readonly accountId?: number | undefined;
  readonly username?: string | undefined;
  readonly nasId?: number | undefined;
  readonly nasIp?: string | undefined;
  readonly area?: Area | undefined;
  /** Sessions that were up at some instant in [from, to). */
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  readonly beforeId?: number | undefined;
  readonly limit: number;
}

/**
 * Sessions newest first with a keyset cursor on id (acct_sessions_history / _by_account /
 * _online_by_nas serve the common filters).
 */
export async function listSessions(db: Kysely<Database>, f: SessionFilter): Promise<Session[]> {
  let q = db.selectFrom('acct_sessions').selectAll().orderBy('id', 'desc').limit(f.limit);
  if (f.state === 'online') q = q.where('stopped_at', 'is', null);
  if (f.state === 'stopped') q = q.where('stopped_at', 'is not', null);
  if (f.accountId !== undefined) q = q.where('account_id', '=', f.accountId);
  if (f.username !== undefined) q = q.where('username', '=', f.username);
  if (f.nasId !== undefined) q = q.where('nas_id', '=', f.nasId);
  if (f.nasIp !== undefined) q = q.where('nas_ip', '=', f.nasIp);
  if (f.area !== undefined) q = q.where('area', '=', f.area);
  if (f.to !== undefined) q = q.where((eb) => eb.fn.coalesce('started_at', 'created_at'), '<', f.to);
  if (f.from !== undefined) {
    const from = f.from;
    q = q.where((eb) => eb.or([eb('stopped_at', 'is', null), eb('stopped_at', '>=', from)]));
  }
  if (f.beforeId !== undefined) q = q.where('id', '<', f.beforeId);
  return (await q.execute()).map(toSession);
}

export async function onlineSessionsOfAccount(db: Kysely<Database>, accountId: number): Promise<Session[]> {
  const rows = await db
    .selectFrom('acct_sessions')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('stopped_at', 'is', null)
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toSession);
}

export async function findSession(db: Kysely<Database>, id: number): Promise<Session | undefined> {
  const row = await db.selectFrom('acct_sessions').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toSession(row);
}
