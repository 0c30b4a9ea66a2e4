CREATE OR REPLACE VIEW zonestats.traffic_daily WITH (security_invoker = true) AS
    -- Per zone and UTC day, plain numbers (for BI tools): rollup_1d
    -- without sketches and maps; day is the UTC date. uniques is the day's
    -- estimate; it does not add up across days.
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, r.requests, r.cached_requests,
           r.encrypted_requests, r.bytes, r.cached_bytes, r.encrypted_bytes, r.threats, r.page_views,
           r.uniques_count AS uniques
    FROM zonestats.rollup_1d r;
COMMENT ON VIEW zonestats.traffic_daily IS
    'traffic per zone and UTC day as plain numbers (day = UTC date); uniques is per row and does not add up across rows';
GRANT SELECT ON zonestats.traffic_daily TO zonestats_reader, zonestats_tenant;
