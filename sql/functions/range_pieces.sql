CREATE OR REPLACE FUNCTION zonestats_internal.range_pieces(p_since timestamptz, p_until timestamptz, p_coarsest text DEFAULT 'day')
RETURNS TABLE (level text, lo timestamptz, hi timestamptz)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
ROWS 5
AS $$
DECLARE
    v_edges timestamptz[];
    v_a     timestamptz;
    v_b     timestamptz;
    v_x     timestamptz;
    v_y     timestamptz;
BEGIN
    -- Tiles [p_since, p_until) (minute-aligned, see query_range) with the
    -- fewest rollup buckets, at most five pieces: whole UTC days from
    -- rollup_1d in the middle, whole hours from rollup_1h around them,
    -- minutes from rollup_1m at the ends. level is 'day', 'hour' or
    -- 'minute'; p_coarsest caps it. The pieces cover the range exactly, so
    -- sums over them equal sums over the raw events in the range.
    IF p_coarsest IS NULL OR p_coarsest NOT IN ('day', 'hour', 'minute') THEN
        RAISE EXCEPTION 'zonestats: level must be day, hour or minute, not %', coalesce(quote_literal(p_coarsest), 'NULL');
    END IF;
    IF NOT (p_since < p_until) THEN
        RETURN;
    END IF;
    v_edges := ARRAY[p_since, p_until];
    IF p_coarsest = 'day' THEN
        v_a := date_trunc('day', p_since);
        IF v_a < p_since THEN
            v_a := v_a + interval '1 day';
        END IF;
        v_b := date_trunc('day', p_until);
        IF v_a < v_b THEN
            level := 'day'; lo := v_a; hi := v_b;
            RETURN NEXT;
            v_edges := ARRAY[p_since, v_a, v_b, p_until];
        END IF;
    END IF;
    -- What the days leave (or the whole range): hours, then minutes.
    FOR i IN 1 .. cardinality(v_edges) BY 2 LOOP
        v_a := v_edges[i];
        v_b := v_edges[i + 1];
        CONTINUE WHEN v_a >= v_b;
        IF p_coarsest <> 'minute' THEN
            v_x := date_trunc('hour', v_a);
            IF v_x < v_a THEN
                v_x := v_x + interval '1 hour';
            END IF;
            v_y := date_trunc('hour', v_b);
            IF v_x < v_y THEN
                IF v_a < v_x THEN
                    level := 'minute'; lo := v_a; hi := v_x;
                    RETURN NEXT;
                END IF;
                level := 'hour'; lo := v_x; hi := v_y;
                RETURN NEXT;
                IF v_y < v_b THEN
                    level := 'minute'; lo := v_y; hi := v_b;
                    RETURN NEXT;
                END IF;
                CONTINUE;
            END IF;
        END IF;
        level := 'minute'; lo := v_a; hi := v_b;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION zonestats_internal.range_pieces(timestamptz, timestamptz, text) IS
    'tiles a minute-aligned range with whole days, hours and minutes (coarsest first): which rollup table serves which part';
REVOKE ALL ON FUNCTION zonestats_internal.range_pieces(timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.range_pieces(timestamptz, timestamptz, text) TO zonestats_reader, zonestats_tenant;
