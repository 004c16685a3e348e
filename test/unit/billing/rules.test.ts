import { describe, expect, it } from 'vitest';
import {
  decideDormLogin,
  forecast,
  planCatchUp,
  planSettlement,
  refundableFen,
  secondsUntil,
  type AccountState,
  type RunningCycle,
} from '../../../src/billing/rules.ts';
import { tariffAt, type Tariff } from '../../../src/billing/tariff.ts';
import { formatYuan } from '../../../src/billing/money.ts';

const DAY = 86_400_000;
const T0 = new Date('2026-09-01T08:00:00Z');
const at = (days: number, extraMs = 0) => new Date(T0.getTime() + days * DAY + extraMs);

const standard: Tariff = { id: 1, feeFen: 2000, cycleSeconds: 30 * 86_400, thresholdFen: 2000, renewal: 'continuous', effectiveFrom: new Date(0) };
const onLogin: Tariff = { ...standard, id: 2, renewal: 'on-login' };

const cycle = (startDays: number, seq = 1, feeFen = 2000, id = 10): RunningCycle => ({
  id,
  seq,
  startedAt: at(startDays),
  endsAt: at(startDays + 30),
  feeFen,
});

const state = (balanceFen: number, running: RunningCycle | null = null, extra: Partial<AccountState> = {}): AccountState => ({
  status: 'active',
  balanceFen,
  running,
  lastSeq: running?.seq ?? 0,
  ...extra,
});

describe('dormitory login decisions', () => {
  it.each([
    { balance: 2000, expected: 'accept' },
    { balance: 5000, expected: 'accept' },
    { balance: 1999, expected: 'reject' },
    { balance: 0, expected: 'reject' },
    { balance: -500, expected: 'reject' },
  ])('with no running cycle and $balance fen the login is $expected', ({ balance, expected }) => {
    expect(decideDormLogin(state(balance), [standard], T0).kind).toBe(expected);
  });

  it('opens a 30-day cycle at the instant of the first dorm login, at the fee then in force', () => {
    const d = decideDormLogin(state(5000), [standard], at(0, 1234));
    expect(d).toEqual({
      kind: 'accept',
      endsAt: at(30, 1234),
      sessionTimeoutSeconds: 30 * 86_400,
      open: { seq: 1, startedAt: at(0, 1234), endsAt: at(30, 1234), feeFen: 2000, tariffId: 1, openedBy: 'login' },
    });
  });

  it('refuses a dorm login as arrears with the balance and the amount needed when balance < 2000 fen', () => {
    expect(decideDormLogin(state(1000), [standard], T0)).toEqual({
      kind: 'reject',
      reason: 'arrears',
      balanceFen: 1000,
      neededFen: 2000,
      shortfallFen: 1000,
    });
  });

  it('lets a login in on the running cycle whatever the balance, with Session-Timeout to its end', () => {
    const d = decideDormLogin(state(0, cycle(0)), [standard], at(29, 3_600_000));
    expect(d).toMatchObject({ kind: 'accept', open: null, sessionTimeoutSeconds: 82_800 });
  });

  it('refuses a disabled account even with money and a running cycle', () => {
    expect(decideDormLogin(state(9000, cycle(0), { status: 'disabled' }), [standard], at(1))).toEqual({ kind: 'reject', reason: 'disabled' });
  });

  it('refuses to decide on a cycle whose end has passed: it must be settled first', () => {
    expect(() => decideDormLogin(state(5000, cycle(0)), [standard], at(30))).toThrow(/settled first/);
  });

  it('numbers a new cycle after the last one the account had', () => {
    const d = decideDormLogin(state(2000, null, { lastSeq: 7 }), [standard], T0);
    expect(d.kind === 'accept' && d.open?.seq).toBe(8);
  });
});

describe('settlement at the anniversary', () => {
  it.each([
    { balance: 5000, after: 3000, renews: true },
    { balance: 4000, after: 2000, renews: true },
    { balance: 3999, after: 1999, renews: false },
    { balance: 2000, after: 0, renews: false },
  ])('charges the full 20.00 yuan from $balance fen, leaving $after; renews: $renews', ({ balance, after, renews }) => {
    const p = planSettlement(cycle(0), balance, 'active', [standard]);
    expect(p.chargeFen).toBe(2000);
    expect(p.balanceAfterFen).toBe(after);
    expect(p.effectiveAt).toEqual(at(30));
    expect(p.renewal !== null).toBe(renews);
  });

  it('starts the renewed cycle exactly at the anniversary, the same time of day 30 days on', () => {
    const p = planSettlement(cycle(0, 3), 9000, 'active', [standard]);
    expect(p.renewal).toEqual({ seq: 4, startedAt: at(30), endsAt: at(60), feeFen: 2000, tariffId: 1, openedBy: 'renewal' });
  });

  it('does not renew under the on-login policy: the next cycle waits for a dorm login', () => {
    expect(planSettlement(cycle(0), 9000, 'active', [onLogin]).renewal).toBeNull();
  });

  it('does not renew a disabled account', () => {
    expect(planSettlement(cycle(0), 9000, 'disabled', [standard]).renewal).toBeNull();
  });

  it('settles a cycle at the price it started with after a tariff change', () => {
    const raised: Tariff = { ...standard, id: 3, feeFen: 2500, thresholdFen: 2500, effectiveFrom: at(10) };
    const p = planSettlement(cycle(0, 1, 2000), 10_000, 'active', [standard, raised]);
    expect(p.chargeFen).toBe(2000);
    expect(p.renewal).toMatchObject({ feeFen: 2500, tariffId: 3 });
  });

  it('can take a balance made negative by a staff adjustment further down: the fee was committed', () => {
    expect(planSettlement(cycle(0), -300, 'active', [standard]).balanceAfterFen).toBe(-2300);
  });
});

