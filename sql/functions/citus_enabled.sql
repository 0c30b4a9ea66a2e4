CREATE OR REPLACE FUNCTION zonestats_internal.citus_enabled()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- true when this database is a Citus coordinator (the citus extension
    -- is installed here).
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')
$$;
COMMENT ON FUNCTION zonestats_internal.citus_enabled() IS 'true when the citus extension is installed in this database';
