CREATE OR REPLACE VIEW zonestats.browser_daily WITH (security_invoker = true) AS
    -- Long format of the 1-day rollup maps keyed by browser, for BI tools:
    -- one row per UTC day, zone and browser (day is the UTC date).
    SELECT (r.bucket AT TIME ZONE 'UTC')::date AS day, r.zone_id, e.key AS browser,
           e.value::bigint AS page_views
    FROM zonestats.rollup_1d r
    CROSS JOIN LATERAL public.each(r.page_views_by_browser) e;
COMMENT ON VIEW zonestats.browser_daily IS
    'page_views per UTC day (day = UTC date), zone and browser, from the 1-day rollups';
GRANT SELECT ON zonestats.browser_daily TO zonestats_reader, zonestats_tenant;
