package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"zonestats/internal/pgcluster"
	"zonestats/internal/testenv"
	"zonestats/migrations"
)

func TestExpireDropsOldPartitionsOnlyOnceRolledUp(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	q := func(sql string) int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	// Raw partitions for the past 5 hours, loads "made" 4 and 3 hours ago.
	call(t, conn, "SELECT zonestats_internal.create_time_partitions('zonestats_internal.raw_events', 'hour', now() - interval '5 hours', now())")
	insertRaw(t, conn, 3000, 11, 0, time.Hour)
	call(t, conn, "UPDATE zonestats_internal.raw_events SET loaded_at = now() - interval '4 hours' WHERE kafka_offset <= 1000")
	call(t, conn, "UPDATE zonestats_internal.raw_events SET loaded_at = now() - interval '3 hours' WHERE kafka_offset > 1000 AND kafka_offset <= 2000")
	call(t, conn, "UPDATE zonestats.settings SET raw_retention = '2 hours'")
	partitions := func() int64 {
		return q(`SELECT count(*) FROM zonestats_internal.time_partitions WHERE parent_table = 'zonestats_internal.raw_events'::regclass`)
	}
	before := partitions()

	// Not rolled up yet: nothing may go.
	call(t, conn, "CALL zonestats.expire()")
	if n := q("SELECT count(*) FROM zonestats_internal.raw_events"); n != 3000 {
		t.Fatalf("expire before the rollups removed raw events: %d left of 3000", n)
	}

	call(t, conn, "CALL zonestats.run_rollups()")
	testenv.CheckRollups(t, conn)
	call(t, conn, "CALL zonestats.expire()")
	if n := q("SELECT count(*) FROM zonestats_internal.raw_events"); n != 1000 {
		t.Fatalf("raw events after expire = %d, want the 1000 loaded within the retention", n)
	}
	if after := partitions(); after >= before {
		t.Fatalf("raw partitions %d → %d: nothing dropped", before, after)
	}
	if n := q("SELECT sum(requests)::bigint FROM zonestats.rollup_1d"); n != 3000 {
		t.Fatalf("rollups lost data with the raw events: %d requests", n)
	}

	// Minute rollups: partitions older than the retention are dropped,
	// hours and days stay.
	insertRaw(t, conn, 500, 12, 50*time.Hour, 51*time.Hour) // two days ago: lands in an old minute partition
	call(t, conn, "CALL zonestats.run_rollups()")
	old := q("SELECT count(*) FROM zonestats.rollup_1m WHERE bucket < now() - interval '1 day'")
	if old == 0 {
		t.Fatal("no old minute rows to expire; the test proves nothing")
	}
	call(t, conn, "UPDATE zonestats.settings SET minute_retention = '1 hour'")
	call(t, conn, "CALL zonestats.expire()")
	if n := q("SELECT count(*) FROM zonestats.rollup_1m WHERE bucket < date_trunc('day', now() - interval '1 hour')"); n != 0 {
		t.Fatalf("%d minute rows older than the retention survived", n)
	}
	if n := q("SELECT sum(requests)::bigint FROM zonestats.rollup_1h"); n != 3500 {
		t.Fatalf("hour rollups = %d requests, want 3500", n)
	}
}

func TestEventsInTheDefaultPartitionAreStillAccepted(t *testing.T) {
	conn := testenv.Conn(t, testenv.NewDB(t))
	// Load times for which no partition exists go to the default partition.
	insertRaw(t, conn, 200, 13, 0, time.Hour)
	call(t, conn, "UPDATE zonestats_internal.raw_events SET loaded_at = now() + interval '30 days'")
	var inDefault int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM zonestats_internal.raw_events_default").Scan(&inDefault); err != nil || inDefault != 200 {
		t.Fatalf("default partition holds %d rows (%v)", inDefault, err)
	}
	call(t, conn, "CALL zonestats.run_rollups()")
	testenv.CheckRollups(t, conn)
}

