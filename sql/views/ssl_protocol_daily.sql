CREATE OR REPLACE VIEW zonestats.ssl_protocol_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by ssl_protocol, for BI tools:
    -- one row per UTC day, zone and ssl_protocol (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS ssl_protocol,
           e.value::bigint AS requests
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.requests_by_ssl_protocol) e;
COMMENT ON VIEW zonestats.ssl_protocol_daily IS
    'requests per UTC day (day = UTC date), zone and ssl_protocol, from the 1-day rollups';
GRANT SELECT ON zonestats.ssl_protocol_daily TO zonestats_reader, zonestats_tenant;
