import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Mirrors the SQL in migrations/; test/integration/schema.test.ts fails when the two drift. */

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface TariffsTable {
  id: Generated<number>;
  fee_fen: number;
  cycle_seconds: number;
  threshold_fen: number;
  renewal: 'continuous' | 'on-login';
  effective_from: Timestamp;
  created_at: DefaultTimestamp;
}

export type AccountKind = 'student' | 'staff' | 'temporary';
export type AccountStatus = 'active' | 'disabled';

export interface AccountsTable {
  id: Generated<number>;
  username: string;
  kind: AccountKind;
  display_name: string | null;
  status: ColumnType<AccountStatus, AccountStatus | undefined, AccountStatus>;
  password_hash: string;
  balance_fen: ColumnType<number, number | undefined, number>;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
}

export interface CyclesTable {
  id: Generated<number>;
  account_id: number;
  seq: number;
  started_at: Timestamp;
  ends_at: Timestamp;
  fee_fen: number;
  tariff_id: number;
  opened_by: 'login' | 'renewal';
  settled_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  created_at: DefaultTimestamp;
}

export type LedgerKind = 'top-up' | 'settlement' | 'adjustment' | 'refund';

export interface LedgerEntriesTable {
  id: Generated<number>;
  account_id: number;
  kind: LedgerKind;
  amount_fen: number;
  balance_after_fen: number;
  channel: string | null;
  order_id: string | null;
  cycle_id: number | null;
  actor: string | null;
  reason: string | null;
  effective_at: Timestamp;
  created_at: DefaultTimestamp;
}

export interface SimulatedClockTable {
  id: ColumnType<boolean, boolean | undefined, never>;
  now_at: Timestamp;
}

export interface Database {
  tariffs: TariffsTable;
  accounts: AccountsTable;
  cycles: CyclesTable;
  ledger_entries: LedgerEntriesTable;
  simulated_clock: SimulatedClockTable;
}

export type AccountRow = Selectable<AccountsTable>;
export type NewAccountRow = Insertable<AccountsTable>;
export type AccountUpdate = Updateable<AccountsTable>;
export type CycleRow = Selectable<CyclesTable>;
export type LedgerRow = Selectable<LedgerEntriesTable>;
export type TariffRow = Selectable<TariffsTable>;
