package migrations_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"zonestats/internal/testenv"
)

// insertRaw writes n synthetic raw events straight into raw_events (as the
// loader's COPY would), with event times spread over [now-maxAge, now-minAge].
func insertRaw(t testing.TB, conn interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, n int, seed int, minAge, maxAge time.Duration) {
	t.Helper()
	_, err := conn.Exec(context.Background(), `
		INSERT INTO zonestats_internal.raw_events (ts, zone_id, client_ip, country, colo, method, status, content_type,
			bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset)
		SELECT now() - make_interval(secs => $3::float8 + abs(h % 1000000) / 1000000.0 * ($4::float8 - $3::float8)),
			1 + (abs(h) % 37) * (abs(h) % 3),
			CASE WHEN h % 5 = 0 THEN ('2001:db8::' || to_hex(abs(h) % 5000))::inet
			     ELSE ('198.51.' || (abs(h) % 7) || '.' || (abs(h >> 8) % 250))::inet END,
			(ARRAY['US','DE','GB','FR','IN','BR'])[1 + abs(h >> 3) % 6],
			(ARRAY['SFO','AMS','FRA','NRT'])[1 + abs(h >> 5) % 4],
			'GET',
			(ARRAY[200,200,200,304,404,500])[1 + abs(h >> 7) % 6],
			(ARRAY['html','css','js','png'])[1 + abs(h >> 9) % 4],
			abs(h >> 11) % 100000,
			(ARRAY['hit','miss','stale','dynamic'])[1 + abs(h >> 13) % 4],
			(ARRAY['TLSv1.3','TLSv1.2','none'])[1 + abs(h >> 15) % 3],
			(ARRAY['clean','clean','searchEngine','tor'])[1 + abs(h >> 17) % 4],
			CASE WHEN abs(h >> 19) % 40 = 0 THEN (ARRAY['sqli','xss'])[1 + abs(h >> 21) % 2] ELSE '' END,
			abs(h >> 23) % 3 = 0,
			(ARRAY['Chrome','Safari','Firefox'])[1 + abs(h >> 25) % 3],
			0, i
		FROM (SELECT i, hashint8(i::bigint * 7919 + $2) AS h FROM generate_series(1, $1) i) g`,
		n, seed, minAge.Seconds(), maxAge.Seconds())
	if err != nil {
		t.Fatalf("insert raw: %v", err)
	}
}

