package migrations_test

import (
	"context"
	"strings"
	"testing"

	"zonestats/internal/testenv"
)

// TestCAggregates checks the C functions of ext/zonestats.c against plain
// SQL, including NULLs, empty input, bad values and the parallel
// (combine, serialize, deserialize) path.
func TestCAggregates(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	equal := []struct{ got, want string }{
		{`zonestats.hstore_sum('a=>1, b=>2', 'b=>3, c=>-4')`, `'a=>1, b=>5, c=>-4'::hstore`},
		{`zonestats.hstore_sum('', 'x=>1')`, `'x=>1'::hstore`},
		{`zonestats.hstore_sum(NULL, 'x=>1')`, `'x=>1'::hstore`},
		{`zonestats.hstore_sum('x=>1', NULL)`, `'x=>1'::hstore`},
		{`zonestats.hstore_sum(NULL, NULL)`, `''::hstore`},
		{`zonestats.hstore_sum('bb=>1, a=>2, ccc=>3', 'a=>1, ccc=>1, dd=>7')`, `'a=>3, bb=>1, ccc=>4, dd=>7'::hstore`},
		{`(SELECT zonestats.count_by(k) FROM unnest(ARRAY['x','y','x',NULL,'']) k)`, `'x=>2, y=>1, ""=>1'::hstore`},
		{`(SELECT zonestats.count_by(k) FROM unnest(ARRAY[]::text[]) k)`, `''::hstore`},
		{`(SELECT zonestats.sum_by(k, v) FROM (VALUES ('a', 5::bigint), ('b', NULL), ('a', -2), (NULL, 9)) x(k, v))`, `'a=>3'::hstore`},
		{`(SELECT zonestats.hstore_sum_agg(h) FROM (VALUES ('a=>1'::hstore), (NULL), ('a=>2, b=>1'), ('')) x(h))`, `'a=>3, b=>1'::hstore`},
		{`(SELECT zonestats.hstore_sum_agg(h) FROM (VALUES (NULL::hstore)) x(h))`, `''::hstore`},
	}
	for _, c := range equal {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT "+c.got+" = "+c.want).Scan(&ok); err != nil || !ok {
			var got string
			conn.QueryRow(ctx, "SELECT ("+c.got+")::text").Scan(&got)
			t.Errorf("%s = %s, want %s (%v)", c.got, got, c.want, err)
		}
	}
	for _, c := range []struct{ sql, err string }{
		{`SELECT zonestats.hstore_sum('a=>x', 'a=>1')`, `is not a bigint`},
		{`SELECT zonestats.hstore_sum('a=>9223372036854775807', 'a=>1')`, `out of range`},
		{`SELECT zonestats.hstore_sum_agg(h) FROM (VALUES ('a=>1.5'::hstore)) x(h)`, `is not a bigint`},
	} {
		_, err := conn.Exec(ctx, c.sql)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.sql, err, c.err)
		}
	}

	// Parallel aggregation: partial states are serialized, shipped from the
	// workers and combined; the result must equal the serial one and SQL's.
	for _, s := range []string{
		"CREATE TABLE t AS SELECT (i % 1000)::text AS k, i::bigint AS v, hstore((i % 7)::text, '1') AS h FROM generate_series(1, 200000) i",
		"ANALYZE t",
		"SET parallel_setup_cost = 0", "SET parallel_tuple_cost = 0", "SET min_parallel_table_scan_size = 0",
		"SET max_parallel_workers_per_gather = 2",
	} {
		call(t, conn, s)
	}
	var plan string
	rows, _ := conn.Query(ctx, "EXPLAIN SELECT zonestats.count_by(k), zonestats.sum_by(k, v), zonestats.hstore_sum_agg(h) FROM t")
	for rows.Next() {
		var l string
		rows.Scan(&l)
		plan += l + "\n"
	}
	if !strings.Contains(plan, "Partial Aggregate") {
		t.Fatalf("no parallel plan, the combine path is not tested:\n%s", plan)
	}
	var ok bool
	err := conn.QueryRow(ctx, `SELECT
		(SELECT zonestats.count_by(k) FROM t) = (SELECT hstore(array_agg(k), array_agg(n::text)) FROM (SELECT k, count(*) n FROM t GROUP BY k) x)
		AND (SELECT zonestats.sum_by(k, v) FROM t) = (SELECT hstore(array_agg(k), array_agg(n::text)) FROM (SELECT k, sum(v) n FROM t GROUP BY k) x)
		AND (SELECT zonestats.hstore_sum_agg(h) FROM t) = (SELECT hstore(array_agg(k), array_agg(n::text)) FROM (SELECT (i % 7)::text k, count(*) n FROM generate_series(1, 200000) i GROUP BY 1) x)`).Scan(&ok)
	if err != nil || !ok {
		t.Fatalf("parallel aggregates differ from SQL: %v", err)
	}
}
