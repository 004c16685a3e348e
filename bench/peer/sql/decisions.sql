-- The FreeRADIUS peer's decisions: one PL/pgSQL call per Access-Request (peer_authorize, read-only, run by
-- sql_map in authorize), and peer_open_cycle in post-auth only after PAP succeeded and a cycle must open.

-- 1234 fen -> '12.34'.
CREATE FUNCTION peer_yuan(fen bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN fen < 0 THEN '-' ELSE '' END || (abs(fen) / 100)::text || '.' || lpad((abs(fen) % 100)::text, 2, '0')
$$;

CREATE FUNCTION peer_arrears_message(balance_fen bigint, needed_fen bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT format('账户欠费：余额 %s 元，需 %s 元 / Account in arrears: balance %s yuan, %s needed',
                peer_yuan(balance_fen), peer_yuan(needed_fen), peer_yuan(balance_fen), peer_yuan(needed_fen))
$$;

CREATE FUNCTION peer_dorm_message(ends_at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('认证成功：宿舍区本周期至 %1$s / Welcome: dormitory cycle paid until %1$s (UTC+8)',
                to_char(ends_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'))
$$;

-- Seconds until a cycle's end, rounded up, at least 1 (the Session-Timeout of a dorm accept).
CREATE FUNCTION peer_seconds_until(ends_at timestamptz, now_at timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT greatest(1, ceil(extract(epoch FROM ends_at - now_at)))::bigint
$$;

-- What FreeRADIUS needs to decide a login in one round trip: the credential for rlm_pap and the decision
-- ('accept', 'reject', or 'open': accept by opening or renewing a cycle once the password is proved).
-- No row for an unknown user. Writes nothing: a wrong password must not open a cycle.
CREATE FUNCTION peer_authorize(p_username text, p_area text)
RETURNS TABLE (password text, decision text, session_timeout bigint, reply_message text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  a peer_accounts;
  c peer_cycles;
  t peer_tariff;
  now_at timestamptz := now();
BEGIN
  SELECT * INTO a FROM peer_accounts WHERE username = p_username;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  password := a.password;
  IF a.status <> 'active' THEN
    decision := 'reject';
    reply_message := '账号已停用 / Account disabled';
  ELSIF p_area = 'office' THEN
    decision := 'accept';
    reply_message := '认证成功：教学办公区免费 / Welcome: the office area is free of charge';
  ELSE
    SELECT * INTO c FROM peer_cycles WHERE username = p_username AND settled_at IS NULL;
    IF FOUND AND c.ends_at > now_at THEN
      decision := 'accept';
      session_timeout := peer_seconds_until(c.ends_at, now_at);
      reply_message := peer_dorm_message(c.ends_at);
    ELSE
      SELECT * INTO t FROM peer_tariff;
      IF c.id IS NOT NULL OR a.balance_fen >= t.threshold_fen THEN
        decision := 'open';
      ELSE
        decision := 'reject';
        reply_message := peer_arrears_message(a.balance_fen, t.threshold_fen);
      END IF;
    END IF;
  END IF;
  RETURN NEXT;
END
$$;

-- A proved dorm login that needs the money core: settles any cycle whose end has passed (continuous
-- renewal at each anniversary while funded), then accepts on the running cycle, opens one when the balance
-- reaches the threshold, or refuses with the arrears message. The account row lock serialises concurrent
-- logins of one account; the partial unique index on peer_cycles is the last guard.
CREATE FUNCTION peer_open_cycle(p_username text)
RETURNS TABLE (decision text, session_timeout bigint, reply_message text)
LANGUAGE plpgsql AS $$
DECLARE
  a peer_accounts;
  c peer_cycles;
  t peer_tariff;
  now_at timestamptz := now();
BEGIN
  SELECT * INTO a FROM peer_accounts WHERE username = p_username FOR UPDATE;
  IF NOT FOUND OR a.status <> 'active' THEN
    decision := 'reject';
    reply_message := '账号已停用 / Account disabled';
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT * INTO t FROM peer_tariff;
  LOOP
    SELECT * INTO c FROM peer_cycles WHERE username = p_username AND settled_at IS NULL;
    EXIT WHEN NOT FOUND OR c.ends_at > now_at;
    UPDATE peer_cycles SET settled_at = ends_at WHERE id = c.id;
    a.balance_fen := a.balance_fen - c.fee_fen;
    UPDATE peer_accounts SET balance_fen = a.balance_fen WHERE username = p_username;
    INSERT INTO peer_ledger (username, amount_fen, balance_after_fen, cycle_id, effective_at)
    VALUES (p_username, -c.fee_fen, a.balance_fen, c.id, c.ends_at);
    IF a.balance_fen >= t.threshold_fen THEN
      INSERT INTO peer_cycles (username, started_at, ends_at, fee_fen)
      VALUES (p_username, c.ends_at, c.ends_at + make_interval(secs => t.cycle_seconds), t.fee_fen);
    END IF;
  END LOOP;
  IF c.id IS NULL OR c.ends_at <= now_at THEN
    IF a.balance_fen < t.threshold_fen THEN
      decision := 'reject';
      reply_message := peer_arrears_message(a.balance_fen, t.threshold_fen);
      RETURN NEXT;
      RETURN;
    END IF;
    INSERT INTO peer_cycles (username, started_at, ends_at, fee_fen)
    VALUES (p_username, now_at, now_at + make_interval(secs => t.cycle_seconds), t.fee_fen)
    RETURNING * INTO c;
  END IF;
  decision := 'accept';
  session_timeout := peer_seconds_until(c.ends_at, now_at);
  reply_message := peer_dorm_message(c.ends_at);
  RETURN NEXT;
END
$$;
