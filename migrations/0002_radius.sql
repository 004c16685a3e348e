-- RADIUS: access controllers (NAS clients), accounting sessions modelled on FreeRADIUS's radacct,
-- and the outcome of every RFC 5176 Disconnect-Request sent.

CREATE TABLE nas_clients (
  id                    bigserial PRIMARY KEY,
  name                  text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  -- A single host (/32, /128) or a range; the longest prefix wins when ranges nest.
  address               cidr        NOT NULL UNIQUE,
  secret                text        NOT NULL CHECK (length(secret) BETWEEN 1 AND 128),
  area                  text        NOT NULL CHECK (area IN ('dorm', 'office')),
  -- Optional rules for a NAS serving both areas, e.g. [{"attribute":"NAS-Port-Id","pattern":"^vlan(1[0-9]{3})","area":"dorm"}].
  area_rules            jsonb       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(area_rules) = 'array'),
  coa_port              integer     NOT NULL DEFAULT 3799 CHECK (coa_port BETWEEN 1 AND 65535),
  message_authenticator text        NOT NULL DEFAULT 'require' CHECK (message_authenticator IN ('require', 'auto')),
  source                text        NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'file')),
  enabled               boolean     NOT NULL DEFAULT true,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Servers keep NAS clients in memory and reload on this notification: changes apply without a restart.
CREATE FUNCTION nas_clients_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('nas_clients_changed', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER nas_clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON nas_clients
  FOR EACH STATEMENT EXECUTE FUNCTION nas_clients_notify();

CREATE TABLE acct_sessions (
  id                       bigserial PRIMARY KEY,
  -- Hash of NAS and session attributes (FreeRADIUS's acctuniqueid): the exactly-once key of a session.
  unique_id                text        NOT NULL UNIQUE,
  session_id               text        NOT NULL,
  account_id               bigint      REFERENCES accounts (id),
  username                 text        NOT NULL,
  nas_id                   bigint      REFERENCES nas_clients (id) ON DELETE SET NULL,
  nas_ip                   inet        NOT NULL,
  nas_identifier           text,
  nas_port                 bigint,
  nas_port_id              text,
  area                     text        NOT NULL CHECK (area IN ('dorm', 'office')),
  framed_ip                inet,
  calling_station_id       text,
  called_station_id        text,
  started_at               timestamptz,
  updated_at               timestamptz NOT NULL,
  stopped_at               timestamptz,
  session_seconds          bigint      NOT NULL DEFAULT 0 CHECK (session_seconds >= 0),
  input_octets             bigint      NOT NULL DEFAULT 0 CHECK (input_octets >= 0),
  output_octets            bigint      NOT NULL DEFAULT 0 CHECK (output_octets >= 0),
  input_packets            bigint      NOT NULL DEFAULT 0 CHECK (input_packets >= 0),
  output_packets           bigint      NOT NULL DEFAULT 0 CHECK (output_packets >= 0),
  interim_interval_seconds integer,
  terminate_cause          text,
  created_at               timestamptz NOT NULL DEFAULT now()
);
-- Serves "online sessions of an account" (disconnect on arrears or disable; the account view).
CREATE INDEX acct_sessions_online_by_account ON acct_sessions (account_id) WHERE stopped_at IS NULL;
-- Serves Accounting-On/Off: close every open session of one NAS.
CREATE INDEX acct_sessions_online_by_nas ON acct_sessions (nas_ip) WHERE stopped_at IS NULL;
-- Serves the stale-session sweeper: open sessions with no update for a while.
CREATE INDEX acct_sessions_online_by_update ON acct_sessions (updated_at) WHERE stopped_at IS NULL;
-- Serves the session history listing, newest first with a keyset cursor.
CREATE INDEX acct_sessions_history ON acct_sessions (id DESC);
CREATE INDEX acct_sessions_by_account ON acct_sessions (account_id, id DESC);

CREATE TABLE disconnect_requests (
  id           bigserial PRIMARY KEY,
  session_id   bigint      REFERENCES acct_sessions (id),
  account_id   bigint      REFERENCES accounts (id),
  nas_ip       inet        NOT NULL,
  reason       text        NOT NULL CHECK (reason IN ('arrears', 'ended', 'disabled', 'staff')),
  requested_by text,
  -- Null while in flight.
  outcome      text        CHECK (outcome IN ('ack', 'nak', 'timeout', 'error')),
  error_cause  integer,
  attempts     integer     NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
-- Serves the disconnect history of a session.
CREATE INDEX disconnect_requests_by_session ON disconnect_requests (session_id);
