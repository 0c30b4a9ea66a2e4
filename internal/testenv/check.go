package testenv

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Maps are the rollup hstore columns with the raw-event query that defines
// each of them (key expression, value expression, row filter).
var Maps = []struct{ Name, Key, Value, Where string }{
	{"requests_by_country", "country", "count(*)", "true"},
	{"bytes_by_country", "country", "sum(bytes)", "true"},
	{"threats_by_country", "country", "count(*)", "threat <> ''"},
	{"requests_by_status", "status::text", "count(*)", "true"},
	{"requests_by_content_type", "content_type", "count(*)", "true"},
	{"bytes_by_content_type", "content_type", "sum(bytes)", "true"},
	{"requests_by_colo", "colo", "count(*)", "true"},
	{"bytes_by_colo", "colo", "sum(bytes)", "true"},
	{"requests_by_ssl_protocol", "ssl_protocol", "count(*)", "true"},
	{"requests_by_ip_class", "ip_class", "count(*)", "true"},
	{"threats_by_type", "threat", "count(*)", "threat <> ''"},
	{"page_views_by_browser", "browser", "count(*)", "page_view"},
}

// Levels are the rollup tables and the date_trunc unit of their buckets.
var Levels = []struct{ Table, Unit string }{
	{"zonestats.rollup_1m", "minute"},
	{"zonestats.rollup_1h", "hour"},
	{"zonestats.rollup_1d", "day"},
}

const countersFromRaw = `SELECT zone_id, date_trunc('%s', ts) AS bucket, count(*)::bigint AS requests,
	count(*) FILTER (WHERE cache_status IN ('hit','stale','updating','revalidated'))::bigint,
	count(*) FILTER (WHERE ssl_protocol <> 'none')::bigint,
	sum(bytes)::bigint,
	coalesce(sum(bytes) FILTER (WHERE cache_status IN ('hit','stale','updating','revalidated')), 0)::bigint,
	coalesce(sum(bytes) FILTER (WHERE ssl_protocol <> 'none'), 0)::bigint,
	count(*) FILTER (WHERE threat <> '')::bigint, count(*) FILTER (WHERE page_view)::bigint
	FROM zonestats_internal.raw_events GROUP BY 1, 2`

const countersFromRollup = `SELECT zone_id, bucket, requests, cached_requests, encrypted_requests, bytes, cached_bytes,
	encrypted_bytes, threats, page_views FROM %s`

// CheckRollups asserts that every rollup level equals a direct aggregation
// of all raw events: every counter and every map entry exactly, uniques
// within 4 standard errors of the exact distinct count in every bucket.
// It returns the number of raw events.
func CheckRollups(t testing.TB, conn *pgx.Conn) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SET timezone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	var raw int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var log2m int
	if err := conn.QueryRow(ctx, "SELECT hll_log2m FROM zonestats.settings").Scan(&log2m); err != nil {
		t.Fatal(err)
	}
	stdErr := 1.04 / math.Sqrt(math.Pow(2, float64(log2m)))
	for _, lvl := range Levels {
		want := fmt.Sprintf(countersFromRaw, lvl.Unit)
		got := fmt.Sprintf(countersFromRollup, lvl.Table)
		expectSame(t, conn, lvl.Table+" counters", want, got)

		for _, m := range Maps {
			// Each map against the same map built from raw events, bucket by
			// bucket (hstore equality: same keys, same values).
			var bad, n int64
			err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FILTER (WHERE r.m IS DISTINCT FROM w.m), count(w.m)
				FROM (SELECT zone_id, bucket, %[3]s AS m FROM %[2]s WHERE %[3]s <> '') r
				FULL JOIN (SELECT zone_id, bucket, hstore(array_agg(k), array_agg(v::text)) AS m
				           FROM (SELECT zone_id, date_trunc('%[1]s', ts) AS bucket, %[4]s AS k, (%[5]s)::bigint AS v
				                 FROM zonestats_internal.raw_events WHERE %[6]s GROUP BY 1, 2, 3) x
				           GROUP BY 1, 2) w USING (zone_id, bucket)`, lvl.Unit, lvl.Table, m.Name, m.Key, m.Value, m.Where)).Scan(&bad, &n)
			if err != nil {
				t.Fatalf("%s.%s: %v", lvl.Table, m.Name, err)
			}
			if bad != 0 {
				t.Errorf("%s.%s: %d of %d buckets differ from the raw events", lvl.Table, m.Name, bad, n)
			}
		}

		// The stored estimate is the sketch's.
		var stale int64
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s
			WHERE uniques_count <> round(coalesce(hll_cardinality(uniques), 0))`, lvl.Table)).Scan(&stale); err != nil {
			t.Fatal(err)
		} else if stale != 0 {
			t.Errorf("%s: %d rows whose uniques_count is not hll_cardinality(uniques)", lvl.Table, stale)
		}

		// Uniques: the sketch against the exact distinct count, per bucket.
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT r.zone_id, r.bucket, x.n, hll_cardinality(r.uniques)
			FROM %s r JOIN (SELECT zone_id, date_trunc('%s', ts) AS bucket, count(DISTINCT client_ip) AS n
			                FROM zonestats_internal.raw_events GROUP BY 1, 2) x USING (zone_id, bucket)`, lvl.Table, lvl.Unit))
		if err != nil {
			t.Fatal(err)
		}
		var buckets, worst int
		var worstErr float64
		for rows.Next() {
			var zone int64
			var bucket any
			var exact int64
			var est float64
			if err := rows.Scan(&zone, &bucket, &exact, &est); err != nil {
				t.Fatal(err)
			}
			buckets++
			bound := 4*stdErr*float64(exact) + 1
			if d := math.Abs(est - float64(exact)); d > bound {
				worst++
				if worst <= 5 {
					t.Errorf("%s zone %d bucket %v: uniques %.1f, exact %d (bound ±%.1f)", lvl.Table, zone, bucket, est, exact, bound)
				}
			} else if exact > 0 && d/float64(exact) > worstErr {
				worstErr = d / float64(exact)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if worst > 0 {
			t.Errorf("%s: %d of %d buckets outside the 4-standard-error bound", lvl.Table, worst, buckets)
		}
		t.Logf("%s: counters and maps exact; uniques within bound in %d buckets (worst relative error %.4f, 4σ = %.4f)",
			lvl.Table, buckets, worstErr, 4*stdErr)
	}
	return raw
}

// expectSame fails unless the two queries return the same multiset of rows.
func expectSame(t testing.TB, conn *pgx.Conn, what, want, got string) {
	t.Helper()
	q := fmt.Sprintf(`SELECT (SELECT count(*) FROM ((%[1]s) EXCEPT ALL (%[2]s)) a),
	                         (SELECT count(*) FROM ((%[2]s) EXCEPT ALL (%[1]s)) b),
	                         (SELECT count(*) FROM (%[1]s) c)`, want, got)
	var missing, extra, n int64
	if err := conn.QueryRow(context.Background(), q).Scan(&missing, &extra, &n); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if missing != 0 || extra != 0 {
		t.Errorf("%s: %d expected rows missing, %d unexpected rows (of %d expected)", what, missing, extra, n)
	}
	if n == 0 {
		t.Errorf("%s: nothing to compare", what)
	}
}
