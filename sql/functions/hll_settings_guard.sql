CREATE OR REPLACE FUNCTION zonestats_internal.hll_settings_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Sketches of different hll parameters cannot be merged: refuse to change
    -- them once any rollup row exists.
    IF (NEW.hll_log2m, NEW.hll_regwidth, NEW.hll_expthresh, NEW.hll_sparseon)
       IS DISTINCT FROM (OLD.hll_log2m, OLD.hll_regwidth, OLD.hll_expthresh, OLD.hll_sparseon)
       AND (EXISTS (SELECT 1 FROM zonestats.rollup_1m) OR EXISTS (SELECT 1 FROM zonestats.rollup_1h)
            OR EXISTS (SELECT 1 FROM zonestats.rollup_1d)) THEN
        RAISE EXCEPTION 'zonestats: hll parameters cannot change once rollups exist'
            USING DETAIL = 'Sketches with different parameters cannot be merged.',
                  HINT = 'Set hll_log2m before loading data, or empty the rollup tables first.';
    END IF;
    RETURN NEW;
END
$$;
