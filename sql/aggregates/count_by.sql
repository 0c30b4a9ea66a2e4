CREATE OR REPLACE AGGREGATE zonestats.count_by(text) (
    SFUNC = zonestats_internal.count_by_trans,
    STYPE = internal,
    SSPACE = 512,  -- planner estimate of the state size, so hash aggregation keeps groups in memory
    FINALFUNC = zonestats_internal.keys_final,
    COMBINEFUNC = zonestats_internal.keys_combine,
    SERIALFUNC = zonestats_internal.keys_serialize,
    DESERIALFUNC = zonestats_internal.keys_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE zonestats.count_by(text) IS
    'hstore of key → number of rows with that key (NULL keys skipped); empty hstore for no rows';
