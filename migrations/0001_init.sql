-- The money core: accounts, the tariff history, 30-day cycles and the immutable ledger.
-- Every balance change is a ledger row; the constraints below carry the invariants that
-- application code must never be trusted with alone.

CREATE TABLE tariffs (
  id             bigserial PRIMARY KEY,
  fee_fen        bigint      NOT NULL CHECK (fee_fen > 0),
  cycle_seconds  integer     NOT NULL CHECK (cycle_seconds > 0),
  threshold_fen  bigint      NOT NULL CHECK (threshold_fen >= 0),
  renewal        text        NOT NULL CHECK (renewal IN ('continuous', 'on-login')),
  effective_from timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
-- Serves "the tariff in force at instant T" (latest effective_from <= T).
CREATE INDEX tariffs_effective_from ON tariffs (effective_from DESC, id DESC);

CREATE TABLE accounts (
  id            bigserial PRIMARY KEY,
  username      text        NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
  kind          text        NOT NULL CHECK (kind IN ('student', 'staff', 'temporary')),
  display_name  text        CHECK (display_name IS NULL OR length(display_name) <= 200),
  status        text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  password_hash text        NOT NULL,
  balance_fen   bigint      NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cycles (
  id         bigserial PRIMARY KEY,
  account_id bigint      NOT NULL REFERENCES accounts (id),
  seq        integer     NOT NULL CHECK (seq > 0),
  started_at timestamptz NOT NULL,
  ends_at    timestamptz NOT NULL,
  fee_fen    bigint      NOT NULL CHECK (fee_fen > 0),
  tariff_id  bigint      NOT NULL REFERENCES tariffs (id),
  opened_by  text        NOT NULL CHECK (opened_by IN ('login', 'renewal')),
  -- The anniversary it was settled at (= ends_at), null while running.
  settled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > started_at),
  CHECK (settled_at IS NULL OR settled_at = ends_at),
  UNIQUE (account_id, seq)
);
-- At most one running cycle per account: the exactly-once guard for opening a cycle.
CREATE UNIQUE INDEX cycles_one_running ON cycles (account_id) WHERE settled_at IS NULL;
-- Serves settleDue: running cycles in anniversary order.
CREATE INDEX cycles_due ON cycles (ends_at, id) WHERE settled_at IS NULL;

CREATE TABLE ledger_entries (
  id                bigserial PRIMARY KEY,
  account_id        bigint      NOT NULL REFERENCES accounts (id),
  kind              text        NOT NULL CHECK (kind IN ('top-up', 'settlement', 'adjustment', 'refund')),
  amount_fen        bigint      NOT NULL CHECK (amount_fen <> 0),
  balance_after_fen bigint      NOT NULL,
  channel           text,
  order_id          text,
  cycle_id          bigint      REFERENCES cycles (id),
  actor             text,
  reason            text,
  effective_at      timestamptz NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (kind <> 'top-up' OR (amount_fen > 0 AND channel IS NOT NULL AND order_id IS NOT NULL)),
  CHECK (kind <> 'settlement' OR (amount_fen < 0 AND cycle_id IS NOT NULL)),
  CHECK (kind <> 'adjustment' OR (actor IS NOT NULL AND reason IS NOT NULL)),
  CHECK (kind <> 'refund' OR (amount_fen < 0 AND actor IS NOT NULL AND reason IS NOT NULL))
);
-- One credit per payment order, whatever the payment platform retries.
CREATE UNIQUE INDEX ledger_one_top_up_per_order ON ledger_entries (channel, order_id) WHERE kind = 'top-up';
-- One settlement per cycle.
CREATE UNIQUE INDEX ledger_one_settlement_per_cycle ON ledger_entries (cycle_id) WHERE kind = 'settlement';
-- Serves the "fund details" listing: an account's entries newest first, cursor on id.
CREATE INDEX ledger_by_account ON ledger_entries (account_id, id DESC);
-- Serves revenue reports by day.
CREATE INDEX ledger_by_effective_at ON ledger_entries (effective_at);

-- Ledger rows are immutable: corrections are new entries.
CREATE FUNCTION ledger_entries_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger entries are immutable (% refused)', TG_OP;
END
$$;
CREATE TRIGGER ledger_entries_no_update_delete
  BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_immutable();
CREATE TRIGGER ledger_entries_no_truncate
  BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_immutable();

-- The simulated clock's position, so a restart does not move simulated time backwards.
CREATE TABLE simulated_clock (
  id     boolean     PRIMARY KEY DEFAULT true CHECK (id),
  now_at timestamptz NOT NULL
);
