package migrations_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"zonestats"
	"zonestats/internal/testenv"
	"zonestats/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrateUpTwiceIsNoOpAndStatus(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.EmptyDB(t))

	st, err := migrations.Status(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) == 0 {
		t.Fatal("no migrations found")
	}
	for _, m := range st {
		if m.Applied {
			t.Errorf("fresh database: %s reported applied", m.Name)
		}
	}

	var applied []string
	if err := migrations.Up(ctx, conn, func(v int32, name string) { applied = append(applied, name) }); err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(st) {
		t.Fatalf("first up applied %v, want all %d", applied, len(st))
	}
	applied = nil
	if err := migrations.Up(ctx, conn, func(v int32, name string) { applied = append(applied, name) }); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second up applied %v, want none", applied)
	}
	st, err = migrations.Status(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("after up: %s reported pending", m.Name)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM zonestats.settings").Scan(&n); err != nil || n != 1 {
		t.Fatalf("settings rows = %d, %v", n, err)
	}
}

// defs lists the functions, procedures and views of zonestats' schemas
// with a digest of their definitions.
const defs = `SELECT coalesce(string_agg(d, E'\n' ORDER BY d), '') FROM (
	SELECT p.oid::regprocedure::text || ' ' || md5(CASE WHEN p.prokind = 'a' THEN (SELECT row(a.aggkind, a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
		a.aggserialfn, a.aggdeserialfn, a.aggtranstype::regtype, a.aggtransspace)::text FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
		ELSE pg_get_functiondef(p.oid) END) AS d
	FROM pg_proc p WHERE p.pronamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace)
	UNION ALL
	SELECT c.oid::regclass::text || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c
	WHERE c.relkind = 'v' AND c.relnamespace IN ('zonestats'::regnamespace, 'zonestats_internal'::regnamespace)) x`

// TestDatabaseHoldsWhatSQLDirDefines proves that a database migrated from
// zero holds exactly the current definitions in sql/: re-running every
// sql/ file changes no function, procedure or view.
func TestDatabaseHoldsWhatSQLDirDefines(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	var before, after string
	if err := conn.QueryRow(ctx, defs).Scan(&before); err != nil {
		t.Fatal(err)
	}
	var files int
	err := fs.WalkDir(zonestats.SQL, "sql", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(zonestats.SQL, p)
		if err != nil {
			return err
		}
		files++
		if _, err := conn.Exec(ctx, string(body)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		name := strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], ".sql")
		if !strings.Contains(before, "."+name) {
			t.Errorf("%s: no object named %s in the migrated database", p, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, defs).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if before != after {
		t.Errorf("re-applying sql/ changed definitions:\nmigrated:\n%s\nsql/:\n%s", before, after)
	}
	t.Logf("%d files in sql/ match the migrated database", files)
}
