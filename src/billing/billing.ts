import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Database } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import {
  findAccount,
  getAccount,
  insertAccount,
  lockAccount,
  setBalance,
  toAccount,
  type Account,
  type NewAccount,
} from './account-store.ts';
import {
  applySettlements,
  findRunningCycle,
  insertCycle,
  lastSeq,
  listCycles,
  SettlementRaceError,
  takeDueBatch,
  toRunning,
  type Cycle,
} from './cycle-store.ts';
import { appendEntry, appendTopUpOnce, findTopUp, listEntries, type LedgerEntry } from './ledger-store.ts';
import { assertFen } from './money.ts';
import {
  decideDormLogin,
  forecast,
  planCatchUp,
  planSettlement,
  refundableFen,
  type AccountState,
  type DormDecision,
  type Forecast,
  type SettlementPlan,
} from './rules.ts';
import { tariffAt, type Tariff, type TariffTerms } from './tariff.ts';
import { ensureTariff, listTariffs } from './tariff-store.ts';

export type { Account } from './account-store.ts';
export type { Cycle } from './cycle-store.ts';
export type { LedgerEntry } from './ledger-store.ts';
export type { DormDecision, Forecast } from './rules.ts';
export type { Tariff } from './tariff.ts';
export { formatYuan } from './money.ts';

/** An account whose dorm service closed at a settlement: its online dorm sessions must be disconnected. */
export interface ClosedAccount {
  readonly accountId: number;
  readonly username: string;
  readonly balanceFen: number;
  /** `arrears` when the balance no longer reaches the threshold; `ended` when renewal waits for a login. */
  readonly reason: 'arrears' | 'ended';
  readonly at: Date;
}

export interface SettleReport {
  readonly settled: number;
  readonly renewed: number;
  /** Accounts whose dorm service closed; each batch of them went to `onClosed` after its commit. */
  readonly closed: number;
  readonly batches: number;
  readonly ms: number;
}

export interface DormLoginResult {
  readonly decision: DormDecision;
  readonly accountId: number;
  /** Settlements done on the spot because the worker had not reached them yet. */
  readonly settledOnTheSpot: number;
  /** Set when a cycle was opened (or already ran) and the login is accepted. */
  readonly cycleId: number | null;
}

export interface TopUpResult {
  readonly entry: LedgerEntry;
  readonly balanceFen: number;
  /** True when this (channel, order id) had been credited before and nothing changed now. */
  readonly duplicate: boolean;
}

export interface AccountSummary {
  readonly account: Account;
  readonly running: Cycle | null;
  readonly forecast: Forecast;
  readonly refundableFen: number;
  readonly tariff: Tariff;
}

/**
 * Work that must commit or roll back with a money operation (e.g. the API's audit record); called
 * inside its transaction only when the operation changed the balance.
 */
export type InTransaction = (trx: Transaction<Database>, result: TopUpResult) => Promise<void>;

const CHANNEL_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const MAX_AMOUNT_FEN = 100_000_000; // one million yuan: far beyond any real network fee

function checkAmount(amountFen: number, field = 'amountFen'): void {
  assertFen(amountFen, field);
  if (amountFen <= 0) throw new AppError('invalid', `${field} must be > 0`);
  if (amountFen > MAX_AMOUNT_FEN) throw new AppError('invalid', `${field} must be <= ${MAX_AMOUNT_FEN}`);
}

function isSerializationFailure(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return e instanceof SettlementRaceError || code === '40001' || code === '40P01' || code === '23505';
}

/**
 * The money core: each operation runs in one transaction under the account's row lock, and every
 * balance change is a ledger entry written in that transaction.
 */
/**
 * Writes a staff entry (adjustment or refund) and the new balance in the caller's transaction, under the
 * account lock the caller holds, then lets `inTransaction` add its own rows (the audit log) to the same commit.
 */
