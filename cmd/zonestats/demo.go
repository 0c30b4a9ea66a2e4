package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
	"zonestats/internal/pgcluster"
	"zonestats/loader"
	"zonestats/migrations"
)

// runDemo runs the whole pipeline once: PostgreSQL and Kafka (throwaway and
// embedded unless DATABASE_URL / KAFKA_BROKERS say otherwise), migrations,
// generated traffic, the loader, the rollups, a small dashboard, and a
// reconciliation of Kafka against every level of the database.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := newFlags("demo", getenv, stderr)
	var k kafkaFlags
	k.register(fs, getenv)
	n := fs.Int("n", 1000000, "events to generate")
	zones := fs.Int("zones", 1000, "number of zones")
	seed := fs.Int64("seed", 1, "generator seed")
	bad := fs.Float64("bad-share", 0, "share of malformed messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, stopProfile, err := c.start(stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	began := time.Now()

	dbURL := c.databaseURL
	if dbURL == "" && getenv("PGHOST") == "" && getenv("PGDATABASE") == "" {
		say("== starting a throwaway PostgreSQL (set DATABASE_URL to use yours)")
		pg, err := pgcluster.Start(ctx, pgcluster.Options{})
		if err != nil {
			return err
		}
		defer pg.Stop()
		dbURL = pg.DSN("postgres")
	}
	brokers := k.brokerList()
	if len(brokers) == 0 {
		say("== starting the embedded Kafka broker (set KAFKA_BROKERS to use yours)")
		kc, addrs, err := kafkakit.Embedded(k.topic, 8)
		if err != nil {
			return err
		}
		defer kc.Close()
		brokers = addrs
	} else if err := ensureTopic(ctx, brokers, k.topic, 8); err != nil {
		return err
	}

	say("== migrating")
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return err
	}
	err = migrations.Up(ctx, conn, nil)
	conn.Close(ctx)
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	before, err := counts(ctx, pool)
	if err != nil {
		return err
	}
	wmBefore, err := kafkakit.Watermarks(ctx, brokers, k.topic)
	if err != nil {
		return err
	}

	say("== producing %d events into Kafka topic %s", *n, k.topic)
	end := time.Now().UTC().Truncate(time.Minute)
	g := gen.New(gen.Config{Seed: *seed, Zones: *zones, Start: end.Add(-time.Hour), End: end, BadShare: *bad}, *n)
	t0 := time.Now()
	if _, err := kafkakit.Produce(ctx, brokers, k.topic, g, 0); err != nil {
		return err
	}
	say("   %.1fs", time.Since(t0).Seconds())

	say("== loading (Kafka → COPY → PostgreSQL, offsets in the same transaction)")
	t0 = time.Now()
	l, err := loader.New(loader.Config{Brokers: brokers, Topic: k.topic, Group: "zonestats-demo",
		Logger: log, ProgressEvery: 5 * time.Second, SessionTimeout: 6 * time.Second}, pool)
	if err != nil {
		return err
	}
	lctx, stopLoader := context.WithCancel(ctx)
	loaderDone := make(chan error, 1)
	go func() { loaderDone <- l.Run(lctx) }()
	wm, err := kafkakit.Watermarks(ctx, brokers, k.topic)
	if err != nil {
		stopLoader()
		return err
	}
	for {
		behind, err := loader.Behind(ctx, pool, k.topic, wm)
		if err != nil {
			stopLoader()
			return err
		}
		if behind == 0 {
			break
		}
		select {
		case <-ctx.Done():
			stopLoader()
			<-loaderDone
			return ctx.Err()
		case err := <-loaderDone:
			stopLoader()
			return fmt.Errorf("loader stopped early: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	stopLoader()
	if err := <-loaderDone; err != nil {
		return err
	}
	say("   %d events, %d dead letters in %.1fs (%.0f events/s)", l.Stats.Events.Load(), l.Stats.DeadLetters.Load(),
		time.Since(t0).Seconds(), float64(l.Stats.Messages.Load())/time.Since(t0).Seconds())

	say("== rolling up (CALL zonestats.run_rollups())")
	t0 = time.Now()
	if _, err := pool.Exec(ctx, "CALL zonestats.run_rollups(true)"); err != nil {
		return err
	}
	say("   %.1fs", time.Since(t0).Seconds())

	if err := dashboard(ctx, pool, stdout); err != nil {
		return err
	}

	after, err := counts(ctx, pool)
	if err != nil {
		return err
	}
	produced := kafkakit.Total(wm) - kafkakit.Total(wmBefore)
	d := func(i int) int64 { return after[i] - before[i] }
	say("")
	say("demo took %.0fs", time.Since(began).Seconds())
	fmt.Fprintf(stdout, "reconciled: produced=%d loaded=%d dead_letters=%d requests_1m=%d requests_1h=%d requests_1d=%d\n",
		produced, d(0), d(1), d(2), d(3), d(4))
	if d(0)+d(1) != produced || d(2) != d(0) || d(3) != d(0) || d(4) != d(0) {
		return fmt.Errorf("reconciliation failed: the figures above disagree")
	}
	return nil
}

// counts reads: raw events, dead letters, requests at 1m, 1h and 1d.
func counts(ctx context.Context, pool *pgxpool.Pool) ([5]int64, error) {
	var c [5]int64
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM zonestats_internal.raw_events),
		(SELECT count(*) FROM zonestats.dead_letters),
		(SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.rollup_1m),
		(SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.rollup_1h),
		(SELECT coalesce(sum(requests), 0)::bigint FROM zonestats.rollup_1d)`).Scan(&c[0], &c[1], &c[2], &c[3], &c[4])
	return c, err
}

// dashboard prints the last hour of the busiest zone.
func dashboard(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	until := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	since := until.Add(-time.Hour)
	var zone int64
	err := pool.QueryRow(ctx, `SELECT zone_id FROM zonestats.rollup_1m WHERE bucket >= $1 AND bucket < $2
		GROUP BY zone_id ORDER BY sum(requests) DESC LIMIT 1`, since, until).Scan(&zone)
	if err != nil {
		return fmt.Errorf("busiest zone: %w", err)
	}
	var req, bytes, cached, threats, pv, uniq int64
	err = pool.QueryRow(ctx, `SELECT requests, bytes, cached_requests, threats, page_views, uniques
		FROM zonestats.zone_summary($1, $2, $3)`, zone, since, until).Scan(&req, &bytes, &cached, &threats, &pv, &uniq)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	fmt.Fprintf(w, "\n== zone %d, last hour (%s – %s UTC)\n", zone, since.Format("15:04"), until.Format("15:04"))
	fmt.Fprintf(w, "   requests %d (cached %.1f%%)   bytes %s   uniques ≈%d   threats %d   page views %d\n",
		req, 100*float64(cached)/float64(max(req, 1)), humanBytes(bytes), uniq, threats, pv)
	for _, m := range []struct{ title, name string }{
		{"top countries", "requests_by_country"}, {"statuses", "requests_by_status"}, {"colos", "requests_by_colo"},
	} {
		rows, err := pool.Query(ctx, "SELECT key, value FROM zonestats.zone_top($1, $2, $3, $4, 5)", zone, since, until, m.name)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %-14s", m.title)
		for rows.Next() {
			var key string
			var v int64
			if err := rows.Scan(&key, &v); err != nil {
				return err
			}
			fmt.Fprintf(w, " %s %.1f%%", key, 100*float64(v)/float64(max(req, 1)))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
