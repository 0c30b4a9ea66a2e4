package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"zonestats/loader"
)

// rawColumns are the columns the loader writes into raw_events.
var rawColumns = loader.RawColumns()

// rawRow fills row with one event as the loader COPYs it.
func rawRow(row []any, e *loader.Event, partition int32, offset int64) {
	row[0], row[1], row[2], row[3], row[4], row[5] = e.TS, e.ZoneID, e.ClientIP, e.Country, e.Colo, e.Method
	row[6], row[7], row[8], row[9], row[10] = e.Status, e.ContentType, e.Bytes, e.CacheStatus, e.SSLProtocol
	row[11], row[12], row[13], row[14] = e.IPClass, e.Threat, e.PageView, e.Browser
	row[15], row[16] = partition, offset
}

// ---- decode_json_ns, decode_capnp_ns ----

// runDecode times loader.JSONDecoder.Decode and loader.CapnpDecoder.Decode
// over the same generated events (JSON and Cap'n Proto messages) on one
// goroutine, side by side: passes alternate between the two decoders
// (several passes in quick mode, at least 1,000,000 decodes each).
func runDecode(ctx context.Context, e *env, r *runState) error {
	decoders := []struct {
		key  string
		dec  loader.Decoder
		msgs *corpus
	}{
		{"decode_json_ns", &loader.JSONDecoder{}, &e.msgs},
		{"decode_capnp_ns", &loader.CapnpDecoder{}, &e.capnp},
	}
	var ev loader.Event
	passes := max(1, (1_000_000+e.n-1)/e.n)
	spent := make([]time.Duration, len(decoders))
	mallocs := make([]uint64, len(decoders))
	var ms runtime.MemStats
	for p := 0; p < passes; p++ {
		for k, d := range decoders {
			runtime.ReadMemStats(&ms)
			m0 := ms.Mallocs
			t0 := time.Now()
			for i := 0; i < d.msgs.len(); i++ {
				if err := d.dec.Decode(d.msgs.at(i), &ev); err != nil {
					return err
				}
			}
			spent[k] += time.Since(t0)
			runtime.ReadMemStats(&ms)
			mallocs[k] += ms.Mallocs - m0
		}
	}
	for k, d := range decoders {
		r.set(d.key, float64(spent[k].Nanoseconds())/float64(passes*e.n))
		progress("run %d/%d  %-26s %.4f allocs/event", r.i, r.of, d.key, float64(mallocs[k])/float64(passes*e.n))
	}
	return nil
}

// ---- copy_ceiling_eps ----

// runCopyCeiling COPYs the pre-decoded events into raw_events the way the
// loader does (straight into the raw partition of the hour, where there is
// one): two connections, each copying its half in transactions of 20,000
// rows, the rows encoded in the binary COPY format before the clock starts
// (with the loader's own encoder). No Kafka, no decoding, no offset
// bookkeeping: the database's ceiling for the loader.
func runCopyCeiling(ctx context.Context, e *env, r *runState) error {
	events, err := e.decodeAll()
	if err != nil {
		return err
	}
	url, drop, err := e.newDB(ctx, "copy")
	if err != nil {
		return err
	}
	defer drop()
	// Pre-encode every transaction's rows, per worker half as inParallel splits them.
	encoded := make([][][]byte, sqlConns)
	for w := range encoded {
		part := events[w*len(events)/sqlConns : (w+1)*len(events)/sqlConns]
		for lo := 0; lo < len(part); lo += copyBatch {
			encoded[w] = append(encoded[w], loader.EncodeCopy(nil, part[lo:min(lo+copyBatch, len(part))], int32(w), int64(lo)))
		}
	}
	elapsed, err := inParallel(ctx, url, events, func(ctx context.Context, c *pgx.Conn, worker int, events []loader.Event) error {
		copied := 0
		for _, data := range encoded[worker] {
			err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				// The loader's statement: straight into the raw partition.
				stmt, err := loader.CopyStatement(ctx, tx)
				if err != nil {
					return err
				}
				tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), stmt)
				copied += int(tag.RowsAffected())
				return err
			})
			if err != nil {
				return err
			}
		}
		if copied != len(events) {
			return fmt.Errorf("copied %d rows, want %d", copied, len(events))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := checkRawCount(ctx, url, e.n); err != nil {
		return err
	}
	r.set("copy_ceiling_eps", float64(e.n)/elapsed.Seconds())
	return nil
}

// ---- insert_baseline_eps ----

