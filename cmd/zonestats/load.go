package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"zonestats/loader"
)

// kafkaFlags are the flags shared by load, gen and demo.
type kafkaFlags struct {
	brokers string
	topic   string
}

func (k *kafkaFlags) register(fs interface {
	StringVar(*string, string, string, string)
}, getenv func(string) string) {
	fs.StringVar(&k.brokers, "brokers", getenv("KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated (env KAFKA_BROKERS)")
	fs.StringVar(&k.topic, "topic", envOr(getenv, "ZONESTATS_TOPIC", "zonestats-events"), "Kafka topic of the events (env ZONESTATS_TOPIC)")
}

func (k *kafkaFlags) brokerList() []string {
	var out []string
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func runLoad(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := newFlags("load", getenv, stderr)
	var k kafkaFlags
	k.register(fs, getenv)
	group := fs.String("group", envOr(getenv, "ZONESTATS_GROUP", "zonestats"), "Kafka consumer group; loaders of one group share the partitions (env ZONESTATS_GROUP)")
	format := fs.String("format", envOr(getenv, "ZONESTATS_FORMAT", "json"), "message format: "+strings.Join(loader.Formats, " or ")+" (env ZONESTATS_FORMAT)")
	batch := fs.Int("batch-size", 20000, "most messages per partition in one transaction")
	wait := fs.Duration("batch-wait", time.Second, "longest a batch stays open")
	maxAge := fs.Duration("max-event-age", 7*24*time.Hour, "events older than this are dead-lettered (negative: no limit)")
	maxFuture := fs.Duration("max-event-future", time.Hour, "events further ahead than this are dead-lettered (negative: no limit)")
	progress := fs.Duration("progress", 10*time.Second, "progress log period")
	metricsAddr := fs.String("metrics-addr", getenv("ZONESTATS_METRICS_ADDR"), "serve Prometheus metrics (/metrics) and health (/healthz) on this address, e.g. :9464 (env ZONESTATS_METRICS_ADDR; empty: off)")
	fromFile := fs.String("from-file", "", "backfill: load the JSON events of this file, one per line (gzip or not; - for stdin) instead of consuming Kafka")
	sourceID := fs.String("source-id", "", "with -from-file: the input's identity for resuming (required for stdin; default: the SHA-256 of the file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fromFile != "" || *sourceID != "" {
		return runBackfill(ctx, backfillOptions{
			path: *fromFile, sourceID: *sourceID, common: c, explicit: explicitFlags(fs),
			cfg: loader.Config{Format: *format, BatchSize: *batch, BatchWait: *wait,
				MaxEventAge: *maxAge, MaxEventFuture: *maxFuture, ProgressEvery: *progress},
		}, stdout, stderr)
	}
	log, stopProfile, err := c.start(stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	if len(k.brokerList()) == 0 {
		return fmt.Errorf("load: no Kafka brokers: set -brokers or KAFKA_BROKERS")
	}
	if _, err := loader.NewDecoder(*format); err != nil {
		return fmt.Errorf("load: -format: %w", err)
	}
	var metrics *metricsServer
	var reg prometheus.Registerer
	if *metricsAddr != "" {
		if metrics, err = listenMetrics(*metricsAddr); err != nil {
			return fmt.Errorf("load: -metrics-addr: %w", err)
		}
		defer metrics.ln.Close()
		reg = metrics.reg
	}
	pool, err := openPool(ctx, c.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	l, err := loader.New(loader.Config{
		Brokers: k.brokerList(), Topic: k.topic, Group: *group, Format: *format,
		BatchSize: *batch, BatchWait: *wait, MaxEventAge: *maxAge, MaxEventFuture: *maxFuture,
		ProgressEvery: *progress, Logger: log, Registerer: reg,
	}, pool)
	if err != nil {
		return err
	}
	if metrics != nil {
		defer metrics.serve(l, log)()
	}
	log.Info("loading", "brokers", k.brokers, "topic", k.topic, "group", *group)
	if err := l.Run(ctx); err != nil {
		return err
	}
	log.Info("stopped", "events", l.Stats.Events.Load(), "dead_letters", l.Stats.DeadLetters.Load())
	return nil
}

// openPool connects a pool and checks the database is migrated.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	var ok bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('zonestats_internal.raw_events') IS NOT NULL").Scan(&ok); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", cfg.ConnConfig.Host, err)
	}
	if !ok {
		pool.Close()
		return nil, fmt.Errorf("database %q has no zonestats schema: run `zonestats migrate up` first", cfg.ConnConfig.Database)
	}
	return pool, nil
}