describe('catch-up after the worker was down', () => {
  it.each([
    { days: 29, settled: 0 },
    { days: 30, settled: 1 },
    { days: 59, settled: 1 },
    { days: 90, settled: 3 },
    { days: 150, settled: 5 },
    { days: 400, settled: 5 },
  ])('settles every due cycle in order after $days days ($settled settlements) with 100.00 yuan', ({ days, settled }) => {
    const { plans, state: after } = planCatchUp(state(10_000, cycle(0)), [standard], at(days));
    expect(plans).toHaveLength(settled);
    expect(plans.map((p) => p.effectiveAt)).toEqual(plans.map((_, i) => at(30 * (i + 1))));
    expect(after.balanceFen).toBe(10_000 - 2000 * settled);
  });

  it('stops renewing when the money runs out and leaves no running cycle', () => {
    const { plans, state: after } = planCatchUp(state(5000, cycle(0)), [standard], at(365));
    expect(plans.map((p) => p.balanceAfterFen)).toEqual([3000, 1000]);
    expect(after.running).toBeNull();
    expect(after.lastSeq).toBe(2);
  });

  it('settles one cycle at a time under on-login, however long the worker was down', () => {
    const { plans } = planCatchUp(state(50_000, cycle(0)), [onLogin], at(365));
    expect(plans).toHaveLength(1);
  });

  it('applies a tariff change to renewals that start after it, not before', () => {
    const raised: Tariff = { ...standard, id: 3, feeFen: 3000, effectiveFrom: at(45) };
    const { plans } = planCatchUp(state(20_000, cycle(0)), [standard, raised], at(90));
    expect(plans.map((p) => p.chargeFen)).toEqual([2000, 2000, 3000]);
  });
});

describe('refunds', () => {
  it.each([
    { balance: 5000, running: true, refundable: 3000 },
    { balance: 5000, running: false, refundable: 5000 },
    { balance: 1500, running: true, refundable: 0 },
    { balance: -200, running: false, refundable: 0 },
  ])('with $balance fen (running cycle: $running) at most $refundable can be refunded', ({ balance, running, refundable }) => {
    expect(refundableFen(balance, running ? cycle(0) : null)).toBe(refundable);
  });
});

describe('forecast of when the balance runs out', () => {
  it('under continuous renewal names the end of the last cycle the balance pays for', () => {
    const f = forecast(state(7000, cycle(0)), [standard], at(1));
    // 70.00: cycle 1 (running) settles to 50.00, 2 -> 30.00, 3 -> 10.00 and closes.
    expect(f).toEqual({ runningUntil: at(30), serviceUntil: at(90), cyclesAfterRunning: 2, balanceLeftFen: 1000 });
  });

  it('under on-login ends with the running cycle and counts the cycles left for later logins', () => {
    const f = forecast(state(7000, cycle(0)), [onLogin], at(1));
    expect(f).toEqual({ runningUntil: at(30), serviceUntil: at(30), cyclesAfterRunning: 2, balanceLeftFen: 1000 });
  });

  it('without a running cycle counts the cycles the balance can open', () => {
    expect(forecast(state(4500), [standard], at(1))).toEqual({ runningUntil: null, serviceUntil: null, cyclesAfterRunning: 2, balanceLeftFen: 500 });
  });
});

describe('tariffs and small helpers', () => {
  it('picks the latest tariff effective at an instant, and the earliest before any', () => {
    const later: Tariff = { ...standard, id: 5, feeFen: 2500, effectiveFrom: at(10) };
    expect(tariffAt([standard, later], at(9)).id).toBe(1);
    expect(tariffAt([standard, later], at(10)).id).toBe(5);
    expect(tariffAt([later], at(0)).id).toBe(5);
  });

  it('rounds Session-Timeout up and never to zero', () => {
    expect(secondsUntil(new Date(1500), new Date(0))).toBe(2);
    expect(secondsUntil(new Date(0), new Date(10))).toBe(1);
  });

  it.each([
    [2000, '20.00'],
    [5, '0.05'],
    [-50, '-0.50'],
    [123456789, '1234567.89'],
    [0, '0.00'],
  ])('formats %i fen as %s yuan', (fen, text) => {
    expect(formatYuan(fen)).toBe(text);
  });

  it('refuses a fractional amount of fen', () => {
    expect(() => formatYuan(1.5)).toThrow(/integer/);
  });
});
