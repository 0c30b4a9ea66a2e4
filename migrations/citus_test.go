package migrations_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"zonestats/internal/pgcluster"
	"zonestats/internal/testenv"
	"zonestats/migrations"
)

func citusOnly(t *testing.T) {
	t.Helper()
	if !testenv.OnCitus() {
		t.Skip("Citus-only test: runs in the Citus suite (" + testenv.CitusEnv + "=1, make test-citus)")
	}
}

// On plain PostgreSQL the cluster procedures refuse clearly.
func TestClusterProceduresSayTheyNeedCitus(t *testing.T) {
	if testenv.OnCitus() {
		t.Skip("plain PostgreSQL only")
	}
	conn := testenv.Conn(t, testenv.NewDB(t))
	for _, q := range []string{
		"SELECT zonestats.add_node('10.0.0.9', 5432)", "SELECT zonestats.rebalance()",
		"SELECT * FROM zonestats.rebalance_status()", "CALL zonestats.drain_node('10.0.0.9', 5432)",
		"SELECT zonestats.isolate_zone(1)", "SELECT zonestats.shard_transfer_mode()",
	} {
		_, err := conn.Exec(context.Background(), q)
		if err == nil || !strings.Contains(err.Error(), "needs Citus") {
			t.Errorf("%s: %v, want an error saying it needs Citus", q, err)
		}
	}
}

