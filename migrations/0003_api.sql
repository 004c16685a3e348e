-- The staff admin API: bearer tokens (stored hashed) and the audit log of every write made through it.

CREATE TABLE api_tokens (
  id           bigserial PRIMARY KEY,
  -- The public part of a token ("caaa_<key_id>_<secret>"): finds the row; the secret is then compared
  -- in constant time against token_hash, so a lookup never leaks how much of a secret matched.
  key_id       text        NOT NULL UNIQUE CHECK (key_id ~ '^[0-9a-f]{12}$'),
  -- SHA-256 (hex) of the whole token; the token itself is shown once and never stored.
  token_hash   text        NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  role         text        NOT NULL CHECK (role IN ('admin', 'operator', 'payment', 'readonly')),
  created_by   text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz
);

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  -- Wall-clock time of the change (not the simulated clock): this is an operations record.
  at          timestamptz NOT NULL DEFAULT now(),
  -- Who: "token:<name>#<id>", "env:ADMIN_TOKEN" or "cli:<user>".
  actor       text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  -- What: "<resource>.<verb>", e.g. account.create, nas.update, top-up.create.
  action      text        NOT NULL CHECK (action ~ '^[a-z-]+\.[a-z-]+$'),
  target_type text        NOT NULL,
  target_id   text,
  before      jsonb,
  after       jsonb,
  request_id  text
);
-- Serves "the history of one account / NAS / token", newest first.
CREATE INDEX audit_log_by_target ON audit_log (target_type, target_id, id DESC);
-- Serves "what happened between T1 and T2".
CREATE INDEX audit_log_by_at ON audit_log (at);

-- Audit records are immutable, like ledger entries.
CREATE FUNCTION audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are immutable (% refused)', TG_OP;
END
$$;
CREATE TRIGGER audit_log_no_update_delete
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();
