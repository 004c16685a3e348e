import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { PREPARED } from '../db/connection.ts';
import type { Area, Database } from '../db/schema.ts';
import { AcctStatusType } from './attributes.ts';
import { areaOf, normalizeIp, type NasEntry } from './nas-table.ts';
import type { RadiusPacket } from './packet.ts';
import { attributeText } from './auth.ts';

/** One Start / Interim-Update / Stop, ready to be upserted into acct_sessions. */
export interface SessionRecord {
  readonly kind: 'session';
  readonly status: 'start' | 'interim' | 'stop';
  readonly uniqueId: string;
  readonly sessionId: string;
  readonly username: string;
  readonly nasId: number;
  readonly nasIp: string;
  readonly nasIdentifier: string | null;
  readonly nasPort: number | null;
  readonly nasPortId: string | null;
  readonly area: Area;
  readonly framedIp: string | null;
  readonly callingStationId: string | null;
  readonly calledStationId: string | null;
  readonly startedAt: Date | null;
  readonly eventAt: Date;
  readonly stoppedAt: Date | null;
  readonly sessionSeconds: number;
  /** 64-bit counters as decimal text, Gigawords folded in (RFC 2869 §5.1, §5.2), capped to 2^53-1. */
  readonly inputOctets: string;
  readonly outputOctets: string;
  readonly inputPackets: number;
  readonly outputPackets: number;
  readonly interimSeconds: number | null;
  readonly terminateCause: string | null;
}

/** Accounting-On / Accounting-Off: the NAS (re)started or stops; every open session of it is over. */
export interface NasStateRecord {
  readonly kind: 'nas-state';
  readonly nasIp: string;
  readonly eventAt: Date;
}

export type AcctRecord = SessionRecord | NasStateRecord;

/** What to do with an Accounting-Request: store a record, acknowledge without storing, or drop it. */
export type AcctPlan =
  | { readonly kind: 'store'; readonly record: AcctRecord }
  | { readonly kind: 'ack' }
  | { readonly kind: 'drop'; readonly reason: 'missing_attribute' };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function text(req: RadiusPacket, name: string): string | null {
  const v = req.get(name);
  if (v === undefined) return null;
  const s = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  // PostgreSQL text cannot hold NUL.
  return s.includes('\0') ? s.replace(/\0/g, '') : s;
}

function int(req: RadiusPacket, name: string): number | null {
  const v = req.get(name);
  return typeof v === 'number' ? v : null;
}

/** The largest value of the PostgreSQL `integer` column acct_sessions.interim_interval_seconds. */
const MAX_INTERIM_SECONDS = 2_147_483_647;

/**
 * Acct-Interim-Interval is a 32-bit unsigned integer (RFC 2869 §5.16) but is stored in an `integer` column:
 * a value past 68 years means "no interim updates" in practice and is capped, so the record can be stored.
 */
function interimSeconds(req: RadiusPacket): number | null {
  const v = int(req, 'Acct-Interim-Interval');
  return v === null ? null : Math.min(v, MAX_INTERIM_SECONDS);
}

function ip(req: RadiusPacket, name: string): string | null {
  const v = req.get(name);
  return typeof v === 'string' ? (normalizeIp(v) ?? null) : null;
}

function counter64(low: number | null, high: number | null): string {
  const n = (BigInt(high ?? 0) << 32n) + BigInt(low ?? 0);
  return (n > MAX_SAFE ? MAX_SAFE : n).toString();
}

/**
 * The session key, as FreeRADIUS's acct_unique policy builds Acct-Unique-Session-Id: MD5 over User-Name,
 * Acct-Session-Id, NAS address, NAS-Identifier, NAS-Port-Id and NAS-Port, so one NAS's session ids never
 * collide with another's and every packet of one session maps to one row.
 */
