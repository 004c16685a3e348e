import { createHash, randomBytes } from 'node:crypto';
import { SlotIndex } from './slot-index.ts';

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
   * Bytes kept for replies, written as a ring; default 128 per slot, at least 64 KiB, growing with the slots.
   * A reply overwritten before its TTL is forgotten early, like an evicted entry (a retransmission is then
   * processed again).
   */
  readonly replyBytes?: number;
}

const NEW: BeginResult = { kind: 'new' };
const IN_PROGRESS: BeginResult = { kind: 'in-progress' };

/**
 * A key: [address length, port high, port low, Identifier, Request Authenticator x16, address]. The address
 * is an IPv4 address's 4 octets, or for any other (IPv6, zone included) the first 16 octets of its SHA-256.
 */
const KEY_HEAD = 20;
const KEY_BYTES = KEY_HEAD + 16;
/** Slots to start with; doubled, up to maxEntries, whenever taking the next would evict a live entry. */
const INITIAL_ENTRIES = 4_096;
/** Reply bytes per slot unless the caller fixes the ring: an Access-Accept is ~40, a bilingual Reject ~150. */
const REPLY_BYTES_PER_ENTRY = 128;
/** Addresses other than dotted quads whose digest is remembered; cleared when full. */
const DIGESTS_MAX = 1024;

const EMPTY = 0;
const RUNNING = 1;
const DONE = 2;

