CREATE OR REPLACE VIEW zonestats.content_type_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by content_type, for BI tools:
    -- one row per UTC day, zone and content_type (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS content_type,
           e.value::bigint AS requests,
           coalesce((r.bytes_by_content_type -> e.key)::bigint, 0) AS bytes
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.requests_by_content_type) e;
COMMENT ON VIEW zonestats.content_type_daily IS
    'requests, bytes per UTC day (day = UTC date), zone and content_type, from the 1-day rollups';
GRANT SELECT ON zonestats.content_type_daily TO zonestats_reader, zonestats_tenant;
