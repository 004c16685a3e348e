import { randomBytes } from 'node:crypto';

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
  /**
   * Entries kept at most; default 100 000. Slots are taken in arrival order, so an entry is evicted when its
   * slot comes round again, after `maxEntries` newer requests (at 19k requests/s, after 5.2 s).
   */
  readonly maxEntries?: number;
  /**
   * Bytes kept for replies, written as a ring; default 96 per entry, at least 64 KiB. A reply overwritten before its TTL is
   * forgotten early, like an evicted entry (a retransmission is then processed again).
   */
  readonly replyBytes?: number;
}

const NEW: BeginResult = { kind: 'new' };
const IN_PROGRESS: BeginResult = { kind: 'in-progress' };

/** The request's source address as text, at most this long: IPv6 (45) + '%' + an interface name (15) fits. */
const ADDRESS_MAX = 64;
/** A key: [address length, port high, port low, Identifier, Request Authenticator x16, address text...]. */
const KEY_HEAD = 20;
const KEY_BYTES = KEY_HEAD + ADDRESS_MAX;

const EMPTY = 0;
const RUNNING = 1;
const DONE = 2;

/**
 * Duplicate detection and reply replay for RFC 5080 §2.2.2, keyed on the tuple it names: source address and
 * port, Identifier and Request Authenticator, so a NAS reusing an identifier for a new request is not mistaken
 * for a retry. Pure: callers pass the time, nothing runs by itself.
 *
 * Everything lives in typed arrays allocated once: a ring of `maxEntries` slots in arrival order, an
 * open-addressing index (linear probing, backward-shift deletion) over it, and a byte ring for the replies.
 * A cache of JS objects (a Map of key strings to entries holding reply strings) made every request leave
 * 3-4 objects behind for 5 s: all were promoted to the old generation, so at 18k requests/s the heap grew
 * ~10 MB/s and a full GC ran every ~2 s, each stalling the event loop long enough to queue ~90 ms of
 * requests (bench:compare's paced run). Here a request allocates nothing, and the GC has nothing to trace.
 *
 * The index hashes with a per-process random seed, so a NAS cannot choose authenticators that collide.
 */
export class ReplyCache {
  readonly #ttlMs: number;
  readonly #inProgressTtlMs: number;
  readonly #capacity: number;
  // Per slot.
  readonly #seq: Float64Array;
  readonly #state: Uint8Array;
  readonly #touched: Float64Array;
  readonly #hash: Int32Array;
  readonly #keys: Uint8Array;
  readonly #replyAt: Float64Array;
  readonly #replyLength: Uint16Array;
  // The index: slot + 1, 0 when free.
  readonly #index: Int32Array;
  readonly #mask: number;
  readonly #seed: number;
  // The reply ring; positions are absolute (a JS number counts past 2^53 bytes only after centuries).
  readonly #log: Uint8Array;
  #logAt = 0;
  /** Sequence number of the next entry; its slot is `seq % capacity`. */
  #head = 0;
  /** The oldest sequence number that may still hold an entry. */
  #tail = 0;
  #size = 0;
  #evictions = 0;
  /** The key of the request at hand, and its length. */
  readonly #scratch = new Uint8Array(KEY_BYTES);