/**
 * Duplicate detection and reply replay for RFC 5080 §2.2.2, keyed on the tuple it names: source address and
 * port, Identifier and Request Authenticator, so a NAS reusing an identifier for a new request is not mistaken
 * for a retry. Pure: callers pass the time, nothing runs by itself.
 *
 * Everything lives in typed arrays: a ring of slots in arrival order, an open-addressing index (linear
 * probing, backward-shift deletion) over it, and a byte ring for the replies. The ring starts at 4 096 slots
 * and doubles, up to `maxEntries`, when taking the next slot would evict an entry still live, so it holds
 * what one TTL of the busiest traffic so far needed (a campus's login peak: a few thousand), not 100 000.
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
  readonly #maxEntries: number;
  /** Fixed reply ring size when the caller chose one; otherwise REPLY_BYTES_PER_ENTRY per slot. */
  readonly #fixedReplyBytes: number | undefined;
  readonly #seed: number;
  #capacity = 0;
  // Per slot.
  #seq = new Float64Array(0);
  #state = new Uint8Array(0);
  #touched = new Float64Array(0);
  #hash = new Int32Array(0);
  #keys = new Uint8Array(0);
  #replyAt = new Float64Array(0);
  #replyLength = new Uint16Array(0);
  readonly #index = new SlotIndex((slot) => this.#hash[slot]!);
  // The reply ring; positions are absolute (a JS number counts past 2^53 bytes only after centuries).
  #log = new Uint8Array(0);
  #logAt = 0;
  /** Sequence number of the next entry; its slot is `seq % capacity`. */
  #head = 0;
  /** The oldest sequence number that may still hold an entry. */
  #tail = 0;
  #size = 0;
  #evictions = 0;
  /** The key of the request at hand. */
  readonly #scratch = new Uint8Array(KEY_BYTES);
  /** Digests of the non-IPv4 source addresses seen (a NAS's few addresses, in practice). */
  readonly #digests = new Map<string, Buffer>();

  constructor(options: ReplyCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 5_000;
    this.#inProgressTtlMs = options.inProgressTtlMs ?? 30_000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#fixedReplyBytes = options.replyBytes;
    const max = this.#maxEntries;
    if (!(this.#ttlMs > 0 && this.#inProgressTtlMs > 0 && Number.isInteger(max) && max >= 1 && (options.replyBytes ?? 4096) >= 4096)) {
      throw new RangeError('reply cache TTLs and sizes must be positive (replyBytes at least 4096)');
    }
    this.#seed = randomBytes(4).readInt32LE(0);
    this.#resize(Math.min(max, INITIAL_ENTRIES));
  }

  /** Slots allocated now: grows from 4 096 towards maxEntries as the traffic of one TTL needs them. */
  get capacity(): number {
    return this.#capacity;
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
    if (length < 0) return NEW; // shorter than a RADIUS header: nothing to key (the decoder drops it)
    const hash = this.#hashOf(length);
    const slot = this.#find(hash, length);
    if (slot >= 0) {
      if (!this.#expired(slot, nowMs)) {
        if (this.#state[slot] === RUNNING) return IN_PROGRESS;
        const from = this.#replyAt[slot] as number;
        const start = from % this.#log.length;
        return { kind: 'replay', reply: Buffer.from(this.#log.subarray(start, start + (this.#replyLength[slot] as number))) };
      }
      this.#remove(slot);
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
    const found = this.#find(hash, length);
    if (reply.length > this.#log.length || reply.length > 0xffff) {
      if (found >= 0) this.#remove(found);
      return;
    }
    // Evicted meanwhile (a full cache): stored again, so the retransmission still gets this reply.
    const slot = found >= 0 ? found : this.#insert(hash, length, DONE, nowMs);
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
    const slot = this.#find(this.#hashOf(length), length);
    if (slot >= 0) this.#remove(slot);
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
        this.#remove(slot);
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

  /** Writes the request's key into the scratch buffer; its length, or -1 for a packet too short to key. */
  #keyOf(address: string, port: number, request: Uint8Array): number {
    if (request.length < KEY_HEAD) return -1;
    const key = this.#scratch;
    key[1] = port >>> 8;
    key[2] = port & 0xff;
    key[3] = request[1] as number;
    for (let i = 4; i < KEY_HEAD; i++) key[i] = request[i] as number;
    if (this.#ipv4(address)) {
      key[0] = 4;
      return KEY_HEAD + 4;
    }
    let digest = this.#digests.get(address);
    if (digest === undefined) {
      if (this.#digests.size >= DIGESTS_MAX) this.#digests.clear();
      digest = createHash('sha256').update(address).digest();
      this.#digests.set(address, digest);
    }
    key[0] = 16;
    for (let i = 0; i < 16; i++) key[KEY_HEAD + i] = digest[i] as number;
    return KEY_HEAD + 16;
  }

  /**
   * Parses a dotted quad, or an IPv4-mapped IPv6 address as a dual-stack socket reports an IPv4 source
   * (`::ffff:a.b.c.d`, the default RADIUS_HOST `::`), into the key's address octets; false for anything else.
   */
  #ipv4(address: string): boolean {
    const key = this.#scratch;
    let octet = 0;
    let digits = 0;
    let at = KEY_HEAD;
    const from = address.startsWith('::ffff:') ? 7 : 0;
    for (let i = from; i < address.length; i++) {
      const c = address.charCodeAt(i);
      if (c === 0x2e) {
        if (digits === 0 || at === KEY_HEAD + 3) return false;
        key[at++] = octet;
        octet = 0;
        digits = 0;
      } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
        octet = octet * 10 + (c - 0x30);
        if (octet > 255) return false;
        digits++;
      } else {
        return false;
      }
    }
    if (digits === 0 || at !== KEY_HEAD + 3) return false;
    key[at] = octet;
    return true;
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

  /** The slot holding the scratch key, or -1. */
  #find(hash: number, length: number): number {
    const { table, mask } = this.#index;
    const keys = this.#keys;
    const key = this.#scratch;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const entry = table[at] as number;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.#hash[slot] === hash) {
        const base = slot * KEY_BYTES;
        let i = 0;
        while (i < length && keys[base + i] === key[i]) i++;
        if (i === length) return slot;
      }
    }
  }

  /** Takes the next slot of the ring for the scratch key (evicting what it held) and indexes it. */
  #insert(hash: number, length: number, state: number, nowMs: number): number {
    let slot = this.#head % this.#capacity;
    if (this.#state[slot] !== EMPTY && this.#capacity < this.#maxEntries && !this.#expired(slot, nowMs)) {
      this.#resize(Math.min(this.#maxEntries, this.#capacity * 2));
      slot = this.#head % this.#capacity;
    }
    if (this.#state[slot] !== EMPTY) {
      if (!this.#expired(slot, nowMs)) this.#evictions++;
      this.#remove(slot);
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
    this.#index.insert(slot);
    this.#size++;
    return slot;
  }

  /**
   * Moves every entry into arrays for `capacity` slots: each keeps its sequence number, and so its place in
   * arrival order, at slot `seq % capacity`; the reply ring keeps every byte at its absolute position. Runs
   * a handful of times in a process's life (4 096 -> 100 000 slots is five doublings).
   */
  #resize(capacity: number): void {
    const was = {
      capacity: this.#capacity,
      seq: this.#seq,
      state: this.#state,
      touched: this.#touched,
      hash: this.#hash,
      keys: this.#keys,
      replyAt: this.#replyAt,
      replyLength: this.#replyLength,
      log: this.#log,
    };
    this.#capacity = capacity;
    this.#seq = new Float64Array(capacity);
    this.#state = new Uint8Array(capacity);
    this.#touched = new Float64Array(capacity);
    this.#hash = new Int32Array(capacity);
    this.#keys = new Uint8Array(capacity * KEY_BYTES);
    this.#replyAt = new Float64Array(capacity);
    this.#replyLength = new Uint16Array(capacity);
    this.#index.reset(capacity);
    const logBytes = this.#fixedReplyBytes ?? Math.max(65_536, capacity * REPLY_BYTES_PER_ENTRY);
    if (logBytes !== was.log.length) {
      this.#log = new Uint8Array(logBytes);
      // The bytes that may still belong to a live reply: the last `was.log.length` written.
      for (let a = Math.max(0, this.#logAt - was.log.length); a < this.#logAt; ) {
        const from = a % was.log.length;
        const to = a % logBytes;
        const n = Math.min(this.#logAt - a, was.log.length - from, logBytes - to);
        this.#log.set(was.log.subarray(from, from + n), to);
        a += n;
      }
    }
    for (let seq = Math.max(this.#tail, this.#head - was.capacity); seq < this.#head; seq++) {
      const from = seq % was.capacity;
      if (was.state[from] === EMPTY || was.seq[from] !== seq) continue;
      const to = seq % capacity;
      this.#seq[to] = seq;
      this.#state[to] = was.state[from] as number;
      this.#touched[to] = was.touched[from] as number;
      this.#hash[to] = was.hash[from] as number;
      this.#replyAt[to] = was.replyAt[from] as number;
      this.#replyLength[to] = was.replyLength[from] as number;
      this.#keys.set(was.keys.subarray(from * KEY_BYTES, (from + 1) * KEY_BYTES), to * KEY_BYTES);
      this.#index.insert(to);
    }
  }

  /** Frees a slot and takes it out of the index. */
  #remove(slot: number): void {
    this.#state[slot] = EMPTY;
    this.#size--;
    this.#index.delete(slot);
  }
}
