import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { SlotIndex } from './slot-index.ts';

/** Thrown when too many password verifications are queued: the request is dropped and the NAS retries. */
export class VerifyOverloadError extends Error {
  constructor() {
    super('too many password verifications in progress');
    this.name = 'VerifyOverloadError';
  }
}

export interface CredentialCacheOptions {
  /** How long a successful verification is trusted; default 5 min. */
  readonly okTtlMs?: number;
  /** How long a failed verification is remembered; default 60 s. */
  readonly failTtlMs?: number;
  readonly maxEntries?: number;
  /** Verifications running or queued at most before new ones are refused; default 256. */
  readonly maxPending?: number;
  /**
   * Verifications run at once (argon2 runs on libuv's thread pool); default defaultVerifyConcurrency().
   * Each verification holds its hash's memory cost (7 MiB for hashes made by src/billing/password.ts)
   * while it runs, so more at once than there are cores raises peak RSS by that much each without
   * verifying any faster.
   */
  readonly concurrency?: number;
}

/**
 * Verifications at once unless configured: one fewer than the CPUs the process may use, at least one.
 * A storm of cold logins then leaves the event loop a core of its own, so the logins answered from memory
 * keep flowing while argon2 works, and the storm's memory peak is one hash's cost lower. On 2 cores that
 * is one at a time: bench:memory (100k accounts, 50k logins) peaked at 136.0 MiB against 149.5-150.3 MiB
 * with two, and its 50k cold logins took 64 s against 51 s.
 */
export function defaultVerifyConcurrency(cpus: number = availableParallelism()): number {
  return Math.max(1, cpus - 1);
}

/**
 * A verdict and its expiry packed into one number: 2 * expiresAtMs + (ok ? 1 : 0). Exact for any time in
 * milliseconds (|2 * ms| stays far below 2^53), and a Map value that needs no object of its own.
 */
function pack(ok: boolean, expiresAtMs: number): number {
  return 2 * expiresAtMs + (ok ? 1 : 0);
}

function expiresAtOf(packed: number): number {
  return Math.floor(packed / 2);
}

function okOf(packed: number): boolean {
  return packed - 2 * expiresAtOf(packed) === 1;
}

/** One-shot `crypto.hash` (Node >= 20.12): no Hash object per call. */
const oneShotHash: typeof nodeCrypto.hash | undefined = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined;

function sha256(data: Buffer): Buffer {
  return oneShotHash ? oneShotHash('sha256', data, 'buffer') : createHash('sha256').update(data).digest();
}

/** Slots a verdict table starts with; it doubles, up to its maximum, as verdicts accumulate. */
const INITIAL_SLOTS = 1024;

/**
 * Verdicts keyed by 128-bit MACs, kept outside the garbage-collected heap: a ring of slots in insertion
 * order (the key as four int32 and the packed verdict; NaN marks a slot whose verdict was removed) and
 * an open-addressing index of slot + 1, probed linearly from the key's first word (a MAC is uniform, and
 * its key is secret) and kept dense by backward-shift deletion. 50k verdicts take 2 MiB here instead of
 * ~4.2 MiB of strings, map entries and heap numbers that every full GC had to trace (issue 5).
 */
class VerdictTable {
  #slots = 0;
  #keys = new Int32Array(0);
  #verdicts = new Float64Array(0);
  readonly #index = new SlotIndex((slot) => this.#keys[slot * 4]!);
  /** Sequence numbers: the ring holds [#tail, #head), sequence n in slot n % #slots. */
  #head = 0;
  #tail = 0;
  #live = 0;

  constructor(readonly maxEntries: number) {
    this.#allocate(Math.min(INITIAL_SLOTS, maxEntries));
  }

  get size(): number {
    return this.#live;
  }

  /** The packed verdict stored under `key`, or undefined. */
  get(key: Int32Array): number | undefined {
    const slot = this.#find(key);
    return slot < 0 ? undefined : this.#verdicts[slot];
  }

  delete(key: Int32Array): void {
    const slot = this.#find(key);
    if (slot >= 0) this.#remove(slot);
  }

