CREATE OR REPLACE VIEW zonestats.threat_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by threat, for BI tools:
    -- one row per UTC day, zone and threat (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS threat,
           e.value::bigint AS threats
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.threats_by_type) e;
COMMENT ON VIEW zonestats.threat_daily IS
    'threats per UTC day (day = UTC date), zone and threat, from the 1-day rollups';
GRANT SELECT ON zonestats.threat_daily TO zonestats_reader, zonestats_tenant;
