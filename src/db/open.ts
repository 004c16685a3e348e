import type { Config } from '../config.ts';
import type { Logger } from 'pino';
import { createDb, type Db } from './connection.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.ts';
import type pg from 'pg';

export interface DatabaseHandle {
  readonly db: Db;
  readonly pool: pg.Pool;
  readonly url: string;
  readonly embedded: boolean;
  close(): Promise<void>;
}

/**
 * DATABASE_URL when set, otherwise the embedded PostgreSQL under DATA_DIR: owned by the service, or
 * attached to (never stopped) by a CLI while the service runs.
 */
export async function openDatabase(config: Config, log: Logger, mode: 'own' | 'attach' = 'own'): Promise<DatabaseHandle> {
  let embedded: EmbeddedPostgres | null = null;
  let url = config.databaseUrl;
  if (url === null) {
    const pgLog = log.child({ module: 'embedded-pg' });
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPgPort,
      mode,
      onLog: (line) => pgLog.debug(line),
    });
    url = embedded.url;
    log.info({ dataDir: embedded.dataDir, url: embedded.url.replace(/:[^:@/]*@/, ':***@') }, mode === 'own' ? 'embedded postgresql started' : 'embedded postgresql attached');
  }
  const { db, pool } = createDb({ url, poolMax: config.dbPoolMax });
  return {
    db,
    pool,
    url,
    embedded: embedded !== null,
    async close() {
      await db.destroy();
      if (embedded) await embedded.stop();
    },
  };
}
