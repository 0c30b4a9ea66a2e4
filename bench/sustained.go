package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// runSustained loads the run's topic into a fresh database while another
// connection calls CALL zonestats.run_rollups() every 3 seconds, as cron
// would (faster). Once everything is loaded the periodic caller stops and
// CALL zonestats.run_rollups(true) runs one last time; the clock stops when
// rollup_state.last_event_id is the largest event_id, i.e. every event is
// in all three levels. sustained_eps = events / that time.
func runSustained(ctx context.Context, e *env, r *runState) error {
	url, conn, cleanup, err := e.newDBConn(ctx, "sustained")
	if err != nil {
		return err
	}
	defer cleanup()
	rollConn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer rollConn.Close(context.WithoutCancel(ctx))

	lr, err := startLoader(ctx, e, url, r.topic, "sustained")
	if err != nil {
		return err
	}
	defer lr.stop()

	// The periodic rollup caller.
	stopRollups := make(chan struct{})
	var wg sync.WaitGroup
	var rollErr error
	calls := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopRollups:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := rollConn.Exec(ctx, "CALL zonestats.run_rollups()"); err != nil {
				rollErr = err
				return
			}
			calls++
		}
	}()
	stopCaller := func() {
		select {
		case <-stopRollups:
		default:
			close(stopRollups)
		}
		wg.Wait()
	}
	defer stopCaller()

	if err := lr.waitLoaded(ctx, conn, r, nil); err != nil {
		return err
	}
	loaded := time.Since(lr.started)
	stopCaller() // waits for a call in flight
	if rollErr != nil {
		return fmt.Errorf("periodic run_rollups: %w", rollErr)
	}
	var done, maxID int64
	for attempt := 0; ; attempt++ {
		if _, err := conn.Exec(ctx, "CALL zonestats.run_rollups(true)"); err != nil {
			return fmt.Errorf("final run_rollups: %w", err)
		}
		err := conn.QueryRow(ctx, `SELECT (SELECT last_event_id FROM zonestats_internal.rollup_state),
			(SELECT coalesce(max(event_id), 0) FROM zonestats_internal.raw_events)`).Scan(&done, &maxID)
		if err != nil {
			return err
		}
		if done == maxID {
			break
		}
		if attempt == 20 {
			return fmt.Errorf("rollups stuck at event_id %d of %d", done, maxID)
		}
	}
	elapsed := time.Since(lr.started)
	if err := lr.stop(); err != nil {
		return err
	}
	if err := checkRolledUp(ctx, conn, e.n); err != nil {
		return err
	}
	progress("run %d/%d  sustained: loaded after %.1fs, %d periodic rollup calls, all rolled up after %.1fs",
		r.i, r.of, loaded.Seconds(), calls, elapsed.Seconds())
	r.set("sustained_eps", float64(e.n)/elapsed.Seconds())
	return nil
}
