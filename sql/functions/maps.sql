CREATE OR REPLACE FUNCTION zonestats.maps()
RETURNS TABLE (map text, dimension text, measure text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The hstore map columns of the rollup tables: which event field is the
    -- key and which measure is counted.
    VALUES ('requests_by_country', 'country', 'requests'),
           ('bytes_by_country', 'country', 'bytes'),
           ('threats_by_country', 'country', 'threats'),
           ('requests_by_status', 'status', 'requests'),
           ('requests_by_content_type', 'content_type', 'requests'),
           ('bytes_by_content_type', 'content_type', 'bytes'),
           ('requests_by_colo', 'colo', 'requests'),
           ('bytes_by_colo', 'colo', 'bytes'),
           ('requests_by_ssl_protocol', 'ssl_protocol', 'requests'),
           ('requests_by_ip_class', 'ip_class', 'requests'),
           ('threats_by_type', 'threat', 'threats'),
           ('page_views_by_browser', 'browser', 'page_views')
$$;
COMMENT ON FUNCTION zonestats.maps() IS 'the hstore map columns of the rollup tables, with their key field and measure';
