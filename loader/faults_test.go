package loader_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"zonestats/internal/testenv"
)

// PostgreSQL restarted twice (fast, then immediate: a crash) while the
// loader loads and run_rollups runs: the loader reconnects with backoff by
// itself, rollups resume, and every event is counted exactly once.
func TestLoaderAndRollupsSurvivePostgresRestarts(t *testing.T) {
	if testenv.OnCitus() {
		t.Skip("plain PostgreSQL: restarts the package's only server")
	}
	ctx := context.Background()
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 3)
	cfg := genConfig(31)
	cfg.LateShare = 0.05
	more := produceAsync(t, brokers, cfg, 90000, 15000) // ~6 s of traffic
	stop := startLoader(t, pool, brokers, 1000)

	var rollups, rollupErrors atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-more:
				return
			default:
			}
			if _, err := pool.Exec(ctx, "CALL zonestats.run_rollups(true)"); err != nil {
				rollupErrors.Add(1) // the server went away under it: the next call goes on
				time.Sleep(200 * time.Millisecond)
			} else {
				rollups.Add(1)
			}
		}
	}()
	for _, mode := range []string{"fast", "immediate"} {
		waitSome(t, pool, map[string]int64{"fast": 15000, "immediate": 45000}[mode])
		if err := testenv.Cluster().Restart(ctx, mode); err != nil {
			t.Fatalf("restart (%s): %v", mode, err)
		}
		t.Logf("PostgreSQL restarted (%s)", mode)
	}
	<-done
	waitLoaded(t, pool, brokers, 2*time.Minute)
	stop()
	t.Logf("rollup runs: %d completed, %d cut by a restart", rollups.Load(), rollupErrors.Load())
	if rollups.Load() == 0 {
		t.Error("no rollup run completed")
	}
	events, dead := checkExactlyOnce(t, pool, brokers)
	if events+dead != 90000 {
		t.Errorf("%d events + %d dead letters, produced 90000", events, dead)
	}
	rollupAndCheck(t, url)
}

// An event the decoder accepts but the database refuses (here: a CHECK
// constraint an operator added) goes to the dead letters with the
// database's reason; the rest of its batch loads, nothing is retried
// forever, and every message is accounted for exactly once.
func TestEventsTheDatabaseRefusesAreDeadLettered(t *testing.T) {
	if testenv.OnCitus() {
		t.Skip("plain PostgreSQL: Citus reports a shard's COPY error without the row")
	}
	ctx := context.Background()
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	if _, err := pool.Exec(ctx, `ALTER TABLE zonestats_internal.raw_events ADD CONSTRAINT refuse_zone_13 CHECK (zone_id <> 13)`); err != nil {
		t.Fatal(err)
	}
	_, brokers := testenv.Kafka(t, topic, 2)
	produce(t, brokers, genConfig(41), 20000)
	stop := startLoader(t, pool, brokers, 2000)
	waitLoaded(t, pool, brokers, 2*time.Minute)
	stop()

	events, dead := checkExactlyOnce(t, pool, brokers)
	var refused, zone13, zone13raw int64
	pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE convert_from(payload, 'UTF8')::json->>'zone_id' = '13')
		FROM zonestats.dead_letters WHERE reason LIKE 'refused by the database: %refuse_zone_13%(SQLSTATE 23514)'`).Scan(&refused, &zone13)
	pool.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events WHERE zone_id = 13").Scan(&zone13raw)
	t.Logf("%d events, %d dead letters, %d refused by the database", events, dead, refused)
	if refused == 0 || zone13 != refused || zone13raw != 0 || events+dead != 20000 {
		t.Errorf("refused %d (zone 13 in payload: %d), zone 13 raw events %d, events %d + dead %d of 20000",
			refused, zone13, zone13raw, events, dead)
	}
}
