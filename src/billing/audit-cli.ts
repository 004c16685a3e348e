import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { openDatabase } from '../db/open.ts';
import { auditLedger, formatAudit } from './audit.ts';

const { values } = parseArgs({ options: { 'grace-seconds': { type: 'string', default: '3600' }, now: { type: 'string' } } });
const config = loadConfig();
const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
const handle = await openDatabase(config, log, 'attach');
try {
  let now = values.now ? new Date(values.now) : new Date();
  if (!values.now && config.simulatedClock) {
    const row = await handle.db.selectFrom('simulated_clock').select('now_at').executeTakeFirst();
    if (row) now = row.now_at;
  }
  const report = await auditLedger(handle.db, now, Number(values['grace-seconds']));
  process.stdout.write(`${formatAudit(report)}\n`);
  if (!report.ok) process.exitCode = 1;
} catch (e) {
  process.stderr.write(`audit could not run: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  await handle.close();
}
