CREATE OR REPLACE VIEW zonestats.ip_class_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by ip_class, for BI tools:
    -- one row per UTC day, zone and ip_class (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS ip_class,
           e.value::bigint AS requests
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.requests_by_ip_class) e;
COMMENT ON VIEW zonestats.ip_class_daily IS
    'requests per UTC day (day = UTC date), zone and ip_class, from the 1-day rollups';
GRANT SELECT ON zonestats.ip_class_daily TO zonestats_reader, zonestats_tenant;
