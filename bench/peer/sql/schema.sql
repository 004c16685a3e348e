-- The FreeRADIUS peer's billing schema, in its own database beside FreeRADIUS's standard radacct (loaded
-- from the installed package's mods-config/sql/main/postgresql/schema.sql). The same rules as campus-aaa,
-- kept the way an admin of FreeRADIUS + rlm_sql would: a few tables and PL/pgSQL (decisions.sql).

CREATE TABLE peer_tariff (
  id            boolean  PRIMARY KEY DEFAULT true CHECK (id),
  fee_fen       bigint   NOT NULL CHECK (fee_fen > 0),
  threshold_fen bigint   NOT NULL CHECK (threshold_fen >= 0),
  cycle_seconds integer  NOT NULL CHECK (cycle_seconds > 0)
);
INSERT INTO peer_tariff (fee_fen, threshold_fen, cycle_seconds) VALUES (2000, 2000, 30 * 86400);

CREATE TABLE peer_accounts (
  username    text   PRIMARY KEY,
  -- A Password-With-Header value rlm_pap understands: {ssha256}..., {crypt}$6$..., or {cleartext}...
  password    text   NOT NULL,
  status      text   NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  balance_fen bigint NOT NULL DEFAULT 0
);

CREATE TABLE peer_cycles (
  id         bigserial   PRIMARY KEY,
  username   text        NOT NULL REFERENCES peer_accounts (username),
  started_at timestamptz NOT NULL,
  ends_at    timestamptz NOT NULL CHECK (ends_at > started_at),
  fee_fen    bigint      NOT NULL CHECK (fee_fen > 0),
  settled_at timestamptz CHECK (settled_at IS NULL OR settled_at = ends_at)
);
-- At most one running cycle per account; also serves peer_authorize's lookup of the running cycle.
CREATE UNIQUE INDEX peer_cycles_one_running ON peer_cycles (username) WHERE settled_at IS NULL;

CREATE TABLE peer_ledger (
  id                bigserial   PRIMARY KEY,
  username          text        NOT NULL REFERENCES peer_accounts (username),
  amount_fen        bigint      NOT NULL CHECK (amount_fen <> 0),
  balance_after_fen bigint      NOT NULL,
  cycle_id          bigint      REFERENCES peer_cycles (id),
  effective_at      timestamptz NOT NULL
);
-- One settlement per cycle.
CREATE UNIQUE INDEX peer_ledger_one_per_cycle ON peer_ledger (cycle_id) WHERE cycle_id IS NOT NULL;
