package migrations_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"zonestats/internal/testenv"
	"zonestats/migrations"
)

// schemaSQL describes what a migration leaves beyond code definitions
// (defs): tables and their columns, indexes, row-level security policies,
// and the privileges on every relation, function and schema of zonestats.
const schemaSQL = `SELECT coalesce(string_agg(d, E'\n' ORDER BY d), '') FROM (
	SELECT 'rel ' || c.oid::regclass::text || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity || ' acl=' || coalesce(c.relacl::text, '-') AS d
	FROM pg_class c WHERE c.relnamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace)
	  AND c.relkind IN ('r', 'p', 'v', 'S', 'i', 'I') AND NOT c.relname ~ '_p[0-9]{6}'
	UNION ALL
	SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' acl=' || coalesce(a.attacl::text, '-')
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	WHERE c.relnamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace) AND c.relkind IN ('r', 'p', 'v')
	  AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'idx ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	WHERE c.relnamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace) AND NOT c.relispartition
	UNION ALL
	SELECT 'policy ' || p.polrelid::regclass::text || ' ' || p.polname || ' ' || p.polcmd::text || ' ' ||
	       array_to_string(ARRAY(SELECT rolname FROM pg_roles WHERE oid = ANY (p.polroles) ORDER BY 1), ',') || ' ' ||
	       coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
	FROM pg_policy p
	UNION ALL
	SELECT 'proc ' || p.oid::regprocedure::text || ' definer=' || p.prosecdef || ' acl=' || coalesce(p.proacl::text, '-')
	FROM pg_proc p WHERE p.pronamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace)
	UNION ALL
	SELECT 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '-') FROM pg_namespace n
	WHERE n.nspname IN ('zonestats', 'zonestats_internal', 'public')) x`

// TestUpgradeFromReleased001 migrates a database with migration 001 as
// it was released (testdata: its includes expanded from that release),
// loads and rolls up events with that release's code, then applies the
// pending migrations. The upgraded database must hold exactly what a
// database migrated from zero holds (code, tables, indexes, policies,
// privileges), keep its rollups, answer the new queries exactly and roll
// up new events as zonestats_admin.
func TestUpgradeFromReleased001(t *testing.T) {
	ctx := context.Background()
	released, err := os.ReadFile("testdata/001_foundation_released.sql")
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.EmptyDB(t)
	conn := testenv.Conn(t, url)
	call(t, conn, "BEGIN")
	call(t, conn, string(released))
	// What tern records for a database at version 1.
	call(t, conn, "CREATE TABLE "+migrations.VersionTable+" (version int4 NOT NULL)")
	call(t, conn, "INSERT INTO "+migrations.VersionTable+" VALUES (1)")
	call(t, conn, "COMMIT")
	st, err := migrations.Status(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) < 2 || !st[0].Applied || st[1].Applied {
		t.Fatalf("status before the upgrade: %+v", st)
	}
	insertRaw(t, conn, 20000, 51, 0, 50*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")
	if n := count(t, conn, "SELECT count(*) FROM zonestats.rollup_1m"); n == 0 {
		t.Fatal("no rollups before the upgrade")
	}

	var applied []string
	if err := migrations.Up(ctx, conn, func(_ int32, name string) { applied = append(applied, name) }); err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(st)-1 {
		t.Fatalf("upgrade applied %v", applied)
	}

	// The same database as one migrated from zero.
	fresh := testenv.Conn(t, testenv.NewDB(t))
	for _, q := range []struct{ what, sql string }{{"definitions", defs}, {"schema", schemaSQL}} {
		var up, zero string
		if err := conn.QueryRow(ctx, q.sql).Scan(&up); err != nil {
			t.Fatal(err)
		}
		if err := fresh.QueryRow(ctx, q.sql).Scan(&zero); err != nil {
			t.Fatal(err)
		}
		if testenv.OnCitus() {
			// Citus shards (name_<shard id>) differ between any two databases.
			up, zero = withoutShards(up), withoutShards(zero)
		}
		if up != zero {
			t.Errorf("upgraded and fresh databases differ in %s:\n%s", q.what, lineDiff(up, zero))
		}
	}

	// The old rollups, read by the new queries; then new events, rolled up
	// by the new code as zonestats_admin.
	testenv.CheckRollups(t, conn)
	call(t, conn, "SET timezone = 'UTC'")
	if n := count(t, conn, local(t, conn, `SELECT count(*) FROM zonestats.zone_summary(1, now() - interval '49 hours 13 minutes', now()) s
		WHERE s.requests = (SELECT count(*) FROM zonestats_internal.raw_events
		                    WHERE zone_id = 1 AND ts >= date_trunc('minute', now() - interval '49 hours 13 minutes')
		                      AND ts < date_trunc('minute', now())) AND s.requests > 0`)); n != 1 {
		t.Error("zone_summary after the upgrade differs from the raw events")
	}
	insertRaw(t, conn, 5000, 52, 0, 50*time.Hour)
	admin := testenv.Conn(t, testenv.AsRole(url, testenv.LoginRole(t, "zs_admin", "zonestats_admin")))
	call(t, admin, "CALL zonestats.run_rollups()")
	call(t, admin, "CALL zonestats.expire()")
	if n := testenv.CheckRollups(t, conn); n != 25000 {
		t.Fatalf("raw events = %d", n)
	}
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

var shardName = regexp.MustCompile(`_[0-9]{6,}\b`)

// withoutShards drops the lines that name a Citus shard.
func withoutShards(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !shardName.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
