CREATE OR REPLACE VIEW zonestats.country_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by country, for BI tools:
    -- one row per UTC day, zone and country (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS country,
           e.value::bigint AS requests,
           coalesce((r.bytes_by_country -> e.key)::bigint, 0) AS bytes,
           coalesce((r.threats_by_country -> e.key)::bigint, 0) AS threats
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.requests_by_country) e;
COMMENT ON VIEW zonestats.country_daily IS
    'requests, bytes, threats per UTC day (day = UTC date), zone and country, from the 1-day rollups';
GRANT SELECT ON zonestats.country_daily TO zonestats_reader, zonestats_tenant;
