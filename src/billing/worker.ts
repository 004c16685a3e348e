import cron from 'node-cron';
import type { Logger } from 'pino';
import type { Billing, ClosedAccount, SettleReport } from './billing.ts';

export interface WorkerOptions {
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

  const task = cron.schedule(opts.cron, tick, { name: 'settle', noOverlap: true });
  tick();

  return {
    runOnce,
    async stop() {
      stopped = true;
      await task.stop();
      await task.destroy();
      if (running) await running.catch(() => undefined);
    },
  };
}
