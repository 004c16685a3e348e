import type { Logger } from 'pino';
import type { Billing, ClosedAccount, SettleReport } from './billing.ts';
import { nextCronMatch, parseCron, type CronSchedule } from './cron.ts';

export interface WorkerOptions {
  /** When passes run: a cron expression in local time (src/billing/cron.ts), validated by config.ts. */
  readonly cron: string;
  readonly batchSize: number;
  readonly concurrency: number;
  /**
   * Injected by main.ts: disconnects the online dorm sessions of accounts whose service closed. Called
   * once per settled batch; a pass ends when every call it made has finished.
   */
  readonly onClosed: (closed: readonly ClosedAccount[]) => Promise<void>;
  readonly log: Logger;
}

/** The timer functions scheduleCron uses: the real ones in production, fakes in tests. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** setTimeout's longest delay is 2^31 - 1 ms (24.8 days); a later match is reached in hops of a day. */
const MAX_WAIT_MS = 86_400_000;

/**
 * Calls `tick` at each instant `schedule` matches, until stopped. A timer that fires late (a busy event
 * loop, a suspended machine, the wall clock set forward) ticks once, late, and the next tick is the next
 * match after that moment: missed matches are not replayed (the worker catches up from the database).
 * A timer that fires before its match (the wall clock set back) waits again.
 */
export function scheduleCron(schedule: CronSchedule, tick: () => void, timers: Timers = realTimers): { stop(): void } {
  let handle: unknown;
  let stopped = false;
  const arm = (afterMs: number) => {
    const next = nextCronMatch(schedule, afterMs);
    if (next === null) throw new Error(`cron schedule "${schedule.expression}" matches no date`);
    const wait = () => {
      if (stopped) return;
      const now = timers.now();
      if (now < next) {
        handle = timers.setTimeout(wait, Math.min(next - now, MAX_WAIT_MS));
        return;
      }
      tick();
      arm(Math.max(now, next));
    };
    wait();
  };
  arm(timers.now());
  return {
    stop() {
      stopped = true;
      timers.clearTimeout(handle);
    },
  };
}

export interface SettlementWorker {
  /** Runs one pass now, or joins the one in progress: passes never overlap. */
  runOnce(): Promise<SettleReport>;
  stop(): Promise<void>;
}

/**
 * Runs settleDue on a cron schedule with no overlapping runs, and once at start to catch up after
 * downtime: what is due is read from the database, never from timers.
 */
export function startSettlementWorker(billing: Billing, opts: WorkerOptions): SettlementWorker {
  let running: Promise<SettleReport> | null = null;
  let stopped = false;

  const pass = async (): Promise<SettleReport> => {
    const disconnecting: Promise<void>[] = [];
    const onClosed = (closed: readonly ClosedAccount[]) => {
      disconnecting.push(opts.onClosed(closed).catch((err: unknown) => opts.log.error({ err }, 'disconnecting closed accounts failed')));
    };
    let report: SettleReport;
    try {
      report = await billing.settleDue(billing.clock.now(), opts.batchSize, opts.concurrency, onClosed);
    } finally {
      // Batches committed before a failure still get their disconnects.
      await Promise.all(disconnecting);
    }
    opts.log.info(
      { settled: report.settled, renewed: report.renewed, closed: report.closed, batches: report.batches, ms: report.ms },
      'settlement pass',
    );
    return report;
  };

  const runOnce = (): Promise<SettleReport> => {
    if (running) return running;
    running = pass().finally(() => {
      running = null;
    });
    return running;
  };

  const tick = () => {
    if (stopped || running) return;
    runOnce().catch((err: unknown) => opts.log.error({ err }, 'settlement pass failed'));
  };

  const task = scheduleCron(parseCron(opts.cron), tick);
  tick();

  return {
    runOnce,
    async stop() {
      stopped = true;
      task.stop();
      if (running) await running.catch(() => undefined);
    },
  };
}
