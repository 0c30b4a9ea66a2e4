-- Citus: when the database has the citus extension (it is a Citus
-- coordinator), distribute what 001 created. On plain PostgreSQL this
-- migration changes nothing but the partition maintenance below.
--
-- * Distributed by zone_id, all co-located (a zone's raw events, deltas and
--   rollups live in the same shard group, so every rollup statement runs on
--   the workers, shard by shard): raw_events, rollup_delta(_1h), rollup_1m,
--   rollup_1h, rollup_1d. New time partitions of a distributed table are
--   distributed by Citus as they are created.
-- * Reference tables (a copy on every node, written with two-phase commit in
--   the loader's transaction): kafka_offsets, offset_gaps, dead_letters.
-- * settings and rollup_state stay on the coordinator: only the
--   coordinator's procedures read them (and settings has a trigger, which
--   reference tables cannot have).
--
-- Shard count and replication factor: `zonestats migrate up -shard-count N
-- -shard-replication-factor 2` (else Citus' citus.shard_count, default 32,
-- and citus.shard_replication_factor, default 1, of the migrating role or
-- database).
{{ if .ShardCount }}SET LOCAL citus.shard_count = {{ .ShardCount }};{{ end }}
{{ if .ReplicationFactor }}SET LOCAL citus.shard_replication_factor = {{ .ReplicationFactor }};{{ end }}

-- Raw partitions: (1) non-blocking (logical) shard moves need a replica
-- identity on every table: raw events have no key and are only inserted,
-- so FULL costs nothing; (2) the BRIN index on event_id moves from the
-- parent to each partition, so that old partitions can be converted to
-- columnar storage (which has no BRIN, and filters by min/max per chunk
-- group instead). New raw partitions get both from create_time_partitions.
-- With shard replication factor > 1 Citus refuses DDL on single
-- partitions: the parent keeps its BRIN there (and raw stays heap).
DO $$
DECLARE
    p regclass;
    v_per_partition boolean := coalesce(current_setting('citus.shard_replication_factor', true), '1')::int = 1;
BEGIN
    IF v_per_partition THEN
        DROP INDEX zonestats_internal.raw_events_event_id_idx;
    END IF;
    FOR p IN SELECT i.inhrelid::regclass FROM pg_catalog.pg_inherits i
             WHERE i.inhparent = 'zonestats_internal.raw_events'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', p);
        IF v_per_partition THEN
            EXECUTE format('CREATE INDEX ON %s USING brin (event_id) WITH (pages_per_range = 16, autosummarize = on)', p);
        END IF;
    END LOOP;
END
$$;

ALTER TABLE zonestats.settings ADD COLUMN raw_columnar_after interval DEFAULT '1 hour'
    CHECK (raw_columnar_after >= '0');
COMMENT ON COLUMN zonestats.settings.raw_columnar_after IS
    'with the citus_columnar extension: raw partitions whose range ended this long ago, once rolled up, are converted to columnar storage by expire(); NULL never';

{{ template "sql/functions/create_time_partitions.sql" . }}
{{ template "sql/functions/citus_enabled.sql" . }}
{{ template "sql/functions/require_citus.sql" . }}
{{ template "sql/functions/shard_transfer_mode.sql" . }}
{{ template "sql/functions/begin_node_change.sql" . }}
{{ template "sql/functions/rebalance.sql" . }}
{{ template "sql/functions/rebalance_status.sql" . }}
{{ template "sql/functions/add_node.sql" . }}
{{ template "sql/functions/isolate_zone.sql" . }}
{{ template "sql/procedures/drain_node.sql" . }}
{{ template "sql/functions/schedule_jobs.sql" . }}

DO $$
BEGIN
    IF NOT zonestats_internal.citus_enabled() THEN
        RETURN;
    END IF;
    -- Publications (logical shard moves) cannot hold unlogged tables, and
    -- a shard group moves as a whole: the deltas are logged on Citus.
    ALTER TABLE zonestats_internal.rollup_delta SET LOGGED;
    ALTER TABLE zonestats_internal.rollup_delta_1h SET LOGGED;

    -- Columnar storage for old raw partitions (expire converts them).
    CREATE EXTENSION IF NOT EXISTS citus_columnar;

    PERFORM create_reference_table('zonestats_internal.kafka_offsets');
    PERFORM create_reference_table('zonestats_internal.offset_gaps');
    PERFORM create_reference_table('zonestats.dead_letters');

    PERFORM create_distributed_table('zonestats_internal.raw_events', 'zone_id');
    PERFORM create_distributed_table('zonestats_internal.rollup_delta', 'zone_id', colocate_with => 'zonestats_internal.raw_events');
    PERFORM create_distributed_table('zonestats_internal.rollup_delta_1h', 'zone_id', colocate_with => 'zonestats_internal.raw_events');
    PERFORM create_distributed_table('zonestats.rollup_1m', 'zone_id', colocate_with => 'zonestats_internal.raw_events');
    PERFORM create_distributed_table('zonestats.rollup_1h', 'zone_id', colocate_with => 'zonestats_internal.raw_events');
    PERFORM create_distributed_table('zonestats.rollup_1d', 'zone_id', colocate_with => 'zonestats_internal.raw_events');
END
$$;
