import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';

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
   * Verifications run at once (argon2 runs on libuv's thread pool); default the number of CPUs the
   * process may use. Each production verification holds 19 MiB while it runs, so more at once than
   * there are cores raises peak RSS by 19 MiB each without verifying any faster.
   */
  readonly concurrency?: number;
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

/**
 * A short-lived memory of argon2 verdicts so a login storm is not bound by the KDF. Entries are keyed
 * by HMAC-SHA256(per-process random key, username, password, password_hash), truncated to 128 bits: the
 * password itself is never kept, and the key dies with the process. The hash is part of the key, so a
 * verdict counts only while the account's password_hash is the one it was reached against: a password
 * change invalidates it at once, without the entry holding a copy of the hash. Each entry is that
 * 16-byte key and one number (verdict and expiry), so 100k remembered logins cost a few MB. Concurrent
 * verifications of the same credentials share one argon2 run.
 */
export class CredentialCache {
  /** HMAC-SHA256 (RFC 2104) pads of the per-process key. */
  readonly #innerPad: Buffer;
  readonly #outerPad: Buffer;
  /** Where a MAC input is assembled: the pad, then each field length-prefixed; wiped after every use. */
  #scratch = Buffer.alloc(1024);
  /** MAC key (16 latin1 chars) -> pack(ok, expiresAtMs), in insertion order (the oldest first). */
  readonly #entries = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<boolean>>();
  readonly #waiting: (() => void)[] = [];
  readonly #okTtlMs: number;
  readonly #failTtlMs: number;
  readonly #maxEntries: number;
  readonly #maxPending: number;
  readonly #concurrency: number;
  #running = 0;

  constructor(
    readonly verify: (passwordHash: string, password: string) => Promise<boolean>,
    options: CredentialCacheOptions = {},
  ) {
    this.#okTtlMs = options.okTtlMs ?? 300_000;
    this.#failTtlMs = options.failTtlMs ?? 60_000;
    this.#maxEntries = options.maxEntries ?? 200_000;
    this.#maxPending = options.maxPending ?? 256;
    this.#concurrency = options.concurrency ?? availableParallelism();
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
   * as a 16-character one-byte string: a small map key (RFC 2104 §5 truncation). The length prefixes keep
   * distinct triples from sharing an input. Built in one reused buffer and hashed one-shot: this runs for
   * every Access-Request, and a Hash object per field was the largest allocation on that path.
   */
  #keyOf(username: string, password: string, passwordHash: string): string {
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
    const key = sha256(b.subarray(0, 96)).toString('latin1', 0, 16);
    b.fill(0, 0, o);
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
    let flight = this.#inflight.get(key);
    if (flight === undefined) {
      if (this.#inflight.size >= this.#maxPending) throw new VerifyOverloadError();
      flight = this.#run(passwordHash, password).then((ok) => {
        onVerified?.(ok);
        const nowMs = now();
        this.#store(key, pack(ok, nowMs + (ok ? this.#okTtlMs : this.#failTtlMs)), nowMs);
        return ok;
      });
      this.#inflight.set(key, flight);
      void flight.finally(() => this.#inflight.delete(key)).catch(() => undefined);
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

  #store(key: string, entry: number, nowMs: number): void {
    this.#entries.delete(key);
    // The oldest entries first: expired ones (each dropped once, so O(1) amortised), then any over the cap.
    for (const [oldKey, old] of this.#entries) {
      if (expiresAtOf(old) > nowMs && this.#entries.size < this.#maxEntries) break;
      this.#entries.delete(oldKey);
    }
    this.#entries.set(key, entry);
  }

  /** Drops every verdict (e.g. after the account view was rebuilt). */
  clear(): void {
    this.#entries.clear();
  }
}