async function postStaffEntry(
  trx: Transaction<Database>,
  accountId: number,
  balanceFen: number,
  e: { kind: 'adjustment' | 'refund'; amountFen: number; actor: string; reason: string },
  now: Date,
  inTransaction: InTransaction | undefined,
): Promise<TopUpResult> {
  const balanceAfterFen = balanceFen + e.amountFen;
  const entry = await appendEntry(trx, { accountId, kind: e.kind, amountFen: e.amountFen, balanceAfterFen, effectiveAt: now, actor: e.actor, reason: e.reason });
  await setBalance(trx, accountId, balanceAfterFen, now);
  const result = { entry, balanceFen: balanceAfterFen, duplicate: false };
  await inTransaction?.(trx, result);
  return result;
}

export class Billing {
  #tariffs: Tariff[] = [];

  constructor(
    readonly db: Kysely<Database>,
    readonly clock: Clock,
  ) {}

  /** Records the configured tariff (a new row when it changed) and loads the tariff history. */
  async init(terms: TariffTerms): Promise<void> {
    this.#tariffs = await ensureTariff(this.db, terms, this.clock.now());
  }

  async reloadTariffs(): Promise<void> {
    this.#tariffs = await listTariffs(this.db);
  }

  get tariffs(): readonly Tariff[] {
    if (this.#tariffs.length === 0) throw new Error('Billing.init() was not called');
    return this.#tariffs;
  }

  tariffNow(now = this.clock.now()): Tariff {
    return tariffAt(this.tariffs, now);
  }

  createAccount(a: NewAccount): Promise<Account> {
    return insertAccount(this.db, a);
  }

  /** Retries a transaction that lost a race (serialization failure, deadlock, unique violation on a guard). */
  async #retrying<T>(fn: (trx: Transaction<Database>) => Promise<T>, attempts = 5): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (e) {
        if (i >= attempts || !isSerializationFailure(e)) throw e;
      }
    }
  }

  /** Settles, in order, every passed cycle of a locked account; returns the state after. */
  async #catchUpLocked(trx: Transaction<Database>, account: Account, now: Date): Promise<{ state: AccountState; plans: SettlementPlan[] }> {
    const running = await findRunningCycle(trx, account.id);
    const seq = running ? running.seq : await lastSeq(trx, account.id);
    const before: AccountState = { status: account.status, balanceFen: account.balanceFen, running: running ? toRunning(running) : null, lastSeq: seq };
    if (!running || running.endsAt.getTime() > now.getTime()) return { state: before, plans: [] };
    // Apply one settlement at a time: each renewal gets its real id before the next settles.
    let state = before;
    const plans: SettlementPlan[] = [];
    while (state.running && state.running.endsAt.getTime() <= now.getTime()) {
      const plan = planSettlement(state.running, state.balanceFen, state.status, this.tariffs);
      await applySettlements(trx, [{ accountId: account.id, plan }], now);
      plans.push(plan);
      let next = null;
      if (plan.renewal) next = toRunning((await findRunningCycle(trx, account.id))!);
      state = { status: state.status, balanceFen: plan.balanceAfterFen, running: next, lastSeq: plan.renewal ? plan.renewal.seq : state.lastSeq };
    }
    return { state, plans };
  }

  /**
   * Decides a dormitory login at `now`: settles passed cycles on the spot (never trusting the worker to
   * be on time), then lets the account in on a running cycle, opens one at this instant when the
   * balance reaches the threshold, or refuses it as arrears. Concurrent logins of one account open
   * exactly one cycle.
   */
  async authorizeDormLogin(by: { username: string } | { id: number }, now = this.clock.now()): Promise<DormLoginResult> {
    return this.#retrying(async (trx) => {
      const account = await lockAccount(trx, by);
      const { state, plans } = await this.#catchUpLocked(trx, account, now);
      const decision = decideDormLogin(state, this.tariffs, now);
      let cycleId: number | null = state.running?.id ?? null;
      if (decision.kind === 'accept' && decision.open) {
        cycleId = (await insertCycle(trx, account.id, decision.open)).id;
      }
      if (decision.kind === 'reject') cycleId = null;
      return { decision, accountId: account.id, settledOnTheSpot: plans.length, cycleId };
    });
  }

  /**
   * Settles every cycle whose anniversary is <= `now`, in batches, each batch one transaction; catches
   * up several missed cycles of one account in order. Safe to run in any number of workers at once.
   * The accounts whose dorm service closed are handed to `onClosed` batch by batch, right after each
   * batch commits, so a large pass never holds them all in memory.
   */
  async settleDue(
    now = this.clock.now(),
    batchSize = 5000,
    concurrency = 2,
    onClosed: (closed: readonly ClosedAccount[]) => void = () => undefined,
  ): Promise<SettleReport> {
    const started = performance.now();
    await this.reloadTariffs();
    let settled = 0;
    let renewed = 0;
    let batches = 0;
    let closedCount = 0;
    // Each lane takes its own batches (SKIP LOCKED keeps them apart) until one comes back empty;
    // renewals that are themselves due (catch-up after downtime) are picked up by a later batch.
    const lane = async () => {
      for (;;) {
        const result = await this.#retrying(async (trx) => {
          const due = await takeDueBatch(trx, now, batchSize);
          const items = due.map((d) => ({ d, plan: planSettlement(d.cycle, d.balanceFen, d.status, this.tariffs) }));
          await applySettlements(trx, items.map((i) => ({ accountId: i.d.accountId, plan: i.plan })), now);
          return items;
        });
        if (result.length === 0) return;
        batches++;
        settled += result.length;
        const closed: ClosedAccount[] = [];
        for (const { d, plan } of result) {
          if (plan.renewal) {
            renewed++;
            continue;
          }
          const t = tariffAt(this.tariffs, plan.effectiveAt);
          closed.push({
            accountId: d.accountId,
            username: d.username,
            balanceFen: plan.balanceAfterFen,
            reason: plan.balanceAfterFen < t.thresholdFen ? 'arrears' : 'ended',
            at: plan.effectiveAt,
          });
        }
        if (closed.length > 0) {
          closedCount += closed.length;
          onClosed(closed);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
    // A lane may stop while another still holds due rows it skipped; one more pass settles those.
    if (concurrency > 1 && settled > 0) {
      const rest = await this.settleDue(now, batchSize, 1, onClosed);
      settled += rest.settled;
      renewed += rest.renewed;
      batches += rest.batches;
      closedCount += rest.closed;
    }
    return { settled, renewed, closed: closedCount, batches, ms: Math.round(performance.now() - started) };
  }

  /**
   * Credits a payment once per (channel, order id): the same order again returns the first result;
   * the same order with another amount or account is a conflict, never a second credit.
   */
  async topUp(
    input: { username: string; channel: string; orderId: string; amountFen: number; actor?: string },
    now = this.clock.now(),
    inTransaction?: InTransaction,
  ): Promise<TopUpResult> {
    checkAmount(input.amountFen);
    if (!CHANNEL_PATTERN.test(input.channel)) throw new AppError('invalid', 'channel must be 1-32 of [a-z0-9_-]');
    if (input.orderId.length === 0 || input.orderId.length > 128) throw new AppError('invalid', 'orderId must be 1-128 characters');
    const replay = (e: LedgerEntry, account: Account): TopUpResult => {
      if (e.accountId !== account.id || e.amountFen !== input.amountFen) {
        throw new AppError('conflict', `order ${input.channel}/${input.orderId} was already credited with a different account or amount / 该订单已以不同账号或金额入账`, {
          creditedFen: e.amountFen,
        });
      }
      return { entry: e, balanceFen: account.balanceFen, duplicate: true };
    };
    return this.#retrying(async (trx) => {
      const account = await lockAccount(trx, { username: input.username });
      const existing = await findTopUp(trx, input.channel, input.orderId);
      if (existing) return replay(existing, account);
      const balanceAfterFen = account.balanceFen + input.amountFen;
      const entry = await appendTopUpOnce(trx, {
        accountId: account.id,
        kind: 'top-up',
        amountFen: input.amountFen,
        balanceAfterFen,
        effectiveAt: now,
        channel: input.channel,
        orderId: input.orderId,
        ...(input.actor ? { actor: input.actor } : {}),
      });
      if (!entry) {
        // Another account's transaction credited this order between our check and insert.
        const winner = await findTopUp(trx, input.channel, input.orderId);
        return replay(winner!, account);
      }
      await setBalance(trx, account.id, balanceAfterFen, now);
      const result = { entry, balanceFen: balanceAfterFen, duplicate: false };
      await inTransaction?.(trx, result);
      return result;
    });
  }

  /** A staff correction of either sign; the only operation that may take a balance below zero. */
  async adjust(
    input: { username: string; amountFen: number; actor: string; reason: string },
    now = this.clock.now(),
    inTransaction?: InTransaction,
  ): Promise<TopUpResult> {
    assertFen(input.amountFen);
    if (input.amountFen === 0) throw new AppError('invalid', 'amountFen must not be 0');
    if (Math.abs(input.amountFen) > MAX_AMOUNT_FEN) throw new AppError('invalid', `amountFen must be within ±${MAX_AMOUNT_FEN}`);
    checkText(input.reason, 'reason');
    return this.#retrying(async (trx) => {
      const account = await lockAccount(trx, { username: input.username });
      return postStaffEntry(trx, account.id, account.balanceFen, { kind: 'adjustment', ...input }, now, inTransaction);
    });
  }

  /** Pays money back to the student; the running cycle's fee is committed and cannot be refunded. */
  async refund(
    input: { username: string; amountFen: number; actor: string; reason: string },
    now = this.clock.now(),
    inTransaction?: InTransaction,
  ): Promise<TopUpResult> {
    checkAmount(input.amountFen);
    checkText(input.reason, 'reason');
    return this.#retrying(async (trx) => {
      const account = await lockAccount(trx, { username: input.username });
      const { state } = await this.#catchUpLocked(trx, account, now);
      const refundable = refundableFen(state.balanceFen, state.running);
      if (input.amountFen > refundable) {
        throw new AppError('insufficient_funds', `at most ${refundable} fen can be refunded; the running cycle's fee is committed / 最多可退 ${refundable} 分，本周期费用不可退`, {
          refundableFen: refundable,
        });
      }
      return postStaffEntry(trx, account.id, state.balanceFen, { ...input, kind: 'refund', amountFen: -input.amountFen }, now, inTransaction);
    });
  }

  /** Balance, running cycle, refundable money and the forecast of when the balance runs out. */
  async summary(username: string, now = this.clock.now()): Promise<AccountSummary> {
    const account = await getAccount(this.db, username);
    const running = (await findRunningCycle(this.db, account.id)) ?? null;
    const seq = running ? running.seq : await lastSeq(this.db, account.id);
    const state: AccountState = { status: account.status, balanceFen: account.balanceFen, running: running ? toRunning(running) : null, lastSeq: seq };
    // A cycle past its end but not yet settled is shown as the worker will settle it.
    const { state: after } = planCatchUp(state, this.tariffs, now);
    return {
      account,
      running,
      forecast: forecast(after, this.tariffs, now),
      refundableFen: refundableFen(after.balanceFen, after.running),
      tariff: this.tariffNow(now),
    };
  }

  async ledger(username: string, opts: { beforeId?: number | undefined; limit: number }): Promise<LedgerEntry[]> {
    const account = await getAccount(this.db, username);
    return listEntries(this.db, account.id, opts);
  }

  async cycles(username: string, opts: { beforeSeq?: number | undefined; limit: number }): Promise<Cycle[]> {
    const account = await getAccount(this.db, username);
    return listCycles(this.db, account.id, opts);
  }

  findAccount(username: string): Promise<Account | undefined> {
    return findAccount(this.db, username);
  }
}

function checkText(v: string, field: string): void {
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > 500) throw new AppError('invalid', `${field} must be 1-500 characters`);
}

export { toAccount };
