import { sql, type Kysely } from 'kysely';
import { PREPARED } from '../db/connection.ts';
import type { AccountStatus, Database } from '../db/schema.ts';
import { SlotIndex } from './slot-index.ts';

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


const STATUSES: readonly AccountStatus[] = ['active', 'disabled'];

/** Where an account id starts probing the id index: a multiplicative hash, so serial ids spread evenly. */
function idHash(id: number): number {
  const h = Math.imul((id | 0) ^ ((id / 4_294_967_296) | 0), 0x9e3779b1);
  return h ^ (h >>> 16);
}

/** Where a username starts probing the name index: FNV-1a over its UTF-16 code units. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h ^ (h >>> 15);
}

/**
 * An argon2 hash in PHC form with a 16-byte salt and a 32-byte digest (what hashPassword writes):
 * `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<digest>`, both in unpadded base64.
 */
const PHC = /^(\$argon2(?:id|i|d)\$v=\d{1,5}\$m=\d{1,10},t=\d{1,10},p=\d{1,3}\$)([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/;
const SALT_BYTES = 16;
const PACKED_BYTES = 48;

/**
 * The accounts of the view, column-wise: one slot per account in typed arrays (id, balance, running cycle
 * and its end; NaN for "none") and plain arrays for the strings, with two open-addressing indexes from
 * username and id to the slot (typed arrays too: 100k accounts take 2 MiB there, against ~7 MiB of Map
 * tables on the heap, issue 5). No object per account: 100k accounts cost about 110 B each instead of
 * ~330 B, and the numbers live outside the garbage-collected object graph. `get` builds a short-lived ViewAccount.
 * A password hash in the usual argon2 form is kept as its parameters (one shared string per distinct
 * set) and 48 raw bytes of salt and digest, instead of a ~100-character string per account (~7 MiB
 * less heap at 100k accounts, bench:memory); any other form is kept as given. The string is rebuilt,
 * byte for byte, on each read.
 * CHAP credentials are copied out of the pooled Buffers the driver returns, so a kept credential does
 * not pin a whole 8 KiB pool slab.
 */
export class AccountTable {
  /** Slot by id: every live slot once. */
  readonly #byId = new SlotIndex((slot) => idHash(this.#ids[slot]!));
  /** Slot by username: one slot per name (the newest owner when a name was handed on), always a slot holding that name. */
  readonly #byName = new SlotIndex((slot) => nameHash(this.#names[slot]!));
  #count = 0;
  readonly #free: number[] = [];
  #ids = new Float64Array(0);
  #balances = new Float64Array(0);
  #cycleIds = new Float64Array(0);
  #endsAt = new Float64Array(0);
  /** 0: a free slot; otherwise 1 + the index of the status in STATUSES. */
  #status = new Uint8Array(0);
  readonly #names: string[] = [];
  /** Per slot: 0 = the hash is in #hashText; k > 0 = packed in #hashBytes with the parameters #prefixes[k - 1]. */
  #hashForm = new Uint16Array(0);
  /** Salt (16 bytes) and digest (32 bytes) of each packed hash, PACKED_BYTES per slot. */
  #hashBytes = Buffer.alloc(0);
  readonly #hashText = new Map<number, string>();
  readonly #prefixes: string[] = [];
  readonly #prefixIndex = new Map<string, number>();
  readonly #chap: (Buffer | null)[] = [];
  #end = 0;

  get size(): number {
    return this.#count;
  }

  get runningCycles(): number {
    let n = 0;
    for (let i = 0; i < this.#end; i++) if (this.#status[i] !== 0 && !Number.isNaN(this.#cycleIds[i])) n++;
    return n;
  }

  byName(username: string): ViewAccount | undefined {
    const slot = this.#slotOfName(username);
    return slot < 0 ? undefined : this.#at(slot);
  }

  byId(id: number): ViewAccount | undefined {
    const slot = this.#slotOfId(id);
    return slot < 0 ? undefined : this.#at(slot);
  }

  /** The id of the account `username` names, if any (no ViewAccount built). */
  idOf(username: string): number | undefined {
    const slot = this.#slotOfName(username);
    return slot < 0 ? undefined : this.#ids[slot];
  }

  ids(): number[] {
    const ids: number[] = [];
    for (let i = 0; i < this.#end; i++) if (this.#status[i] !== 0) ids.push(this.#ids[i]!);
    return ids;
  }

  /** The index position of `username`'s entry, or -1 - (the empty position where it would go). */
  #nameAt(username: string): number {
    const table = this.#byName.table;
    const mask = this.#byName.mask;
    for (let i = nameHash(username) & mask; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return -1 - i;
      if (this.#names[entry - 1] === username) return i;
    }
  }

  #slotOfName(username: string): number {
    if (this.#count === 0) return -1;
    const at = this.#nameAt(username);
    return at < 0 ? -1 : this.#byName.table[at]! - 1;
  }

  #slotOfId(id: number): number {
    if (this.#count === 0) return -1;
    const table = this.#byId.table;
    const mask = this.#byId.mask;
    for (let i = idHash(id) & mask; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return -1;
      if (this.#ids[entry - 1] === id) return entry - 1;
    }
  }

  put(a: ViewAccount): void {
    const status = STATUSES.indexOf(a.status);
    if (status < 0) throw new RangeError(`unknown account status ${String(a.status)}`);
    let slot = this.#slotOfId(a.id);
    if (slot < 0) {
      slot = this.#free.pop() ?? this.#grow();
      this.#ids[slot] = a.id;
      this.#names[slot] = a.username;
      this.#byId.insert(slot);
      this.#count++;
    } else if (this.#names[slot] !== a.username && this.#slotOfName(this.#names[slot]!) === slot) {
      this.#byName.delete(slot);
    }
    this.#balances[slot] = a.balanceFen;
    this.#cycleIds[slot] = a.cycleId ?? NaN;
    this.#endsAt[slot] = a.cycleEndsAtMs ?? NaN;
    this.#status[slot] = status + 1;
    // The same name re-read keeps the string already held.
    if (this.#names[slot] !== a.username) this.#names[slot] = a.username;
    this.#putHash(slot, a.passwordHash);
    this.#chap[slot] = a.chapCredential === null ? null : this.#ownCopy(slot, a.chapCredential);
    const at = this.#nameAt(a.username);
    if (at >= 0) this.#byName.replace(at, slot);
    else this.#byName.insert(slot);
  }

  /** Updates the running cycle of a known account; false when the id is unknown. */
  setCycle(id: number, cycleId: number, endsAtMs: number): boolean {
    const slot = this.#slotOfId(id);
    if (slot < 0) return false;
    this.#cycleIds[slot] = cycleId;
    this.#endsAt[slot] = endsAtMs;
    return true;
  }

  remove(id: number): void {
    const slot = this.#slotOfId(id);
    if (slot < 0) return;
    this.#byId.delete(slot);
    if (this.#slotOfName(this.#names[slot]!) === slot) this.#byName.delete(slot);
    this.#count--;
    this.#status[slot] = 0;
    this.#names[slot] = '';
    this.#hashForm[slot] = 0;
    this.#hashText.delete(slot);
    this.#chap[slot] = null;
    this.#free.push(slot);
  }

  #at(slot: number): ViewAccount {
    const cycleId = this.#cycleIds[slot]!;
    const endsAt = this.#endsAt[slot]!;
    return {
      id: this.#ids[slot]!,
      username: this.#names[slot]!,
      status: STATUSES[this.#status[slot]! - 1]!,
      passwordHash: this.#hashAt(slot),
      balanceFen: this.#balances[slot]!,
      chapCredential: this.#chap[slot]!,
      cycleId: Number.isNaN(cycleId) ? null : cycleId,
      cycleEndsAtMs: Number.isNaN(endsAt) ? null : endsAt,
    };
  }

  #putHash(slot: number, hash: string): void {
    const m = PHC.exec(hash);
    if (m !== null) {
      let form = this.#prefixIndex.get(m[1]!);
      if (form === undefined && this.#prefixes.length < 0xffff) {
        form = this.#prefixes.push(m[1]!);
        this.#prefixIndex.set(m[1]!, form);
      }
      const at = slot * PACKED_BYTES;
      if (
        form !== undefined &&
        this.#hashBytes.write(m[2]!, at, SALT_BYTES, 'base64') === SALT_BYTES &&
        this.#hashBytes.write(m[3]!, at + SALT_BYTES, PACKED_BYTES - SALT_BYTES, 'base64') === PACKED_BYTES - SALT_BYTES
      ) {
        this.#hashForm[slot] = form;
        // Only a canonical encoding is packed, so what is read back is exactly what was put.
        if (this.#hashAt(slot) === hash) {
          this.#hashText.delete(slot);
          return;
        }
      }
    }
    this.#hashForm[slot] = 0;
    this.#hashText.set(slot, hash);
  }

  #hashAt(slot: number): string {
    const form = this.#hashForm[slot]!;
    if (form === 0) return this.#hashText.get(slot)!;
    const at = slot * PACKED_BYTES;
    const salt = this.#hashBytes.toString('base64', at, at + SALT_BYTES);
    const digest = this.#hashBytes.toString('base64', at + SALT_BYTES, at + PACKED_BYTES);
    // Unpadded, as PHC strings are: 16 bytes end in "==", 32 bytes in "=".
    return `${this.#prefixes[form - 1]!}${salt.slice(0, 22)}$${digest.slice(0, 43)}`;
  }

  #ownCopy(slot: number, b: Buffer): Buffer {
    const kept = this.#chap[slot];
    if (kept != null && kept.equals(b)) return kept;
    const copy = Buffer.allocUnsafeSlow(b.length);
    b.copy(copy);
    return copy;
  }

  #grow(): number {
    if (this.#end === this.#ids.length) {
      const cap = Math.max(1024, this.#ids.length * 2);
      const grown = <T extends Float64Array | Uint8Array | Uint16Array>(old: T, make: (n: number) => T): T => {
        const next = make(cap);
        next.set(old);
        return next;
      };
      this.#ids = grown(this.#ids, (n) => new Float64Array(n));
      this.#balances = grown(this.#balances, (n) => new Float64Array(n));
      this.#cycleIds = grown(this.#cycleIds, (n) => new Float64Array(n));
      this.#endsAt = grown(this.#endsAt, (n) => new Float64Array(n));
      this.#status = grown(this.#status, (n) => new Uint8Array(n));
      this.#hashForm = grown(this.#hashForm, (n) => new Uint16Array(n));
      const bytes = Buffer.allocUnsafeSlow(cap * PACKED_BYTES);
      this.#hashBytes.copy(bytes);
      this.#hashBytes = bytes;
      for (const index of [this.#byId, this.#byName]) {
        for (const entry of index.reset(cap)) if (entry !== 0) index.insert(entry - 1);
      }
    }
    return this.#end++;
  }
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
  readonly #accounts = new AccountTable();
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
    return this.#accounts.size;
  }

  get runningCycles(): number {
    return this.#accounts.runningCycles;
  }

  onError(fn: (err: unknown) => void): void {
    this.#onError = fn;
  }

  lookup(username: string): ViewLookup {
    if (!this.#ready) return UNSURE;
    const id = this.#accounts.idOf(username);
    if (id !== undefined && this.#pending.has(id)) return UNSURE;
    // An unknown name may be an account whose insert is notified but not yet read.
    if (id === undefined && this.#pending.size > 0) return UNSURE;
    // By id, not by name again: the name index hashes the string in JS, the id index a number.
    return { state: 'sure', account: id === undefined ? undefined : this.#accounts.byId(id) };
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
          this.#accounts.put(toView(row));
        }
        if (r.rows.length < PAGE) break;
        after = r.rows[r.rows.length - 1]!.id;
      }
      for (const id of this.#accounts.ids()) if (!seen.has(id)) this.#accounts.remove(id);
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
          this.#accounts.put(toView(row));
        }
        for (const [id, gen] of batch) {
          if (!found.has(id)) this.#accounts.remove(id);
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
    const a = this.#accounts.byId(accountId);
    if (a === undefined || (a.cycleId !== null && a.cycleId > cycleId)) return;
    this.#accounts.setCycle(accountId, cycleId, endsAtMs);
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
      sql<Row>`${sql.raw(PREPARED)} ${SELECT_ALL} WHERE a.username = ANY(${names}::text[])`.execute(this.db).then(
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
