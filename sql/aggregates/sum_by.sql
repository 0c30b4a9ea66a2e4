CREATE OR REPLACE AGGREGATE zonestats.sum_by(text, bigint) (
    SFUNC = zonestats_internal.sum_by_trans,
    STYPE = internal,
    SSPACE = 512,  -- planner estimate of the state size, so hash aggregation keeps groups in memory
    FINALFUNC = zonestats_internal.keys_final,
    COMBINEFUNC = zonestats_internal.keys_combine,
    SERIALFUNC = zonestats_internal.keys_serialize,
    DESERIALFUNC = zonestats_internal.keys_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.sum_by(text, bigint) IS
    'hstore of key → sum of value over the rows with that key (NULL keys or values skipped); empty hstore for no rows';
