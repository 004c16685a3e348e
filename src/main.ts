import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { startApi } from './api/app.ts';
import { Billing, type ClosedAccount, type SettleReport } from './billing/billing.ts';
import { startSettlementWorker, type SettlementWorker } from './billing/worker.ts';
import { SimulatedClock, systemClock, type Clock } from './clock.ts';
import { ConfigError, credentialKeyBytes, loadConfig, type Config } from './config.ts';
import { migrateToLatest, migrationsApplied } from './db/migrate.ts';
import { openDatabase, type DatabaseHandle } from './db/open.ts';
import { hashPassword, needsRehash, verifyPassword } from './billing/password.ts';
import { createLogger } from './log.ts';
import { sealCredential } from './radius/credential.ts';
import { startRadius, type RadiusService } from './radius/server.ts';

/** Moves the simulated clock (only with SIMULATED_CLOCK) and settles what became due. */
export interface ClockControl {
  readonly simulated: boolean;
  now(): Date;
  advance(seconds: number): Promise<{ now: Date; report: SettleReport }>;
}

export interface App {
  readonly config: Config;
  readonly log: Logger;
  readonly database: DatabaseHandle;
  readonly billing: Billing;
  readonly worker: SettlementWorker;
  readonly clock: ClockControl;
  /** The Prometheus registry every subsystem registers its metrics on; the API serves it on /metrics. */
  readonly metrics: Registry;
  /** The admin API; `url` is the bound address (the real port when API_PORT=0). */
  readonly api: { readonly url: string };
  /** The RADIUS server: bound ports (the real ones when RADIUS_*_PORT=0) and the RFC 5176 Disconnect client. */
  readonly radius: RadiusService;
  close(): Promise<void>;
}

async function createClock(config: Config, database: DatabaseHandle): Promise<Clock> {
  if (!config.simulatedClock) return systemClock;
  const row = await database.db.selectFrom('simulated_clock').select('now_at').executeTakeFirst();
  const start = config.simulatedClock.startAt ?? new Date();
  // Simulated time never moves backwards across restarts.
  const at = row && row.now_at.getTime() > start.getTime() ? row.now_at : start;
  return new SimulatedClock(at);
}

async function persistClock(database: DatabaseHandle, now: Date): Promise<void> {
  await database.db
    .insertInto('simulated_clock')
    .values({ now_at: now })
    .onConflict((oc) => oc.column('id').doUpdateSet({ now_at: now }))
    .execute();
}

/**
 * The composition root: config -> logger -> database (embedded or DATABASE_URL) -> migrations ->
 * billing -> RADIUS server -> settlement worker -> admin API. The only place that wires modules together.
 */
/**
 * `onFatal`: told when a part the service cannot run without has failed for good (the RADIUS socket
 * thread died); the command line exits with code 70 on it.
 */
export async function start(config: Config, opts: { log?: Logger; onFatal?: (err: Error) => void } = {}): Promise<App> {
  const log = opts.log ?? createLogger(config.logLevel);
  const database = await openDatabase(config, log);
  const closers: (() => Promise<void>)[] = [() => database.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) {
      await c().catch((err: unknown) => log.error({ err }, 'error during shutdown'));
    }
  };
  try {
    const applied = await migrateToLatest(database.db);
    if (applied.length) log.info({ applied }, 'migrations applied');
    const clock = await createClock(config, database);
    if (clock.simulated) {
      await persistClock(database, clock.now());
      log.warn({ now: clock.now().toISOString() }, 'simulated clock is on');
    }
    const billing = new Billing(database.db, clock);
    await billing.init(config.tariff);
    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics });

    const radius = await startRadius({
      config: config.radius,
      db: database.db,
      databaseUrl: database.url,
      billing,
      log: log.child({ module: 'radius' }),
      registry: metrics,
      verifyPassword,
      ...(config.radius.passwordRehash === false ? {} : { rehash: { needed: needsRehash, hash: hashPassword } }),
      ...(opts.onFatal ? { onFatal: opts.onFatal } : {}),
    });
    closers.push(() => radius.close());
    const disconnector = radius.disconnector;

    // Settlement closed these accounts' dorm service: disconnect their online dorm sessions (RFC 5176).
    const disconnectClosed = async (closed: readonly ClosedAccount[]) => {
      const outcomes = await disconnector.disconnectAccounts(closed, 'settlement', 'dorm');
      log.info({ accounts: closed.length, sessions: outcomes.length }, 'dorm service closed for accounts');
    };
    const worker = startSettlementWorker(billing, {
      cron: config.settle.cron,
      batchSize: config.settle.batchSize,
      concurrency: config.settle.concurrency,
      onClosed: disconnectClosed,
      log: log.child({ module: 'settle' }),
    });
    closers.push(() => worker.stop());

    const clockControl: ClockControl = {
      simulated: clock.simulated,
      now: () => clock.now(),
      async advance(seconds) {
        if (!(clock instanceof SimulatedClock)) throw new Error('the clock is not simulated');
        const now = clock.advance(seconds);
        await persistClock(database, now);
        const report = await worker.runOnce();
        return { now, report };
      },
    };

    const credentialKey = config.radius.credentialKey === null ? null : credentialKeyBytes(config.radius.credentialKey);
    const api = await startApi(
      {
        db: database.db,
        pool: database.pool,
        billing,
        disconnector,
        clock: clockControl,
        settleNow: () => worker.runOnce(),
        adminToken: config.api.adminToken,
        log,
        metrics,
        migrationsApplied: () => migrationsApplied(database.db),
        radiusReady: () => radius.ready(),
        ...(credentialKey ? { sealChapCredential: (id: number, hash: string, password: string) => sealCredential(credentialKey, id, hash, password) } : {}),
      },
      { host: config.api.host, port: config.api.port },
    );
    closers.push(() => api.close());
    log.info({ url: api.url }, 'admin api listening');

    return { config, log, database, billing, worker, clock: clockControl, metrics, api: { url: api.url }, radius, close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

async function runFromCommandLine(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    process.stderr.write(`${e instanceof ConfigError ? e.message : String(e)}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  let app: App;
  try {
    // EX_SOFTWARE: the supervisor (systemd, Docker's restart policy) starts the service again.
    app = await start(config, { log, onFatal: () => process.exit(70) });
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  log.info('campus-aaa started');
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long, exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    app
      .close()
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runFromCommandLine();
}
