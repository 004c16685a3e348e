import type { AccountStatus } from '../db/schema.ts';
import { tariffAt, type Tariff } from './tariff.ts';

/** A cycle that has started and is not settled yet. */
export interface RunningCycle {
  readonly id: number;
  readonly seq: number;
  readonly startedAt: Date;
  readonly endsAt: Date;
  readonly feeFen: number;
}

/** What the rules need to know of an account. */
export interface AccountState {
  readonly status: AccountStatus;
  readonly balanceFen: number;
  readonly running: RunningCycle | null;
  /** Sequence number of the account's latest cycle, 0 when it never had one. */
  readonly lastSeq: number;
}

/** A cycle to open: at a dorm login, or at the anniversary of the previous one (renewal). */
export interface CycleOpening {
  readonly seq: number;
  readonly startedAt: Date;
  readonly endsAt: Date;
  readonly feeFen: number;
  readonly tariffId: number;
  readonly openedBy: 'login' | 'renewal';
}

/** Settling one cycle at its anniversary. */
export interface SettlementPlan {
  readonly cycleId: number;
  readonly chargeFen: number;
  readonly effectiveAt: Date;
  readonly balanceAfterFen: number;
  /** The next cycle, starting at the anniversary, or null when dorm service closes. */
  readonly renewal: CycleOpening | null;
}

export type DormDecision =
  | {
      readonly kind: 'accept';
      readonly endsAt: Date;
      readonly sessionTimeoutSeconds: number;
      /** Present when this login opens a new cycle. */
      readonly open: CycleOpening | null;
    }
  | {
      readonly kind: 'reject';
      readonly reason: 'arrears';
      readonly balanceFen: number;
      readonly neededFen: number;
      readonly shortfallFen: number;
    }
  | { readonly kind: 'reject'; readonly reason: 'disabled' };

/** Opens a cycle at `at` on the tariff in force then. */
export function openingAt(tariffs: readonly Tariff[], at: Date, seq: number, openedBy: 'login' | 'renewal'): CycleOpening {
  const t = tariffAt(tariffs, at);
  return {
    seq,
    startedAt: at,
    endsAt: new Date(at.getTime() + t.cycleSeconds * 1000),
    feeFen: t.feeFen,
    tariffId: t.id,
    openedBy,
  };
}

/**
 * Settles `cycle` at its anniversary: the full fee is charged however little the cycle was used, and
 * the next cycle starts at once when the policy in force at the anniversary is continuous, the account
 * is active and the balance left still reaches the threshold.
 */
export function planSettlement(
  cycle: RunningCycle,
  balanceFen: number,
  status: AccountStatus,
  tariffs: readonly Tariff[],
): SettlementPlan {
  const balanceAfterFen = balanceFen - cycle.feeFen;
  const t = tariffAt(tariffs, cycle.endsAt);
  const renew = t.renewal === 'continuous' && status === 'active' && balanceAfterFen >= t.thresholdFen;
  return {
    cycleId: cycle.id,
    chargeFen: cycle.feeFen,
    effectiveAt: cycle.endsAt,
    balanceAfterFen,
    renewal: renew ? openingAt(tariffs, cycle.endsAt, cycle.seq + 1, 'renewal') : null,
  };
}

/** A placeholder id for a renewal cycle that does not exist yet; the store assigns the real one. */
export const PENDING_CYCLE_ID = -1;

/**
 * Every settlement due by `now`, in anniversary order, as a late worker would catch up: several in a
 * row for a continuous account. Returns the plans and the state after them.
 */
export function planCatchUp(
  state: AccountState,
  tariffs: readonly Tariff[],
  now: Date,
  maxCycles = 10_000,
): { plans: SettlementPlan[]; state: AccountState } {
  const plans: SettlementPlan[] = [];
  let { balanceFen, running, lastSeq } = state;
  while (running && running.endsAt.getTime() <= now.getTime()) {
    if (plans.length >= maxCycles) throw new Error('catch-up exceeds the maximum number of cycles');
    const plan = planSettlement(running, balanceFen, state.status, tariffs);
    plans.push(plan);
    balanceFen = plan.balanceAfterFen;
    if (plan.renewal) {
      lastSeq = plan.renewal.seq;
      running = { id: PENDING_CYCLE_ID, ...plan.renewal };
    } else {
      running = null;
    }
  }
  return { plans, state: { status: state.status, balanceFen, running, lastSeq } };
}

