CREATE OR REPLACE FUNCTION zonestats_internal.expire_dead_letters(OUT deleted bigint, OUT recent bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retention interval;
BEGIN
    -- Deletes dead letters received more than dead_letter_retention ago
    -- (settings; NULL keeps them) and counts those of the last 24 hours, so
    -- a flood of bad messages neither fills the disk nor goes unnoticed.
    -- Runs as the tables' owner (SECURITY DEFINER); it takes no arguments.
    SELECT s.dead_letter_retention INTO v_retention FROM zonestats.settings s;
    deleted := 0;
    IF v_retention IS NOT NULL THEN
        DELETE FROM zonestats.dead_letters WHERE received_at < now() - v_retention;
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;
    SELECT count(*) INTO recent FROM zonestats.dead_letters WHERE received_at >= now() - interval '24 hours';
END
$$;
COMMENT ON FUNCTION zonestats_internal.expire_dead_letters() IS
    'dead-letter retention (settings.dead_letter_retention) and the count of the last 24 hours; used by expire';
REVOKE ALL ON FUNCTION zonestats_internal.expire_dead_letters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.expire_dead_letters() TO zonestats_admin;
