CREATE OR REPLACE VIEW zonestats.colo_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by colo, for BI tools:
    -- one row per UTC day, zone and colo (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS colo,
           e.value::bigint AS requests,
           coalesce((r.bytes_by_colo -> e.key)::bigint, 0) AS bytes
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.requests_by_colo) e;
COMMENT ON VIEW zonestats.colo_daily IS
    'requests, bytes per UTC day (day = UTC date), zone and colo, from the 1-day rollups';
GRANT SELECT ON zonestats.colo_daily TO zonestats_reader, zonestats_tenant;