// runInsertBaseline loads the same events with multi-row INSERTs of 500
// rows ($1..$8500, a prepared statement), 20,000 rows per transaction,
// statements sent one after another, on two connections: what a JDBC-sink
// style connector does.
func runInsertBaseline(ctx context.Context, e *env, r *runState) error {
	events, err := e.decodeAll()
	if err != nil {
		return err
	}
	url, drop, err := e.newDB(ctx, "insert")
	if err != nil {
		return err
	}
	defer drop()
	elapsed, err := inParallel(ctx, url, events, func(ctx context.Context, c *pgx.Conn, worker int, events []loader.Event) error {
		args := make([]any, 0, insertRows*len(rawColumns))
		row := make([]any, len(rawColumns))
		for lo := 0; lo < len(events); lo += copyBatch {
			batch := events[lo:min(lo+copyBatch, len(events))]
			err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				for s := 0; s < len(batch); s += insertRows {
					stmt := batch[s:min(s+insertRows, len(batch))]
					args = args[:0]
					for i := range stmt {
						rawRow(row, &stmt[i], int32(worker), int64(lo+s+i))
						args = append(args, row...)
					}
					if _, err := tx.Exec(ctx, insertSQL(len(stmt)), args...); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := checkRawCount(ctx, url, e.n); err != nil {
		return err
	}
	r.set("insert_baseline_eps", float64(e.n)/elapsed.Seconds())
	return nil
}

var insertSQLCache sync.Map // rows → statement

// insertSQL is INSERT INTO raw_events (…) VALUES ($1, …), … for rows rows.
func insertSQL(rows int) string {
	if s, ok := insertSQLCache.Load(rows); ok {
		return s.(string)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO zonestats_internal.raw_events (" + strings.Join(rawColumns, ", ") + ") VALUES ")
	p := 1
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range rawColumns {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", p)
			p++
		}
		b.WriteByte(')')
	}
	insertSQLCache.Store(rows, b.String())
	return b.String()
}

// inParallel splits events into sqlConns halves and runs work on each with
// its own connection (opened before the clock starts); it returns the time
// from start until the last worker is done.
func inParallel(ctx context.Context, url string, events []loader.Event,
	work func(ctx context.Context, c *pgx.Conn, worker int, events []loader.Event) error) (time.Duration, error) {
	conns := make([]*pgx.Conn, sqlConns)
	for i := range conns {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		defer c.Close(context.WithoutCancel(ctx))
		conns[i] = c
	}
	errs := make([]error, sqlConns)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range conns {
		lo, hi := i*len(events)/sqlConns, (i+1)*len(events)/sqlConns
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = work(ctx, conns[i], i, events[lo:hi])
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return elapsed, nil
}

func checkRawCount(ctx context.Context, url string, want int) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events").Scan(&n); err != nil {
		return err
	}
	if n != int64(want) {
		return fmt.Errorf("raw_events holds %d rows, want %d", n, want)
	}
	return nil
}

// ---- loader_eps, loader_join_ms, rollup_eps ----

// runLoaderAndRollup runs the loader in-process over the run's topic until
// everything is loaded, then times CALL zonestats.run_rollups(true) on the
// same database.
func runLoaderAndRollup(ctx context.Context, e *env, r *runState) error {
	url, conn, done, err := e.newDBConn(ctx, "loader")
	if err != nil {
		return err
	}
	defer done()

	stopProfile, err := startCPUProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	lr, err := startLoader(ctx, e, url, r.topic, "loader")
	if err != nil {
		return err
	}
	defer lr.stop()
	if err := lr.waitLoaded(ctx, conn, r, nil); err != nil {
		return err
	}
	loaded := time.Since(lr.started)
	stopProfile()
	if err := lr.stop(); err != nil {
		return err
	}
	if got := lr.l.Stats.Events.Load(); got != int64(e.n) {
		return fmt.Errorf("loader committed %d events, want %d", got, e.n)
	}
	progress("run %d/%d  loader: first batch after %.0f ms, everything stored after %.2fs, %d batches",
		r.i, r.of, float64(lr.firstBatch.Microseconds())/1000, loaded.Seconds(), lr.l.Stats.Batches.Load())
	r.set("loader_eps", float64(e.n)/loaded.Seconds())
	r.set("loader_join_ms", float64(lr.firstBatch.Microseconds())/1000)
	if err := printPartitionTimes(ctx, conn, r); err != nil {
		return err
	}

	t0 := time.Now()
	if _, err := conn.Exec(ctx, "CALL zonestats.run_rollups(true)"); err != nil {
		return fmt.Errorf("run_rollups: %w", err)
	}
	rolled := time.Since(t0)
	if err := checkRolledUp(ctx, conn, e.n); err != nil {
		return err
	}
	r.set("rollup_eps", float64(e.n)/rolled.Seconds())
	return nil
}

// cpuProfile is the -cpuprofile file: a CPU profile of the whole bench
// process (loader, embedded broker, bench) while loader_eps is timed; each
// run overwrites it, so it holds the last run.
var cpuProfile string

// startCPUProfile starts the -cpuprofile profile, if asked for; stop may be
// called more than once.
func startCPUProfile() (stop func(), err error) {
	if cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
			progress("wrote the CPU profile %s", cpuProfile)
		})
	}, nil
}

