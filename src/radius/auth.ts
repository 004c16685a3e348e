import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { formatYuan, type Billing, type DormLoginResult } from '../billing/billing.ts';
import type { Area, Database } from '../db/schema.ts';
import { isAppError } from '../errors.ts';
import { AccountReader, type AccountView, type ViewAccount } from './account-view.ts';
import type { AttributeInput } from './attributes.ts';
import { CredentialCache, VerifyOverloadError } from './auth-cache.ts';
import { openCredential, replacePasswordHash, storeChapCredential } from './credential.ts';
import type { RejectReason, RadiusMetrics } from './metrics.ts';
import { areaOf, type NasEntry } from './nas-table.ts';
import { verifyChapPassword, type RadiusPacket } from './packet.ts';

/** The request cannot be decided now (database unreachable, overload): drop it so the NAS retries or fails over. */
export class AuthUnavailableError extends Error {
  constructor(
    readonly reason: 'db_unavailable' | 'overload',
    override readonly cause?: unknown,
  ) {
    super(reason);
    this.name = 'AuthUnavailableError';
  }
}

export type AuthDecision =
  | { readonly kind: 'accept'; readonly area: Area; readonly sessionTimeoutSeconds: number | null; readonly endsAtMs: number | null }
  | { readonly kind: 'reject'; readonly reason: Exclude<RejectReason, 'arrears'> }
  | { readonly kind: 'reject'; readonly reason: 'arrears'; readonly balanceFen: number; readonly neededFen: number };

const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

/** "2026-10-01 16:00" in the school's time zone (Asia/Shanghai, UTC+8 all year). */
export function formatShanghai(ms: number): string {
  return new Date(ms + SHANGHAI_OFFSET_MS).toISOString().slice(0, 16).replace('T', ' ');
}

/** The Reply-Message a user reads on the portal or client: Chinese first, then English (domain rules 1, 7). */
export function replyMessage(d: AuthDecision): string {
  if (d.kind === 'accept') {
    if (d.area === 'office') return '认证成功：教学办公区免费 / Welcome: the office area is free of charge';
    const until = d.endsAtMs === null ? '' : formatShanghai(d.endsAtMs);
    return `认证成功：宿舍区本周期至 ${until} / Welcome: dormitory cycle paid until ${until} (UTC+8)`;
  }
  switch (d.reason) {
    case 'arrears':
      return `账户欠费：余额 ${formatYuan(d.balanceFen)} 元，需 ${formatYuan(d.neededFen)} 元 / Account in arrears: balance ${formatYuan(d.balanceFen)} yuan, ${formatYuan(d.neededFen)} needed`;
    case 'disabled':
      return '账号已停用 / Account disabled';
    case 'chap_unavailable':
      return '此账号不支持 CHAP 认证，请使用 PAP / CHAP is not available for this account, use PAP';
    case 'bad_credentials':
    case 'unknown_user':
    case 'no_credentials':
      return '用户名或密码错误 / Wrong username or password';
  }
}

const messageBytes = new Map<string, Buffer>();

/**
 * The UTF-8 Reply-Message. The few fixed messages (office accept, refusals other than arrears) are
 * encoded once, each into its own allocation; per-account messages (a dorm cycle's end, a balance) are
 * encoded per reply: memoising them kept one entry per account and, through Buffer.from's shared pool,
 * a whole 8 KiB slab per entry (~80 MiB at 100k accounts, found by bench:memory).
 */
function replyMessageBytes(d: AuthDecision): Buffer {
  const key = d.kind === 'accept' ? (d.area === 'office' ? 'office' : null) : d.reason === 'arrears' ? null : d.reason;
  if (key === null) return Buffer.from(replyMessage(d), 'utf8');
  let bytes = messageBytes.get(key);
  if (bytes === undefined) {
    const own = new TextEncoder().encode(replyMessage(d));
    bytes = Buffer.from(own.buffer, own.byteOffset, own.byteLength);
    messageBytes.set(key, bytes);
  }
  return bytes;
}

