CREATE OR REPLACE FUNCTION zonestats_internal.hstore_sum_trans(internal, public.hstore)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS '$libdir/zonestats', 'zs_hstore_sum_trans';
COMMENT ON FUNCTION zonestats_internal.hstore_sum_trans(internal, public.hstore) IS
    'support function of the count_by, sum_by and hstore_sum_agg aggregates (C, ext/zonestats.c)';
