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
			if err := conn.QueryRow(ctx, local(t, conn, q), arg).Scan(&steps, &rawSteps, &bad, &requests, &badUniques, &stepSecs); err != nil {
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

// TestZoneSummaryExactAtEdges checks zone_summary against the raw events
// of each range: counters exactly, uniques over the whole range within
// four standard errors of the exact distinct count (so not a sum of
// per-bucket estimates), every map exactly (n NULL) and its top 3 (n 3).
// Then it deletes the minute and hour rows inside the range's days and
// hours: the totals do not change, so the middle is read from the
// coarser tables.
func TestZoneSummaryExactAtEdges(t *testing.T) {
	ctx := context.Background()
	conn := queryData(t)
	check := func(r struct{ name, since, until string }) {
		t.Helper()
		var sels, raws []string
		for _, c := range counters {
			sels = append(sels, "s."+c.name)
			raws = append(raws, c.raw)
		}
		q := fmt.Sprintf(`WITH a AS (%s)
			SELECT ROW(%s) = (SELECT %s FROM zonestats_internal.raw_events
			                  WHERE zone_id = 1 AND ts >= date_trunc('minute', a.since) AND ts < date_trunc('minute', a.until)),
			       s.requests, s.uniques,
			       (SELECT count(DISTINCT client_ip) FROM zonestats_internal.raw_events
			        WHERE zone_id = 1 AND ts >= date_trunc('minute', a.since) AND ts < date_trunc('minute', a.until)),
			       (SELECT sum(uniques_count) FROM zonestats.rollup_1m
			        WHERE zone_id = 1 AND bucket >= date_trunc('minute', a.since) AND bucket < date_trunc('minute', a.until)),
			       s.since = date_trunc('minute', a.since) AND s.until = date_trunc('minute', a.until)
			FROM a, zonestats.zone_summary(1, a.since, a.until, NULL) s`,
			rangeSQL(r.since, r.until), strings.Join(sels, ", "), strings.Join(raws, ", "))
		var same, rangeOK bool
		var requests, uniques, exact, perMinute int64
		if err := conn.QueryRow(ctx, local(t, conn, q)).Scan(&same, &requests, &uniques, &exact, &perMinute, &rangeOK); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if !same || requests == 0 || !rangeOK {
			t.Errorf("%s: counters equal the raw events: %v (%d requests); range as asked: %v", r.name, same, requests, rangeOK)
		}
		if math.Abs(float64(uniques-exact)) > uniquesBound(exact) {
			t.Errorf("%s: uniques %d, exact %d (sum of per-minute estimates %d)", r.name, uniques, exact, perMinute)
		}
		for _, m := range testenv.Maps {
			for _, n := range []string{"NULL", "3"} {
				// The map from the raw events, cut to n entries by value desc, key.
				q := fmt.Sprintf(`WITH a AS (%[1]s),
					w AS (SELECT %[3]s AS k, (%[4]s)::bigint AS v FROM zonestats_internal.raw_events, a
					      WHERE zone_id = 1 AND ts >= date_trunc('minute', a.since) AND ts < date_trunc('minute', a.until) AND %[5]s
					      GROUP BY 1 ORDER BY 2 DESC, %[3]s COLLATE "C" LIMIT %[6]s)
					SELECT s.%[2]s = coalesce((SELECT hstore(array_agg(k), array_agg(v::text)) FROM w), ''),
					       s.%[2]s::text, (SELECT count(*) FROM w)
					FROM a, zonestats.zone_summary(1, a.since, a.until, %[6]s) s`,
					rangeSQL(r.since, r.until), m.Name, m.Key, m.Value, m.Where, n)
				var ok bool
				var got string
				var keys int
				if err := conn.QueryRow(ctx, local(t, conn, q)).Scan(&ok, &got, &keys); err != nil {
					t.Fatalf("%s %s: %v", r.name, m.Name, err)
				}
				if !ok {
					t.Errorf("%s: %s (n %s) = %s, not the raw events' %d entries", r.name, m.Name, n, got, keys)
				}
			}
		}
	}
	for _, r := range ranges {
		check(r)
	}
	// The first range without its middle minutes and hours in the finer
	// tables: still exact.
	r := ranges[0]
	var since, until time.Time
	if err := conn.QueryRow(ctx, "SELECT a.since, a.until FROM ("+rangeSQL(r.since, r.until)+") a").Scan(&since, &until); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{
		`DELETE FROM zonestats.rollup_1m WHERE bucket >= date_trunc('hour', $1::timestamptz) + interval '1 hour' AND bucket < date_trunc('hour', $2::timestamptz)`,
		`DELETE FROM zonestats.rollup_1h WHERE bucket >= date_trunc('day', $1::timestamptz) + interval '1 day' AND bucket < date_trunc('day', $2::timestamptz)`,
	} {
		if _, err := conn.Exec(ctx, d, since, until); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	check(r)
}

func TestZoneTopAndTop(t *testing.T) {
	ctx := context.Background()
	conn := queryData(t)
	for _, c := range []struct {
		sql  string
		want string
	}{
		{`SELECT string_agg(key || '=' || value, ',') FROM zonestats.top('a=>3, b=>5, c=>3, d=>1, B=>3', 3)`, "b=5,B=3,a=3"},
		{`SELECT string_agg(key || '=' || value, ',') FROM zonestats.top('a=>3, b=>5', NULL)`, "b=5,a=3"},
		{`SELECT coalesce(string_agg(key, ','), '-') FROM zonestats.top('a=>3', 0)`, "-"},
		{`SELECT coalesce(string_agg(key, ','), '-') FROM zonestats.top(NULL, 5)`, "-"},
		{`SELECT coalesce(string_agg(key, ','), '-') FROM zonestats.top('', 5)`, "-"},
	} {
		var got string
		if err := conn.QueryRow(ctx, c.sql).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s = %q (%v), want %q", c.sql, got, err, c.want)
		}
	}
	// zone_top over a range with edges in minutes, hours and days, for
	// every map, against the raw events.
	r := ranges[0]
	for _, m := range testenv.Maps {
		q := fmt.Sprintf(`WITH a AS (%[1]s),
			w AS (SELECT %[3]s AS key, (%[4]s)::bigint AS value FROM zonestats_internal.raw_events, a
			      WHERE zone_id = 1 AND ts >= date_trunc('minute', a.since) AND ts < date_trunc('minute', a.until) AND %[5]s
			      GROUP BY 1 ORDER BY 2 DESC, %[3]s COLLATE "C" LIMIT 4),
			f AS (SELECT t.* FROM a, zonestats.zone_top(1, a.since, a.until, '%[2]s', 4) t)
			SELECT (SELECT string_agg(key || '=' || value, ',') FROM f), (SELECT string_agg(key || '=' || value, ',') FROM w)`,
			rangeSQL(r.since, r.until), m.Name, m.Key, m.Value, m.Where)
		var got, want *string
		if err := conn.QueryRow(ctx, local(t, conn, q)).Scan(&got, &want); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if got == nil || want == nil || *got != *want {
			t.Errorf("zone_top %s: %v, raw events %v", m.Name, deref(got), deref(want))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// TestEdgesOlderThanTheMinuteRetention: where minutes are no longer kept,
// a range end is rounded down to the hour, and the answer is exact for
// the rounded range; steps of one minute that are no longer kept are NULL.
func TestEdgesOlderThanTheMinuteRetention(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	call(t, conn, "SET timezone = 'UTC'")
	call(t, conn, "UPDATE zonestats.settings SET minute_retention = '1 hour'")
	insertRaw(t, conn, 20000, 31, 0, 60*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")
	const since = "now() - interval '50 hours 17 minutes'"
	var old, same bool
	var requests int64
	err := conn.QueryRow(ctx, local(t, conn, `SELECT s.since = date_trunc('hour', `+since+`),
		s.requests, s.requests = (SELECT count(*) FROM zonestats_internal.raw_events
		                          WHERE zone_id = 1 AND ts >= date_trunc('hour', `+since+`) AND ts < date_trunc('minute', now()))
		FROM zonestats.zone_summary(1, `+since+`, now()) s`)).Scan(&old, &requests, &same)
	if err != nil {
		t.Fatal(err)
	}
	if !old || !same || requests == 0 {
		t.Errorf("since rounded to the hour: %v; %d requests, equal to the raw events from that hour: %v", old, requests, same)
	}
	// No minute rows that old exist, so the test is not vacuous.
	var minuteRows int64
	conn.QueryRow(ctx, "SELECT count(*) FROM zonestats.rollup_1m WHERE bucket < now() - interval '48 hours'").Scan(&minuteRows)
	if minuteRows != 0 {
		t.Fatalf("%d minute rows older than the retention were written", minuteRows)
	}
	var nulls, zeros, values int64
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE requests IS NULL), count(*) FILTER (WHERE requests = 0),
		count(*) FILTER (WHERE requests > 0)
		FROM zonestats.zone_timeseries(1, now() - interval '50 hours', now(), '1 minute')`).Scan(&nulls, &zeros, &values)
	if err != nil {
		t.Fatal(err)
	}
	if nulls < 24*60 || values == 0 {
		t.Errorf("1-minute steps: %d NULL (no longer kept), %d zero, %d with traffic", nulls, zeros, values)
	}
}

// TestQueryArgumentsAreNeverSpliced feeds hostile strings to every
// argument that names something or is parsed.
func TestQueryArgumentsAreNeverSpliced(t *testing.T) {
	ctx := context.Background()
	conn := queryData(t)
	for _, m := range []string{
		`requests_by_country'; DROP TABLE zonestats.settings; --`,
		`"requests_by_country"`,
		`requests_by_country" FROM zonestats.settings; --`,
		`requests_by_country) t, zonestats.settings s --`,
		``,
	} {
		_, err := conn.Exec(ctx, "SELECT * FROM zonestats.zone_top(1, now() - interval '1 day', now(), $1, 3)", m)
		if err == nil || !strings.Contains(err.Error(), "unknown map") {
			t.Errorf("zone_top(map %q): %v, want unknown map", m, err)
		}
	}
	for _, step := range []string{"1 month", "1 year", "30 seconds", "90 seconds", "-5 minutes", "0", "1 minute'; DROP TABLE zonestats.settings; --"} {
		if _, err := conn.Exec(ctx, "SELECT * FROM zonestats.zone_timeseries(1, now() - interval '1 day', now(), $1::text::interval)", step); err == nil {
			t.Errorf("zone_timeseries(step %q) accepted", step)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM zonestats.zone_timeseries(1, '-infinity', now())"); err == nil {
		t.Error("zone_timeseries accepted an infinite range")
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM zonestats.zone_timeseries(1, now() - interval '1 year', now(), '1 minute')"); err == nil {
		t.Error("zone_timeseries accepted 525,600 steps")
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM zonestats_internal.range_pieces(now() - interval '1 day', now(), $1)", "day'; DROP TABLE zonestats.settings; --"); err == nil {
		t.Error("range_pieces accepted a hostile level")
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM zonestats.settings").Scan(&n); err != nil || n != 1 {
		t.Fatalf("settings: %d rows, %v", n, err)
	}
	// An empty or reversed range is empty, not an error.
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM zonestats.zone_timeseries(1, now(), now() - interval '1 day')").Scan(&n); err != nil || n != 0 {
		t.Errorf("reversed range: %d rows, %v", n, err)
	}
}

// TestBIViewsMatchTheRawEvents compares every BI view with the raw events.
func TestBIViewsMatchTheRawEvents(t *testing.T) {
	conn := queryData(t)
	var raws, cols []string
	for _, c := range counters {
		raws = append(raws, c.raw+"::bigint")
		cols = append(cols, c.name)
	}
	c := strings.Join(cols, ", ")
	r := strings.Join(raws, ", ")
	const day = "(ts AT TIME ZONE 'UTC')::date"
	cases := []struct{ view, got, want string }{
		{"traffic_hourly", "SELECT hour, zone_id, " + c + " FROM zonestats.traffic_hourly",
			"SELECT date_trunc('hour', ts), zone_id, " + r + " FROM zonestats_internal.raw_events GROUP BY 1, 2"},
		{"traffic_daily", "SELECT day, zone_id, " + c + " FROM zonestats.traffic_daily",
			"SELECT " + day + ", zone_id, " + r + " FROM zonestats_internal.raw_events GROUP BY 1, 2"},
		{"traffic_hourly uniques", "SELECT hour, zone_id, uniques FROM zonestats.traffic_hourly",
			"SELECT bucket, zone_id, round(hll_cardinality(uniques))::bigint FROM zonestats.rollup_1h"},
		{"traffic_daily uniques", "SELECT day, zone_id, uniques FROM zonestats.traffic_daily",
			"SELECT bucket::date, zone_id, round(hll_cardinality(uniques))::bigint FROM zonestats.rollup_1d"},
		{"country_daily", "SELECT day, zone_id, country, requests, bytes, threats FROM zonestats.country_daily",
			"SELECT " + day + ", zone_id, country, count(*), sum(bytes)::bigint, count(*) FILTER (WHERE threat <> '') FROM zonestats_internal.raw_events GROUP BY 1, 2, 3"},
		{"status_daily", "SELECT day, zone_id, status, requests FROM zonestats.status_daily",
			"SELECT " + day + ", zone_id, status::int, count(*) FROM zonestats_internal.raw_events GROUP BY 1, 2, 3"},
		{"content_type_daily", "SELECT day, zone_id, content_type, requests, bytes FROM zonestats.content_type_daily",
			"SELECT " + day + ", zone_id, content_type, count(*), sum(bytes)::bigint FROM zonestats_internal.raw_events GROUP BY 1, 2, 3"},
		{"colo_daily", "SELECT day, zone_id, colo, requests, bytes FROM zonestats.colo_daily",
			"SELECT " + day + ", zone_id, colo, count(*), sum(bytes)::bigint FROM zonestats_internal.raw_events GROUP BY 1, 2, 3"},
		{"ssl_protocol_daily", "SELECT day, zone_id, ssl_protocol, requests FROM zonestats.ssl_protocol_daily",
			"SELECT " + day + ", zone_id, ssl_protocol, count(*) FROM zonestats_internal.raw_events GROUP BY 1, 2, 3"},
		{"ip_class_daily", "SELECT day, zone_id, ip_class, requests FROM zonestats.ip_class_daily",
			"SELECT " + day + ", zone_id, ip_class, count(*) FROM zonestats_internal.raw_events GROUP BY 1, 2, 3"},
		{"threat_daily", "SELECT day, zone_id, threat, threats FROM zonestats.threat_daily",
			"SELECT " + day + ", zone_id, threat, count(*) FROM zonestats_internal.raw_events WHERE threat <> '' GROUP BY 1, 2, 3"},
		{"browser_daily", "SELECT day, zone_id, browser, page_views FROM zonestats.browser_daily",
			"SELECT " + day + ", zone_id, browser, count(*) FROM zonestats_internal.raw_events WHERE page_view GROUP BY 1, 2, 3"},
	}
	for _, cs := range cases {
		sameRows(t, conn, cs.view, cs.want, cs.got)
	}
	// Every view in schema zonestats is checked here.
	rows, err := conn.Query(context.Background(), "SELECT c.relname FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'zonestats'::regnamespace")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range names {
		found := false
		for _, cs := range cases {
			found = found || strings.HasPrefix(cs.view, v)
		}
		if !found {
			t.Errorf("view zonestats.%s is not compared with the raw events", v)
		}
	}
}

// sameRows fails unless the two queries return the same multiset of rows
// (and some rows).
func sameRows(t *testing.T, conn *pgx.Conn, what, want, got string) {
	t.Helper()
	var missing, extra, n int64
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT (SELECT count(*) FROM ((%[1]s) EXCEPT ALL (%[2]s)) a),
		(SELECT count(*) FROM ((%[2]s) EXCEPT ALL (%[1]s)) b), (SELECT count(*) FROM (%[1]s) c)`, want, got)).Scan(&missing, &extra, &n)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if missing != 0 || extra != 0 || n == 0 {
		t.Errorf("%s: %d expected rows missing, %d unexpected rows (of %d expected)", what, missing, extra, n)
	}
}

// local returns sql to run as one statement that calls the query functions
// and reads raw events. On Citus a statement that reads a distributed table
// is routed to a shard with the function calls in it, where they cannot
// run (they read the coordinator's settings and run distributed queries);
// there sql reads fresh local copies of the raw events and minute rollups.
func local(t testing.TB, conn *pgx.Conn, sql string) string {
	t.Helper()
	if !testenv.OnCitus() {
		return sql
	}
	for _, tbl := range []string{"zonestats_internal.raw_events", "zonestats.rollup_1m"} {
		if strings.Contains(sql, tbl) {
			cp := "local_" + strings.ReplaceAll(tbl, ".", "_")
			call(t, conn, "DROP TABLE IF EXISTS pg_temp."+cp)
			call(t, conn, "CREATE TEMP TABLE "+cp+" AS SELECT * FROM "+tbl)
			sql = strings.ReplaceAll(sql, tbl, "pg_temp."+cp)
		}
	}
	return sql
}
