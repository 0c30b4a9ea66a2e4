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
    -- WARNING; those rows stay readable there. On Citus a partition of a
    -- distributed table is distributed (co-located) as it is created, as
    -- Citus' own create_time_partitions does.
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
                IF p_parent = 'zonestats_internal.raw_events'::regclass THEN
                    -- Rollups find windows of event_id by BRIN. No key:
                    -- non-blocking shard moves on Citus need the identity.
                    -- Citus refuses it for tables with shard replication
                    -- factor > 1, whose shards never move that way.
                    IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = p_parent) THEN
                        EXECUTE format('CREATE INDEX ON %I.%I USING brin (event_id) WITH (pages_per_range = 16, autosummarize = on)',
                                       v_schema, v_name);
                    END IF;
                    BEGIN
                        EXECUTE format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', v_schema, v_name);
                    EXCEPTION WHEN feature_not_supported THEN
                        NULL;
                    END;
                    -- The loader COPYs straight into the partition of the
                    -- hour (raw_partition_for_now): the same columns as on
                    -- raw_events. Not on Citus, where it COPYs into raw_events.
                    IF NOT zonestats_internal.citus_enabled()
                       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zonestats_loader') THEN
                        EXECUTE format('GRANT INSERT (ts, zone_id, client_ip, country, colo, method, status, '
                                       'content_type, bytes, cache_status, ssl_protocol, ip_class, threat, '
                                       'page_view, browser, kafka_partition, kafka_offset) ON %I.%I TO zonestats_loader',
                                       v_schema, v_name);
                    END IF;
                END IF;
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
