import { existsSync } from 'node:fs';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { startThrowawayPostgres } from './postgres.ts';

export const TEMPLATE_DB = 'campus_aaa_template';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

/** A Docker engine answers only where its socket exists; testcontainers is tried only then. */
async function tryTestcontainers(): Promise<{ url: string; stop: () => Promise<void> } | null> {
  if (!existsSync('/var/run/docker.sock') && !process.env.DOCKER_HOST) return null;
  try {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const c = await new PostgreSqlContainer('postgres:16-alpine').start();
    return { url: c.getConnectionUri(), stop: async () => void (await c.stop()) };
  } catch {
    return null;
  }
}

/**
 * Test database server: TEST_DATABASE_URL when set; else PostgreSQL in a container where a Docker
 * engine answers; else an embedded PostgreSQL in a temporary directory. A migrated template database
 * is created once; each test file clones it (test/helpers/db.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let adminUrl: string;
  let stop: () => Promise<void> = async () => undefined;
  if (process.env.TEST_DATABASE_URL) {
    adminUrl = process.env.TEST_DATABASE_URL;
  } else {
    const container = process.env.TEST_DB_PROVIDER === 'embedded' ? null : await tryTestcontainers();
    if (container) {
      adminUrl = container.url;
      stop = container.stop;
    } else {
      const embedded = await startThrowawayPostgres({
        prefix: 'campus-aaa-test-',
        database: 'postgres',
        postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300'],
      });
      adminUrl = embedded.url;
      stop = embedded.stop;
    }
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${TEMPLATE_DB}`;
  const { db } = createDb({ url: templateUrl.toString(), poolMax: 1 });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', TEMPLATE_DB);
  return stop;
}
