import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREPARED } from '../../src/db/connection.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let t: TestDatabase;

beforeAll(async () => {
  // One connection, so every statement below runs on the same backend.
  t = await createTestDatabase({ poolMax: 1 });
  await sql`CREATE TABLE prepared_probe (id int PRIMARY KEY, label text NOT NULL)`.execute(t.db);
  await sql`INSERT INTO prepared_probe VALUES (1, 'one'), (2, 'two')`.execute(t.db);
});

afterAll(async () => {
  await t.drop();
});

/** The backend's prepared statements, as pg_prepared_statements lists them. */
async function preparedOnBackend(): Promise<{ name: string; statement: string }[]> {
  const r = await sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements ORDER BY prepare_time`.execute(t.db);
  return r.rows;
}

const probe = (id: number) => sql<{ id: number; label: string }>`${sql.raw(PREPARED)} SELECT id, label FROM prepared_probe WHERE id = ${id}`.execute(t.db);

describe('statements marked PREPARED', () => {
  it('are prepared once per connection under one name, and answer with the arguments of each call', async () => {
    const before = (await preparedOnBackend()).length;
    expect((await probe(1)).rows).toEqual([{ id: 1, label: 'one' }]);
    expect((await probe(2)).rows).toEqual([{ id: 2, label: 'two' }]);
    expect((await probe(3)).rows).toEqual([]);
    const after = await preparedOnBackend();
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)!.name).toMatch(/^campus_aaa_[0-9a-f]{24}$/);
    expect(after.at(-1)!.statement).toContain('FROM prepared_probe');
  });

  it('leaves unmarked statements unnamed', async () => {
    const before = (await preparedOnBackend()).length;
    await sql`SELECT label FROM prepared_probe WHERE id = ${1}`.execute(t.db);
    await sql`SELECT label FROM prepared_probe WHERE id = ${2}`.execute(t.db);
    expect((await preparedOnBackend()).length).toBe(before);
  });

  it('are prepared again after a schema change alters their result type: one call fails, the next succeeds', async () => {
    await probe(1);
    // What another instance's migration could do while this one runs.
    await sql`ALTER TABLE prepared_probe ALTER COLUMN label TYPE varchar(20)`.execute(t.db);
    await expect(probe(1)).rejects.toMatchObject({ code: '0A000' });
    expect((await probe(1)).rows).toEqual([{ id: 1, label: 'one' }]);
    expect((await probe(2)).rows).toEqual([{ id: 2, label: 'two' }]);
  });
});