func TestZoneTimeseriesAndTop(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	call(t, conn, "SET timezone = 'UTC'")
	insertRaw(t, conn, 20000, 14, 0, 30*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")

	// Every level and step: the series sums to the raw events in the range.
	for _, c := range []struct{ since, until, step string }{
		{"date_trunc('day', now()) - interval '1 day'", "date_trunc('day', now()) + interval '1 day'", "interval '1 day'"},
		{"date_trunc('hour', now()) - interval '20 hours'", "date_trunc('hour', now())", "interval '1 hour'"},
		{"date_trunc('minute', now()) - interval '3 hours 7 minutes'", "date_trunc('minute', now())", "interval '5 minutes'"},
		{"date_trunc('hour', now()) - interval '6 hours'", "date_trunc('hour', now())", "NULL::interval"},
	} {
		var got, want, points int64
		err := conn.QueryRow(ctx, `SELECT sum(requests)::bigint, count(*) FROM zonestats.zone_timeseries(1, `+c.since+`, `+c.until+`, `+c.step+`)`).Scan(&got, &points)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		conn.QueryRow(ctx, `SELECT count(*) FROM zonestats_internal.raw_events WHERE zone_id = 1 AND ts >= `+c.since+` AND ts < `+c.until).Scan(&want)
		if got != want || want == 0 {
			t.Errorf("zone_timeseries %v: %d requests, raw events say %d", c, got, want)
		}
		if points < 2 || points > 300 {
			t.Errorf("zone_timeseries %v: %d points", c, points)
		}
	}

	// Raw counts first: on Citus a query on a shard cannot call a function
	// that runs distributed queries, so zone_top is not joined with them.
	exact := map[string]int64{}
	rows, err := conn.Query(ctx, `SELECT country, count(*) FROM zonestats_internal.raw_events WHERE zone_id = 1 GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		exact[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = conn.Query(ctx, `SELECT key, value FROM zonestats.zone_top(1, now() - interval '2 days', now() + interval '1 minute', 'requests_by_country', 3)`)
	if err != nil {
		t.Fatal(err)
	}
	var prev int64 = 1 << 62
	var n int
	for rows.Next() {
		var key string
		var v int64
		if err := rows.Scan(&key, &v); err != nil {
			t.Fatal(err)
		}
		if v != exact[key] || v > prev {
			t.Errorf("zone_top: %s = %d (raw %d), previous %d", key, v, exact[key], prev)
		}
		prev = v
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("zone_top returned %d rows, want 3", n)
	}
	if _, err := conn.Exec(ctx, `SELECT * FROM zonestats.zone_top(1, now() - interval '1 day', now(), 'requests_by_country; DROP TABLE zonestats.settings', 3)`); err == nil {
		t.Error("zone_top accepted an unknown map name")
	}
}

// With pg_cron (preloaded, cron.database_name = the database), schedule_jobs
// schedules the rollups and expiry; without it, it says what is missing.
func TestScheduleJobsWithPgCron(t *testing.T) {
	ctx := context.Background()
	plain := testenv.Conn(t, testenv.NewDB(t))
	if _, err := plain.Exec(ctx, "SELECT * FROM zonestats.schedule_jobs()"); err == nil || !strings.Contains(err.Error(), "needs the pg_cron extension") {
		t.Errorf("schedule_jobs without pg_cron: %v", err)
	}
	if testenv.OnCitus() {
		return // the pg_cron server below is a plain one
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{
		"shared_preload_libraries": "pg_cron", "cron.database_name": "zs_cron", "cron.use_background_workers": "on"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	admin := testenv.Conn(t, c.DSN("postgres"))
	call(t, admin, "CREATE DATABASE zs_cron")
	conn := testenv.Conn(t, c.DSN("zs_cron"))
	if err := migrations.Up(ctx, conn, nil); err != nil {
		t.Fatal(err)
	}
	call(t, conn, "CREATE EXTENSION pg_cron")
	for i := 0; i < 2; i++ { // a second call updates, never duplicates
		call(t, conn, "SELECT * FROM zonestats.schedule_jobs('*/5 * * * *')")
	}
	rows, err := conn.Query(ctx, "SELECT jobname, schedule, command, database FROM cron.job ORDER BY jobname")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var a, b, c, d string
		rows.Scan(&a, &b, &c, &d)
		got = append(got, strings.Join([]string{a, b, c, d}, "|"))
	}
	want := []string{"zonestats-expire|7 * * * *|CALL zonestats.expire()|zs_cron",
		"zonestats-rollups|*/5 * * * *|CALL zonestats.run_rollups()|zs_cron"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cron.job:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The scheduled commands run as written.
	insertRaw(t, conn, 1000, 1, time.Minute, time.Hour)
	for _, w := range want {
		call(t, conn, strings.Split(w, "|")[2])
	}
	testenv.CheckRollups(t, conn)
}

// Dead letters are bounded: expire() deletes those older than
// dead_letter_retention and says how many arrived in the last day.
func TestExpireDeletesOldDeadLettersAndCountsRecentOnes(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(testenv.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	call(t, conn, `INSERT INTO zonestats.dead_letters (topic, partition, kafka_offset, payload, reason, received_at)
		SELECT 'events', 0, i, 'x', 'not a JSON object', now() - i * interval '1 day' FROM generate_series(0, 9) i`)
	call(t, conn, "UPDATE zonestats.settings SET dead_letter_retention = '3 days 12 hours'")
	call(t, conn, "CALL zonestats.expire()")
	var left []int64
	rows, _ := conn.Query(ctx, "SELECT kafka_offset FROM zonestats.dead_letters ORDER BY 1")
	for rows.Next() {
		var o int64
		rows.Scan(&o)
		left = append(left, o)
	}
	if fmt.Sprint(left) != "[0 1 2 3]" {
		t.Errorf("dead letters left: %v, want offsets 0..3 (received within 3.5 days)", left)
	}
	if !strings.Contains(strings.Join(notices, "\n"), "6 old dead letter(s) deleted, 1 dead letter(s) in the last 24 hours") {
		t.Errorf("expire said: %q", notices)
	}
	call(t, conn, "UPDATE zonestats.settings SET dead_letter_retention = NULL")
	call(t, conn, "CALL zonestats.expire()")
	if n := count(t, conn, "SELECT count(*) FROM zonestats.dead_letters"); n != 4 {
		t.Errorf("%d dead letters after expire with retention NULL, want 4", n)
	}
}