/** Reply attributes for a decision: Reply-Message, and for a dorm accept Session-Timeout (RFC 2865 §5.27). */
export function replyAttributes(d: AuthDecision, interimSeconds: number): [string, AttributeInput][] {
  const attrs: [string, AttributeInput][] = [['Reply-Message', replyMessageBytes(d)]];
  if (d.kind === 'accept') {
    if (d.sessionTimeoutSeconds !== null) attrs.push(['Session-Timeout', d.sessionTimeoutSeconds]);
    attrs.push(['Acct-Interim-Interval', interimSeconds]);
  }
  return attrs;
}

/** Seconds until `endsAtMs`, rounded up, at least 1, capped to what Session-Timeout can carry. */
export function sessionTimeout(endsAtMs: number, nowMs: number): number {
  return Math.min(0xffffffff, Math.max(1, Math.ceil((endsAtMs - nowMs) / 1000)));
}

const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface AuthDeps {
  readonly db: Kysely<Database>;
  readonly billing: Billing;
  readonly view: AccountView;
  readonly credentials: CredentialCache;
  /** Opens sealed CHAP credentials; null: CHAP is refused. */
  readonly credentialKey: Buffer | null;
  readonly metrics: RadiusMetrics;
  readonly log: Logger;
  readonly now: () => Date;
  /**
   * Upgrades a stored hash after a login verified its password: `needed` says whether a hash should be
   * replaced, `hash` makes the new one. Unset: hashes are left as they are.
   */
  readonly rehash?: { readonly needed: (passwordHash: string) => boolean; readonly hash: (password: string) => Promise<string> };
  /** DB-bound decisions in progress at most before new ones are dropped as overload. */
  readonly maxDbInFlight?: number;
}

function isUnavailable(e: unknown): boolean {
  return !isAppError(e);
}

/**
 * Decides Access-Requests (RFC 2865 §4.1): PAP or CHAP against the account's credential, then the area's
 * rule: an active account may use the office area; the money core decides a dormitory login. Most
 * logins are decided from the in-memory view; the database is asked when a cycle must open or settle,
 * or when the view is unsure.
 */
type Credential = { readonly kind: 'pap'; readonly password: string } | { readonly kind: 'chap' };

export class Authenticator {
  #dbInFlight = 0;
  #rehashing = false;
  readonly #learned = new Set<string>();
  readonly #memory: { inc(): void };
  readonly #db: { inc(): void };
  readonly #reader: AccountReader;

  constructor(private readonly deps: AuthDeps) {
    this.#reader = new AccountReader(deps.db);
    this.#memory = deps.metrics.authPath.labels('memory');
    this.#db = deps.metrics.authPath.labels('db');
  }

