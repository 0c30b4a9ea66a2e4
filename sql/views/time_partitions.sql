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
