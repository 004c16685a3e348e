import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/schema.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

/**
 * Every column of every table in src/db/schema.ts. The mapped type makes the compiler demand each
 * column of the TypeScript mirror; the test below demands the same of the migrated database.
 */
type Columns = { [T in keyof Database]: { [C in keyof Database[T]]-?: true } };
const columns: Columns = {
  tariffs: { id: true, fee_fen: true, cycle_seconds: true, threshold_fen: true, renewal: true, effective_from: true, created_at: true },
  accounts: {
    id: true,
    username: true,
    kind: true,
    display_name: true,
    status: true,
    password_hash: true,
    chap_credential: true,
    balance_fen: true,
    created_at: true,
    updated_at: true,
  },
  cycles: {
    id: true,
    account_id: true,
    seq: true,
    started_at: true,
    ends_at: true,
    fee_fen: true,
    tariff_id: true,
    opened_by: true,
    settled_at: true,
    created_at: true,
  },
  ledger_entries: {
    id: true,
    account_id: true,
    kind: true,
    amount_fen: true,
    balance_after_fen: true,
    channel: true,
    order_id: true,
    cycle_id: true,
    actor: true,
    reason: true,
    effective_at: true,
    created_at: true,
  },
  simulated_clock: { id: true, now_at: true },
  nas_clients: {
    id: true,
    name: true,
    address: true,
    secret: true,
    area: true,
    area_rules: true,
    coa_port: true,
    message_authenticator: true,
    source: true,
    enabled: true,
    created_at: true,
    updated_at: true,
  },
  acct_sessions: {
    id: true,
    unique_id: true,
    session_id: true,
    account_id: true,
    username: true,
    nas_id: true,
    nas_ip: true,
    nas_identifier: true,
    nas_port: true,
    nas_port_id: true,
    area: true,
    framed_ip: true,
    calling_station_id: true,
    called_station_id: true,
    started_at: true,
    updated_at: true,
    stopped_at: true,
    session_seconds: true,
    input_octets: true,
    output_octets: true,
    input_packets: true,
    output_packets: true,
    interim_interval_seconds: true,
    terminate_cause: true,
    created_at: true,
  },
  disconnect_requests: {
    id: true,
    session_id: true,
    account_id: true,
    nas_ip: true,
    reason: true,
    requested_by: true,
    outcome: true,
    error_cause: true,
    attempts: true,
    created_at: true,
    finished_at: true,
  },
  api_tokens: {
    id: true,
    key_id: true,
    token_hash: true,
    name: true,
    role: true,
    created_by: true,
    created_at: true,
    expires_at: true,
    revoked_at: true,
    last_used_at: true,
  },
  audit_log: { id: true, at: true, actor: true, action: true, target_type: true, target_id: true, before: true, after: true, request_id: true },
};

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ poolMax: 2 });
});
afterAll(async () => {
  await t.drop();
});

describe('the TypeScript mirror of the schema', () => {
  it('names exactly the tables and columns the migrations create', async () => {
    const rows = await sql<{ table_name: string; column_name: string }>`
      SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name NOT LIKE 'kysely_%'
      ORDER BY table_name, column_name`.execute(t.db);
    const actual: Record<string, string[]> = {};
    for (const r of rows.rows) (actual[r.table_name] ??= []).push(r.column_name);
    const declared = Object.fromEntries(Object.entries(columns).map(([table, cols]) => [table, Object.keys(cols).sort()]));
    expect(declared).toEqual(actual);
  });
});
