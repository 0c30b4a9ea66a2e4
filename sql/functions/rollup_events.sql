CREATE OR REPLACE FUNCTION zonestats_internal.rollup_events(p_upto bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET work_mem = '256MB'
AS $$
DECLARE
    s        zonestats.settings;
    v_from   bigint;
    v_events bigint;
    v_now    timestamptz := now();
BEGIN
    -- Rolls up the raw events after the bookmark up to p_upto (which must be
    -- settled, see rollup_window) into all three levels, then moves the
    -- bookmark — all in the caller's transaction, so it is exactly once.
    -- The bookmark row lock serialises concurrent callers; a caller that
    -- finds the bookmark already past p_upto does nothing. Runs as the
    -- owner of the tables (SECURITY DEFINER: it empties the delta tables and
    -- writes the rollups past row-level security); only run_rollups, as
    -- zonestats_admin, calls it, with p_upto from rollup_window.
    SELECT last_event_id INTO v_from FROM zonestats_internal.rollup_state FOR UPDATE;
    IF v_from >= p_upto THEN
        RETURN 0;
    END IF;
    SELECT * INTO s FROM zonestats.settings;

    TRUNCATE zonestats_internal.rollup_delta, zonestats_internal.rollup_delta_1h;

    -- One pass over the window, grouped by zone and minute: counters,
    -- uniques, and every map (count_by/sum_by count keys in C, ext/).
    -- hll_add_agg keeps a large state per group: aggregate in sorted order,
    -- never in a hash table.
    -- SET LOCAL (not set_config) so that Citus sends it to the workers
    -- that run the statement shard by shard.
    SET LOCAL citus.propagate_set_commands = 'local';
    SET LOCAL enable_hashagg = off;
    SET LOCAL work_mem = '256MB';
    EXECUTE $sql$
        INSERT INTO zonestats_internal.rollup_delta
        SELECT zone_id, date_trunc('minute', ts),
            count(*),
            count(*) FILTER (WHERE cache_status IN ('hit', 'stale', 'updating', 'revalidated')),
            count(*) FILTER (WHERE ssl_protocol <> 'none'),
            sum(bytes),
            coalesce(sum(bytes) FILTER (WHERE cache_status IN ('hit', 'stale', 'updating', 'revalidated')), 0),
            coalesce(sum(bytes) FILTER (WHERE ssl_protocol <> 'none'), 0),
            count(*) FILTER (WHERE threat <> ''),
            count(*) FILTER (WHERE page_view),
            hll_add_agg(hll_hash_any(client_ip), $3, $4, $5, $6),
            round(coalesce(hll_cardinality(hll_add_agg(hll_hash_any(client_ip), $3, $4, $5, $6)), 0)),
            zonestats.count_by(country),
            zonestats.sum_by(country, bytes),
            zonestats.count_by(country) FILTER (WHERE threat <> ''),
            zonestats.count_by(status::text),
            zonestats.count_by(content_type),
            zonestats.sum_by(content_type, bytes),
            zonestats.count_by(colo),
            zonestats.sum_by(colo, bytes),
            zonestats.count_by(ssl_protocol),
            zonestats.count_by(ip_class),
            zonestats.count_by(threat) FILTER (WHERE threat <> ''),
            zonestats.count_by(browser) FILTER (WHERE page_view)
        FROM zonestats_internal.raw_events
        WHERE event_id > $1 AND event_id <= $2
        GROUP BY zone_id, date_trunc('minute', ts)
    $sql$ USING v_from, p_upto, s.hll_log2m, s.hll_regwidth, s.hll_expthresh, s.hll_sparseon;

    SELECT coalesce(sum(requests), 0) INTO v_events FROM zonestats_internal.rollup_delta;
    -- Cascade: minutes into rollup_1m; minutes grouped into hours (once)
    -- into rollup_1h; those hours grouped into days into rollup_1d.
    PERFORM zonestats_internal.merge_delta('rollup_1m', 'rollup_delta', NULL, date_trunc('day', v_now - s.minute_retention));
    EXECUTE 'INSERT INTO zonestats_internal.rollup_delta_1h '
        || zonestats_internal.delta_query('rollup_delta', 'hour') USING '-infinity'::timestamptz;
    PERFORM zonestats_internal.merge_delta('rollup_1h', 'rollup_delta_1h', NULL, date_trunc('month', v_now - s.hour_retention));
    PERFORM zonestats_internal.merge_delta('rollup_1d', 'rollup_delta_1h', 'day', date_trunc('day', v_now - s.day_retention));
    RESET enable_hashagg;

    TRUNCATE zonestats_internal.rollup_delta, zonestats_internal.rollup_delta_1h;
    UPDATE zonestats_internal.rollup_state
       SET last_event_id = p_upto, last_run_at = v_now, events_rolled = events_rolled + v_events;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION zonestats_internal.rollup_events(bigint) IS
    'rolls the raw events after the bookmark up to a settled event_id into all levels and moves the bookmark';
REVOKE ALL ON FUNCTION zonestats_internal.rollup_events(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.rollup_events(bigint) TO zonestats_admin;