// printPartitionTimes prints, per Kafka partition, its events and when its
// last batch began (loaded_at is the transaction's start), counted from the
// first batch: how long the busiest partition went on alone at the end.
func printPartitionTimes(ctx context.Context, conn *pgx.Conn, r *runState) error {
	rows, err := conn.Query(ctx, `
		SELECT kafka_partition, count(*),
		       extract(epoch FROM max(loaded_at) - min(min(loaded_at)) OVER ())::float8
		FROM zonestats_internal.raw_events GROUP BY kafka_partition ORDER BY 3`)
	if err != nil {
		return err
	}
	var parts []string
	for rows.Next() {
		var p int32
		var n int64
		var done float64
		if err := rows.Scan(&p, &n, &done); err != nil {
			return err
		}
		parts = append(parts, fmt.Sprintf("p%d %dk@%.1fs", p, n/1000, done))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	progress("run %d/%d  loader: last batch of each partition began at (events@s): %s", r.i, r.of, strings.Join(parts, " "))
	return nil
}

// checkRolledUp asserts that every raw event is in every rollup level.
func checkRolledUp(ctx context.Context, conn *pgx.Conn, n int) error {
	var m, h, d int64
	err := conn.QueryRow(ctx, `SELECT
		(SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.rollup_1m),
		(SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.rollup_1h),
		(SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.rollup_1d)`).Scan(&m, &h, &d)
	if err != nil {
		return err
	}
	if m != int64(n) || h != int64(n) || d != int64(n) {
		return fmt.Errorf("rollups hold %d/%d/%d requests (1m/1h/1d), want %d", m, h, d, n)
	}
	return nil
}

// loaderRun is an in-process loader with its own pool (the loader's
// default size) and consumer group.
type loaderRun struct {
	l          *loader.Loader
	pool       *pgxpool.Pool
	cancel     context.CancelFunc
	done       chan error
	started    time.Time
	firstBatch time.Duration // from start until the first batch was committed
	exited     bool          // Run has returned (exitErr)
	exitErr    error
}

var groupSeq int

func startLoader(ctx context.Context, e *env, url, topic, name string) (*loaderRun, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	groupSeq++
	l, err := loader.New(loader.Config{
		Brokers:        e.brokers,
		Topic:          topic,
		Group:          fmt.Sprintf("bench-%s-%d", name, groupSeq),
		ProgressEvery:  -1,
		SessionTimeout: 6 * time.Second,
		Dialer:         newDialer(),
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	lr := &loaderRun{l: l, pool: pool, cancel: cancel, done: make(chan error, 1), started: time.Now()}
	go func() { lr.done <- l.Run(lctx) }()
	return lr, nil
}

// waitLoaded polls loader.Behind every 50 ms until the loader has stored
// every offset of the topic; tick, if not nil, runs on every poll.
func (lr *loaderRun) waitLoaded(ctx context.Context, conn *pgx.Conn, r *runState, tick func() error) error {
	deadline := time.Now().Add(30 * time.Minute)
	for {
		if lr.firstBatch == 0 && lr.l.Stats.Batches.Load() > 0 {
			lr.firstBatch = time.Since(lr.started)
		}
		behind, err := loader.Behind(ctx, conn, r.topic, r.wm)
		if err != nil {
			return err
		}
		if behind == 0 {
			if lr.firstBatch == 0 {
				lr.firstBatch = time.Since(lr.started)
			}
			return nil
		}
		if tick != nil {
			if err := tick(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loader still %d messages behind after 30 minutes", behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lr.done:
			lr.exited, lr.exitErr = true, err
			return fmt.Errorf("loader stopped early: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the loader (it finishes its batches) and closes its pool.
func (lr *loaderRun) stop() error {
	lr.cancel()
	if !lr.exited {
		lr.exited, lr.exitErr = true, <-lr.done
	}
	if lr.pool != nil {
		lr.pool.Close()
		lr.pool = nil
	}
	return lr.exitErr
}
