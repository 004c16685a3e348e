import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * bigint columns hold fen and ids: parse them to numbers, refusing any value a JS number cannot
 * hold exactly, rather than silently rounding money.
 */
function parseSafeInt(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`integer ${text} exceeds the safe range`);
  return n;
}

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID) return parseSafeInt;
    if (oid === NUMERIC_OID) return parseSafeInt;
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
};

export interface DbOptions {
  readonly url: string;
  readonly poolMax?: number;
  readonly applicationName?: string;
}

export type Db = Kysely<Database>;

export function createPool(options: DbOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax ?? 10,
    application_name: options.applicationName ?? 'campus-aaa',
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    types,
  });
  // The pool listens for errors on idle clients only. A checked-out client (in a transaction, between two
  // statements) whose server goes away emits 'error' with no listener, which would crash the process: the
  // statement in flight, or the next one, reports the failure instead, and the pool drops the client on release.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** A kysely instance over its own pg pool; `db.destroy()` closes the pool. */
export function createDb(options: DbOptions): { db: Db; pool: pg.Pool } {
  const pool = createPool(options);
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
}