  async #withDb<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#dbInFlight >= (this.deps.maxDbInFlight ?? 256)) throw new AuthUnavailableError('overload');
    this.#dbInFlight++;
    try {
      return await fn();
    } catch (e) {
      if (e instanceof AuthUnavailableError || !isUnavailable(e)) throw e;
      throw new AuthUnavailableError('db_unavailable', e);
    } finally {
      this.#dbInFlight--;
    }
  }

  /**
   * The common case, decided synchronously from memory: a PAP login whose verdict is cached, of an
   * account the view is sure of, accepted (office, or a dorm cycle running into the future). Anything
   * else returns undefined and goes through `decide`. Throws a decode error for a malformed password.
   */
  decideFromMemory(req: RadiusPacket, nas: NasEntry): AuthDecision | undefined {
    const username = req.get('User-Name');
    if (username === undefined) return undefined;
    const found = this.deps.view.lookup(username);
    if (found.state !== 'sure' || found.account === undefined) return undefined;
    const account = found.account;
    if (account.status !== 'active') return undefined;
    const password = req.userPassword(nas.secret);
    if (password === undefined || this.deps.credentials.peek(username, password, account.passwordHash, Date.now()) !== true) return undefined;
    const area = nas.areaRules.length === 0 ? nas.area : areaOf(nas, (name) => attributeText(req, name));
    if (area === 'office') {
      this.#memory.inc();
      return { kind: 'accept', area, sessionTimeoutSeconds: null, endsAtMs: null };
    }
    const nowMs = this.deps.now().getTime();
    if (account.cycleEndsAtMs === null || account.cycleEndsAtMs <= nowMs) return undefined;
    this.#memory.inc();
    return { kind: 'accept', area: 'dorm', sessionTimeoutSeconds: sessionTimeout(account.cycleEndsAtMs, nowMs), endsAtMs: account.cycleEndsAtMs };
  }

  /**
   * Decides one authenticated Access-Request from `nas`; throws AuthUnavailableError to drop it.
   * An accept may come from the in-memory view (a running cycle that ends in the future); every reject
   * the view suggests is confirmed on a fresh read, so a top-up, re-enable or password change committed
   * a moment ago is never answered with a stale refusal.
   */
  async decide(req: RadiusPacket, nas: NasEntry): Promise<AuthDecision> {
    const username = req.get('User-Name');
    if (username === undefined || !USERNAME_PATTERN.test(username)) return { kind: 'reject', reason: 'bad_credentials' };
    // Throws a decode error (dropped) when the hidden value's length is malformed.
    const password = req.userPassword(nas.secret);
    const chap = password === undefined ? req.getRaw('CHAP-Password') : undefined;
    if (password === undefined && chap === undefined) return { kind: 'reject', reason: 'no_credentials' };
    const credential: Credential = password !== undefined ? { kind: 'pap', password } : { kind: 'chap' };
    const area = areaOf(nas, (name) => attributeText(req, name));

    const found = this.deps.view.lookup(username);
    if (found.state === 'sure' && found.account !== undefined) {
      const d = await this.#evaluate(req, found.account, credential, area, false);
      if (d.kind === 'accept') {
        this.#memory.inc();
        return d;
      }
    }
    this.#db.inc();
    const fresh = await this.#withDb(() => this.#reader.read(username));
    if (fresh === undefined) return { kind: 'reject', reason: chap ? 'chap_unavailable' : 'unknown_user' };
    return this.#evaluate(req, fresh, credential, area, true);
  }

  /** The decision for `account` as read; `fresh` when just read from the database (else from the view). */
  async #evaluate(req: RadiusPacket, account: ViewAccount, credential: Credential, area: Area, fresh: boolean): Promise<AuthDecision> {
    if (credential.kind === 'pap') {
      if (!(await this.#checkPap(account, credential.password))) return { kind: 'reject', reason: 'bad_credentials' };
    } else {
      const key = this.deps.credentialKey;
      const clear = key && account.chapCredential ? openCredential(key, account.id, account.passwordHash, account.chapCredential) : null;
      if (clear === null) return { kind: 'reject', reason: 'chap_unavailable' };
      const ok = verifyChapPassword(req, clear);
      clear.fill(0);
      if (!ok) return { kind: 'reject', reason: 'bad_credentials' };
    }
    if (account.status !== 'active') return { kind: 'reject', reason: 'disabled' };
    if (area === 'office') return { kind: 'accept', area, sessionTimeoutSeconds: null, endsAtMs: null };

    const now = this.deps.now();
    const nowMs = now.getTime();
    if (account.cycleEndsAtMs !== null && account.cycleEndsAtMs > nowMs) {
      return { kind: 'accept', area: 'dorm', sessionTimeoutSeconds: sessionTimeout(account.cycleEndsAtMs, nowMs), endsAtMs: account.cycleEndsAtMs };
    }
    if (account.cycleId === null) {
      const t = this.deps.billing.tariffNow(now);
      if (account.balanceFen < t.thresholdFen) return { kind: 'reject', reason: 'arrears', balanceFen: account.balanceFen, neededFen: t.thresholdFen };
    }
    // A cycle must open, or a passed one be settled first: only the money core may do that.
    if (!fresh) return { kind: 'reject', reason: 'unknown_user' };
    return this.#decideDorm(account, now);
  }

  async #checkPap(account: ViewAccount, password: string): Promise<boolean> {
    const { credentials, metrics } = this.deps;
    const nowMs = () => Date.now();
    const cached = credentials.peek(account.username, password, account.passwordHash, nowMs());
    if (cached !== undefined) return cached;
    let ok: boolean;
    try {
      ok = await credentials.check(account.username, password, account.passwordHash, nowMs, (r) =>
        metrics.passwordVerifications.labels(r ? 'ok' : 'fail').inc(),
      );
    } catch (e) {
      if (e instanceof VerifyOverloadError) throw new AuthUnavailableError('overload', e);
      throw e;
    }
    if (ok) {
      // A re-hash seals the CHAP credential for the new hash; a login it skips learns it for the old one.
      if (!(this.deps.rehash?.needed(account.passwordHash) && this.#rehash(account, password))) this.#learnChap(account, password);
    }
    return ok;
  }

  /**
   * Replaces the account's hash (an earlier argon2 cost, or an imported one) by one at the service's
   * cost, in the background: every cold login of the account would otherwise hold the old hash's memory
   * cost while it verifies. One at a time, so a storm of such logins costs one extra hash's memory;
   * the logins it skips upgrade on a later login. The CHAP credential is sealed again for the new hash.
   * False when it did not start (another one is running).
   */
  #rehash(account: ViewAccount, password: string): boolean {
    const { rehash, db, credentialKey, metrics, log } = this.deps;
    if (rehash === undefined || this.#rehashing) return false;
    this.#rehashing = true;
    rehash
      .hash(password)
      .then((newHash) => replacePasswordHash(db, credentialKey, account.id, account.passwordHash, newHash, password))
      .then(
        (replaced) => metrics.passwordRehashes.labels(replaced ? 'done' : 'changed').inc(),
        (err: unknown) => {
          metrics.passwordRehashes.labels('failed').inc();
          // The error's message and code only: a database error's detail could quote the values written.
          const e = err as { message?: unknown; code?: unknown };
          log.warn({ accountId: account.id, error: String(e?.message ?? err), code: e?.code }, 'upgrading the stored hash failed');
        },
      )
      .finally(() => {
        this.#rehashing = false;
      });
    return true;
  }

  /** With CREDENTIAL_KEY set, a PAP login seals the password so the account can also use CHAP. */
  #learnChap(account: ViewAccount, password: string): void {
    const key = this.deps.credentialKey;
    if (key === null) return;
    if (account.chapCredential && openCredential(key, account.id, account.passwordHash, account.chapCredential)) return;
    const marker = `${account.id}|${account.passwordHash}`;
    if (this.#learned.has(marker)) return;
    this.#learned.add(marker);
    if (this.#learned.size > 100_000) this.#learned.clear();
    storeChapCredential(this.deps.db, key, account.id, account.passwordHash, password).catch((err: unknown) => {
      this.#learned.delete(marker);
      this.deps.log.warn({ err, accountId: account.id }, 'storing the CHAP credential failed');
    });
  }

  async #decideDorm(account: ViewAccount, now: Date): Promise<AuthDecision> {
    const { billing, view } = this.deps;
    let result: DormLoginResult;
    try {
      result = await this.#withDb(() => billing.authorizeDormLogin({ id: account.id }, now));
    } catch (e) {
      if (isAppError(e) && e.code === 'not_found') return { kind: 'reject', reason: 'unknown_user' };
      throw e;
    }
    const d = result.decision;
    if (d.kind === 'accept') {
      if (result.cycleId !== null) view.noteCycle(account.id, result.cycleId, d.endsAt.getTime());
      return { kind: 'accept', area: 'dorm', sessionTimeoutSeconds: d.sessionTimeoutSeconds, endsAtMs: d.endsAt.getTime() };
    }
    if (d.reason === 'disabled') return { kind: 'reject', reason: 'disabled' };
    return { kind: 'reject', reason: 'arrears', balanceFen: d.balanceFen, neededFen: d.neededFen };
  }
}

/** An attribute's value as text for an area rule; undefined when absent or not in the dictionary. */
export function attributeText(req: RadiusPacket, name: string): string | undefined {
  if (req.dictionary.attribute(name) === undefined) return undefined;
  const v = req.get(name);
  if (v === undefined) return undefined;
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}