func TestCitusTablesAreDistributedAndColocated(t *testing.T) {
	citusOnly(t)
	conn := testenv.Conn(t, testenv.NewDB(t))
	want := map[string]string{
		"zonestats_internal.raw_events": "distributed", "zonestats_internal.rollup_delta": "distributed",
		"zonestats_internal.rollup_delta_1h": "distributed", "zonestats.rollup_1m": "distributed",
		"zonestats.rollup_1h": "distributed", "zonestats.rollup_1d": "distributed",
		"zonestats_internal.kafka_offsets": "reference", "zonestats_internal.offset_gaps": "reference",
		"zonestats.dead_letters": "reference",
	}
	rows, err := conn.Query(context.Background(), `SELECT table_name::text, citus_table_type, distribution_column, colocation_id
		FROM citus_tables`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	colocations := map[int]bool{}
	for rows.Next() {
		var name, typ, col string
		var colo int
		if err := rows.Scan(&name, &typ, &col, &colo); err != nil {
			t.Fatal(err)
		}
		got[name] = typ
		if typ == "distributed" {
			colocations[colo] = true
			if col != "zone_id" {
				t.Errorf("%s distributed by %s", name, col)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("%s is %q, want %q", name, got[name], typ)
		}
	}
	if len(colocations) != 1 {
		t.Errorf("distributed tables in %d co-location groups, want 1", len(colocations))
	}
	var local int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_dist_partition WHERE logicalrelid IN
		('zonestats.settings'::regclass, 'zonestats_internal.rollup_state'::regclass)`).Scan(&local)
	if local != 0 {
		t.Errorf("settings/rollup_state should stay coordinator-local")
	}
}

// pushdownProblems are the marks of a plan that brings rows to the
// coordinator instead of running on the shards.
var pushdownProblems = regexp.MustCompile(`pull to coordinator|repartition|Distributed Subplan|MERGE method: pull`)

// Every statement of a rollup run, as actually executed (auto_explain of
// nested statements), runs shard by shard on the workers.
func TestCitusRollupsRunOnTheWorkers(t *testing.T) {
	citusOnly(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(testenv.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	var plans []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "Query Text:") {
			plans = append(plans, n.Message)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	insertRaw(t, conn, 20000, 3, time.Minute, 48*time.Hour)
	for _, s := range []string{"LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
		"SET auto_explain.log_nested_statements = on", "SET auto_explain.log_level = notice"} {
		call(t, conn, s)
	}
	call(t, conn, "CALL zonestats.run_rollups()")
	call(t, conn, "SET auto_explain.log_min_duration = -1")

	targets := map[string]bool{}
	insertInto := regexp.MustCompile(`INSERT INTO zonestats(?:_internal)?\.(\w+)`)
	for _, p := range plans {
		m := insertInto.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		targets[m[1]] = true
		if pushdownProblems.MatchString(p) || !strings.Contains(p, "Custom Scan (Citus Adaptive)") {
			t.Errorf("rollup statement into %s does not run on the shards:\n%s", m[1], p)
		}
	}
	for _, tbl := range []string{"rollup_delta", "rollup_1m", "rollup_delta_1h", "rollup_1h", "rollup_1d"} {
		if !targets[tbl] {
			t.Errorf("no executed plan seen for INSERT INTO %s (%d plans captured)", tbl, len(plans))
		}
	}
	testenv.CheckRollups(t, conn)
}

// biQueries are cross-zone BI queries: they must aggregate on the workers
// and give exactly what plain PostgreSQL gives on the same events.
var biQueries = map[string]string{
	"requests and uniques per hour, all zones": `SELECT bucket, sum(requests)::bigint, sum(bytes)::bigint,
		round(hll_cardinality(hll_union_agg(uniques)))::bigint
		FROM zonestats.rollup_1h WHERE bucket >= now() - interval '1 day' GROUP BY bucket ORDER BY bucket`,
	"top countries, all zones, 7 days": `SELECT e.key AS country, sum(e.value::bigint) AS requests
		FROM zonestats.rollup_1d t, each(t.requests_by_country) e
		WHERE t.bucket >= now() - interval '7 days' GROUP BY e.key ORDER BY 2 DESC, 1 LIMIT 10`,
	"uniques per day, all zones": `SELECT bucket, round(hll_cardinality(hll_union_agg(uniques)))::bigint, sum(threats)::bigint
		FROM zonestats.rollup_1d GROUP BY bucket ORDER BY bucket`,
}

func TestCitusBIQueriesAggregateOnWorkersAndMatchPlainPostgreSQL(t *testing.T) {
	citusOnly(t)
	ctx := context.Background()
	citus := testenv.Conn(t, testenv.NewDB(t))
	insertRaw(t, citus, 30000, 5, time.Minute, 72*time.Hour)
	call(t, citus, "CALL zonestats.run_rollups()")

	// The same raw events into a plain PostgreSQL server.
	plainPG, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plainPG.Stop()
	plain := testenv.Conn(t, plainPG.DSN("postgres"))
	if err := migrations.Up(ctx, plain, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cols := "loaded_at, ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset"
	if _, err := citus.PgConn().CopyTo(ctx, &buf, "COPY (SELECT "+cols+" FROM zonestats_internal.raw_events ORDER BY event_id) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.PgConn().CopyFrom(ctx, &buf, "COPY zonestats_internal.raw_events ("+cols+") FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	call(t, plain, "CALL zonestats.run_rollups()")

	for name, q := range biQueries {
		got, want := queryText(t, citus, q), queryText(t, plain, q)
		if got != want || want == "" {
			t.Errorf("%s: Citus and plain PostgreSQL differ:\nCitus: %s\nplain: %s", name, got, want)
		}
		var plan strings.Builder
		rows, err := citus.Query(ctx, "EXPLAIN (VERBOSE, COSTS OFF) "+q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan.WriteString(line + "\n")
		}
		p := plan.String()
		if pushdownProblems.MatchString(p) || !regexp.MustCompile(`Query: SELECT .* GROUP BY`).MatchString(p) {
			t.Errorf("%s does not aggregate on the workers:\n%s", name, p)
		}
	}
}

func queryText(t *testing.T, conn *pgx.Conn, q string) string {
	t.Helper()
	var s *string
	if err := conn.QueryRow(context.Background(), "SELECT string_agg(x::text, ';') FROM ("+q+") x").Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// With shard replication factor 2 (an install-time option), the dashboard
// and BI queries still answer, with the same results, while one worker is
// down. Runs on a cluster of its own: it stops a worker.
func TestCitusReplicationFactor2AnswersWithAWorkerDown(t *testing.T) {
	citusOnly(t)
	ctx := context.Background()
	c, err := pgcluster.StartCitus(ctx, 2, pgcluster.Options{Settings: testenv.CitusTestSettings()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := c.CreateDatabase(ctx, "zs_rf2"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.Coordinator.DSN("zs_rf2"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := migrations.UpWithCitus(ctx, conn, migrations.CitusOptions{ShardCount: 4, ReplicationFactor: 2}, nil); err != nil {
		t.Fatal(err)
	}
	var single int
	conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT shardid FROM pg_dist_shard JOIN pg_dist_placement USING (shardid)
		WHERE logicalrelid = 'zonestats.rollup_1m'::regclass GROUP BY shardid HAVING count(*) <> 2) x`).Scan(&single)
	if single != 0 {
		t.Fatalf("%d rollup_1m shards without exactly 2 placements", single)
	}
	insertRaw(t, conn, 20000, 9, time.Minute, 48*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")

	queries := map[string]string{
		"timeseries of every zone": `SELECT z, (SELECT string_agg(r::text, ',') FROM zonestats.zone_timeseries(z, now() - interval '2 days', now()) r)
			FROM generate_series(1, 80) z`,
	}
	for k, q := range biQueries {
		queries[k] = q
	}
	before := map[string]string{}
	for name, q := range queries {
		before[name] = queryText(t, conn, q)
	}

	if err := c.Workers[0].Halt("immediate"); err != nil {
		t.Fatal(err)
	}
	for name, q := range queries {
		if got := queryText(t, conn, q); got != before[name] || got == "" {
			t.Errorf("%s with worker 1 down: answer changed", name)
		}
	}
	// Writes to a shard with a placement on the stopped worker fail (and
	// change nothing) until it is back; the loader retries with backoff.
	_, werr := conn.Exec(ctx, `INSERT INTO zonestats_internal.raw_events (ts, zone_id, client_ip, country, colo, method, status,
		content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset)
		SELECT now(), z, '192.0.2.1', 'US', 'SFO', 'GET', 200, 'html', 1, 'hit', 'none', 'clean', '', false, 'Chrome', 0, 0
		FROM generate_series(1, 80) z`)
	t.Logf("a write to every shard with worker 1 down: %v", werr)
	if werr == nil {
		t.Errorf("a write to shards placed on a stopped worker succeeded; the README says it fails")
	}
	if err := c.Workers[0].Resume(ctx); err != nil {
		t.Fatal(err)
	}
	call(t, conn, `INSERT INTO zonestats_internal.raw_events (ts, zone_id, client_ip, country, colo, method, status,
		content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset)
		SELECT now(), z, '192.0.2.1', 'US', 'SFO', 'GET', 200, 'html', 1, 'hit', 'none', 'clean', '', false, 'Chrome', 0, 0
		FROM generate_series(1, 80) z`)
	call(t, conn, "CALL zonestats.run_rollups()")
	testenv.CheckRollups(t, conn)
}

// expire() converts old raw partitions to columnar once they are rolled up
// (and only then); rollups and totals are unchanged.
func TestCitusExpireMakesOldRawPartitionsColumnar(t *testing.T) {
	citusOnly(t)
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	call(t, conn, `SELECT zonestats_internal.create_time_partitions('zonestats_internal.raw_events', 'hour',
		now() - interval '4 hours', now())`)
	load := func(seed int, hoursAgo int) {
		insertRaw(t, conn, 5000, seed, time.Minute, 24*time.Hour)
		// As if loaded hoursAgo: move the rows just inserted into that hour.
		call(t, conn, fmt.Sprintf(`WITH m AS (DELETE FROM zonestats_internal.raw_events WHERE loaded_at > now() - interval '1 minute' RETURNING *)
			INSERT INTO zonestats_internal.raw_events SELECT event_id, date_trunc('hour', now()) - interval '%d hours' + interval '10 minutes',
			ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status, ssl_protocol, ip_class,
			threat, page_view, browser, kafka_partition, kafka_offset FROM m`, hoursAgo))
	}
	load(1, 3)
	load(2, 2)
	call(t, conn, "CALL zonestats.run_rollups()")
	load(3, 2) // not rolled up yet: that partition must stay as it is
	call(t, conn, "CALL zonestats.expire()")

	rows, err := conn.Query(ctx, `SELECT extract(hour FROM now() - tp.from_value)::int, a.amname
		FROM zonestats_internal.time_partitions tp JOIN pg_class c ON c.oid = tp.partition JOIN pg_am a ON a.oid = c.relam
		WHERE tp.parent_table = 'zonestats_internal.raw_events'::regclass AND tp.to_value <= now() - interval '1 hour'`)
	if err != nil {
		t.Fatal(err)
	}
	am := map[int]string{}
	for rows.Next() {
		var h int
		var a string
		rows.Scan(&h, &a)
		am[h] = a
	}
	if am[3] != "columnar" || am[2] != "heap" {
		t.Errorf("access methods by hours ago: %v; want 3 → columnar (rolled up), 2 → heap (not yet)", am)
	}
	call(t, conn, "CALL zonestats.run_rollups()")
	call(t, conn, "CALL zonestats.expire()")
	var n int64
	conn.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events").Scan(&n)
	if n != 15000 {
		t.Errorf("%d raw events after conversion, want 15000", n)
	}
	testenv.CheckRollups(t, conn)
}
