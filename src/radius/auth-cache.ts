import { createHash, randomBytes, type Hash } from 'node:crypto';

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
  /** Verifications run at once (argon2 runs on libuv's thread pool); default 4. */
  readonly concurrency?: number;
}

interface Entry {
  /** The password_hash the verdict was reached against: a changed hash voids it. */
  readonly hash: string;
  readonly ok: boolean;
  readonly expiresAtMs: number;
}

/**
 * A short-lived memory of argon2 verdicts so a login storm is not bound by the KDF. Entries are keyed
 * by HMAC-SHA256(per-process random key, username \0 password): the password itself is never kept,
 * and the key dies with the process. A verdict counts only while the account's password_hash is the
 * one it was reached against, so a password change invalidates it at once. Concurrent verifications
 * of the same credentials share one argon2 run.
 */
export class CredentialCache {
  /** HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once: each key costs two hash copies. */
  readonly #inner: Hash;
  readonly #outer: Hash;
  readonly #entries = new Map<string, Entry>();
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
    this.#concurrency = options.concurrency ?? 4;
    const key = randomBytes(32);
    const pad = (byte: number) => Buffer.concat([key, Buffer.alloc(32)]).map((b) => b ^ byte);
    this.#inner = createHash('sha256').update(pad(0x36));
    this.#outer = createHash('sha256').update(pad(0x5c));
    key.fill(0);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Verifications running or queued. */
  get pending(): number {
    return this.#inflight.size;
  }

  #keyOf(username: string, password: string): string {
    const inner = this.#inner.copy().update(username).update('\0').update(password).digest();
    return this.#outer.copy().update(inner).digest('base64');
  }

  /**
   * The cached verdict for these credentials against `passwordHash`, or undefined when argon2 must run.
   * Synchronous so the common case costs one HMAC and one map probe.
   */
  peek(username: string, password: string, passwordHash: string, nowMs: number): boolean | undefined {
    const key = this.#keyOf(username, password);
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAtMs <= nowMs || e.hash !== passwordHash) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.ok;
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
    const key = this.#keyOf(username, password);
    const e = this.#entries.get(key);
    if (e !== undefined && e.expiresAtMs > now() && e.hash === passwordHash) return e.ok;
    const flightKey = `${key}|${passwordHash}`;
    let flight = this.#inflight.get(flightKey);
    if (flight === undefined) {
      if (this.#inflight.size >= this.#maxPending) throw new VerifyOverloadError();
      flight = this.#run(passwordHash, password).then((ok) => {
        onVerified?.(ok);
        this.#store(key, { hash: passwordHash, ok, expiresAtMs: now() + (ok ? this.#okTtlMs : this.#failTtlMs) });
        return ok;
      });
      this.#inflight.set(flightKey, flight);
      void flight.finally(() => this.#inflight.delete(flightKey)).catch(() => undefined);
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

  #store(key: string, entry: Entry): void {
    this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, entry);
  }

  /** Drops every verdict (e.g. after the account view was rebuilt). */
  clear(): void {
    this.#entries.clear();
  }
}
