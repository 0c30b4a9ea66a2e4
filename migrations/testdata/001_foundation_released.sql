-- Migration 001 as released (its {{ template }} includes expanded), for the upgrade
-- test: a database migrated to 001 by a released zonestats, then upgraded.
-- zonestats foundation: schemas, settings, bookkeeping, raw events and the
-- 1-minute / 1-hour / 1-day rollup tables. Code objects (functions,
-- aggregates, procedures) are kept current in sql/ and included here.

CREATE EXTENSION IF NOT EXISTS hll WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;

-- The C library of zonestats (ext/, `make install-ext`) must be installed.
DO $$
BEGIN
    LOAD '$libdir/zonestats';
EXCEPTION WHEN undefined_file THEN
    RAISE EXCEPTION 'zonestats: the C library zonestats.so is not installed on this server'
        USING DETAIL = SQLERRM,
              HINT = 'Build and install it with `make install-ext` (needs the PostgreSQL server headers), on every node.';
END
$$;

DO $$
BEGIN
    IF (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hll') <> 'public'
       OR (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hstore') <> 'public' THEN
        RAISE EXCEPTION 'zonestats needs the hll and hstore extensions in schema public';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS zonestats;
CREATE SCHEMA IF NOT EXISTS zonestats_internal;
COMMENT ON SCHEMA zonestats IS 'zonestats: rollup tables, query functions and procedures for users';
COMMENT ON SCHEMA zonestats_internal IS 'zonestats: bookkeeping; not a stable interface';

-- Settings: one row, edited with UPDATE.
CREATE TABLE zonestats.settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    raw_retention       interval NOT NULL DEFAULT '24 hours' CHECK (raw_retention >= '0'),
    minute_retention    interval NOT NULL DEFAULT '30 days' CHECK (minute_retention >= '1 hour'),
    hour_retention      interval NOT NULL DEFAULT '1 year' CHECK (hour_retention >= '1 day'),
    day_retention       interval CHECK (day_retention >= '1 day'),
    raw_partition_unit  text NOT NULL DEFAULT 'hour' CHECK (raw_partition_unit IN ('hour', 'day')),
    partition_premake   int NOT NULL DEFAULT 4 CHECK (partition_premake BETWEEN 1 AND 100),
    rollup_chunk_events bigint NOT NULL DEFAULT 1000000 CHECK (rollup_chunk_events >= 1000),
    hll_log2m           int NOT NULL DEFAULT 14 CHECK (hll_log2m BETWEEN 4 AND 17),
    hll_regwidth        int NOT NULL DEFAULT 5 CHECK (hll_regwidth BETWEEN 1 AND 8),
    hll_expthresh       bigint NOT NULL DEFAULT -1,
    hll_sparseon        int NOT NULL DEFAULT 1 CHECK (hll_sparseon IN (0, 1))
);
INSERT INTO zonestats.settings DEFAULT VALUES;
COMMENT ON TABLE zonestats.settings IS 'zonestats settings (one row): retention, partitioning, rollup chunk size, hll precision';
COMMENT ON COLUMN zonestats.settings.raw_retention IS 'raw events are kept at least this long after loading, and until every rollup level has consumed them';
COMMENT ON COLUMN zonestats.settings.minute_retention IS '1-minute rollups older than this are dropped (whole daily partitions)';
COMMENT ON COLUMN zonestats.settings.hour_retention IS '1-hour rollups older than this are dropped (whole monthly partitions)';
COMMENT ON COLUMN zonestats.settings.day_retention IS '1-day rollups older than this are deleted; NULL keeps them forever';
COMMENT ON COLUMN zonestats.settings.hll_log2m IS 'hll registers = 2^log2m; standard error 1.04/sqrt(2^log2m): 14 → 0.81%, 12 → 1.6%, 11 → 2.3%. Fixed once rollups exist.';

-- Bookkeeping of the loader: next Kafka offset per partition, committed in
-- the same transaction as the rows it covers.
CREATE TABLE zonestats_internal.kafka_offsets (
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Offset ranges that Kafka no longer had when the loader asked for them
-- (retention deleted them before they were loaded).
CREATE TABLE zonestats_internal.offset_gaps (
    topic        text NOT NULL,
    partition    int NOT NULL,
    first_offset bigint NOT NULL,
    last_offset  bigint NOT NULL,
    noticed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, first_offset)
);

CREATE TABLE zonestats.dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text NOT NULL,
    partition    int NOT NULL,
    kafka_offset bigint NOT NULL,
    message_key  bytea,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON zonestats.dead_letters (received_at);
COMMENT ON TABLE zonestats.dead_letters IS 'messages the loader could not decode, with the reason; written in the same transaction as the batch they came in';

-- Raw events, as COPYed by the loader. Partitioned by load time, so a
-- late or future event time never misses a partition; the default
-- partition catches loads when maintenance has not made partitions ahead.
CREATE TABLE zonestats_internal.raw_events (
    event_id        bigserial NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    ts              timestamptz NOT NULL,
    zone_id         bigint NOT NULL,
    client_ip       inet NOT NULL,
    country         text NOT NULL,
    colo            text NOT NULL,
    method          text NOT NULL,
    status          smallint NOT NULL,
    content_type    text NOT NULL,
    bytes           bigint NOT NULL,
    cache_status    text NOT NULL,
    ssl_protocol    text NOT NULL,
    ip_class        text NOT NULL,
    threat          text NOT NULL,
    page_view       boolean NOT NULL,
    browser         text NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL
) PARTITION BY RANGE (loaded_at);
CREATE TABLE zonestats_internal.raw_events_default PARTITION OF zonestats_internal.raw_events DEFAULT;
-- Rollups read windows of event_id; ids grow with physical order, so BRIN
-- finds a window cheaply and costs the COPY almost nothing; ranges are
-- summarized as they fill (autosummarize), not only by VACUUM.
CREATE INDEX ON zonestats_internal.raw_events USING brin (event_id) WITH (pages_per_range = 16, autosummarize = on);

-- Where the rollups are: every event_id <= last_event_id is in all levels.
CREATE TABLE zonestats_internal.rollup_state (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_event_id bigint NOT NULL DEFAULT 0,
    last_run_at   timestamptz,
    events_rolled bigint NOT NULL DEFAULT 0
);
INSERT INTO zonestats_internal.rollup_state DEFAULT VALUES;

-- One table per level. Every aggregate column is a commutative merge.
CREATE TABLE zonestats.rollup_1m (
    zone_id                  bigint NOT NULL,
    bucket                   timestamptz NOT NULL,
    requests                 bigint NOT NULL DEFAULT 0,
    cached_requests          bigint NOT NULL DEFAULT 0,
    encrypted_requests       bigint NOT NULL DEFAULT 0,
    bytes                    bigint NOT NULL DEFAULT 0,
    cached_bytes             bigint NOT NULL DEFAULT 0,
    encrypted_bytes          bigint NOT NULL DEFAULT 0,
    threats                  bigint NOT NULL DEFAULT 0,
    page_views               bigint NOT NULL DEFAULT 0,
    uniques                  hll NOT NULL,
    uniques_count            bigint NOT NULL DEFAULT 0,
    requests_by_country      hstore NOT NULL DEFAULT '',
    bytes_by_country         hstore NOT NULL DEFAULT '',
    threats_by_country       hstore NOT NULL DEFAULT '',
    requests_by_status       hstore NOT NULL DEFAULT '',
    requests_by_content_type hstore NOT NULL DEFAULT '',
    bytes_by_content_type    hstore NOT NULL DEFAULT '',
    requests_by_colo         hstore NOT NULL DEFAULT '',
    bytes_by_colo            hstore NOT NULL DEFAULT '',
    requests_by_ssl_protocol hstore NOT NULL DEFAULT '',
    requests_by_ip_class     hstore NOT NULL DEFAULT '',
    threats_by_type          hstore NOT NULL DEFAULT '',
    page_views_by_browser    hstore NOT NULL DEFAULT '',
    PRIMARY KEY (zone_id, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE zonestats.rollup_1m_default PARTITION OF zonestats.rollup_1m DEFAULT;

CREATE TABLE zonestats.rollup_1h (LIKE zonestats.rollup_1m INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (zone_id, bucket)) PARTITION BY RANGE (bucket);
CREATE TABLE zonestats.rollup_1h_default PARTITION OF zonestats.rollup_1h DEFAULT;

CREATE TABLE zonestats.rollup_1d (LIKE zonestats.rollup_1m INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (zone_id, bucket));

COMMENT ON TABLE zonestats.rollup_1m IS 'per zone and UTC minute: counters, uniques (hll of client IP) and hstore maps';
COMMENT ON TABLE zonestats.rollup_1h IS 'per zone and UTC hour: counters, uniques (hll of client IP) and hstore maps';
COMMENT ON COLUMN zonestats.rollup_1m.uniques_count IS 'hll_cardinality(uniques), rounded; kept by the rollups so charts need no hll work per point';
COMMENT ON TABLE zonestats.rollup_1d IS 'per zone and UTC day: counters, uniques (hll of client IP) and hstore maps';

-- Deltas of one rollup run, per zone and minute: filled from a window of
-- raw events, merged into every level, emptied, all in one transaction.
CREATE UNLOGGED TABLE zonestats_internal.rollup_delta (LIKE zonestats.rollup_1m);
CREATE UNLOGGED TABLE zonestats_internal.rollup_delta_1h (LIKE zonestats.rollup_1m);

CREATE OR REPLACE FUNCTION zonestats.hstore_sum(p_a public.hstore, p_b public.hstore)
RETURNS public.hstore
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_hstore_sum';
COMMENT ON FUNCTION zonestats.hstore_sum(public.hstore, public.hstore) IS
    'per-key sum of two hstore maps of integer counts (missing keys count as 0, NULL is the empty map); commutative and associative, so rollups merge in any order (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.count_by_trans(internal, text)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_count_by_trans';
COMMENT ON FUNCTION zonestats_internal.count_by_trans(internal, text) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.sum_by_trans(internal, text, bigint)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_sum_by_trans';
COMMENT ON FUNCTION zonestats_internal.sum_by_trans(internal, text, bigint) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.hstore_sum_trans(internal, public.hstore)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_hstore_sum_trans';
COMMENT ON FUNCTION zonestats_internal.hstore_sum_trans(internal, public.hstore) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.keys_final(internal)
RETURNS public.hstore
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_keys_final';
COMMENT ON FUNCTION zonestats_internal.keys_final(internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.keys_combine(internal, internal)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_keys_combine';
COMMENT ON FUNCTION zonestats_internal.keys_combine(internal, internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.keys_serialize(internal)
RETURNS bytea
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT
AS '$libdir/zonestats', 'zs_keys_serialize';
COMMENT ON FUNCTION zonestats_internal.keys_serialize(internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE FUNCTION zonestats_internal.keys_deserialize(bytea, internal)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT
AS '$libdir/zonestats', 'zs_keys_deserialize';
COMMENT ON FUNCTION zonestats_internal.keys_deserialize(bytea, internal) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
CREATE OR REPLACE AGGREGATE zonestats.hstore_sum_agg(public.hstore) (
    SFUNC = zonestats_internal.hstore_sum_trans,
    STYPE = internal,
    SSPACE = 512,  -- planner estimate of the state size, so hash aggregation keeps groups in memory
    FINALFUNC = zonestats_internal.keys_final,
    COMBINEFUNC = zonestats_internal.keys_combine,
    SERIALFUNC = zonestats_internal.keys_serialize,
    DESERIALFUNC = zonestats_internal.keys_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.hstore_sum_agg(public.hstore) IS
    'merges hstore maps of integer counts by per-key sum; combines partial states, so it aggregates in parallel and across Citus shards';
CREATE OR REPLACE AGGREGATE zonestats.count_by(text) (
    SFUNC = zonestats_internal.count_by_trans,
    STYPE = internal,
    SSPACE = 512,  -- planner estimate of the state size, so hash aggregation keeps groups in memory
    FINALFUNC = zonestats_internal.keys_final,
    COMBINEFUNC = zonestats_internal.keys_combine,
    SERIALFUNC = zonestats_internal.keys_serialize,
    DESERIALFUNC = zonestats_internal.keys_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.count_by(text) IS
    'hstore of key → number of rows with that key (NULL keys skipped); empty hstore for no rows';
CREATE OR REPLACE AGGREGATE zonestats.sum_by(text, bigint) (
    SFUNC = zonestats_internal.sum_by_trans,
    STYPE = internal,
    SSPACE = 512,  -- planner estimate of the state size, so hash aggregation keeps groups in memory
    FINALFUNC = zonestats_internal.keys_final,
    COMBINEFUNC = zonestats_internal.keys_combine,
    SERIALFUNC = zonestats_internal.keys_serialize,
    DESERIALFUNC = zonestats_internal.keys_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.sum_by(text, bigint) IS
    'hstore of key → sum of value over the rows with that key (NULL keys or values skipped); empty hstore for no rows';
CREATE OR REPLACE FUNCTION zonestats_internal.hll_settings_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Sketches of different hll parameters cannot be merged: refuse to change
    -- them once any rollup row exists.
    IF (NEW.hll_log2m, NEW.hll_regwidth, NEW.hll_expthresh, NEW.hll_sparseon)
       IS DISTINCT FROM (OLD.hll_log2m, OLD.hll_regwidth, OLD.hll_expthresh, OLD.hll_sparseon)
       AND (EXISTS (SELECT 1 FROM zonestats.rollup_1m) OR EXISTS (SELECT 1 FROM zonestats.rollup_1h)
            OR EXISTS (SELECT 1 FROM zonestats.rollup_1d)) THEN
        RAISE EXCEPTION 'zonestats: hll parameters cannot change once rollups exist'
            USING DETAIL = 'Sketches with different parameters cannot be merged.',
                  HINT = 'Set hll_log2m before loading data, or empty the rollup tables first.';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE VIEW zonestats_internal.time_partitions AS
    -- The range partitions of zonestats' time-partitioned tables with their
    -- bounds (the default partitions are left out). Like Citus' time_partitions.
    SELECT i.inhparent::regclass AS parent_table,
           i.inhrelid::regclass AS partition,
           (regexp_match(b.bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS from_value,
           (regexp_match(b.bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz AS to_value
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound) b
    WHERE i.inhparent IN ('zonestats_internal.raw_events'::regclass, 'zonestats.rollup_1m'::regclass,
                          'zonestats.rollup_1h'::regclass)
      AND b.bound <> 'DEFAULT';
COMMENT ON VIEW zonestats_internal.time_partitions IS 'time range partitions of zonestats tables, with bounds';
CREATE OR REPLACE FUNCTION zonestats_internal.create_time_partitions(
    p_parent regclass, p_unit text, p_from timestamptz, p_to timestamptz)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_lo      timestamptz := date_trunc(p_unit, p_from);
    v_hi      timestamptz;
    v_name    text;
    v_schema  text;
    v_table   text;
    v_created int := 0;
BEGIN
    -- Creates the missing partitions of p_parent, one per p_unit ('hour',
    -- 'day' or 'month', UTC), covering [p_from, p_to). A range that would
    -- clash with rows already in the default partition is skipped with a
    -- WARNING; those rows stay readable there.
    IF p_unit NOT IN ('hour', 'day', 'month') THEN
        RAISE EXCEPTION 'zonestats: partition unit must be hour, day or month, not %', p_unit;
    END IF;
    SELECT n.nspname, c.relname INTO v_schema, v_table
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_parent;

    WHILE v_lo < p_to LOOP
        v_hi := v_lo + ('1 ' || p_unit)::interval;
        IF NOT EXISTS (SELECT 1 FROM zonestats_internal.time_partitions
                       WHERE parent_table = p_parent AND from_value < v_hi AND to_value > v_lo) THEN
            v_name := v_table || '_p' || to_char(v_lo, CASE p_unit WHEN 'hour' THEN 'YYYYMMDD"_"HH24'
                                                               WHEN 'day' THEN 'YYYYMMDD'
                                                               ELSE 'YYYYMM' END);
            BEGIN
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                               v_schema, v_name, p_parent, v_lo, v_hi);
                v_created := v_created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE WARNING 'zonestats: partition % not created: its range has rows in the default partition', v_name
                    USING DETAIL = format('range [%s, %s)', v_lo, v_hi);
            END;
        END IF;
        v_lo := v_hi;
    END LOOP;
    RETURN v_created;
END
$$;
COMMENT ON FUNCTION zonestats_internal.create_time_partitions(regclass, text, timestamptz, timestamptz) IS
    'creates the missing UTC-aligned partitions of a zonestats table over a time range';
CREATE OR REPLACE FUNCTION zonestats_internal.maintain_partitions()
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    s zonestats.settings;
    v_now timestamptz := clock_timestamp();
    v_created int := 0;
BEGIN
    -- Makes sure partitions exist from the start of each level's retention
    -- (raw: from now, it is partitioned by load time) to partition_premake
    -- partitions ahead.
    SELECT * INTO s FROM zonestats.settings;
    v_created := v_created + zonestats_internal.create_time_partitions('zonestats_internal.raw_events', s.raw_partition_unit,
        v_now, v_now + s.partition_premake * ('1 ' || s.raw_partition_unit)::interval);
    v_created := v_created + zonestats_internal.create_time_partitions('zonestats.rollup_1m', 'day',
        v_now - s.minute_retention, v_now + s.partition_premake * interval '1 day');
    v_created := v_created + zonestats_internal.create_time_partitions('zonestats.rollup_1h', 'month',
        v_now - s.hour_retention, v_now + s.partition_premake * interval '1 month');
    RETURN v_created;
END
$$;
COMMENT ON FUNCTION zonestats_internal.maintain_partitions() IS
    'creates the partitions zonestats needs now and partition_premake ahead; called by run_rollups and expire';
CREATE OR REPLACE FUNCTION zonestats_internal.rollup_window()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_end bigint;
BEGIN
    -- Returns the highest event_id below which every raw event is settled:
    -- committed or rolled back, never still in flight. The incremental
    -- window of Citus' "scalable incremental data aggregation": read the
    -- sequence, then wait for every writer that may hold a smaller id by
    -- taking (and at once releasing) a lock that conflicts with COPY/INSERT.
    -- Every writer takes ROW EXCLUSIVE on raw_events before it draws ids.
    v_end := pg_sequence_last_value('zonestats_internal.raw_events_event_id_seq');
    IF v_end IS NULL THEN
        RETURN 0;  -- no event was ever loaded
    END IF;
    BEGIN
        LOCK TABLE zonestats_internal.raw_events IN EXCLUSIVE MODE;
        -- Leaving the block by an exception releases the lock at once.
        RAISE EXCEPTION USING ERRCODE = 'ZS001';
    EXCEPTION WHEN SQLSTATE 'ZS001' THEN
        NULL;
    END;
    RETURN v_end;
END
$$;
COMMENT ON FUNCTION zonestats_internal.rollup_window() IS
    'highest raw event_id such that no smaller id is still being written (waits briefly for writers in flight)';
CREATE OR REPLACE FUNCTION zonestats_internal.delta_query(p_source text, p_unit text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The SELECT that reads a delta table (zonestats_internal.p_source, rows
    -- shaped like the rollup tables) as rows of the rollup table one level
    -- up: as it is when p_unit is NULL, else grouped into p_unit buckets
    -- (counters sum, uniques hll_union_agg, maps hstore_sum_agg). Its
    -- parameter $1 is the oldest bucket to keep. Grouped by zone_id, so on
    -- Citus it runs shard by shard.
    SELECT CASE WHEN p_unit IS NULL THEN format($q$
            SELECT zone_id, bucket,
                requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats,
                page_views, uniques, uniques_count, requests_by_country, bytes_by_country, threats_by_country,
                requests_by_status, requests_by_content_type, bytes_by_content_type, requests_by_colo,
                bytes_by_colo, requests_by_ssl_protocol, requests_by_ip_class, threats_by_type,
                page_views_by_browser
            FROM zonestats_internal.%I
            WHERE bucket >= $1$q$, p_source)
        ELSE format($q$
            SELECT zone_id, date_trunc(%L, bucket),
                sum(requests)::bigint, sum(cached_requests)::bigint, sum(encrypted_requests)::bigint,
                sum(bytes)::bigint, sum(cached_bytes)::bigint, sum(encrypted_bytes)::bigint,
                sum(threats)::bigint, sum(page_views)::bigint, hll_union_agg(uniques),
                round(coalesce(hll_cardinality(hll_union_agg(uniques)), 0))::bigint,
                zonestats.hstore_sum_agg(requests_by_country), zonestats.hstore_sum_agg(bytes_by_country),
                zonestats.hstore_sum_agg(threats_by_country), zonestats.hstore_sum_agg(requests_by_status),
                zonestats.hstore_sum_agg(requests_by_content_type),
                zonestats.hstore_sum_agg(bytes_by_content_type), zonestats.hstore_sum_agg(requests_by_colo),
                zonestats.hstore_sum_agg(bytes_by_colo), zonestats.hstore_sum_agg(requests_by_ssl_protocol),
                zonestats.hstore_sum_agg(requests_by_ip_class), zonestats.hstore_sum_agg(threats_by_type),
                zonestats.hstore_sum_agg(page_views_by_browser)
            FROM zonestats_internal.%I
            WHERE bucket >= $1
            GROUP BY zone_id, date_trunc(%L, bucket)$q$, p_unit, p_source, p_unit)
    END
$$;
COMMENT ON FUNCTION zonestats_internal.delta_query(text, text) IS
    'SQL text reading a rollup delta table, as is or grouped into coarser buckets';
CREATE OR REPLACE FUNCTION zonestats_internal.merge_delta(p_target text, p_source text, p_unit text, p_oldest timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_rows bigint;
BEGIN
    -- Merges a delta table of this rollup run (see delta_query: as is, or
    -- grouped into p_unit buckets) into the rollup table p_target: counters
    -- add, uniques hll_union, maps add per key (hstore_sum). Buckets older
    -- than p_oldest (the level's retention) are left out.
    IF p_target NOT IN ('rollup_1m', 'rollup_1h', 'rollup_1d') THEN
        RAISE EXCEPTION 'zonestats: % is not a rollup table', p_target;
    END IF;
    EXECUTE format($sql$
        INSERT INTO zonestats.%I AS t (zone_id, bucket,
            requests, cached_requests, encrypted_requests, bytes, cached_bytes, encrypted_bytes, threats,
            page_views, uniques, uniques_count, requests_by_country, bytes_by_country, threats_by_country,
            requests_by_status, requests_by_content_type, bytes_by_content_type, requests_by_colo,
            bytes_by_colo, requests_by_ssl_protocol, requests_by_ip_class, threats_by_type,
            page_views_by_browser)
        %s
        ON CONFLICT (zone_id, bucket) DO UPDATE SET
            requests = t.requests + EXCLUDED.requests,
            cached_requests = t.cached_requests + EXCLUDED.cached_requests,
            encrypted_requests = t.encrypted_requests + EXCLUDED.encrypted_requests,
            bytes = t.bytes + EXCLUDED.bytes, cached_bytes = t.cached_bytes + EXCLUDED.cached_bytes,
            encrypted_bytes = t.encrypted_bytes + EXCLUDED.encrypted_bytes,
            threats = t.threats + EXCLUDED.threats, page_views = t.page_views + EXCLUDED.page_views,
            uniques = hll_union(t.uniques, EXCLUDED.uniques),
            uniques_count = round(coalesce(hll_cardinality(hll_union(t.uniques, EXCLUDED.uniques)), 0)),
            requests_by_country = zonestats.hstore_sum(t.requests_by_country, EXCLUDED.requests_by_country),
            bytes_by_country = zonestats.hstore_sum(t.bytes_by_country, EXCLUDED.bytes_by_country),
            threats_by_country = zonestats.hstore_sum(t.threats_by_country, EXCLUDED.threats_by_country),
            requests_by_status = zonestats.hstore_sum(t.requests_by_status, EXCLUDED.requests_by_status),
            requests_by_content_type = zonestats.hstore_sum(t.requests_by_content_type, EXCLUDED.requests_by_content_type),
            bytes_by_content_type = zonestats.hstore_sum(t.bytes_by_content_type, EXCLUDED.bytes_by_content_type),
            requests_by_colo = zonestats.hstore_sum(t.requests_by_colo, EXCLUDED.requests_by_colo),
            bytes_by_colo = zonestats.hstore_sum(t.bytes_by_colo, EXCLUDED.bytes_by_colo),
            requests_by_ssl_protocol = zonestats.hstore_sum(t.requests_by_ssl_protocol, EXCLUDED.requests_by_ssl_protocol),
            requests_by_ip_class = zonestats.hstore_sum(t.requests_by_ip_class, EXCLUDED.requests_by_ip_class),
            threats_by_type = zonestats.hstore_sum(t.threats_by_type, EXCLUDED.threats_by_type),
            page_views_by_browser = zonestats.hstore_sum(t.page_views_by_browser, EXCLUDED.page_views_by_browser)
        $sql$, p_target, zonestats_internal.delta_query(p_source, p_unit))
    USING coalesce(p_oldest, '-infinity');
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION zonestats_internal.merge_delta(text, text, text, timestamptz) IS
    'merges a rollup delta table into the minute, hour or day rollup table';
CREATE OR REPLACE FUNCTION zonestats_internal.rollup_events(p_upto bigint)
RETURNS bigint
LANGUAGE plpgsql
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
    -- finds the bookmark already past p_upto does nothing.
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
    PERFORM set_config('enable_hashagg', 'off', true);
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
    PERFORM set_config('enable_hashagg', 'on', true);

    TRUNCATE zonestats_internal.rollup_delta, zonestats_internal.rollup_delta_1h;
    UPDATE zonestats_internal.rollup_state
       SET last_event_id = p_upto, last_run_at = v_now, events_rolled = events_rolled + v_events;
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION zonestats_internal.rollup_events(bigint) IS
    'rolls the raw events after the bookmark up to a settled event_id into all levels and moves the bookmark';
CREATE OR REPLACE PROCEDURE zonestats.run_rollups(p_wait boolean DEFAULT false)
LANGUAGE plpgsql
AS $$
DECLARE
    v_end    bigint;
    v_upto   bigint;
    v_chunk  bigint;
    v_done   bigint;
    v_events bigint := 0;
    v_chunks int := 0;
    v_start  timestamptz := clock_timestamp();
BEGIN
    -- Rolls every settled raw event into the 1-minute, 1-hour and 1-day
    -- rollups, incrementally: each event exactly once, however often and
    -- however concurrently it is called, while COPY goes on. Commits after
    -- every chunk of rollup_chunk_events events. If another run holds the
    -- rollup lock it returns at once with a NOTICE, or waits when p_wait.
    -- (A procedure that COMMITs cannot SET search_path: every name here is
    -- qualified, and the work is done by functions that pin it.)
    IF p_wait THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(7236001);
    ELSIF NOT pg_catalog.pg_try_advisory_xact_lock(7236001) THEN
        RAISE NOTICE 'zonestats.run_rollups: another run is in progress; nothing to do here';
        RETURN;
    END IF;

    PERFORM zonestats_internal.maintain_partitions();
    COMMIT;

    v_end := zonestats_internal.rollup_window();
    SELECT s.rollup_chunk_events INTO v_chunk FROM zonestats.settings s;
    LOOP
        -- The advisory lock is transaction-scoped: take it again for every
        -- chunk; the bookmark inside rollup_events keeps chunks exact even
        -- if another caller slipped in between.
        PERFORM pg_catalog.pg_advisory_xact_lock(7236001);
        SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
        EXIT WHEN v_done >= v_end;
        v_upto := LEAST(v_end, v_done + v_chunk);
        v_events := v_events + zonestats_internal.rollup_events(v_upto);
        v_chunks := v_chunks + 1;
        COMMIT;
    END LOOP;
    COMMIT;
    RAISE NOTICE 'zonestats.run_rollups: % events rolled up in % chunk(s), up to event_id %, in % ms',
        v_events, v_chunks, v_end, round(extract(epoch FROM clock_timestamp() - v_start) * 1000);
END
$$;
COMMENT ON PROCEDURE zonestats.run_rollups(boolean) IS
    'rolls new raw events into the 1-minute, 1-hour and 1-day rollups (incremental, exactly once, safe during COPY and concurrent calls); call every minute from cron or pg_cron';
CREATE OR REPLACE PROCEDURE zonestats.expire()
LANGUAGE plpgsql
AS $$
DECLARE
    s        zonestats.settings;
    p        record;
    v_now    timestamptz := now();
    v_done   bigint;
    v_pending boolean;
    v_dropped int := 0;
    v_skipped int := 0;
    v_deleted bigint;
BEGIN
    -- Retention: drops whole raw partitions that are older than
    -- raw_retention and fully rolled up, and rollup partitions older than
    -- their level's retention; trims the default partitions; makes
    -- partitions ahead. One partition per transaction; a partition that is
    -- busy (lock_timeout) is skipped with a WARNING and retried next time.
    IF NOT pg_catalog.pg_try_advisory_xact_lock(7236002) THEN
        RAISE NOTICE 'zonestats.expire: another run is in progress; nothing to do here';
        RETURN;
    END IF;
    PERFORM zonestats_internal.maintain_partitions();
    SELECT * INTO s FROM zonestats.settings;
    COMMIT;

    FOR p IN
        SELECT tp.parent_table, tp.partition, tp.to_value
        FROM zonestats_internal.time_partitions tp
        WHERE (tp.parent_table = 'zonestats_internal.raw_events'::regclass AND tp.to_value <= v_now - s.raw_retention)
           OR (tp.parent_table = 'zonestats.rollup_1m'::regclass AND tp.to_value <= v_now - s.minute_retention)
           OR (tp.parent_table = 'zonestats.rollup_1h'::regclass AND tp.to_value <= v_now - s.hour_retention)
        ORDER BY tp.to_value
    LOOP
        PERFORM pg_catalog.set_config('lock_timeout', '5s', true);
        BEGIN
            -- DROP locks the parent too; take both now, under lock_timeout.
            EXECUTE pg_catalog.format('LOCK TABLE ONLY %s, ONLY %s IN ACCESS EXCLUSIVE MODE', p.parent_table, p.partition);
            IF p.parent_table = 'zonestats_internal.raw_events'::regclass THEN
                -- Only when every row is rolled up (checked under the lock,
                -- so no writer can add one meanwhile).
                SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
                EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s WHERE event_id > $1)', p.partition)
                    INTO v_pending USING v_done;
                IF v_pending THEN
                    RAISE WARNING 'zonestats.expire: % kept: not rolled up yet', p.partition
                        USING HINT = 'Run CALL zonestats.run_rollups().';
                    v_skipped := v_skipped + 1;
                    CONTINUE;
                END IF;
            END IF;
            EXECUTE pg_catalog.format('DROP TABLE %s', p.partition);
            v_dropped := v_dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'zonestats.expire: % kept: busy, will retry next time', p.partition
                USING DETAIL = SQLERRM;
            v_skipped := v_skipped + 1;
        END;
        COMMIT;
    END LOOP;

    -- Rows that landed in default partitions (maintenance was late) expire
    -- row by row; they are few by construction.
    SELECT r.last_event_id INTO v_done FROM zonestats_internal.rollup_state r;
    DELETE FROM zonestats_internal.raw_events_default
     WHERE loaded_at <= v_now - s.raw_retention AND event_id <= v_done;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    DELETE FROM zonestats.rollup_1m_default WHERE bucket < v_now - s.minute_retention;
    DELETE FROM zonestats.rollup_1h_default WHERE bucket < v_now - s.hour_retention;
    IF s.day_retention IS NOT NULL THEN
        DELETE FROM zonestats.rollup_1d WHERE bucket < v_now - s.day_retention;
    END IF;
    COMMIT;
    RAISE NOTICE 'zonestats.expire: % partition(s) dropped, % kept for now, % raw row(s) deleted from the default partition',
        v_dropped, v_skipped, v_deleted;
END
$$;
COMMENT ON PROCEDURE zonestats.expire() IS
    'retention: drops raw partitions older than raw_retention once rolled up, and rollup partitions older than their retention (settings table)';
CREATE OR REPLACE FUNCTION zonestats.maps()
RETURNS TABLE (map text, dimension text, measure text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The hstore map columns of the rollup tables: which event field is the
    -- key and which measure is counted.
    VALUES ('requests_by_country', 'country', 'requests'),
           ('bytes_by_country', 'country', 'bytes'),
           ('threats_by_country', 'country', 'threats'),
           ('requests_by_status', 'status', 'requests'),
           ('requests_by_content_type', 'content_type', 'requests'),
           ('bytes_by_content_type', 'content_type', 'bytes'),
           ('requests_by_colo', 'colo', 'requests'),
           ('bytes_by_colo', 'colo', 'bytes'),
           ('requests_by_ssl_protocol', 'ssl_protocol', 'requests'),
           ('requests_by_ip_class', 'ip_class', 'requests'),
           ('threats_by_type', 'threat', 'threats'),
           ('page_views_by_browser', 'browser', 'page_views')
$$;
COMMENT ON FUNCTION zonestats.maps() IS 'the hstore map columns of the rollup tables, with their key field and measure';
CREATE OR REPLACE FUNCTION zonestats_internal.rollup_level(p_since timestamptz, p_until timestamptz, p_step interval)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
    -- The coarsest rollup table whose buckets tile [p_since, p_until) and,
    -- when p_step is given, every step: both ends aligned to its bucket
    -- width (UTC) and the step a multiple of it.
    SELECT CASE
        WHEN date_trunc('day', p_since) = p_since AND date_trunc('day', p_until) = p_until
             AND (p_step IS NULL OR (extract(epoch FROM p_step)::bigint % 86400 = 0 AND extract(month FROM p_step) = 0))
            THEN 'rollup_1d'
        WHEN date_trunc('hour', p_since) = p_since AND date_trunc('hour', p_until) = p_until
             AND (p_step IS NULL OR (extract(epoch FROM p_step)::bigint % 3600 = 0 AND extract(month FROM p_step) = 0))
            THEN 'rollup_1h'
        ELSE 'rollup_1m'
    END
$$;
CREATE OR REPLACE FUNCTION zonestats.zone_timeseries(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_step interval DEFAULT NULL)
RETURNS TABLE (bucket timestamptz, requests bigint, cached_requests bigint, encrypted_requests bigint,
               bytes bigint, cached_bytes bigint, encrypted_bytes bigint, threats bigint, page_views bigint,
               uniques bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_since timestamptz := date_trunc('minute', p_since);
    v_until timestamptz := date_trunc('minute', p_until);
    v_step  interval := p_step;
    v_table text;
    v_uniques text;
BEGIN
    -- One row per step in [p_since, p_until) for one zone, steps without
    -- traffic included as zeros. Counters are sums; uniques is the
    -- cardinality of the union of the step's hll sketches. Reads the
    -- coarsest rollup table that fits the range and the step. Times are
    -- truncated to the minute; buckets are UTC.
    IF v_until <= v_since THEN
        RETURN;
    END IF;
    IF v_step IS NULL THEN
        -- The smallest of these giving at most 300 points.
        SELECT s INTO v_step FROM unnest(ARRAY['1 minute', '5 minutes', '15 minutes', '1 hour', '6 hours', '1 day', '7 days']::interval[]) AS s
        WHERE extract(epoch FROM v_until - v_since) / extract(epoch FROM s) <= 300 ORDER BY s LIMIT 1;
        v_step := coalesce(v_step, interval '30 days');
    END IF;
    IF v_step < interval '1 minute' OR extract(month FROM v_step) <> 0 OR extract(year FROM v_step) <> 0 THEN
        RAISE EXCEPTION 'zonestats.zone_timeseries: step must be at least 1 minute and given in days, hours or minutes, not %', v_step;
    END IF;
    v_table := zonestats_internal.rollup_level(v_since, v_until, v_step);
    -- A step of exactly one bucket reads the stored uniques_count; a wider
    -- step unions the sketches of its buckets.
    v_uniques := CASE WHEN v_step = CASE v_table WHEN 'rollup_1m' THEN interval '1 minute'
                                                  WHEN 'rollup_1h' THEN interval '1 hour'
                                                  ELSE interval '1 day' END
                      THEN 'sum(t.uniques_count)'
                      ELSE 'round(hll_cardinality(hll_union_agg(t.uniques)))' END;
    RETURN QUERY EXECUTE format($sql$
        SELECT s.step, coalesce(r.requests, 0)::bigint, coalesce(r.cached_requests, 0)::bigint,
               coalesce(r.encrypted_requests, 0)::bigint, coalesce(r.bytes, 0)::bigint, coalesce(r.cached_bytes, 0)::bigint,
               coalesce(r.encrypted_bytes, 0)::bigint, coalesce(r.threats, 0)::bigint, coalesce(r.page_views, 0)::bigint,
               coalesce(r.uniques, 0)::bigint
        FROM generate_series($2, $3 - interval '1 microsecond', $4) AS s(step)
        LEFT JOIN (
            SELECT date_bin($4, t.bucket, $2) AS step,
                   sum(t.requests) AS requests, sum(t.cached_requests) AS cached_requests,
                   sum(t.encrypted_requests) AS encrypted_requests, sum(t.bytes) AS bytes,
                   sum(t.cached_bytes) AS cached_bytes, sum(t.encrypted_bytes) AS encrypted_bytes,
                   sum(t.threats) AS threats, sum(t.page_views) AS page_views,
                   %s AS uniques
            FROM zonestats.%I t
            WHERE t.zone_id = $1 AND t.bucket >= $2 AND t.bucket < $3
            GROUP BY 1
        ) r ON r.step = s.step
        ORDER BY s.step
    $sql$, v_uniques, v_table) USING p_zone_id, v_since, v_until, v_step;
END
$$;
COMMENT ON FUNCTION zonestats.zone_timeseries(bigint, timestamptz, timestamptz, interval) IS
    'per-step counters and uniques of one zone over [since, until); step defaults to one giving at most 300 points; reads the coarsest rollup that fits';
CREATE OR REPLACE FUNCTION zonestats.zone_top(
    p_zone_id bigint, p_since timestamptz, p_until timestamptz, p_map text, p_n int DEFAULT 10)
RETURNS TABLE (key text, value bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    v_since timestamptz := date_trunc('minute', p_since);
    v_until timestamptz := date_trunc('minute', p_until);
BEGIN
    -- The p_n keys of one map (see zonestats.maps()) with the largest sums
    -- over [p_since, p_until) for one zone, largest first, ties by key.
    IF NOT EXISTS (SELECT 1 FROM zonestats.maps() m WHERE m.map = p_map) THEN
        RAISE EXCEPTION 'zonestats.zone_top: unknown map %', quote_literal(p_map)
            USING HINT = 'SELECT map FROM zonestats.maps() lists them.';
    END IF;
    RETURN QUERY EXECUTE format($sql$
        SELECT e.key, sum(e.value::bigint)::bigint AS value
        FROM zonestats.%I t, each(t.%I) AS e
        WHERE t.zone_id = $1 AND t.bucket >= $2 AND t.bucket < $3
        GROUP BY e.key
        ORDER BY value DESC, e.key
        LIMIT $4
    $sql$, zonestats_internal.rollup_level(v_since, v_until, NULL), p_map) USING p_zone_id, v_since, v_until, p_n;
END
$$;
COMMENT ON FUNCTION zonestats.zone_top(bigint, timestamptz, timestamptz, text, int) IS
    'top n keys of one map (zonestats.maps()) for one zone over [since, until), by summed value';

CREATE TRIGGER hll_settings_guard BEFORE UPDATE ON zonestats.settings
    FOR EACH ROW EXECUTE FUNCTION zonestats_internal.hll_settings_guard();

SELECT zonestats_internal.maintain_partitions();
