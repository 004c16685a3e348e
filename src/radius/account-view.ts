import { sql, type Kysely } from 'kysely';
import type { AccountStatus, Database } from '../db/schema.ts';

/** What a login decision reads of an account, as of the last notification applied. */
export interface ViewAccount {
  readonly id: number;
  readonly username: string;
  readonly status: AccountStatus;
  readonly passwordHash: string;
  readonly balanceFen: number;
  readonly chapCredential: Buffer | null;
  /** The running (unsettled) cycle, if any. */
  readonly cycleId: number | null;
  readonly cycleEndsAtMs: number | null;
}

/** `sure`: the view holds the account exactly as last committed that it knows of; `unsure`: ask the database. */
export type ViewLookup = { readonly state: 'sure'; readonly account: ViewAccount | undefined } | { readonly state: 'unsure' };

interface Row {
  id: number;
  username: string;
  status: AccountStatus;
  password_hash: string;
  balance_fen: number;
  chap_credential: Buffer | null;
  cycle_id: number | null;
  ends_at: Date | null;
}

function toView(r: Row): ViewAccount {
  return {
    id: r.id,
    username: r.username,
    status: r.status,
    passwordHash: r.password_hash,
    balanceFen: r.balance_fen,
    chapCredential: r.chap_credential,
    cycleId: r.cycle_id,
    cycleEndsAtMs: r.ends_at ? r.ends_at.getTime() : null,
  };
}

const SELECT_ALL = sql`
  SELECT a.id, a.username, a.status, a.password_hash, a.balance_fen, a.chap_credential, c.id AS cycle_id, c.ends_at
  FROM accounts a LEFT JOIN cycles c ON c.account_id = a.id AND c.settled_at IS NULL`;

/** Reads one account with its running cycle straight from the database. */
export async function readAccount(db: Kysely<Database>, username: string): Promise<ViewAccount | undefined> {
  const r = await sql<Row>`${SELECT_ALL} WHERE a.username = ${username}`.execute(db);
  const row = r.rows[0];
  return row && toView(row);
}

const UNSURE: ViewLookup = { state: 'unsure' };
const PAGE = 20_000;
const REFRESH_BATCH = 5_000;

/**
 * An in-memory copy of every account and its running cycle, so most logins are decided without a
 * database round trip. Kept exact by the accounts_changed notification (migration 0004): a notified
 * account is `unsure` until re-read, and the whole view is `unsure` until a full load has followed
 * the latest (re)connection of the listener. Re-reads run one at a time, so an older read never
 * overwrites a newer one.
 */
export class AccountView {
  readonly #byName = new Map<string, ViewAccount>();
  readonly #byId = new Map<number, ViewAccount>();
  /** Notified account ids not yet re-read, with a generation so a re-notification during a read sticks. */
  readonly #pending = new Map<number, number>();
  #generation = 0;
  #ready = false;
  #epoch = 0;
  #queue: Promise<void> = Promise.resolve();
  #draining = false;
  #onError: (err: unknown) => void = () => undefined;

  constructor(private readonly db: Kysely<Database>) {}

  get ready(): boolean {
    return this.#ready;
  }

  get size(): number {
    return this.#byId.size;
  }

