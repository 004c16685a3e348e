import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { ErrorCause, type AttributeInput } from './attributes.ts';
import { RadiusClient, RadiusTimeoutError } from './client.ts';
import type { Dictionary } from './dictionary.ts';
import type { RadiusMetrics } from './metrics.ts';
import { normalizeIp, parseIp, type NasEntry } from './nas-table.ts';
import { PacketCode } from './packet.ts';

/** Why a session is disconnected; recorded in disconnect_requests.reason. */
export type DisconnectReason = 'arrears' | 'ended' | 'disabled' | 'staff';

/** The result of one RFC 5176 Disconnect-Request exchange, as recorded in disconnect_requests. */
export interface DisconnectOutcome {
  readonly sessionId: number;
  readonly nasIp: string;
  readonly outcome: 'ack' | 'nak' | 'timeout' | 'error';
  /** Error-Cause of a Disconnect-NAK (RFC 5176 §3.5), else null. */
  readonly errorCause: number | null;
  readonly attempts: number;
}

/**
 * Sends RFC 5176 Disconnect-Requests to the NAS holding a session and records each outcome.
 * Injected into the settlement worker and the API by main.ts.
 */
export interface Disconnector {
  /** Disconnects one online session (acct_sessions.id); a session already stopped is reported as `error`. */
  disconnectSession(sessionId: number, reason: DisconnectReason, requestedBy: string | null): Promise<DisconnectOutcome>;
  /** Disconnects every online session of an account, of one area when given. */
  disconnectAccount(
    accountId: number,
    reason: DisconnectReason,
    requestedBy: string | null,
    area?: 'dorm' | 'office',
  ): Promise<DisconnectOutcome[]>;
  /**
   * Disconnects the online sessions of many accounts (a settlement batch): one query finds them, and at
   * most BULK_CONCURRENCY exchanges run at once across all such calls, so a large pass cannot flood the
   * NAS or the database.
   */
  disconnectAccounts(
    accounts: readonly { readonly accountId: number; readonly reason: DisconnectReason }[],
    requestedBy: string | null,
    area?: 'dorm' | 'office',
  ): Promise<DisconnectOutcome[]>;
}

/** Disconnect exchanges in flight at once for bulk (settlement) disconnects. */
export const BULK_CONCURRENCY = 64;

export interface DisconnectDeps {
  readonly db: Kysely<Database>;
  readonly dictionary: Dictionary;
  readonly log: Logger;
  readonly metrics: RadiusMetrics;
  /** The billing clock: stamps stopped_at of a disconnected session. */
  readonly now: () => Date;
  /** The NAS client owning an address, for its secret and CoA port. */
  readonly nasFor: (address: string) => NasEntry | undefined;
  /** Waits between tries; default 1 s, 2 s, 4 s (three tries). */
  readonly timeoutsMs?: readonly number[];
}

interface SessionRow {
  id: number;
  account_id: number | null;
  username: string;
  session_id: string;
  nas_ip: string;
  framed_ip: string | null;
  stopped_at: Date | null;
}

/**
 * The RFC 5176 Disconnect-Request sender: identifies the session by User-Name, Acct-Session-Id, the NAS
 * address and Framed-IP-Address (§3), signs it with Message-Authenticator (§3.4), retries the identical
 * packet, verifies the reply, and records every request with its outcome in disconnect_requests. A
 * Disconnect-ACK (or a NAK saying the session is already gone, Error-Cause 503) stops the session.
 */
export class RadiusDisconnector implements Disconnector {
  #v4: Promise<RadiusClient> | null = null;
  #v6: Promise<RadiusClient> | null = null;

  constructor(private readonly deps: DisconnectDeps) {}