  /**
   * Stores `verdict` under `key` as the newest entry. Makes room the way a Map in insertion order would:
   * expired verdicts at the old end go first, then the oldest while the table is at its maximum.
   */
  set(key: Int32Array, verdict: number, nowMs: number): void {
    this.delete(key);
    while (this.#tail < this.#head) {
      const slot = this.#tail % this.#slots;
      const v = this.#verdicts[slot]!;
      if (!Number.isNaN(v)) {
        if (expiresAtOf(v) > nowMs && this.#live < this.maxEntries) break;
        this.#remove(slot);
      }
      this.#tail++;
    }
    if (this.#head - this.#tail === this.#slots) {
      // The ring is full of live verdicts and removed ones: grow while mostly live and allowed to,
      // reclaim the removed ones when they are many (each costs O(1) amortised), else drop the oldest.
      if (this.#live > this.#slots / 2 && this.#slots < this.maxEntries) this.#rebuild(Math.min(this.maxEntries, this.#slots * 2));
      else if (this.#live <= this.#slots / 2) this.#rebuild(this.#slots);
      else {
        for (; Number.isNaN(this.#verdicts[this.#tail % this.#slots]!); this.#tail++);
        this.#remove(this.#tail % this.#slots);
        this.#tail++;
      }
    }
    const slot = this.#head % this.#slots;
    this.#head++;
    this.#put(slot, key, verdict);
  }

  clear(): void {
    this.#allocate(Math.min(INITIAL_SLOTS, this.maxEntries));
  }

  #allocate(slots: number): void {
    this.#slots = slots;
    this.#keys = new Int32Array(slots * 4);
    this.#verdicts = new Float64Array(slots).fill(NaN);
    this.#index.reset(slots);
    this.#head = 0;
    this.#tail = 0;
    this.#live = 0;
  }

  /** Moves the live verdicts, oldest first, into a ring of `slots`. */
  #rebuild(slots: number): void {
    const keys = this.#keys;
    const verdicts = this.#verdicts;
    const [from, to, oldSlots] = [this.#tail, this.#head, this.#slots];
    this.#allocate(slots);
    for (let seq = from; seq < to; seq++) {
      const old = seq % oldSlots;
      const v = verdicts[old]!;
      if (Number.isNaN(v)) continue;
      this.#put(this.#head++, keys.subarray(old * 4, old * 4 + 4), v);
    }
  }

  #put(slot: number, key: Int32Array, verdict: number): void {
    this.#keys.set(key, slot * 4);
    this.#verdicts[slot] = verdict;
    this.#index.insert(slot);
    this.#live++;
  }

  #find(key: Int32Array): number {
    const keys = this.#keys;
    const { table, mask } = this.#index;
    const [k0, k1, k2, k3] = [key[0]!, key[1]!, key[2]!, key[3]!];
    for (let i = k0 & mask; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return -1;
      const o = (entry - 1) * 4;
      if (keys[o] === k0 && keys[o + 1] === k1 && keys[o + 2] === k2 && keys[o + 3] === k3) return entry - 1;
    }
  }

  /** Takes `slot` out of the index and marks it removed. */
  #remove(slot: number): void {
    this.#index.delete(slot);
    this.#verdicts[slot] = NaN;
    this.#live--;
  }
}

/**
 * A short-lived memory of argon2 verdicts so a login storm is not bound by the KDF. Entries are keyed
 * by HMAC-SHA256(per-process random key, username, password, password_hash), truncated to 128 bits: the
 * password itself is never kept, and the key dies with the process. The hash is part of the key, so a
 * verdict counts only while the account's password_hash is the one it was reached against: a password
 * change invalidates it at once, without the entry holding a copy of the hash. Each entry is that
 * 16-byte key and one number (verdict and expiry), in typed arrays (VerdictTable): 50k remembered logins
 * cost 2 MiB. Concurrent verifications of the same credentials share one argon2 run.
 */
export class CredentialCache {
  /** HMAC-SHA256 (RFC 2104) pads of the per-process key. */
  readonly #innerPad: Buffer;
  readonly #outerPad: Buffer;
  /** Where a MAC input is assembled: the pad, then each field length-prefixed; wiped after every use. */
  #scratch = Buffer.alloc(1024);
  /** MAC -> pack(ok, expiresAtMs), in insertion order (the oldest first). */
  readonly #entries: VerdictTable;
  /** The MAC of the request at hand, as #keyOf leaves it. */
  readonly #key = new Int32Array(4);
  /** Verifications in flight, by MAC (16 latin1 chars). */
  readonly #inflight = new Map<string, Promise<boolean>>();
  readonly #waiting: (() => void)[] = [];
  readonly #okTtlMs: number;
  readonly #failTtlMs: number;
  readonly #maxPending: number;
  readonly #concurrency: number;
  #running = 0;