export function acctUniqueId(parts: {
  username: string;
  sessionId: string;
  nasIp: string;
  nasIdentifier: string | null;
  nasPortId: string | null;
  nasPort: number | null;
}): string {
  return createHash('md5')
    .update([parts.username, parts.sessionId, parts.nasIp, parts.nasIdentifier ?? '', parts.nasPortId ?? '', parts.nasPort ?? ''].join(','))
    .digest('hex');
}

/**
 * Maps an authenticated Accounting-Request (RFC 2866 §4.1, §5) to what must be stored. The event time
 * is Event-Timestamp (RFC 2869 §5.3) when present, else now less Acct-Delay-Time (RFC 2866 §5.2).
 */
export function planAccounting(req: RadiusPacket, nas: NasEntry, sourceIp: string, now: Date): AcctPlan {
  const status = int(req, 'Acct-Status-Type');
  if (status === null) return { kind: 'drop', reason: 'missing_attribute' };
  const nasIp = ip(req, 'NAS-IP-Address') ?? ip(req, 'NAS-IPv6-Address') ?? normalizeIp(sourceIp) ?? sourceIp;
  const stamp = int(req, 'Event-Timestamp');
  const delay = int(req, 'Acct-Delay-Time') ?? 0;
  const eventAt = stamp !== null && stamp > 0 ? new Date(stamp * 1000) : new Date(now.getTime() - Math.min(delay, 86_400) * 1000);

  if (status === AcctStatusType.AccountingOn || status === AcctStatusType.AccountingOff) {
    return { kind: 'store', record: { kind: 'nas-state', nasIp, eventAt } };
  }
  const kind =
    status === AcctStatusType.Start ? 'start' : status === AcctStatusType.Stop ? 'stop' : status === AcctStatusType.InterimUpdate ? 'interim' : null;
  // Other types (Failed, tunnel accounting) carry nothing this server keeps: acknowledge them.
  if (kind === null) return { kind: 'ack' };
  const sessionId = text(req, 'Acct-Session-Id');
  if (sessionId === null || sessionId === '') return { kind: 'drop', reason: 'missing_attribute' };
  const username = text(req, 'User-Name') ?? '';
  const nasIdentifier = text(req, 'NAS-Identifier');
  const nasPortId = text(req, 'NAS-Port-Id');
  const nasPort = int(req, 'NAS-Port');
  const sessionSeconds = int(req, 'Acct-Session-Time');
  const startedAt =
    kind === 'start' ? eventAt : sessionSeconds !== null ? new Date(eventAt.getTime() - sessionSeconds * 1000) : null;
  const cause = kind === 'stop' ? (req.getValueName('Acct-Terminate-Cause') ?? (int(req, 'Acct-Terminate-Cause')?.toString() ?? null)) : null;
  return {
    kind: 'store',
    record: {
      kind: 'session',
      status: kind,
      uniqueId: acctUniqueId({ username, sessionId, nasIp, nasIdentifier, nasPortId, nasPort }),
      sessionId,
      username,
      nasId: nas.id,
      nasIp,
      nasIdentifier,
      nasPort,
      nasPortId,
      area: areaOf(nas, (name) => attributeText(req, name)),
      framedIp: ip(req, 'Framed-IP-Address'),
      callingStationId: text(req, 'Calling-Station-Id'),
      calledStationId: text(req, 'Called-Station-Id'),
      startedAt,
      eventAt,
      stoppedAt: kind === 'stop' ? eventAt : null,
      sessionSeconds: sessionSeconds ?? 0,
      inputOctets: counter64(int(req, 'Acct-Input-Octets'), int(req, 'Acct-Input-Gigawords')),
      outputOctets: counter64(int(req, 'Acct-Output-Octets'), int(req, 'Acct-Output-Gigawords')),
      inputPackets: int(req, 'Acct-Input-Packets') ?? 0,
      outputPackets: int(req, 'Acct-Output-Packets') ?? 0,
      interimSeconds: interimSeconds(req),
      terminateCause: cause,
    },
  };
}