  #client(family: 4 | 6): Promise<RadiusClient> {
    if (family === 4) return (this.#v4 ??= RadiusClient.open(this.deps.dictionary, { family: 4 }));
    return (this.#v6 ??= RadiusClient.open(this.deps.dictionary, { family: 6 }));
  }

  async disconnectSession(sessionId: number, reason: DisconnectReason, requestedBy: string | null): Promise<DisconnectOutcome> {
    const { db } = this.deps;
    const s = await db
      .selectFrom('acct_sessions')
      .select(['id', 'account_id', 'username', 'session_id', 'nas_ip', 'framed_ip', 'stopped_at'])
      .where('id', '=', sessionId)
      .executeTakeFirst();
    if (!s) throw new AppError('not_found', `no session #${sessionId} / 会话不存在`);
    return this.#disconnect(s, reason, requestedBy);
  }

  async disconnectAccount(accountId: number, reason: DisconnectReason, requestedBy: string | null, area?: 'dorm' | 'office'): Promise<DisconnectOutcome[]> {
    let q = this.deps.db
      .selectFrom('acct_sessions')
      .select(['id', 'account_id', 'username', 'session_id', 'nas_ip', 'framed_ip', 'stopped_at'])
      .where('account_id', '=', accountId)
      .where('stopped_at', 'is', null);
    if (area) q = q.where('area', '=', area);
    const sessions = await q.orderBy('id').execute();
    return Promise.all(sessions.map((s) => this.#disconnect(s, reason, requestedBy)));
  }

  async disconnectAccounts(
    accounts: readonly { readonly accountId: number; readonly reason: DisconnectReason }[],
    requestedBy: string | null,
    area?: 'dorm' | 'office',
  ): Promise<DisconnectOutcome[]> {
    if (accounts.length === 0) return [];
    const reasons = new Map(accounts.map((a) => [a.accountId, a.reason]));
    let q = this.deps.db
      .selectFrom('acct_sessions')
      .select(['id', 'account_id', 'username', 'session_id', 'nas_ip', 'framed_ip', 'stopped_at'])
      .where('account_id', 'in', [...reasons.keys()])
      .where('stopped_at', 'is', null);
    if (area) q = q.where('area', '=', area);
    const sessions = await q.orderBy('id').execute();
    return Promise.all(sessions.map((s) => this.#bulkSlot(() => this.#disconnect(s, reasons.get(s.account_id!)!, requestedBy))));
  }

  #bulkActive = 0;
  readonly #bulkQueue: (() => void)[] = [];

  /** Runs `task` when fewer than BULK_CONCURRENCY bulk exchanges are in flight. */
  async #bulkSlot<T>(task: () => Promise<T>): Promise<T> {
    if (this.#bulkActive >= BULK_CONCURRENCY) await new Promise<void>((resolve) => this.#bulkQueue.push(resolve));
    else this.#bulkActive++;
    try {
      return await task();
    } finally {
      const next = this.#bulkQueue.shift();
      if (next) next();
      else this.#bulkActive--;
    }
  }

  async #disconnect(s: SessionRow, reason: DisconnectReason, requestedBy: string | null): Promise<DisconnectOutcome> {
    const { db, log, metrics } = this.deps;
    const nasIp = normalizeIp(s.nas_ip) ?? s.nas_ip;
    const row = await db
      .insertInto('disconnect_requests')
      .values({ session_id: s.id, account_id: s.account_id, nas_ip: nasIp, reason, requested_by: requestedBy })
      .returning('id')
      .executeTakeFirstOrThrow();
    let outcome: DisconnectOutcome['outcome'] = 'error';
    let errorCause: number | null = null;
    let attempts = 0;
    const nas = this.deps.nasFor(nasIp);
    if (s.stopped_at !== null) {
      log.info({ sessionId: s.id }, 'disconnect skipped: the session is already stopped');
    } else if (nas === undefined) {
      log.warn({ sessionId: s.id, nasIp }, 'disconnect impossible: no NAS client owns the session address');
    } else {
      const ip = parseIp(nasIp);
      const attributes: [string, AttributeInput][] = [
        ['User-Name', s.username],
        ['Acct-Session-Id', s.session_id],
        ip?.family === 6 ? ['NAS-IPv6-Address', nasIp] : ['NAS-IP-Address', nasIp],
      ];
      const framed = s.framed_ip === null ? undefined : parseIp(s.framed_ip);
      if (framed?.family === 4) attributes.push(['Framed-IP-Address', normalizeIp(s.framed_ip!)!]);
      try {
        const client = await this.#client(ip?.family ?? 4);
        const r = await client.request({
          host: nasIp,
          port: nas.coaPort,
          code: PacketCode.DisconnectRequest,
          attributes,
          secret: nas.secret,
          ...(this.deps.timeoutsMs ? { timeoutsMs: this.deps.timeoutsMs } : {}),
        });
        attempts = r.attempts;
        if (r.reply.code === PacketCode.DisconnectAck) {
          outcome = 'ack';
        } else {
          outcome = 'nak';
          const cause = r.reply.get('Error-Cause');
          errorCause = typeof cause === 'number' ? cause : null;
        }
      } catch (e) {
        if (e instanceof RadiusTimeoutError) {
          outcome = 'timeout';
          attempts = e.attempts;
        } else {
          log.warn({ err: e, sessionId: s.id }, 'disconnect request failed');
        }
      }
    }
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('disconnect_requests')
        .set({ outcome, error_cause: errorCause, attempts, finished_at: new Date() })
        .where('id', '=', row.id)
        .execute();
      if (outcome === 'ack' || (outcome === 'nak' && errorCause === ErrorCause.SessionContextNotFound)) {
        await trx
          .updateTable('acct_sessions')
          .set({ stopped_at: this.deps.now(), terminate_cause: 'Admin-Reset' })
          .where('id', '=', s.id)
          .where('stopped_at', 'is', null)
          .execute();
      }
    });
    metrics.disconnects.labels(outcome).inc();
    log.info({ sessionId: s.id, accountId: s.account_id, nasIp, reason, outcome, errorCause, attempts }, 'disconnect request finished');
    return { sessionId: s.id, nasIp, outcome, errorCause, attempts };
  }

  async close(): Promise<void> {
    for (const c of [this.#v4, this.#v6]) if (c) await (await c).close();
  }
}
