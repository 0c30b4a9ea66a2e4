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
	citus    *pgcluster.Citus
	template sync.Once
	tmplErr  error
	dbSeq    atomic.Int64
)

// CitusEnv is the environment variable that runs the tests on a Citus
// cluster (a coordinator and two workers) instead of one PostgreSQL server:
// ZONESTATS_TEST_CITUS=1. `make test-citus` sets it.
const CitusEnv = "ZONESTATS_TEST_CITUS"

// OnCitus reports whether the tests run on a Citus cluster.
func OnCitus() bool { return os.Getenv(CitusEnv) == "1" }

// Main starts the package's PostgreSQL cluster (or Citus cluster, see
// CitusEnv), runs the tests, stops it. Use it from TestMain:
// func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	if OnCitus() {
		if err = pgcluster.CitusInstalled(""); err == nil {
			citus, err = pgcluster.StartCitus(ctx, 2, pgcluster.Options{Settings: CitusTestSettings()})
		}
		if citus != nil {
			cluster = citus.Coordinator
		}
	} else {
		cluster, err = pgcluster.Start(ctx, pgcluster.Options{})
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: cannot start PostgreSQL:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "testenv: PostgreSQL log tail:\n"+cluster.LogTail(4000))
		if citus != nil {
			for i, w := range citus.Workers {
				fmt.Fprintf(os.Stderr, "testenv: worker %d log tail:\n%s\n", i+1, w.LogTail(2000))
			}
		}
	}
	if citus != nil {
		citus.Stop()
	} else {
		cluster.Stop()
	}
	os.Exit(code)
}

// CitusTestSettings are the extra settings of test Citus nodes: fewer
// shards than the default 32 keep per-test databases quick to create.
func CitusTestSettings() map[string]string {
	return map[string]string{"citus.shard_count": "8"}
}

// Cluster is the package's running PostgreSQL cluster (on Citus: the
// coordinator).
func Cluster() *pgcluster.Cluster { return cluster }

// Citus is the package's Citus cluster, nil unless OnCitus.
func Citus() *pgcluster.Citus { return citus }

// NewDB creates a fresh database with every migration applied (cloned from
// a template migrated once) and returns its URL. It is dropped at cleanup.
func NewDB(t testing.TB) string {
	t.Helper()
	if cluster == nil {
		t.Fatal("testenv: no cluster; call testenv.Main from TestMain")
	}
	ctx := context.Background()
	if citus != nil {
		// Citus keeps metadata per database on every node: no templates.
		url := createDB(t, "zs_test", "")
		conn := Conn(t, url)
		if err := migrations.Up(ctx, conn, nil); err != nil {
			t.Fatalf("testenv: migrate on Citus: %v", err)
		}
		conn.Close(ctx)
		return url
	}
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
	if citus != nil {
		ctx := context.Background()
		t.Cleanup(func() {
			if err := citus.DropDatabase(context.Background(), name); err != nil {
				t.Logf("drop database: %v", err)
			}
		})
		if err := citus.CreateDatabase(ctx, name); err != nil {
			t.Fatalf("create database on Citus: %v", err)
		}
		return cluster.DSN(name)
	}
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
