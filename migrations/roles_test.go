package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"zonestats/internal/testenv"
)

// refused asserts that each statement fails with permission denied (or
// row-level security's refusal) for conn's role.
func refused(t *testing.T, conn *pgx.Conn, who string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := conn.Exec(context.Background(), s)
		if err == nil {
			t.Errorf("%s may: %s", who, s)
		} else if msg := err.Error(); !strings.Contains(msg, "permission denied") && !strings.Contains(msg, "must be owner") &&
			!strings.Contains(msg, "row-level security") {
			t.Errorf("%s: %s: %v, want permission denied", who, s, err)
		}
	}
}

// allowed asserts that each statement succeeds for conn's role.
func allowed(t *testing.T, conn *pgx.Conn, who string, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Errorf("%s: %s: %v", who, s, err)
		}
	}
}

func count(t *testing.T, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestRolesLeastPrivilege runs the rollups and retention as a member of
// zonestats_admin and reads as a member of zonestats_reader, and shows
// what each is refused. (The loader's role: loader/roles_test.go.)
func TestRolesLeastPrivilege(t *testing.T) {
	url := testenv.NewDB(t)
	super := testenv.Conn(t, url)
	admin := testenv.Conn(t, testenv.AsRole(url, testenv.LoginRole(t, "zs_admin", "zonestats_admin")))
	reader := testenv.Conn(t, testenv.AsRole(url, testenv.LoginRole(t, "zs_reader", "zonestats_reader")))
	insertRaw(t, super, 20000, 41, 0, 30*time.Hour)

	allowed(t, admin, "admin",
		"UPDATE zonestats.settings SET rollup_chunk_events = 7000",
		"CALL zonestats.run_rollups()",
		"CALL zonestats.run_rollups(true)",
		"CALL zonestats.expire()",
		"INSERT INTO zonestats.tenant_zones VALUES ('someone', 1)",
		"DELETE FROM zonestats.tenant_zones WHERE role_name = 'someone'",
		"SELECT count(*) FROM zonestats.dead_letters",
		"SELECT * FROM zonestats_internal.kafka_offsets",
		"SELECT * FROM zonestats.zone_summary(1, now() - interval '1 day', now())")
	if n := testenv.CheckRollups(t, super); n != 20000 {
		t.Fatalf("raw events = %d", n)
	}
	// What the admin cannot do: load, write rollups, drop or empty tables,
	// and drop anything through the function expire uses.
	refused(t, admin, "admin",
		"INSERT INTO zonestats_internal.raw_events (ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset) VALUES (now(), 1, '1.2.3.4', 'US', 'SFO', 'GET', 200, 'html', 1, 'hit', 'none', 'clean', '', true, 'x', 0, 0)",
		"SELECT count(*) FROM zonestats_internal.raw_events",
		"UPDATE zonestats.rollup_1h SET requests = 0",
		"TRUNCATE zonestats.rollup_1d",
		"TRUNCATE zonestats_internal.rollup_delta",
		"DROP TABLE zonestats.rollup_1m_default",
		"SELECT zonestats_internal.create_time_partitions('zonestats.rollup_1m', 'day', now(), now() + interval '30 days')",
		"UPDATE zonestats_internal.rollup_state SET last_event_id = 0")
	for _, rel := range []string{"zonestats.settings", "zonestats.rollup_1d", "zonestats_internal.raw_events"} {
		var res string
		if err := admin.QueryRow(context.Background(), "SELECT zonestats_internal.expire_partition($1::regclass)", rel).Scan(&res); err != nil || res != "kept" {
			t.Errorf("expire_partition(%s) as admin = %q, %v; want kept", rel, res, err)
		}
	}
	if n := count(t, super, "SELECT count(*) FROM zonestats.settings"); n != 1 {
		t.Fatal("settings gone")
	}

	// The reader reads every zone through tables, views and functions,
	// and nothing else.
	for _, q := range []string{
		"SELECT count(*) FROM zonestats.rollup_1m",
		"SELECT count(*) FROM zonestats.rollup_1h",
		"SELECT count(*) FROM zonestats.traffic_daily",
		"SELECT count(*) FROM zonestats.country_daily",
		"SELECT sum(requests)::bigint FROM zonestats.zone_timeseries(1, now() - interval '2 days', now())",
		"SELECT requests FROM zonestats.zone_summary(2, now() - interval '2 days', now())",
	} {
		if got, want := count(t, reader, q), count(t, super, q); got != want || want == 0 {
			t.Errorf("reader: %s = %d, superuser %d", q, got, want)
		}
	}
	refused(t, reader, "reader",
		"SELECT count(*) FROM zonestats_internal.raw_events",
		"SELECT client_ip FROM zonestats_internal.raw_events_default",
		"SELECT count(*) FROM zonestats.dead_letters",
		"SELECT count(*) FROM zonestats_internal.kafka_offsets",
		"SELECT count(*) FROM zonestats.rollup_1m_default",
		"INSERT INTO zonestats.rollup_1d (zone_id, bucket, uniques) VALUES (1, now(), hll_empty())",
		"DELETE FROM zonestats.rollup_1m",
		"UPDATE zonestats.settings SET raw_retention = '1 day'",
		"INSERT INTO zonestats.tenant_zones VALUES (current_user, 1)",
		"CALL zonestats.run_rollups()",
		"CALL zonestats.expire()",
		"SELECT zonestats_internal.maintain_partitions()",
		"SELECT zonestats_internal.rollup_events(1000000)",
		"SELECT zonestats_internal.rollup_window()",
		"SELECT zonestats_internal.expire_default_rows()")
	// A user in no zonestats role sees nothing at all.
	nobody := testenv.Conn(t, testenv.AsRole(url, testenv.LoginRole(t, "zs_nobody")))
	refused(t, nobody, "a role outside zonestats",
		"SELECT count(*) FROM zonestats.rollup_1h",
		"SELECT * FROM zonestats.zone_summary(1, now() - interval '1 day', now())",
		"SELECT count(*) FROM zonestats.traffic_hourly")
}

// TestTenantsSeeOnlyTheirZones maps two tenants (one with quotes in its
// role name) to zones and checks, through every table and view in schema
// zonestats they may read and every query function, that each sees its
// zones completely and no other zone at all, and cannot write.
func TestTenantsSeeOnlyTheirZones(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDB(t)
	super := testenv.Conn(t, url)
	insertRaw(t, super, 20000, 42, 0, 50*time.Hour)
	call(t, super, "CALL zonestats.run_rollups()")

	a := testenv.LoginRole(t, "tenant_a", "zonestats_tenant")
	b := testenv.LoginRole(t, `o'brien"; DROP TABLE zonestats.settings; --`, "zonestats_tenant")
	own := map[string][]int64{a: {1, 3}, b: {2}}
	for role, zones := range own {
		for _, z := range zones {
			if _, err := super.Exec(ctx, "INSERT INTO zonestats.tenant_zones VALUES ($1, $2)", role, z); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every relation of schema zonestats with a zone_id column.
	rows, err := super.Query(ctx, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE c.relnamespace = 'zonestats'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
		  AND a.attname = 'zone_id' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	relations, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(relations) < 13 {
		t.Fatalf("only %d relations with zone_id: %v", len(relations), relations)
	}
	for role, zones := range own {
		conn := testenv.Conn(t, testenv.AsRole(url, role))
		var readable int
		for _, rel := range relations {
			var may bool
			conn.QueryRow(ctx, "SELECT has_table_privilege($1, 'SELECT')", rel).Scan(&may)
			if !may {
				continue
			}
			readable++
			q := "SELECT count(*) FILTER (WHERE zone_id <> ALL ($1)), count(*) FILTER (WHERE zone_id = ANY ($1)) FROM " + rel
			var foreign, mine, want int64
			if err := conn.QueryRow(ctx, q, zones).Scan(&foreign, &mine); err != nil {
				t.Fatalf("%s: %s: %v", role, rel, err)
			}
			super.QueryRow(ctx, "SELECT count(*) FROM "+rel+" WHERE zone_id = ANY ($1)", zones).Scan(&want)
			if foreign != 0 || mine != want {
				t.Errorf("tenant %s: %s shows %d rows of other zones, %d of its own (all: %d)", role, rel, foreign, mine, want)
			}
		}
		if readable < 12 {
			t.Errorf("tenant %s may read only %d of %v", role, readable, relations)
		}
		// Functions: its zones as the superuser sees them, other zones empty.
		for z := int64(1); z <= 4; z++ {
			mineZone := z == zones[0] || (len(zones) > 1 && z == zones[1])
			for _, q := range []string{
				"SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.zone_timeseries($1, now() - interval '3 days', now())",
				"SELECT coalesce(sum(uniques), 0)::bigint FROM zonestats.zone_timeseries($1, now() - interval '3 days', now(), '1 hour')",
				"SELECT requests + uniques + array_length(akeys(requests_by_country), 1) FROM zonestats.zone_summary($1, now() - interval '3 days', now())",
				"SELECT count(*) FROM zonestats.zone_top($1, now() - interval '3 days', now(), 'requests_by_colo')",
			} {
				var got, want *int64
				conn.QueryRow(ctx, q, z).Scan(&got)
				super.QueryRow(ctx, q, z).Scan(&want)
				if want == nil || *want == 0 {
					t.Fatalf("zone %d has no traffic: %s", z, q)
				}
				switch {
				case mineZone && (got == nil || *got != *want):
					t.Errorf("tenant %s, own zone %d: %s = %v, superuser %d", role, z, q, got, *want)
				case !mineZone && got != nil && *got != 0:
					t.Errorf("tenant %s, zone %d of another tenant: %s = %d", role, z, q, *got)
				}
			}
		}
		if n := count(t, conn, "SELECT count(*) FROM zonestats.tenant_zones WHERE role_name <> current_user"); n != 0 {
			t.Errorf("tenant %s sees %d mappings of other tenants", role, n)
		}
		refused(t, conn, "tenant "+role,
			"INSERT INTO zonestats.tenant_zones VALUES (current_user, 4)",
			"UPDATE zonestats.tenant_zones SET zone_id = 4",
			"DELETE FROM zonestats.tenant_zones",
			"INSERT INTO zonestats.rollup_1m (zone_id, bucket, uniques) VALUES (1, now(), hll_empty())",
			"UPDATE zonestats.rollup_1h SET requests = 0",
			"DELETE FROM zonestats.rollup_1d",
			"SELECT count(*) FROM zonestats.rollup_1m_default",
			"SELECT count(*) FROM zonestats.rollup_1h_default",
			"SELECT count(*) FROM zonestats_internal.raw_events",
			"SELECT count(*) FROM zonestats.dead_letters",
			"UPDATE zonestats.settings SET minute_retention = '1 hour'",
			"CALL zonestats.run_rollups()",
			"CALL zonestats.expire()",
			"SELECT zonestats_internal.maintain_partitions()",
			"SELECT zonestats_internal.rollup_events(1)",
			"SELECT zonestats_internal.expire_partition('zonestats.settings')",
			"SET ROLE zonestats_reader")
		// A partition of a rollup table, named directly.
		var part string
		super.QueryRow(ctx, "SELECT partition::text FROM zonestats_internal.time_partitions WHERE parent_table = 'zonestats.rollup_1m'::regclass LIMIT 1").Scan(&part)
		refused(t, conn, "tenant "+role, "SELECT count(*) FROM "+part)
	}
	// A mapping takes effect at once.
	c := testenv.Conn(t, testenv.AsRole(url, a))
	before := count(t, c, "SELECT count(*) FROM zonestats.rollup_1h")
	call(t, super, fmt.Sprintf("INSERT INTO zonestats.tenant_zones VALUES (%s, 4)", quoteLiteral(a)))
	if after := count(t, c, "SELECT count(*) FROM zonestats.rollup_1h"); after <= before {
		t.Errorf("tenant %s after zone 4 was mapped: %d hour rows, before %d", a, after, before)
	}
	if n := count(t, super, "SELECT count(*) FROM zonestats.settings"); n != 1 {
		t.Fatal("settings gone")
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestSecurityDefinerFunctionsCannotBeHijacked: every SECURITY DEFINER
// function pins search_path (pg_catalog first, pg_temp last) and is not
// executable by PUBLIC; nothing internal is; a tenant cannot create
// objects in the schemas the functions resolve names in, and objects it
// creates in its temporary schema change nothing.
func TestSecurityDefinerFunctionsCannotBeHijacked(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDB(t)
	super := testenv.Conn(t, url)
	rows, err := super.Query(ctx, `SELECT p.oid::regprocedure::text, p.prosecdef,
		coalesce((SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'), ''),
		has_function_privilege('public', p.oid, 'EXECUTE')
		FROM pg_proc p WHERE p.pronamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace)`)
	if err != nil {
		t.Fatal(err)
	}
	definers := 0
	for rows.Next() {
		var name, path string
		var definer, public bool
		if err := rows.Scan(&name, &definer, &path, &public); err != nil {
			t.Fatal(err)
		}
		internal := strings.HasPrefix(name, "zonestats_internal.")
		if definer {
			definers++
			if !strings.HasPrefix(path, "search_path=pg_catalog") || !strings.HasSuffix(path, "pg_temp") {
				t.Errorf("%s is SECURITY DEFINER with %q", name, path)
			}
		}
		if public && (definer || internal || strings.HasPrefix(name, "zonestats.run_rollups") || strings.HasPrefix(name, "zonestats.expire")) {
			t.Errorf("PUBLIC may execute %s", name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if definers < 5 {
		t.Fatalf("only %d SECURITY DEFINER functions found", definers)
	}

	insertRaw(t, super, 5000, 43, 0, 30*time.Hour)
	call(t, super, "CALL zonestats.run_rollups()")
	tenant := testenv.LoginRole(t, "tenant_h", "zonestats_tenant")
	call(t, super, fmt.Sprintf("INSERT INTO zonestats.tenant_zones VALUES (%s, 1)", quoteLiteral(tenant)))
	conn := testenv.Conn(t, testenv.AsRole(url, tenant))
	const probe = `SELECT (SELECT sum(requests) + sum(uniques) FROM zonestats.zone_timeseries(1, now() - interval '2 days', now(), '1 hour'))
		+ (SELECT requests + uniques FROM zonestats.zone_summary(1, now() - interval '2 days', now()))
		+ (SELECT sum(value) FROM zonestats.zone_top(1, now() - interval '2 days', now(), 'requests_by_status'))`
	before := count(t, conn, probe)
	if before == 0 {
		t.Fatal("no traffic to probe")
	}
	refused(t, conn, "tenant",
		"CREATE FUNCTION public.hll_cardinality(public.hll) RETURNS float8 LANGUAGE sql AS 'SELECT 0::float8'",
		"CREATE TABLE public.settings (x int)",
		"CREATE FUNCTION zonestats.top(public.hstore, bigint) RETURNS TABLE (key text, value bigint) LANGUAGE sql AS 'SELECT NULL::text, 0::bigint'",
		"CREATE VIEW zonestats_internal.time_partitions_x AS SELECT 1")
	// Shadows in the temporary schema: functions there are never found
	// unqualified; tables there come after every other schema.
	allowed(t, conn, "tenant",
		"CREATE FUNCTION pg_temp.hll_cardinality(public.hll) RETURNS float8 LANGUAGE sql AS 'SELECT 0::float8'",
		"CREATE FUNCTION pg_temp.date_bin(interval, timestamptz, timestamptz) RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'",
		"CREATE TEMP TABLE settings (minute_retention interval)",
		"CREATE TEMP TABLE rollup_1h AS SELECT * FROM zonestats.rollup_1h LIMIT 0",
		"CREATE TEMP TABLE tenant_zones (role_name name, zone_id bigint)",
		"INSERT INTO pg_temp.tenant_zones SELECT current_user, g FROM generate_series(1, 100) g",
		"SET search_path = pg_temp, public, zonestats")
	if after := count(t, conn, probe); after != before {
		t.Errorf("temporary shadows changed the answer: %d, before %d", after, before)
	}
	if n := count(t, conn, "SELECT count(*) FROM zonestats.rollup_1h WHERE zone_id <> 1"); n != 0 {
		t.Errorf("tenant sees %d rows of other zones after shadowing tenant_zones", n)
	}
}
