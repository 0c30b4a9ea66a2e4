CREATE OR REPLACE AGGREGATE zonestats.hstore_sum_agg(public.hstore) (
    SFUNC = zonestats.hstore_sum,
    STYPE = public.hstore,
    COMBINEFUNC = zonestats.hstore_sum,
    INITCOND = '',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.hstore_sum_agg(public.hstore) IS
    'merges hstore maps of integer counts by per-key sum; has a combine function so it aggregates in parallel and across Citus shards';