  constructor(options: ReplyCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 5_000;
    this.#inProgressTtlMs = options.inProgressTtlMs ?? 30_000;
    const capacity = options.maxEntries ?? 100_000;
    const replyBytes = options.replyBytes ?? Math.max(65_536, capacity * 96);
    if (!(this.#ttlMs > 0 && this.#inProgressTtlMs > 0 && Number.isInteger(capacity) && capacity >= 1 && replyBytes >= 4096)) {
      throw new RangeError('reply cache TTLs and sizes must be positive (replyBytes at least 4096)');
    }
    this.#capacity = capacity;
    this.#seq = new Float64Array(capacity);
    this.#state = new Uint8Array(capacity);
    this.#touched = new Float64Array(capacity);
    this.#hash = new Int32Array(capacity);
    this.#keys = new Uint8Array(capacity * KEY_BYTES);
    this.#replyAt = new Float64Array(capacity);
    this.#replyLength = new Uint16Array(capacity);
    let table = 16;
    while (table < capacity * 2) table *= 2;
    this.#index = new Int32Array(table);
    this.#mask = table - 1;
    this.#seed = randomBytes(4).readInt32LE(0);
    this.#log = new Uint8Array(replyBytes);
  }

  /** Entries currently held, in progress or done. */
  get size(): number {
    return this.#size;
  }

  /** Entries evicted because the cache was full, for a counter. */
  get evictions(): number {
    return this.#evictions;
  }

  /**
   * Registers a request about to be processed, or tells the caller it is a duplicate. `request` is the
   * packet (its Identifier and Request Authenticator are read). A 'new' result obliges the caller to
   * `complete` or `abandon` the request.
   */
  begin(address: string, port: number, request: Uint8Array, nowMs: number): BeginResult {
    const length = this.#keyOf(address, port, request);
    if (length < 0) return NEW;
    const hash = this.#hashOf(length);
    const at = this.#find(hash, length);
    if (at >= 0) {
      const slot = (this.#index[at] as number) - 1;
      if (!this.#expired(slot, nowMs)) {
        if (this.#state[slot] === RUNNING) return IN_PROGRESS;
        const from = this.#replyAt[slot] as number;
        const start = from % this.#log.length;
        return { kind: 'replay', reply: Buffer.from(this.#log.subarray(start, start + (this.#replyLength[slot] as number))) };
      }
      this.#remove(slot, at);
    }
    this.#trim(nowMs, 2);
    this.#insert(hash, length, RUNNING, nowMs);
    return NEW;
  }

  /** Stores the reply sent for the request, replayed to retransmissions for the TTL from now. */
  complete(address: string, port: number, request: Uint8Array, reply: Uint8Array, nowMs: number): void {
    const length = this.#keyOf(address, port, request);
    if (length < 0) return;
    const hash = this.#hashOf(length);
    const at = this.#find(hash, length);
    if (reply.length > this.#log.length || reply.length > 0xffff) {
      if (at >= 0) this.#remove((this.#index[at] as number) - 1, at);
      return;
    }
    // Evicted meanwhile (a full cache): stored again, so the retransmission still gets this reply.
    const slot = at >= 0 ? (this.#index[at] as number) - 1 : this.#insert(hash, length, DONE, nowMs);
    const size = this.#log.length;
    if ((this.#logAt % size) + reply.length > size) this.#logAt += size - (this.#logAt % size);
    this.#log.set(reply, this.#logAt % size);
    this.#replyAt[slot] = this.#logAt;
    this.#replyLength[slot] = reply.length;
    this.#logAt += reply.length;
    this.#state[slot] = DONE;
    this.#touched[slot] = nowMs;
  }

  /** Forgets a request whose processing failed (e.g. the database is down), so a retransmission is processed again. */
  abandon(address: string, port: number, request: Uint8Array): void {
    const length = this.#keyOf(address, port, request);
    if (length < 0) return;
    const at = this.#find(this.#hashOf(length), length);
    if (at >= 0) this.#remove((this.#index[at] as number) - 1, at);
  }

  /**
   * Removes expired entries from the old end, stopping at the first live one, and returns how many; call it
   * from a timer in the shell. Memory is fixed either way: this keeps `size` true while traffic is idle.
   */
  sweep(nowMs: number): number {
    return this.#trim(nowMs, Infinity);
  }

  /** Drops up to `budget` expired entries at the old end; steady traffic keeps the cache at one TTL's worth. */
  #trim(nowMs: number, budget: number): number {
    let removed = 0;
    while (this.#tail < this.#head && removed < budget) {
      const slot = this.#tail % this.#capacity;
      if (this.#state[slot] !== EMPTY && this.#seq[slot] === this.#tail) {
        if (!this.#expired(slot, nowMs)) break;
        this.#remove(slot, this.#positionOf(slot));
        removed++;
      }
      this.#tail++;
    }
    return removed;
  }

  #expired(slot: number, nowMs: number): boolean {
    if (this.#state[slot] === RUNNING) return nowMs - (this.#touched[slot] as number) >= this.#inProgressTtlMs;
    // A reply partly overwritten in the ring is as good as gone.
    if (this.#logAt - (this.#replyAt[slot] as number) > this.#log.length) return true;
    return nowMs - (this.#touched[slot] as number) >= this.#ttlMs;
  }

  /** Writes the request's key into the scratch buffer; its length, or -1 for an address too long to key (none is). */
  #keyOf(address: string, port: number, request: Uint8Array): number {
    const n = address.length;
    if (n > ADDRESS_MAX || request.length < KEY_HEAD) return -1;
    const key = this.#scratch;
    key[0] = n;
    key[1] = port >>> 8;
    key[2] = port & 0xff;
    key[3] = request[1] as number;
    for (let i = 4; i < KEY_HEAD; i++) key[i] = request[i] as number;
    for (let i = 0; i < n; i++) {
      const c = address.charCodeAt(i);
      if (c > 0x7f) return -1;
      key[KEY_HEAD + i] = c;
    }
    return KEY_HEAD + n;
  }

  /** FNV-1a over the scratch key, seeded per process, with a final avalanche. */
  #hashOf(length: number): number {
    const key = this.#scratch;
    let h = this.#seed ^ 0x811c9dc5;
    for (let i = 0; i < length; i++) h = Math.imul(h ^ (key[i] as number), 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return h | 0;
  }

  /** The index position holding the scratch key, or -1. */
  #find(hash: number, length: number): number {
    const index = this.#index;
    const keys = this.#keys;
    const key = this.#scratch;
    let at = hash & this.#mask;
    for (;;) {
      const entry = index[at] as number;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.#hash[slot] === hash) {
        const base = slot * KEY_BYTES;
        let i = 0;
        while (i < length && keys[base + i] === key[i]) i++;
        if (i === length) return at;
      }
      at = (at + 1) & this.#mask;
    }
  }

  /** The index position of an occupied slot. */
  #positionOf(slot: number): number {
    let at = (this.#hash[slot] as number) & this.#mask;
    while (this.#index[at] !== slot + 1) at = (at + 1) & this.#mask;
    return at;
  }

  /** Takes the next slot of the ring for the scratch key (evicting what it held) and indexes it. */
  #insert(hash: number, length: number, state: number, nowMs: number): number {
    const slot = this.#head % this.#capacity;
    if (this.#state[slot] !== EMPTY) {
      if (!this.#expired(slot, nowMs)) this.#evictions++;
      this.#remove(slot, this.#positionOf(slot));
    }
    const keys = this.#keys;
    const key = this.#scratch;
    const base = slot * KEY_BYTES;
    for (let i = 0; i < length; i++) keys[base + i] = key[i] as number;
    this.#seq[slot] = this.#head++;
    if (this.#tail < this.#head - this.#capacity) this.#tail = this.#head - this.#capacity;
    this.#state[slot] = state;
    this.#touched[slot] = nowMs;
    this.#hash[slot] = hash;
    this.#replyAt[slot] = -Infinity;
    let at = hash & this.#mask;
    while (this.#index[at] !== 0) at = (at + 1) & this.#mask;
    this.#index[at] = slot + 1;
    this.#size++;
    return slot;
  }

  /** Frees a slot and its index position `at`, shifting back the entries that probed past it. */
  #remove(slot: number, at: number): void {
    this.#state[slot] = EMPTY;
    this.#size--;
    const index = this.#index;
    const mask = this.#mask;
    let hole = at;
    let next = at;
    for (;;) {
      index[hole] = 0;
      for (;;) {
        next = (next + 1) & mask;
        const entry = index[next] as number;
        if (entry === 0) return;
        const home = (this.#hash[entry - 1] as number) & mask;
        // The entry may move into the hole unless its home lies cyclically in (hole, next].
        const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
        if (!stays) {
          index[hole] = entry;
          hole = next;
          break;
        }
      }
    }
  }
}
