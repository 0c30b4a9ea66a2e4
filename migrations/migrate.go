// Package migrations applies zonestats' SQL migrations (the numbered files
// beside this one) with tern, under an advisory lock. A migration includes
// the current definition of code objects from sql/ with
// {{ template "sql/functions/NAME.sql" . }}.
package migrations

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"zonestats"
)

// VersionTable records the number of applied migrations.
const VersionTable = "zonestats_internal.schema_version"

// lockKey serialises concurrent `zonestats migrate` runs around tern's own lock.
const lockKey = 7236000

// Migration is one migration and whether it is applied.
type Migration struct {
	Version int32
	Name    string
	Applied bool
}

// source lays the embedded files out as tern expects: migrations at the
// root, shared templates (sql/...) in sub-directories.
func source() (fs.FS, error) {
	m := fstest.MapFS{}
	err := fs.WalkDir(zonestats.SQL, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(zonestats.SQL, p)
		if err != nil {
			return err
		}
		if path.Dir(p) == "migrations" {
			p = path.Base(p)
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o444}
		return nil
	})
	return m, err
}

func newMigrator(ctx context.Context, conn *pgx.Conn, o CitusOptions) (*migrate.Migrator, error) {
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS zonestats_internal"); err != nil {
		return nil, fmt.Errorf("create schema zonestats_internal: %w", err)
	}
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("migrator: %w", err)
	}
	src, err := source()
	if err != nil {
		return nil, err
	}
	// Template data of the migrations (integers only), rendered at load.
	m.Data = map[string]any{"ShardCount": o.ShardCount, "ReplicationFactor": o.ReplicationFactor}
	if err := m.LoadMigrations(src); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return m, nil
}

func withLock(ctx context.Context, conn *pgx.Conn, f func() error) (err error) {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey); err == nil && uerr != nil {
			err = uerr
		}
	}()
	return f()
}

// Up applies every pending migration, in order, each in its own
// transaction. onApply, if not nil, is called before each one. Running it
// again when nothing is pending changes nothing.
func Up(ctx context.Context, conn *pgx.Conn, onApply func(version int32, name string)) error {
	return up(ctx, conn, CitusOptions{}, onApply)
}

func up(ctx context.Context, conn *pgx.Conn, o CitusOptions, onApply func(version int32, name string)) error {
	return withLock(ctx, conn, func() error {
		m, err := newMigrator(ctx, conn, o)
		if err != nil {
			return err
		}
		if onApply != nil {
			m.OnStart = func(seq int32, name, direction, sql string) { onApply(seq, name) }
		}
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
}

// CitusOptions are install-time choices for a Citus cluster, used by the
// migration that distributes the tables (002, so at first install): zero
// keeps Citus' defaults (32 shards, replication factor 1).
type CitusOptions struct {
	ShardCount        int
	ReplicationFactor int
}

// UpWithCitus is Up with Citus install-time options. It fails when o asks
// for something and the database is not a Citus coordinator.
func UpWithCitus(ctx context.Context, conn *pgx.Conn, o CitusOptions, onApply func(version int32, name string)) error {
	if o.ShardCount < 0 || o.ReplicationFactor < 0 {
		return fmt.Errorf("shard count and replication factor must not be negative")
	}
	if o.ShardCount > 0 || o.ReplicationFactor > 0 {
		var citus bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')").Scan(&citus); err != nil {
			return err
		}
		if !citus {
			return fmt.Errorf("shard count and replication factor need Citus: this database has no citus extension")
		}
	}
	return up(ctx, conn, o, onApply)
}

// Status lists every migration and whether it is applied.
func Status(ctx context.Context, conn *pgx.Conn) ([]Migration, error) {
	var out []Migration
	err := withLock(ctx, conn, func() error {
		m, err := newMigrator(ctx, conn, CitusOptions{})
		if err != nil {
			return err
		}
		v, err := m.GetCurrentVersion(ctx)
		if err != nil {
			return err
		}
		for _, mig := range m.Migrations {
			out = append(out, Migration{Version: mig.Sequence, Name: mig.Name, Applied: mig.Sequence <= v})
		}
		return nil
	})
	return out, err
}
