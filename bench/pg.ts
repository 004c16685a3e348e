import pg from 'pg';
import { startThrowawayPostgres } from '../test/helpers/postgres.ts';

/**
 * A private database for a benchmark: a new database on BENCH_DATABASE_URL's server when set, else a
 * throwaway embedded PostgreSQL (durable settings: fsync on, as in production) in a temp directory.
 */
export async function benchDatabase(name: string): Promise<{ url: string; close: () => Promise<void> }> {
  const base = process.env.BENCH_DATABASE_URL;
  if (base) {
    const dbName = `${name}_${process.pid}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    const u = new URL(base);
    u.pathname = `/${dbName}`;
    return {
      url: u.toString(),
      close: async () => {
        const a = new pg.Client({ connectionString: base });
        await a.connect();
        await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await a.end();
      },
    };
  }
  const embedded = await startThrowawayPostgres({
    prefix: `campus-aaa-${name}-`,
    database: name,
    postgresFlags: ['-c', 'shared_buffers=512MB', '-c', 'max_wal_size=4GB', '-c', 'max_connections=200'],
  });
  return { url: embedded.url, close: embedded.stop };
}
