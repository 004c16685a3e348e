/**
 * The service as the fault suite runs it: start(loadConfig()) from the environment, like `npm start`, plus
 * one JSON line on stdout (after EVENT_PREFIX) with the bound ports, so the suite can use ephemeral ports.
 * An unhandled rejection or uncaught exception is reported as a `fatal` event and exits with 70. SIGUSR2
 * reports memory after a garbage collection (with --expose-gc); SIGTERM is the graceful stop.
 */
import { loadConfig } from '../../src/config.ts';
import { start } from '../../src/main.ts';

const PREFIX = '@@fault ';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${PREFIX}${JSON.stringify(event)}\n`);
}

function fatal(kind: string, e: unknown): void {
  emit({ event: 'fatal', kind, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e), stack: e instanceof Error ? e.stack : undefined });
  process.exit(70);
}

process.on('unhandledRejection', (e) => fatal('unhandledRejection', e));
process.on('uncaughtException', (e) => fatal('uncaughtException', e));

// The suite's processes die with it: a service whose suite is gone exits by itself.
const suite = Number(process.env.FAULT_SUITE_PID);
if (Number.isSafeInteger(suite) && suite > 0) {
  setInterval(() => {
    try {
      process.kill(suite, 0);
    } catch {
      process.exit(3);
    }
  }, 1_000).unref();
}

const app = await start(loadConfig());
emit({ event: 'ready', pid: process.pid, authPort: app.radius.authPort, acctPort: app.radius.acctPort, api: app.api.url });

// SIGUSR2: collect garbage when node runs with --expose-gc, then report memory (the fuzz scenario's probe).
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  emit({ event: 'memory', rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  app.close().then(
    () => {
      emit({ event: 'stopped' });
      process.exit(0);
    },
    (e: unknown) => fatal('close', e),
  );
});
