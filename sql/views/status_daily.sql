CREATE OR REPLACE VIEW zonestats.status_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by status, for BI tools:
    -- one row per UTC day, zone and status (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key::int AS status,
           e.value::bigint AS requests
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.requests_by_status) e;
COMMENT ON VIEW zonestats.status_daily IS
    'requests per UTC day (day = UTC date), zone and status, from the 1-day rollups';
GRANT SELECT ON zonestats.status_daily TO zonestats_reader, zonestats_tenant;