/**
 * Upserts session records in one statement, FreeRADIUS radacct style but order-independent: counters and
 * the last update only grow, a stop is never undone (an Interim after a Stop does not reopen), a Stop
 * without a Start still makes a row. Rows are sorted by key so concurrent batches lock in one order.
 */
export async function upsertSessions(trx: Kysely<Database>, records: readonly SessionRecord[]): Promise<void> {
  if (records.length === 0) return;
  const rs = [...records].sort((a, b) => (a.uniqueId < b.uniqueId ? -1 : a.uniqueId > b.uniqueId ? 1 : 0));
  const col = <T>(f: (r: SessionRecord) => T) => rs.map(f);
  const iso = (d: Date | null) => (d === null ? null : d.toISOString());
  // Prepared once per connection: the text is the same for every batch (the rows travel as arrays).
  await sql`${sql.raw(PREPARED)}
    INSERT INTO acct_sessions AS s (unique_id, session_id, account_id, username, nas_id, nas_ip, nas_identifier, nas_port, nas_port_id,
      area, framed_ip, calling_station_id, called_station_id, started_at, updated_at, stopped_at, session_seconds,
      input_octets, output_octets, input_packets, output_packets, interim_interval_seconds, terminate_cause)
    SELECT u.unique_id, u.session_id, a.id, u.username, u.nas_id, u.nas_ip, u.nas_identifier, u.nas_port, u.nas_port_id,
      u.area, u.framed_ip, u.calling_station_id, u.called_station_id, u.started_at, u.updated_at, u.stopped_at, u.session_seconds,
      u.input_octets, u.output_octets, u.input_packets, u.output_packets, u.interim, u.terminate_cause
    FROM unnest(
      ${col((r) => r.uniqueId)}::text[], ${col((r) => r.sessionId)}::text[], ${col((r) => r.username)}::text[],
      ${col((r) => r.nasId)}::bigint[], ${col((r) => r.nasIp)}::inet[], ${col((r) => r.nasIdentifier)}::text[],
      ${col((r) => r.nasPort)}::bigint[], ${col((r) => r.nasPortId)}::text[], ${col((r) => r.area)}::text[],
      ${col((r) => r.framedIp)}::inet[], ${col((r) => r.callingStationId)}::text[], ${col((r) => r.calledStationId)}::text[],
      ${col((r) => iso(r.startedAt))}::timestamptz[], ${col((r) => iso(r.eventAt))}::timestamptz[], ${col((r) => iso(r.stoppedAt))}::timestamptz[],
      ${col((r) => r.sessionSeconds)}::bigint[], ${col((r) => r.inputOctets)}::bigint[], ${col((r) => r.outputOctets)}::bigint[],
      ${col((r) => r.inputPackets)}::bigint[], ${col((r) => r.outputPackets)}::bigint[], ${col((r) => r.interimSeconds)}::int[],
      ${col((r) => r.terminateCause)}::text[]
    ) WITH ORDINALITY AS u(unique_id, session_id, username, nas_id, nas_ip, nas_identifier, nas_port, nas_port_id, area, framed_ip,
      calling_station_id, called_station_id, started_at, updated_at, stopped_at, session_seconds, input_octets, output_octets,
      input_packets, output_packets, interim, terminate_cause, ord)
    LEFT JOIN accounts a ON a.username = u.username
    ORDER BY u.ord
    ON CONFLICT (unique_id) DO UPDATE SET
      account_id = COALESCE(s.account_id, EXCLUDED.account_id),
      started_at = LEAST(s.started_at, EXCLUDED.started_at),
      updated_at = GREATEST(s.updated_at, EXCLUDED.updated_at),
      stopped_at = COALESCE(s.stopped_at, EXCLUDED.stopped_at),
      session_seconds = GREATEST(s.session_seconds, EXCLUDED.session_seconds),
      input_octets = GREATEST(s.input_octets, EXCLUDED.input_octets),
      output_octets = GREATEST(s.output_octets, EXCLUDED.output_octets),
      input_packets = GREATEST(s.input_packets, EXCLUDED.input_packets),
      output_packets = GREATEST(s.output_packets, EXCLUDED.output_packets),
      framed_ip = COALESCE(EXCLUDED.framed_ip, s.framed_ip),
      interim_interval_seconds = COALESCE(EXCLUDED.interim_interval_seconds, s.interim_interval_seconds),
      terminate_cause = COALESCE(s.terminate_cause, EXCLUDED.terminate_cause)`.execute(trx);
}

