/**
 * What to do with a request according to the duplicate cache (RFC 5080 §2.2.2): process it, drop it because the
 * same request is being processed, or send the reply already sent for it.
 */
export type BeginResult = { kind: 'new' } | { kind: 'in-progress' } | { kind: 'replay'; reply: Buffer };

/** Sizing of the duplicate cache. */
export interface ReplyCacheOptions {
  /** How long a sent reply is kept for retransmissions; default 5 000 ms. */
  readonly ttlMs?: number;
  /**
   * How long a request may stay in progress before a retransmission is processed again; default 30 000 ms.
   * Longer than a NAS's retry window, so a slow database never makes a request run twice.
   */
  readonly inProgressTtlMs?: number;
  /** Entries kept at most; the oldest is evicted first; default 100 000. */
  readonly maxEntries?: number;
}

interface Entry {
  /**
   * The reply's bytes as a latin1 string. A reply Buffer is a view into one of Node's shared 8 KiB pool
   * slabs; holding it for the TTL kept whole slabs alive, long enough to reach the old generation, and
   * under load they piled up as tens of MiB of external memory between full GCs (bench:memory).
   */
  reply: string | undefined;
  touchedAtMs: number;
}

const NEW: BeginResult = { kind: 'new' };
const IN_PROGRESS: BeginResult = { kind: 'in-progress' };

/**
 * The key of a request in the duplicate cache: source address and port, Identifier and Request Authenticator,
 * the tuple RFC 5080 §2.2.2 names, so a NAS reusing an identifier for a new request is not mistaken for a retry.
 */
export function replyCacheKey(address: string, port: number, identifier: number, authenticator: Buffer): string {
  return `${address}|${port}|${identifier}|${authenticator.toString('base64')}`;
}

/**
 * Duplicate detection and reply replay for RFC 5080 §2.2.2, pure: callers pass the time, nothing runs by itself.
 * A Map kept in touch order gives O(1) begin/complete/abandon and an amortised O(1) sweep of the oldest entries.
 */
export class ReplyCache {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #inProgressTtlMs: number;
  readonly #maxEntries: number;
  #evictions = 0;

  constructor(options: ReplyCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 5_000;
    this.#inProgressTtlMs = options.inProgressTtlMs ?? 30_000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    if (!(this.#ttlMs > 0 && this.#inProgressTtlMs > 0 && this.#maxEntries >= 1)) {
      throw new RangeError('reply cache TTLs and size must be positive');
    }
  }

  /** Entries currently held, in progress or done. */
  get size(): number {
    return this.#entries.size;
  }

  /** Entries evicted because the cache was full, for a counter. */
  get evictions(): number {
    return this.#evictions;
  }

  #expired(entry: Entry, nowMs: number): boolean {
    const ttl = entry.reply === undefined ? this.#inProgressTtlMs : this.#ttlMs;
    return nowMs - entry.touchedAtMs >= ttl;
  }

  /**
   * Registers a request about to be processed, or tells the caller it is a duplicate.
   * A 'new' result obliges the caller to `complete` or `abandon` the key.
   */
  begin(key: string, nowMs: number): BeginResult {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      if (!this.#expired(entry, nowMs)) {
        return entry.reply === undefined ? IN_PROGRESS : { kind: 'replay', reply: Buffer.from(entry.reply, 'latin1') };
      }
      this.#entries.delete(key);
    }
    this.#trimHead(nowMs);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
      this.#evictions++;
    }
    this.#entries.set(key, { reply: undefined, touchedAtMs: nowMs });
    return NEW;
  }

  /**
   * Drops up to two expired entries at the old end on every new request, so under steady traffic expiry is
   * spread over the requests instead of piling up for the periodic sweep (which then found ~10k entries a
   * second to drop in one event-loop turn, a stall every NAS waiting behind it shared). Stops at the first
   * live entry; a slow in-progress one there is left to `sweep`.
   */
  #trimHead(nowMs: number): void {
    for (let i = 0; i < 2; i++) {
      const oldest = this.#entries.entries().next();
      if (oldest.done === true || !this.#expired(oldest.value[1], nowMs)) return;
      this.#entries.delete(oldest.value[0]);
    }
  }

  /** Stores the reply sent for `key`, replayed to retransmissions for the TTL from now. */
  complete(key: string, reply: Buffer, nowMs: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) {
        this.#entries.delete(oldest.value);
        this.#evictions++;
      }
    }
    this.#entries.set(key, { reply: reply.toString('latin1'), touchedAtMs: nowMs });
  }

  /** Forgets a request whose processing failed (e.g. the database is down), so a retransmission is processed again. */
  abandon(key: string): void {
    this.#entries.delete(key);
  }

  /** Removes expired entries and returns how many; call it from a timer in the shell. */
  sweep(nowMs: number): number {
    const horizon = nowMs - Math.min(this.#ttlMs, this.#inProgressTtlMs);
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.touchedAtMs > horizon) break;
      if (this.#expired(entry, nowMs)) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }
}
