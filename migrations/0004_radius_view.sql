-- RADIUS authorization without a database round trip per login: each server keeps an in-memory view of
-- accounts and their running cycle, made exact across instances by the notifications below; and an
-- optional reversible credential so CHAP (RFC 2865 §2.2) can be offered to accounts that have one.

-- AES-256-GCM of the password under the server's CREDENTIAL_KEY, bound (as associated data) to the
-- account id and the password_hash it was sealed with: a password change makes it unusable at once.
-- Null: the account can log in with PAP only.
ALTER TABLE accounts ADD COLUMN chap_credential bytea;

-- Sends the account ids of a statement's rows on channel accounts_changed, 350 ids per notification so a
-- payload stays under PostgreSQL's 8000-byte limit. Statement-level with transition tables: a settlement
-- batch of 5000 accounts costs a handful of notifications, not 5000 trigger calls.
-- For cycles (rows carry account_id):
CREATE FUNCTION accounts_changed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids text;
BEGIN
  FOR ids IN
    SELECT string_agg(s.account_id::text, ',')
    FROM (SELECT c.account_id, (row_number() OVER ()) / 350 AS chunk FROM changed c) s
    GROUP BY s.chunk
  LOOP
    PERFORM pg_notify('accounts_changed', ids);
  END LOOP;
  RETURN NULL;
END
$$;

-- For accounts (rows carry id):
CREATE FUNCTION accounts_row_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids text;
BEGIN
  FOR ids IN
    SELECT string_agg(s.id::text, ',')
    FROM (SELECT c.id, (row_number() OVER ()) / 350 AS chunk FROM changed c) s
    GROUP BY s.chunk
  LOOP
    PERFORM pg_notify('accounts_changed', ids);
  END LOOP;
  RETURN NULL;
END
$$;

-- New, changed and removed accounts (a column list would be cheaper, but PostgreSQL allows none with
-- transition tables).
CREATE TRIGGER accounts_changed_insert AFTER INSERT ON accounts
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION accounts_row_notify();
CREATE TRIGGER accounts_changed_update AFTER UPDATE ON accounts
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION accounts_row_notify();
CREATE TRIGGER accounts_changed_delete AFTER DELETE ON accounts
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION accounts_row_notify();

-- A cycle opened (at a login on any server, or by a renewal) lets the next login be decided in memory.
-- Settling a cycle needs no notification: the view never accepts past a cycle's end.
CREATE TRIGGER cycles_changed_insert AFTER INSERT ON cycles
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION accounts_changed_notify();