  get runningCycles(): number {
    let n = 0;
    for (const a of this.#byId.values()) if (a.cycleId !== null) n++;
    return n;
  }

  onError(fn: (err: unknown) => void): void {
    this.#onError = fn;
  }

  lookup(username: string): ViewLookup {
    if (!this.#ready) return UNSURE;
    const a = this.#byName.get(username);
    if (a !== undefined && this.#pending.has(a.id)) return UNSURE;
    // An unknown name may be an account whose insert is notified but not yet read.
    if (a === undefined && this.#pending.size > 0) return UNSURE;
    return { state: 'sure', account: a };
  }

  /** The listener lost its connection: nothing is sure until `reload` completes. */
  invalidate(): void {
    this.#ready = false;
    this.#epoch++;
  }

  /** Rebuilds the whole view (after the listener has (re)connected and LISTENs). */
  reload(): Promise<void> {
    const epoch = ++this.#epoch;
    this.#ready = false;
    return this.#enqueue(async () => {
      this.#pending.clear();
      const seen = new Set<number>();
      let after = 0;
      for (;;) {
        const r = await sql<Row>`${SELECT_ALL} WHERE a.id > ${after} ORDER BY a.id LIMIT ${PAGE}`.execute(this.db);
        for (const row of r.rows) {
          seen.add(row.id);
          this.#put(toView(row));
        }
        if (r.rows.length < PAGE) break;
        after = r.rows[r.rows.length - 1]!.id;
      }
      for (const id of [...this.#byId.keys()]) if (!seen.has(id)) this.#remove(id);
      if (epoch === this.#epoch) this.#ready = true;
    });
  }

  /** Handles an accounts_changed payload: comma-separated account ids. */
  notify(payload: string): void {
    const gen = ++this.#generation;
    for (const part of payload.split(',')) {
      const id = Number(part);
      if (Number.isSafeInteger(id) && id > 0) this.#pending.set(id, gen);
    }
    if (!this.#draining) {
      this.#draining = true;
      void this.#enqueue(() => this.#drain());
    }
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.size > 0) {
        const batch: [number, number][] = [];
        for (const entry of this.#pending) {
          batch.push(entry);
          if (batch.length >= REFRESH_BATCH) break;
        }
        const ids = batch.map(([id]) => id);
        const r = await sql<Row>`${SELECT_ALL} WHERE a.id = ANY(${ids}::bigint[])`.execute(this.db);
        const found = new Set<number>();
        for (const row of r.rows) {
          found.add(row.id);
          this.#put(toView(row));
        }
        for (const [id, gen] of batch) {
          if (!found.has(id)) this.#remove(id);
          if (this.#pending.get(id) === gen) this.#pending.delete(id);
        }
      }
    } catch (err) {
      // Ids stay pending (unsure) and are read again shortly; a lost listener reloads everything anyway.
      this.#onError(err);
      const retry = setTimeout(() => this.notify(''), 1_000);
      retry.unref();
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Records what this server just committed through the money core (a cycle opened or confirmed at a
   * login), unless a newer cycle is already known.
   */
  noteCycle(accountId: number, cycleId: number, endsAtMs: number): void {
    const a = this.#byId.get(accountId);
    if (a === undefined || (a.cycleId !== null && a.cycleId > cycleId)) return;
    this.#put({ ...a, cycleId, cycleEndsAtMs: endsAtMs });
  }

  #put(a: ViewAccount): void {
    const old = this.#byId.get(a.id);
    if (old !== undefined && old.username !== a.username) this.#byName.delete(old.username);
    this.#byId.set(a.id, a);
    this.#byName.set(a.username, a);
  }

  #remove(id: number): void {
    const old = this.#byId.get(id);
    if (old === undefined) return;
    this.#byId.delete(id);
    if (this.#byName.get(old.username) === old) this.#byName.delete(old.username);
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Waits for queued reads to finish (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#queue;
  }
}

/**
 * Fresh reads of accounts, batched: the usernames asked for while the event loop turns are read in one
 * statement, so confirming a burst of refusals costs one round trip instead of one each. Every read is
 * issued after its request arrived, so it is as fresh as a read of its own.
 */
export class AccountReader {
  #batch: { username: string; resolve: (a: ViewAccount | undefined) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 500,
  ) {}

  read(username: string): Promise<ViewAccount | undefined> {
    return new Promise((resolve, reject) => {
      this.#batch.push({ username, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#batch.length > 0) {
      const batch = this.#batch.splice(0, this.maxBatch);
      const names = [...new Set(batch.map((b) => b.username))];
      sql<Row>`${SELECT_ALL} WHERE a.username = ANY(${names}::text[])`.execute(this.db).then(
        (r) => {
          const byName = new Map(r.rows.map((row) => [row.username, toView(row)]));
          for (const b of batch) b.resolve(byName.get(b.username));
        },
        (e: unknown) => {
          for (const b of batch) b.reject(e);
        },
      );
    }
  }
}
