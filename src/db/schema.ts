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
  /** AES-256-GCM sealed password for CHAP (migration 0004), bound to id and password_hash; null = PAP only. */
  chap_credential: ColumnType<Buffer | null, Buffer | null | undefined, Buffer | null>;
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

export type Area = 'dorm' | 'office';

export interface AreaRule {
  /** A request attribute such as NAS-Port-Id, Called-Station-Id or NAS-Identifier. */
  attribute: string;
  /** A regular expression matched against the attribute's value. */
  pattern: string;
  area: Area;
}

export interface NasClientsTable {
  id: Generated<number>;
  name: string;
  address: string;
  secret: string;
  area: Area;
  area_rules: ColumnType<AreaRule[], string | undefined, string>;
  coa_port: ColumnType<number, number | undefined, number>;
  message_authenticator: ColumnType<'require' | 'auto', 'require' | 'auto' | undefined, 'require' | 'auto'>;
  source: ColumnType<'api' | 'file', 'api' | 'file' | undefined, 'api' | 'file'>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
}

type Counter = ColumnType<number, number | undefined, number>;

export interface AcctSessionsTable {
  id: Generated<number>;
  unique_id: string;
  session_id: string;
  account_id: number | null;
  username: string;
  nas_id: number | null;
  nas_ip: string;
  nas_identifier: string | null;
  nas_port: number | null;
  nas_port_id: string | null;
  area: Area;
  framed_ip: string | null;
  calling_station_id: string | null;
  called_station_id: string | null;
  started_at: Date | null;
  updated_at: Timestamp;
  stopped_at: Date | null;
  session_seconds: Counter;
  input_octets: Counter;
  output_octets: Counter;
  input_packets: Counter;
  output_packets: Counter;
  interim_interval_seconds: number | null;
  terminate_cause: string | null;
  created_at: DefaultTimestamp;
}

export interface DisconnectRequestsTable {
  id: Generated<number>;
  session_id: number | null;
  account_id: number | null;
  nas_ip: string;
  reason: 'arrears' | 'ended' | 'disabled' | 'staff';
  requested_by: string | null;
  outcome: 'ack' | 'nak' | 'timeout' | 'error' | null;
  error_cause: number | null;
  attempts: ColumnType<number, number | undefined, number>;
  created_at: DefaultTimestamp;
  finished_at: Date | null;
}

export type ApiRole = 'admin' | 'operator' | 'payment' | 'readonly';

export interface ApiTokensTable {
  id: Generated<number>;
  key_id: string;
  token_hash: string;
  name: string;
  role: ApiRole;
  created_by: string;
  created_at: DefaultTimestamp;
  expires_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  revoked_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  last_used_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: DefaultTimestamp;
  actor: string;
  action: string;
  target_type: string;
  target_id: string | null;
  before: ColumnType<unknown, string | null | undefined, never>;
  after: ColumnType<unknown, string | null | undefined, never>;
  request_id: string | null;
}

export interface Database {
  tariffs: TariffsTable;
  accounts: AccountsTable;
  cycles: CyclesTable;
  ledger_entries: LedgerEntriesTable;
  simulated_clock: SimulatedClockTable;
  nas_clients: NasClientsTable;
  acct_sessions: AcctSessionsTable;
  disconnect_requests: DisconnectRequestsTable;
  api_tokens: ApiTokensTable;
  audit_log: AuditLogTable;
}

export type AccountRow = Selectable<AccountsTable>;
export type NewAccountRow = Insertable<AccountsTable>;
export type AccountUpdate = Updateable<AccountsTable>;
export type CycleRow = Selectable<CyclesTable>;
export type LedgerRow = Selectable<LedgerEntriesTable>;
export type TariffRow = Selectable<TariffsTable>;
export type NasClientRow = Selectable<NasClientsTable>;
export type AcctSessionRow = Selectable<AcctSessionsTable>;
export type DisconnectRequestRow = Selectable<DisconnectRequestsTable>;
export type ApiTokenRow = Selectable<ApiTokensTable>;
export type AuditLogRow = Selectable<AuditLogTable>;
