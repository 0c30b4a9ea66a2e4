CREATE OR REPLACE FUNCTION zonestats_internal.rollup_events(p_upto bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET work_mem = '256MB'
SET jit = off
AS $$
DECLARE
    s        zonestats.settings;
    v_from   bigint;
    v_events bigint;
    v_now    timestamptz := now();
    v_select text;
    v_delta  text;
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
    -- No JIT: compiling this statement's expressions cost every process
    -- (leader and each parallel worker) ~200 ms per chunk, for a plan run
    -- once.
    SET LOCAL citus.propagate_set_commands = 'local';
    SET LOCAL enable_hashagg = off;
    SET LOCAL work_mem = '256MB';
    SET LOCAL jit = off;
    v_select := $sql$
        SELECT zone_id, date_trunc('minute', ts) AS bucket,
            count(*) AS requests,
            count(*) FILTER (WHERE cache_status IN ('hit', 'stale', 'updating', 'revalidated')) AS cached_requests,
            count(*) FILTER (WHERE ssl_protocol <> 'none') AS encrypted_requests,
            sum(bytes)::bigint AS bytes,
            coalesce(sum(bytes) FILTER (WHERE cache_status IN ('hit', 'stale', 'updating', 'revalidated')), 0)::bigint AS cached_bytes,
            coalesce(sum(bytes) FILTER (WHERE ssl_protocol <> 'none'), 0)::bigint AS encrypted_bytes,
            count(*) FILTER (WHERE threat <> '') AS threats,
            count(*) FILTER (WHERE page_view) AS page_views,
            hll_add_agg(hll_hash_any(client_ip), $3, $4, $5, $6) AS uniques,
            round(coalesce(hll_cardinality(hll_add_agg(hll_hash_any(client_ip), $3, $4, $5, $6)), 0))::bigint AS uniques_count,
            zonestats.count_by(country) AS requests_by_country,
            zonestats.sum_by(country, bytes) AS bytes_by_country,
            zonestats.count_by(country) FILTER (WHERE threat <> '') AS threats_by_country,
            zonestats.count_by(status::text) AS requests_by_status,
            zonestats.count_by(content_type) AS requests_by_content_type,
            zonestats.sum_by(content_type, bytes) AS bytes_by_content_type,
            zonestats.count_by(colo) AS requests_by_colo,
            zonestats.sum_by(colo, bytes) AS bytes_by_colo,
            zonestats.count_by(ssl_protocol) AS requests_by_ssl_protocol,
            zonestats.count_by(ip_class) AS requests_by_ip_class,
            zonestats.count_by(threat) FILTER (WHERE threat <> '') AS threats_by_type,
            zonestats.count_by(browser) FILTER (WHERE page_view) AS page_views_by_browser
        FROM zonestats_internal.raw_events
        WHERE event_id > $1 AND event_id <= $2
        GROUP BY zone_id, date_trunc('minute', ts)
    $sql$;
    IF zonestats_internal.citus_enabled() THEN
        -- Citus runs it shard by shard, in parallel on every worker, into
        -- the co-located delta table.
        v_delta := 'zonestats_internal.rollup_delta';
        EXECUTE 'INSERT INTO zonestats_internal.rollup_delta ' || v_select
            USING v_from, p_upto, s.hll_log2m, s.hll_regwidth, s.hll_expthresh, s.hll_sparseon;
    ELSE
        -- PostgreSQL runs no part of an INSERT … SELECT in parallel, but it
        -- does run the SELECT of a CREATE TABLE … AS in parallel: parallel
        -- workers scan, sort and partially aggregate a share of the window
        -- each; the leader only combines their sketches and maps (it does
        -- not take a share itself: on 2 cores that was slower). The delta
        -- is a temporary table, dropped at the end (an error takes it away
        -- with the transaction).
        v_delta := 'pg_temp.zonestats_rollup_delta';
        SET LOCAL parallel_leader_participation = off;
        EXECUTE 'CREATE TEMPORARY TABLE zonestats_rollup_delta AS ' || v_select
            USING v_from, p_upto, s.hll_log2m, s.hll_regwidth, s.hll_expthresh, s.hll_sparseon;
    END IF;

    EXECUTE 'SELECT coalesce(sum(requests), 0) FROM ' || v_delta INTO v_events;
    -- Cascade: minutes into rollup_1m; minutes grouped into hours (once)
    -- into rollup_1h; those hours grouped into days into rollup_1d.
    PERFORM zonestats_internal.merge_delta('rollup_1m', v_delta, NULL, date_trunc('day', v_now - s.minute_retention));
    EXECUTE 'INSERT INTO zonestats_internal.rollup_delta_1h '
        || zonestats_internal.delta_query(v_delta, 'hour') USING '-infinity'::timestamptz;
    PERFORM zonestats_internal.merge_delta('rollup_1h', 'zonestats_internal.rollup_delta_1h', NULL, date_trunc('month', v_now - s.hour_retention));
    PERFORM zonestats_internal.merge_delta('rollup_1d', 'zonestats_internal.rollup_delta_1h', 'day', date_trunc('day', v_now - s.day_retention));
    RESET enable_hashagg;

    TRUNCATE zonestats_internal.rollup_delta, zonestats_internal.rollup_delta_1h;
    IF v_delta <> 'zonestats_internal.rollup_delta' THEN
        DROP TABLE pg_temp.zonestats_rollup_delta;
    END IF;
    UPDATE zonestats_internal.rollup_state
       SET last_event_id = p_upto, last_run_at = v_now, events_rolled = events_rolled + v_events;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION zonestats_internal.rollup_events(bigint) IS
    'rolls the raw events after the bookmark up to a settled event_id into all levels and moves the bookmark';
REVOKE ALL ON FUNCTION zonestats_internal.rollup_events(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.rollup_events(bigint) TO zonestats_admin;