  constructor(
    readonly verify: (passwordHash: string, password: string) => Promise<boolean>,
    options: CredentialCacheOptions = {},
  ) {
    this.#okTtlMs = options.okTtlMs ?? 300_000;
    this.#failTtlMs = options.failTtlMs ?? 60_000;
    this.#entries = new VerdictTable(options.maxEntries ?? 200_000);
    this.#maxPending = options.maxPending ?? 256;
    this.#concurrency = options.concurrency ?? defaultVerifyConcurrency();
    const key = randomBytes(32);
    const pad = (byte: number) => Buffer.from(Buffer.concat([key, Buffer.alloc(32)]).map((b) => b ^ byte));
    this.#innerPad = pad(0x36);
    this.#outerPad = pad(0x5c);
    key.fill(0);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Verifications running or queued. */
  get pending(): number {
    return this.#inflight.size;
  }

  /**
   * HMAC-SHA256(key, len(username) username len(password) password len(hash) hash), truncated to 128 bits
   * (RFC 2104 §5), into #key. The length prefixes keep distinct triples from sharing an input. Built in one
   * reused buffer and hashed one-shot: this runs for every Access-Request, and a Hash object per field was
   * the largest allocation on that path.
   */
  #keyOf(username: string, password: string, passwordHash: string): Int32Array {
    const need = 64 + 12 + Buffer.byteLength(username) + Buffer.byteLength(password) + Buffer.byteLength(passwordHash);
    if (need > this.#scratch.length) this.#scratch = Buffer.alloc(need * 2);
    const b = this.#scratch;
    this.#innerPad.copy(b, 0);
    let o = 64;
    for (const text of [username, password, passwordHash]) {
      const n = b.write(text, o + 4, 'utf8');
      b.writeUInt32BE(n, o);
      o += 4 + n;
    }
    const inner = sha256(b.subarray(0, o));
    this.#outerPad.copy(b, 0);
    inner.copy(b, 64);
    const mac = sha256(b.subarray(0, 96));
    b.fill(0, 0, o);
    const key = this.#key;
    for (let i = 0; i < 4; i++) key[i] = mac.readInt32LE(i * 4);
    return key;
  }

  /**
   * The cached verdict for these credentials against `passwordHash`, or undefined when argon2 must run.
   * Synchronous so the common case costs one HMAC and one map probe.
   */
  peek(username: string, password: string, passwordHash: string, nowMs: number): boolean | undefined {
    const key = this.#keyOf(username, password, passwordHash);
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (expiresAtOf(e) <= nowMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return okOf(e);
  }

  /**
   * Checks `password` against `passwordHash`, from the cache when it can. `onVerified` tells the caller
   * argon2 actually ran (for a counter). Throws VerifyOverloadError when the queue is full.
   */
  async check(
    username: string,
    password: string,
    passwordHash: string,
    now: () => number,
    onVerified?: (ok: boolean) => void,
  ): Promise<boolean> {
    const key = this.#keyOf(username, password, passwordHash);
    const e = this.#entries.get(key);
    if (e !== undefined && expiresAtOf(e) > now()) return okOf(e);
    const name = Buffer.from(key.buffer, key.byteOffset, 16).toString('latin1');
    let flight = this.#inflight.get(name);
    if (flight === undefined) {
      if (this.#inflight.size >= this.#maxPending) throw new VerifyOverloadError();
      const kept = key.slice();
      flight = this.#run(passwordHash, password).then((ok) => {
        onVerified?.(ok);
        const nowMs = now();
        this.#entries.set(kept, pack(ok, nowMs + (ok ? this.#okTtlMs : this.#failTtlMs)), nowMs);
        return ok;
      });
      this.#inflight.set(name, flight);
      void flight.finally(() => this.#inflight.delete(name)).catch(() => undefined);
    }
    return flight;
  }

  async #run(passwordHash: string, password: string): Promise<boolean> {
    // A finishing run hands its slot straight to the next waiter, so the limit is never overshot.
    if (this.#running >= this.#concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await this.verify(passwordHash, password);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }

  /** Drops every verdict (e.g. after the account view was rebuilt). */
  clear(): void {
    this.#entries.clear();
  }
}