/** Seconds from `now` to `endsAt`, rounded up and at least 1, for Session-Timeout. */
export function secondsUntil(endsAt: Date, now: Date): number {
  return Math.max(1, Math.ceil((endsAt.getTime() - now.getTime()) / 1000));
}

/**
 * Decides a dormitory login at `now` on an account whose passed cycles are already settled
 * (see planCatchUp): a running cycle lets it in; otherwise a balance at the threshold opens a cycle at
 * this instant; otherwise it is refused as arrears with the balance and the amount needed.
 */
export function decideDormLogin(state: AccountState, tariffs: readonly Tariff[], now: Date): DormDecision {
  if (state.status !== 'active') return { kind: 'reject', reason: 'disabled' };
  if (state.running && state.running.endsAt.getTime() > now.getTime()) {
    return { kind: 'accept', endsAt: state.running.endsAt, sessionTimeoutSeconds: secondsUntil(state.running.endsAt, now), open: null };
  }
  if (state.running) throw new Error('decideDormLogin needs passed cycles settled first');
  const t = tariffAt(tariffs, now);
  if (state.balanceFen >= t.thresholdFen) {
    const open = openingAt(tariffs, now, state.lastSeq + 1, 'login');
    return { kind: 'accept', endsAt: open.endsAt, sessionTimeoutSeconds: secondsUntil(open.endsAt, now), open };
  }
  return {
    kind: 'reject',
    reason: 'arrears',
    balanceFen: state.balanceFen,
    neededFen: t.thresholdFen,
    shortfallFen: t.thresholdFen - state.balanceFen,
  };
}

/** The money a refund may take: the running cycle's fee is committed and stays. */
export function refundableFen(balanceFen: number, running: RunningCycle | null): number {
  return Math.max(0, balanceFen - (running ? running.feeFen : 0));
}

export interface Forecast {
  /** End of the running cycle, null when none runs. */
  readonly runningUntil: Date | null;
  /**
   * Under continuous renewal: when dorm service stops if nobody tops up (the end of the last cycle the
   * balance pays for). Under on-login: the end of the running cycle.
   */
  readonly serviceUntil: Date | null;
  /** Cycles the balance pays for after the running one (renewals, or logins under on-login). */
  readonly cyclesAfterRunning: number;
  /** Balance left when those cycles are settled. */
  readonly balanceLeftFen: number;
}

/** When the balance runs out under the policy in force, as a student asks "until when am I online?". */
export function forecast(state: AccountState, tariffs: readonly Tariff[], now: Date, maxCycles = 1000): Forecast {
  let balance = state.balanceFen;
  let cycles = 0;
  if (!state.running) {
    const t = tariffAt(tariffs, now);
    if (state.status === 'active') {
      while (balance >= t.thresholdFen && cycles < maxCycles) {
        balance -= t.feeFen;
        cycles++;
      }
    }
    return { runningUntil: null, serviceUntil: null, cyclesAfterRunning: cycles, balanceLeftFen: balance };
  }
  let cycle: RunningCycle = state.running;
  let serviceUntil = cycle.endsAt;
  while (cycles < maxCycles) {
    const plan = planSettlement(cycle, balance, state.status, tariffs);
    balance = plan.balanceAfterFen;
    if (!plan.renewal) break;
    cycles++;
    cycle = { id: PENDING_CYCLE_ID, ...plan.renewal };
    serviceUntil = cycle.endsAt;
  }
  if (tariffAt(tariffs, state.running.endsAt).renewal === 'on-login' && state.status === 'active') {
    const t = tariffAt(tariffs, state.running.endsAt);
    while (balance >= t.thresholdFen && cycles < maxCycles) {
      balance -= t.feeFen;
      cycles++;
    }
  }
  return { runningUntil: state.running.endsAt, serviceUntil, cyclesAfterRunning: cycles, balanceLeftFen: balance };
}
