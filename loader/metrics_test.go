package loader_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"zonestats/internal/testenv"
	"zonestats/loader"
)

// metricValues gathers reg and returns every sample as name{labels} → value.
func metricValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// The loader's metrics move as batches load: messages, bytes, rows, dead
// letters by reason, batches and their latency, consumer lag, partitions,
// and the rollup lag from the database; Healthy says ready only while the
// loader holds a generation and reaches the database.
func TestMetricsMoveAsBatchesLoad(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 2)
	reg := prometheus.NewRegistry()
	l, stop := runLoaderWith(t, testenv.Pool(t, url), loader.Config{
		Brokers: brokers, Topic: topic, Group: "zonestats", BatchSize: 500, BatchWait: 100 * time.Millisecond,
		Logger: testLogger(t), ProgressEvery: -1, Registerer: reg,
	})
	for deadline := time.Now().Add(time.Minute); l.Healthy(ctx) != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after a minute: %v", l.Healthy(ctx))
		}
	}
	m := metricValues(t, reg)
	if m["zonestats_loader_messages_total"] != 0 || m["zonestats_loader_partitions_assigned"] != 2 || m["zonestats_loader_rebalances_total"] < 1 {
		t.Errorf("before any message: %v", m)
	}

	cfg := genConfig(101)
	cfg.BadShare = 0.02
	produce(t, brokers, cfg, 5000)
	waitLoaded(t, pool, brokers, time.Minute)
	var events, dead, bytes int64
	pool.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events").Scan(&events)
	pool.QueryRow(ctx, "SELECT count(*), sum(length(payload)) FROM zonestats.dead_letters").Scan(&dead, &bytes)
	if dead == 0 {
		t.Fatal("no dead letters; the test proves nothing about them")
	}
	time.Sleep(1100 * time.Millisecond) // a fetch after the last batch updates the lag
	m = metricValues(t, reg)
	for name, want := range map[string]float64{
		"zonestats_loader_messages_total":                     5000,
		"zonestats_loader_rows_copied_total":                  float64(events),
		"zonestats_loader_partitions_assigned":                2,
		"zonestats_loader_consumer_lag_messages{partition=0}": 0,
		"zonestats_loader_consumer_lag_messages{partition=1}": 0,
		"zonestats_loader_db_errors_total":                    0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	var deadByReason float64
	for k, v := range m {
		if strings.HasPrefix(k, "zonestats_loader_dead_letters_total{") {
			deadByReason += v
			if strings.ContainsAny(k, "0123456789") {
				t.Errorf("dead-letter reason label with details (unbounded): %s", k)
			}
		}
	}
	if deadByReason != float64(dead) {
		t.Errorf("dead letters by reason add up to %v, the table has %d", deadByReason, dead)
	}
	if b := m["zonestats_loader_batches_total"]; b < 2 || m["zonestats_loader_batch_duration_seconds_count"] != b {
		t.Errorf("batches %v, latency samples %v", b, m["zonestats_loader_batch_duration_seconds_count"])
	}
	// Good events are about 280 bytes; the dead letters' payloads are exact.
	if got := m["zonestats_loader_message_bytes_total"]; got < float64(bytes)+float64(events)*200 {
		t.Errorf("message bytes %v, too few for %d events and %d dead-letter bytes", got, events, bytes)
	}
	if lag := m["zonestats_rollup_lag_seconds"]; lag <= 0 {
		t.Errorf("rollup lag %v with nothing rolled up yet, want > 0", lag)
	}
	if _, err := pool.Exec(ctx, "CALL zonestats.run_rollups(true)"); err != nil {
		t.Fatal(err)
	}
	if lag := metricValues(t, reg)["zonestats_rollup_lag_seconds"]; lag != 0 {
		t.Errorf("rollup lag %v after the rollups, want 0", lag)
	}

	// One more batch moves the counters.
	cfg.Seed, cfg.BadShare = 102, 0
	produce(t, brokers, cfg, 300)
	waitLoaded(t, pool, brokers, time.Minute)
	if got := metricValues(t, reg)["zonestats_loader_messages_total"]; got != 5300 {
		t.Errorf("messages after 300 more: %v, want 5300", got)
	}

	stop()
	if err := l.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "generation") {
		t.Errorf("healthy after stop: %v; want not in a generation", err)
	}
}

// Healthy names both things a loader that never joined and cannot reach
// its database is missing.
func TestHealthyNamesWhatIsMissing(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l, err := loader.New(loader.Config{Brokers: []string{"127.0.0.1:1"}, Topic: topic, Group: "g"}, pool)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Healthy(context.Background())
	if err == nil || !strings.Contains(err.Error(), "generation") || !strings.Contains(err.Error(), "database") {
		t.Errorf("Healthy = %v; want both the generation and the database named", err)
	}
}
