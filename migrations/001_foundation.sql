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

{{ template "sql/functions/hstore_sum.sql" . }}
{{ template "sql/functions/count_by_trans.sql" . }}
{{ template "sql/functions/sum_by_trans.sql" . }}
{{ template "sql/functions/hstore_sum_trans.sql" . }}
{{ template "sql/functions/keys_final.sql" . }}
{{ template "sql/functions/keys_combine.sql" . }}
{{ template "sql/functions/keys_serialize.sql" . }}
{{ template "sql/functions/keys_deserialize.sql" . }}
{{ template "sql/aggregates/hstore_sum_agg.sql" . }}
{{ template "sql/aggregates/count_by.sql" . }}
{{ template "sql/aggregates/sum_by.sql" . }}
{{ template "sql/functions/hll_settings_guard.sql" . }}
{{ template "sql/views/time_partitions.sql" . }}
{{ template "sql/functions/maps.sql" . }}

CREATE TRIGGER hll_settings_guard BEFORE UPDATE ON zonestats.settings
    FOR EACH ROW EXECUTE FUNCTION zonestats_internal.hll_settings_guard();