/** Accounting-On/Off (RFC 2866 §5.1): closes the NAS's sessions that started before the event. */
export async function closeNasSessions(trx: Kysely<Database>, nasIp: string, at: Date): Promise<number> {
  const r = await sql`
    UPDATE acct_sessions SET stopped_at = GREATEST(${at}::timestamptz, started_at), updated_at = GREATEST(updated_at, ${at}::timestamptz),
      terminate_cause = 'NAS-Reboot'
    WHERE nas_ip = ${nasIp}::inet AND stopped_at IS NULL AND (started_at IS NULL OR started_at <= ${at}::timestamptz)`.execute(trx);
  return Number(r.numAffectedRows ?? 0n);
}

/**
 * Closes sessions not heard of for `intervals` interim intervals (the session's Acct-Interim-Interval,
 * else the default; at least 60 s as RFC 2869 §5.16 advises), stopping them at their last update.
 */
export async function closeStaleSessions(db: Kysely<Database>, now: Date, intervals: number, defaultInterimSeconds: number): Promise<number> {
  const r = await sql`
    UPDATE acct_sessions SET stopped_at = GREATEST(updated_at, started_at), terminate_cause = 'Stale-Session'
    WHERE stopped_at IS NULL
      AND updated_at < ${now}::timestamptz - make_interval(secs => ${60 * intervals})
      AND updated_at < ${now}::timestamptz
        - make_interval(secs => GREATEST(60, COALESCE(interim_interval_seconds, ${defaultInterimSeconds}::int)) * ${intervals}::int)`.execute(db);
  return Number(r.numAffectedRows ?? 0n);
}

/** Splits records into statements: duplicate keys go to later rounds, NAS on/off events are barriers. */
export function planStatements(records: readonly AcctRecord[]): ({ kind: 'upsert'; records: SessionRecord[] } | NasStateRecord)[] {
  const out: ({ kind: 'upsert'; records: SessionRecord[] } | NasStateRecord)[] = [];
  let rounds: { keys: Set<string>; records: SessionRecord[] }[] = [];
  const flushRounds = () => {
    for (const r of rounds) out.push({ kind: 'upsert', records: r.records });
    rounds = [];
  };
  for (const rec of records) {
    if (rec.kind === 'nas-state') {
      flushRounds();
      out.push(rec);
      continue;
    }
    let round = rounds.find((r) => !r.keys.has(rec.uniqueId));
    if (round === undefined) {
      round = { keys: new Set(), records: [] };
      rounds.push(round);
    }
    round.keys.add(rec.uniqueId);
    round.records.push(rec);
  }
  flushRounds();
  return out;
}

/** A database error that says the record itself is bad (data, constraint), not that the database is away. */
export function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return code.startsWith('22') || code.startsWith('23') || code.startsWith('42');
}

function isRetryable(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
}

