// Package testenv gives tests a real PostgreSQL (one throwaway cluster per
// test binary, a fresh migrated database per test) and a real Kafka-protocol
// broker (kfake). No mocks.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"zonestats/internal/kafkakit"
	"zonestats/internal/pgcluster"
	"zonestats/migrations"
)

var (
	cluster  *pgcluster.Cluster
	template sync.Once
	tmplErr  error
	dbSeq    atomic.Int64
)

// Main starts the package's PostgreSQL cluster, runs the tests, stops it.
// Use it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: cannot start PostgreSQL:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "testenv: PostgreSQL log tail:\n"+c.LogTail(4000))
	}
	c.Stop()
	os.Exit(code)
}

// Cluster is the package's running PostgreSQL cluster.
func Cluster() *pgcluster.Cluster { return cluster }

// NewDB creates a fresh database with every migration applied (cloned from
// a template migrated once) and returns its URL. It is dropped at cleanup.
func NewDB(t testing.TB) string {
	t.Helper()
	if cluster == nil {
		t.Fatal("testenv: no cluster; call testenv.Main from TestMain")
	}
	ctx := context.Background()
	template.Do(func() { tmplErr = makeTemplate(ctx) })
	if tmplErr != nil {
		t.Fatalf("testenv: template database: %v", tmplErr)
	}
	return createDB(t, "zs_test", "TEMPLATE zs_template")
}

// EmptyDB creates a fresh database with nothing applied.
func EmptyDB(t testing.TB) string {
	t.Helper()
	return createDB(t, "zs_empty", "")
}

func createDB(t testing.TB, prefix, options string) string {
	t.Helper()
	name := fmt.Sprintf("%s_%d", prefix, dbSeq.Add(1))
	admin := adminConn(t)
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name+" "+options); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		a := adminConn(t)
		defer a.Close(context.Background())
		a.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return cluster.DSN(name)
}

func makeTemplate(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE zs_template"); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, cluster.DSN("zs_template"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return migrations.Up(ctx, conn, nil)
}

func adminConn(t testing.TB) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), cluster.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// Pool opens a pool on url, closed at cleanup.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Conn opens one connection on url, closed at cleanup.
func Conn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Kafka starts an embedded broker with one topic, closed at cleanup.
func Kafka(t testing.TB, topic string, partitions int, opts ...kfake.Opt) (*kfake.Cluster, []string) {
	t.Helper()
	c, addrs, err := kafkakit.Embedded(topic, partitions, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, addrs
}
