import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { openDatabase } from './open.ts';
import { migrateToLatest } from './migrate.ts';

const config = loadConfig();
const log = createLogger(config.logLevel).child({ module: 'migrate' });
const handle = await openDatabase(config, log, 'attach');
try {
  const applied = await migrateToLatest(handle.db);
  log.info({ applied }, applied.length ? 'migrations applied' : 'database already up to date');
} catch (e) {
  log.error({ err: e }, 'migration failed');
  process.exitCode = 1;
} finally {
  await handle.close();
}