func call(t testing.TB, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// snapshot is a digest of every rollup row, to prove a re-run adds nothing.
func snapshot(t testing.TB, conn *pgx.Conn) string {
	t.Helper()
	var s string
	err := conn.QueryRow(context.Background(), `SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
		SELECT r::text AS x FROM zonestats.rollup_1m r UNION ALL SELECT r::text FROM zonestats.rollup_1h r
		UNION ALL SELECT r::text FROM zonestats.rollup_1d r) y`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRollupsExactAtEveryLevel(t *testing.T) {
	conn := testenv.Conn(t, testenv.NewDB(t))
	insertRaw(t, conn, 30000, 1, 0, 3*time.Hour)
	// Small chunks: the run commits many times and must still be exact.
	call(t, conn, "UPDATE zonestats.settings SET rollup_chunk_events = 7000")
	call(t, conn, "CALL zonestats.run_rollups()")
	if n := testenv.CheckRollups(t, conn); n != 30000 {
		t.Fatalf("raw events = %d", n)
	}
}

func TestLateEventsMergeIntoOldBucketsAndReRunAddsNothing(t *testing.T) {
	conn := testenv.Conn(t, testenv.NewDB(t))
	insertRaw(t, conn, 20000, 2, 0, 2*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")
	testenv.CheckRollups(t, conn)

	// Late events: hours and days old, into buckets that already exist.
	insertRaw(t, conn, 3000, 3, 0, 2*time.Hour)
	insertRaw(t, conn, 2000, 4, 5*time.Hour, 6*time.Hour)
	insertRaw(t, conn, 1000, 5, 49*time.Hour, 50*time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")
	if n := testenv.CheckRollups(t, conn); n != 26000 {
		t.Fatalf("raw events = %d", n)
	}
	before := snapshot(t, conn)
	call(t, conn, "CALL zonestats.run_rollups()")
	call(t, conn, "CALL zonestats.run_rollups()")
	if after := snapshot(t, conn); after != before {
		t.Fatal("re-running run_rollups changed the rollups")
	}
}

// TestConcurrentCopyAndRollups loads with COPY from several connections
// while two callers run run_rollups in a loop; at the end every event is
// counted exactly once.
func TestConcurrentCopyAndRollups(t *testing.T) {
	url := testenv.NewDB(t)
	ctx := context.Background()
	const writers, batches, perBatch = 3, 15, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			for b := 0; b < batches; b++ {
				tx, err := conn.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				insertRaw(t, tx, perBatch, w*1000+b, 0, 90*time.Minute)
				time.Sleep(time.Duration(b%3) * 20 * time.Millisecond) // hold the transaction open a while
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	var rollers sync.WaitGroup
	runs := make([]int, 2)
	for r := 0; r < 2; r++ {
		rollers.Add(1)
		go func(r int) {
			defer rollers.Done()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := conn.Exec(ctx, "CALL zonestats.run_rollups()"); err != nil {
					errs <- fmt.Errorf("run_rollups: %w", err)
					return
				}
				runs[r]++
			}
		}(r)
	}
	wg.Wait()
	close(stop)
	rollers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	conn := testenv.Conn(t, url)
	call(t, conn, "CALL zonestats.run_rollups(true)")
	if n := testenv.CheckRollups(t, conn); n != writers*batches*perBatch {
		t.Fatalf("raw events = %d, want %d", n, writers*batches*perBatch)
	}
	t.Logf("rollup runs during the load: %v", runs)
	if runs[0]+runs[1] < 3 {
		t.Errorf("only %v rollup runs overlapped the load; the test proves little", runs)
	}
}

func TestRunRollupsReturnsOrWaitsWhenAnotherRunHoldsTheLock(t *testing.T) {
	url := testenv.NewDB(t)
	ctx := context.Background()
	holder := testenv.Conn(t, url)
	insertRaw(t, holder, 1000, 6, 0, time.Hour)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7236001)"); err != nil {
		t.Fatal(err)
	}
	var notices []string
	cfg, _ := pgx.ParseConfig(url)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	other, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	call(t, other, "CALL zonestats.run_rollups()")
	if len(notices) != 1 || notices[0] != "zonestats.run_rollups: another run is in progress; nothing to do here" {
		t.Fatalf("notices = %q", notices)
	}
	var rolled int64
	other.QueryRow(ctx, "SELECT last_event_id FROM zonestats_internal.rollup_state").Scan(&rolled)
	if rolled != 0 {
		t.Fatalf("a run went ahead while the lock was held: bookmark %d", rolled)
	}

	done := make(chan error, 1)
	go func() { _, err := other.Exec(ctx, "CALL zonestats.run_rollups(true)"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("run_rollups(true) returned while the lock was held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	tx.Commit(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testenv.CheckRollups(t, holder)
}

func TestHLLSettingsFixedOnceRollupsExist(t *testing.T) {
	conn := testenv.Conn(t, testenv.NewDB(t))
	call(t, conn, "UPDATE zonestats.settings SET hll_log2m = 12")
	insertRaw(t, conn, 500, 7, 0, time.Hour)
	call(t, conn, "CALL zonestats.run_rollups()")
	testenv.CheckRollups(t, conn)
	if _, err := conn.Exec(context.Background(), "UPDATE zonestats.settings SET hll_log2m = 14"); err == nil {
		t.Fatal("changing hll_log2m with rollups present succeeded")
	}
	var log2m int
	conn.QueryRow(context.Background(), "SELECT hll_log2m FROM zonestats.settings").Scan(&log2m)
	if log2m != 12 {
		t.Fatalf("hll_log2m = %d", log2m)
	}
}
