CREATE OR REPLACE VIEW zonestats.traffic_hourly WITH (security_invoker = true) AS
    -- Per zone and UTC hour, plain numbers (for BI tools): rollup_1h
    -- without sketches and maps. uniques is the hour's estimate; it does
    -- not add up across hours (zone_summary gives uniques over a range).
    -- security_invoker: the caller's privileges and row-level security apply.
    SELECT r.bucket AS hour, r.zone_id, r.requests, r.cached_requests, r.encrypted_requests, r.bytes,
           r.cached_bytes, r.encrypted_bytes, r.threats, r.page_views, r.uniques_count AS uniques
    FROM zonestats.rollup_1h r;
COMMENT ON VIEW zonestats.traffic_hourly IS
    'traffic per zone and UTC hour as plain numbers (hour = start of the hour); uniques is per row and does not add up across rows';
GRANT SELECT ON zonestats.traffic_hourly TO zonestats_reader, zonestats_tenant;
