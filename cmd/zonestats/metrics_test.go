package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
	"zonestats/internal/testenv"
)

// zonestats load -metrics-addr serves /healthz (503 until the loader holds
// a generation, then 200) and /metrics, whose counters move as events load.
func TestLoadServesMetricsAndHealth(t *testing.T) {
	url := testenv.NewDB(t)
	_, brokers := testenv.Kafka(t, "events", 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"load", "-database-url", url, "-brokers", strings.Join(brokers, ","), "-topic", "events",
			"-batch-wait", "100ms", "-metrics-addr", addr, "-log-level", "warn"}, func(string) string { return "" }, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("load: %v", err)
		}
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	var sawNotReady bool
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		code, body := get("/healthz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "generation") {
			sawNotReady = true
		}
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after a minute: %d %s", code, body)
		}
	}
	if !sawNotReady {
		t.Log("/healthz was ready at the first answer (the join was quicker than the first request)")
	}

	sent, err := kafkakit.Produce(context.Background(), brokers, "events", gen.New(gen.Config{Seed: 7, Zones: 20}, 2000), 0)
	if err != nil || sent != 2000 {
		t.Fatalf("produced %d: %v", sent, err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, body := get("/metrics")
		if strings.Contains(body, "\nzonestats_loader_messages_total 2000\n") {
			for _, want := range []string{"zonestats_loader_rows_copied_total 2000", "zonestats_loader_batch_duration_seconds_count",
				`zonestats_loader_consumer_lag_messages{partition="0"}`, "zonestats_rollup_lag_seconds", "go_goroutines", "process_resident_memory_bytes"} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics has no %s", want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never counted the 2000 messages:\n%s", body)
		}
	}
}
