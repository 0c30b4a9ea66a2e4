CREATE OR REPLACE AGGREGATE zonestats.hstore_sum_agg(public.hstore) (
    SFUNC = zonestats_internal.hstore_sum_trans,
    STYPE = internal,
    SSPACE = 512,  -- planner estimate of the state size, so hash aggregation keeps groups in memory
    FINALFUNC = zonestats_internal.keys_final,
    COMBINEFUNC = zonestats_internal.keys_combine,
    SERIALFUNC = zonestats_internal.keys_serialize,
    DESERIALFUNC = zonestats_internal.keys_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.hstore_sum_agg(public.hstore) IS
    'merges hstore maps of integer counts by per-key sum; combines partial states, so it aggregates in parallel and across Citus shards';
