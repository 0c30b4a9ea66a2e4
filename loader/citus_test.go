package loader_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
	"zonestats/internal/pgcluster"
	"zonestats/internal/testenv"
)

// citusOnly skips a test outside the Citus suite (make test-citus).
func citusOnly(t *testing.T) *pgcluster.Citus {
	t.Helper()
	c := testenv.Citus()
	if c == nil {
		t.Skip("Citus-only test: runs in the Citus suite (" + testenv.CitusEnv + "=1, make test-citus)")
	}
	return c
}

// produceAsync produces n more events while the test goes on.
func produceAsync(t *testing.T, brokers []string, cfg gen.Config, n int, rate float64) <-chan error {
	done := make(chan error, 1)
	go func() {
		sent, err := kafkakit.Produce(context.Background(), brokers, topic, gen.New(cfg, n), rate)
		if err == nil && sent != n {
			err = context.DeadlineExceeded
		}
		done <- err
	}()
	return done
}

// waitRebalanced waits for a rebalance job to finish.
func waitRebalanced(t *testing.T, pool *pgxpool.Pool, job int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var state string
		var done, total int
		err := pool.QueryRow(context.Background(),
			"SELECT state, tasks_done, tasks_total FROM zonestats.rebalance_status() WHERE job_id = $1", job).Scan(&state, &done, &total)
		if err != nil {
			t.Fatal(err)
		}
		switch state {
		case "finished":
			t.Logf("rebalance job %d finished: %d of %d moves", job, done, total)
			return
		case "failed", "cancelled", "failing", "cancelling":
			var details string
			pool.QueryRow(context.Background(), "SELECT string_agg(message, '; ') FROM pg_dist_background_task WHERE job_id = $1", job).Scan(&details)
			t.Fatalf("rebalance job %d %s: %s", job, state, details)
		}
		if time.Now().After(deadline) {
			t.Fatalf("rebalance job %d still %s (%d of %d) after %v", job, state, done, total, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// shardNodes counts the nodes holding raw_events shards.
func shardNodes(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(),
		`SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'zonestats_internal.raw_events'::regclass`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// addSpareNode starts another node and prepares the test's database on it.
func addSpareNode(t *testing.T, c *pgcluster.Citus, url string) *pgcluster.Cluster {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.StartNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.PrepareNode(ctx, node, cfg.Database); err != nil {
		t.Fatal(err)
	}
	return node
}

// Scale out: a third worker joins while the loader loads and rollups run;
// shards end up on three nodes and every event is counted exactly once.
func TestCitusScaleOutWhileLoading(t *testing.T) {
	c := citusOnly(t)
	ctx := context.Background()
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 4)
	cfg := genConfig(11)
	cfg.LateShare = 0.05
	produce(t, brokers, cfg, 30000)
	stop := startLoader(t, pool, brokers, 2000)
	waitLoaded(t, pool, brokers, 2*time.Minute)
	if n := shardNodes(t, pool); n != 2 {
		t.Fatalf("raw_events shards on %d nodes before scale-out, want 2", n)
	}

	node := addSpareNode(t, c, url)
	cfg.Seed = 12
	more := produceAsync(t, brokers, cfg, 60000, 20000) // ~3 s of traffic during the moves
	var job int64
	if err := pool.QueryRow(ctx, "SELECT zonestats.add_node('127.0.0.1', $1)", node.Port).Scan(&job); err != nil {
		t.Fatal(err)
	}
	rollups := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 3 && err == nil; i++ {
			_, err = pool.Exec(ctx, "CALL zonestats.run_rollups(true)")
		}
		rollups <- err
	}()
	waitRebalanced(t, pool, job, 3*time.Minute)
	if err := <-more; err != nil {
		t.Fatal(err)
	}
	if err := <-rollups; err != nil {
		t.Fatalf("rollups during the rebalance: %v", err)
	}
	waitLoaded(t, pool, brokers, 2*time.Minute)
	stop()

	if n := shardNodes(t, pool); n != 3 {
		t.Errorf("raw_events shards on %d nodes after add_node, want 3", n)
	}
	checkAllOnce(t, pool, brokers, 90000)
	rollupAndCheck(t, url)
}

// Drain a worker (shards move off, node removed) while loading, then
// isolate the busiest zone into shards of its own; totals stay exact.
func TestCitusDrainNodeAndIsolateZone(t *testing.T) {
	c := citusOnly(t)
	ctx := context.Background()
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 2)
	node := addSpareNode(t, c, url)
	var job *int64
	if err := pool.QueryRow(ctx, "SELECT zonestats.add_node('127.0.0.1', $1)", node.Port).Scan(&job); err != nil {
		t.Fatal(err)
	}
	if job != nil {
		waitRebalanced(t, pool, *job, 3*time.Minute)
	}
	cfg := genConfig(21)
	produce(t, brokers, cfg, 20000)
	stop := startLoader(t, pool, brokers, 2000)
	waitLoaded(t, pool, brokers, 2*time.Minute)

	cfg.Seed = 22
	more := produceAsync(t, brokers, cfg, 40000, 20000)
	if _, err := pool.Exec(ctx, "CALL zonestats.drain_node('127.0.0.1', $1)", node.Port); err != nil {
		t.Fatal(err)
	}
	if err := <-more; err != nil {
		t.Fatal(err)
	}
	var left int
	pool.QueryRow(ctx, "SELECT count(*) FROM pg_dist_node WHERE nodeport = $1", node.Port).Scan(&left)
	if left != 0 {
		t.Errorf("drained node still in pg_dist_node")
	}
	if n := shardNodes(t, pool); n != 2 {
		t.Errorf("raw_events shards on %d nodes after drain_node, want 2", n)
	}

	var zone int64
	pool.QueryRow(ctx, "SELECT zone_id FROM zonestats_internal.raw_events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").Scan(&zone)
	var shard int64
	if err := pool.QueryRow(ctx, "SELECT zonestats.isolate_zone($1)", zone).Scan(&shard); err != nil {
		t.Fatal(err)
	}
	var lo, hi int64
	pool.QueryRow(ctx, "SELECT shardminvalue::bigint, shardmaxvalue::bigint FROM pg_dist_shard WHERE shardid = $1", shard).Scan(&lo, &hi)
	var want int64
	pool.QueryRow(ctx, "SELECT hashint8($1)", zone).Scan(&want)
	if lo != hi || lo != want {
		t.Errorf("zone %d (hash %d) isolated into shard %d with range [%d, %d]", zone, want, shard, lo, hi)
	}
	var colocated int
	pool.QueryRow(ctx, `SELECT count(*) FROM pg_dist_shard WHERE shardminvalue::bigint = $1 AND shardmaxvalue::bigint = $1
		AND logicalrelid = 'zonestats.rollup_1m'::regclass`, want).Scan(&colocated)
	if colocated != 1 {
		t.Errorf("rollup_1m has %d shards for the isolated zone, want 1 (co-located split)", colocated)
	}

	cfg.Seed = 23
	produce(t, brokers, cfg, 10000)
	waitLoaded(t, pool, brokers, 2*time.Minute)
	stop()
	checkAllOnce(t, pool, brokers, 70000)
	rollupAndCheck(t, url)
}