interface Pending {
  readonly record: AcctRecord;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export interface AccountingWriterOptions {
  /** Records per transaction at most; default 512. */
  readonly maxBatch?: number;
  /** Transactions in flight at once; default 4. */
  readonly maxInFlight?: number;
  /** Called with the size of every committed batch, the sessions closed by Accounting-On/Off, and the ms it took. */
  readonly onCommit?: (size: number, nasClosed: number, ms: number) => void;
  /** A record the database refused as bad data (dropped; the rest of its batch is committed). */
  readonly onBadRecord?: (e: unknown) => void;
}

/**
 * Group commit for accounting: records arriving while a transaction is in flight are written together in
 * the next one, and each `submit` resolves only after its record's transaction has committed, so the
 * Accounting-Response is sent after the record is stored (RFC 2866 §2). A failed transaction rejects its
 * records (the server stays silent and the NAS retransmits); a record refused as bad data is split out so
 * it cannot hold up the others.
 */
export class AccountingWriter {
  readonly #queue: Pending[] = [];
  #inFlight = 0;
  /** A batch of more than one statement runs alone: concurrent ones could deadlock on each other's rows. */
  #exclusive = false;
  #scheduled = false;
  #idle: (() => void)[] = [];
  readonly #maxBatch: number;
  readonly #maxInFlight: number;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: AccountingWriterOptions = {},
  ) {
    this.#maxBatch = options.maxBatch ?? 512;
    this.#maxInFlight = options.maxInFlight ?? 4;
  }

  get queued(): number {
    return this.#queue.length;
  }

  submit(record: AcctRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#exclusive || this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
    this.#scheduled = true;
    // setImmediate: let every datagram already received in this loop turn join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#exclusive || this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
      const batch = this.#queue.splice(0, this.#maxBatch);
      // Single-statement batches lock rows in unique_id order and run four at a time; a batch of several
      // statements (Accounting-On/Off, or one session twice) waits until nothing else is in flight.
      const exclusive = planStatements(batch.map((p) => p.record)).length > 1;
      if (exclusive && this.#inFlight > 0) {
        this.#queue.unshift(...batch);
        return;
      }
      this.#exclusive = exclusive;
      this.#inFlight++;
      void this.#commit(batch).finally(() => {
        this.#exclusive = false;
        this.#inFlight--;
        this.#schedule();
        if (this.#inFlight === 0 && this.#queue.length === 0) for (const f of this.#idle.splice(0)) f();
      });
    });
  }

  async #write(records: readonly AcctRecord[]): Promise<number> {
    const statements = planStatements(records);
    for (let attempt = 1; ; attempt++) {
      try {
        const only = statements.length === 1 ? statements[0]! : null;
        // The usual batch is one upsert: as a statement of its own it is its own transaction, one round trip.
        if (only !== null && only.kind === 'upsert') {
          await upsertSessions(this.db, only.records);
          return 0;
        }
        return await this.db.transaction().execute(async (trx) => {
          let closed = 0;
          for (const st of statements) {
            if (st.kind === 'upsert') await upsertSessions(trx, st.records);
            else closed += await closeNasSessions(trx, st.nasIp, st.eventAt);
          }
          return closed;
        });
      } catch (e) {
        if (attempt < 3 && isRetryable(e)) continue;
        throw e;
      }
    }
  }

  async #commit(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      const closed = await this.#write(batch.map((p) => p.record));
      this.options.onCommit?.(batch.length, closed, performance.now() - started);
      for (const p of batch) p.resolve();
    } catch (e) {
      if (!isDataError(e) || batch.length === 1) {
        if (batch.length === 1 && isDataError(e)) this.options.onBadRecord?.(e);
        for (const p of batch) p.reject(e);
        return;
      }
      // One bad record must not keep the others from being stored: write them one by one.
      for (const p of batch) {
        try {
          const t0 = performance.now();
          const closed = await this.#write([p.record]);
          this.options.onCommit?.(1, closed, performance.now() - t0);
          p.resolve();
        } catch (e2) {
          if (isDataError(e2)) this.options.onBadRecord?.(e2);
          p.reject(e2);
        }
      }
    }
  }

  /** Resolves when nothing is queued or in flight (graceful shutdown). */
  drain(): Promise<void> {
    if (this.#inFlight === 0 && this.#queue.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
