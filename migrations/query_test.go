package migrations_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"zonestats/internal/testenv"
)

// counters are the rollup counters, in the order the query functions
// return them, with their definition over raw events.
var counters = []struct{ name, raw string }{
	{"requests", "count(*)"},
	{"cached_requests", "count(*) FILTER (WHERE cache_status IN ('hit','stale','updating','revalidated'))"},
	{"encrypted_requests", "count(*) FILTER (WHERE ssl_protocol <> 'none')"},
	{"bytes", "coalesce(sum(bytes), 0)"},
	{"cached_bytes", "coalesce(sum(bytes) FILTER (WHERE cache_status IN ('hit','stale','updating','revalidated')), 0)"},
	{"encrypted_bytes", "coalesce(sum(bytes) FILTER (WHERE ssl_protocol <> 'none'), 0)"},
	{"threats", "count(*) FILTER (WHERE threat <> '')"},
	{"page_views", "count(*) FILTER (WHERE page_view)"},
}

// uniquesBound is the allowed distance of an hll estimate from the exact
// distinct count n: four standard errors at the default precision, plus one.
func uniquesBound(n int64) float64 { return 4*1.04/math.Sqrt(1<<14)*float64(n) + 1 }

// queryData loads ~100 hours of raw events, so that ranges have whole days,
// hours and minutes in them, and rolls them up.
func queryData(t *testing.T) *pgx.Conn {
	t.Helper()
	conn := testenv.Conn(t, testenv.NewDB(t))
	call(t, conn, "SET timezone = 'UTC'")
	insertRaw(t, conn, 60000, 21, 0, 100*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")
	return conn
}

// ranges are [since, until) cases relative to {d}, the start of today
// (UTC): ends inside a minute, an hour and a day; aligned ends; a range
// within one hour; a range up to now.
var ranges = []struct{ name, since, until string }{
	{"days, hours and minutes", "{d} - interval '3 days' + interval '5 hours 17 minutes 31 seconds'", "{d} - interval '2 hours 49 minutes'"},
	{"whole days", "{d} - interval '3 days'", "{d}"},
	{"hour edges", "{d} - interval '50 hours'", "{d} - interval '1 hour'"},
	{"inside one hour", "{d} - interval '2 hours 17 minutes'", "{d} - interval '1 hour 43 minutes'"},
	{"to now", "now() - interval '26 hours'", "now()"},
}

// rangeSQL is a one-row query of the case's since and until.
func rangeSQL(since, until string) string {
	d := "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
	return "SELECT " + strings.ReplaceAll(since, "{d}", d) + " AS since, " + strings.ReplaceAll(until, "{d}", d) + " AS until"
}

// TestZoneTimeseriesExactAtEdges compares every step of zone_timeseries
// with the raw events of that step, for ranges that start and end inside a
// minute, an hour and a day, at steps that read every level.
func TestZoneTimeseriesExactAtEdges(t *testing.T) {
	ctx := context.Background()
	conn := queryData(t)
	var raws, diffs []string
	for _, c := range counters {
		raws = append(raws, c.raw+" AS "+c.name)
		diffs = append(diffs, fmt.Sprintf("f.%[1]s IS DISTINCT FROM coalesce(w.%[1]s, 0)", c.name))
	}
	for _, r := range ranges {
		for _, step := range []string{"NULL", "1 minute", "5 minutes", "90 minutes", "1 hour", "36 hours", "1 day", "7 days"} {
			// f: the function; w: the raw events of [since, until) (ends
			// truncated to the minute) on the same UTC grid of steps.
			q := fmt.Sprintf(`WITH a AS (%s),
				f AS (SELECT s.* FROM a, zonestats.zone_timeseries(1, a.since, a.until, $1::interval) s),
				st AS (SELECT coalesce($1::interval,
				                       (SELECT bucket FROM f ORDER BY bucket OFFSET 1 LIMIT 1) - (SELECT min(bucket) FROM f)) AS step),
				w AS (SELECT date_bin(st.step, ts, '2001-01-01') AS bucket, %s, count(DISTINCT client_ip) AS exact
				      FROM zonestats_internal.raw_events, a, st
				      WHERE zone_id = 1 AND ts >= date_trunc('minute', a.since) AND ts < date_trunc('minute', a.until)
				      GROUP BY 1)
				SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM w),
				       count(*) FILTER (WHERE f.bucket IS NULL OR %s),
				       coalesce(sum(w.requests), 0)::bigint,
				       count(*) FILTER (WHERE abs(f.uniques - coalesce(w.exact, 0)) > 4 * 1.04 / sqrt(16384) * coalesce(w.exact, 0) + 1),
				       coalesce((SELECT extract(epoch FROM step)::bigint FROM st), 0)
				FROM f FULL JOIN w USING (bucket)`,
				rangeSQL(r.since, r.until), strings.Join(raws, ", "), strings.Join(diffs, " OR "))
			var arg any = step
			if step == "NULL" {
				arg = nil
			}
			var steps, rawSteps, bad, requests, badUniques, stepSecs int64
			if err := conn.QueryRow(ctx, q, arg).Scan(&steps, &rawSteps, &bad, &requests, &badUniques, &stepSecs); err != nil {
				t.Fatalf("%s, step %s: %v", r.name, step, err)
			}
			if bad != 0 || badUniques != 0 || requests == 0 || rawSteps > steps {
				t.Errorf("%s, step %s: %d steps (%d with raw events, %d requests): %d differ from the raw events, %d uniques out of bound",
					r.name, step, steps, rawSteps, requests, bad, badUniques)
			}
			if step == "NULL" && (steps > 300 || (steps < 60 && stepSecs > 60)) {
				t.Errorf("%s: default step %ds gives %d points", r.name, stepSecs, steps)
			}
		}
	}
}
