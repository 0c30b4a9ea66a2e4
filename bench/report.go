package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// keyInfo describes one figure of the summary.
type keyInfo struct {
	key, unit, what string
	target          string             // shown in the table; "" when none
	met             func(float64) bool // nil when no target
}

func atLeast(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
func atMost(x float64) func(float64) bool  { return func(v float64) bool { return v <= x } }

// keys lists the figures in table order.
var keys = []keyInfo{
	{"copy_ceiling_eps", "events/s", "binary COPY of events encoded before the clock starts (the loader's encoder) into raw_events as the loader COPYs (straight into the partition of the hour), 2 connections, 20,000 rows per transaction (no Kafka, no decoding)", "", nil},
	{"loader_eps", "events/s", "in-process loader, 8 partitions, from start (group join included) until every offset is stored", "", nil},
	{"loader_join_ms", "ms", "loader start until its first batch was committed (group join, first fetch, first COPY)", "", nil},
	{"loader_vs_copy", "ratio", "loader_eps / copy_ceiling_eps (same run)", "≥ 0.8", atLeast(0.8)},
	{"insert_baseline_eps", "events/s", "multi-row INSERT (500 rows per statement, 20,000 per transaction), 2 connections: a JDBC-sink style connector", "", nil},
	{"loader_vs_insert", "ratio", "loader_eps / insert_baseline_eps (same run)", "≥ 3", atLeast(3)},
	{"rollup_eps", "events/s", "CALL zonestats.run_rollups(true) over everything the loader loaded, into 1m, 1h and 1d", "", nil},
	{"rollup_vs_loader", "ratio", "rollup_eps / loader_eps (same run)", "≥ 1", atLeast(1)},
	{"sustained_eps", "events/s", "loader plus run_rollups() every 3 s, until every event is in all three levels", "≥ 200000", atLeast(200000)},
	{"goagg_baseline_eps", "events/s", "alternative design: aggregate per zone-minute in Go, upsert aggregates into 1m/1h/1d", "", nil},
	{"decode_json_ns", "ns/event", "loader.JSONDecoder.Decode, one goroutine", "", nil},
	{"decode_capnp_ns", "ns/event", "loader.CapnpDecoder.Decode of the same events as Cap'n Proto messages, one goroutine, same run", "", nil},
	{"loader_rss_mb", "MB", "peak RSS (VmHWM) of `zonestats load` as a process, default batch size", "≤ 256", atMost(256)},
	{"query_timeseries_1m_p50_ms", "ms", "zone_timeseries(busiest zone, last 24 h, '1 minute'): 1440 points, p50", "", nil},
	{"query_timeseries_1m_p99_ms", "ms", "the same, p99", "≤ 10", atMost(10)},
	{"query_timeseries_1m_rls_p50_ms", "ms", "the same as a tenant role under row-level security (zonestats_tenant, 10,001 mappings), p50", "", nil},
	{"query_timeseries_1m_rls_p99_ms", "ms", "the same, p99", "≤ 10", atMost(10)},
	{"query_timeseries_1m_rls_vs_plain", "ratio", "query_timeseries_1m_rls_p99_ms / query_timeseries_1m_p99_ms (same run)", "≤ 1.5", atMost(1.5)},
	{"query_timeseries_1h_p50_ms", "ms", "zone_timeseries(busiest zone, last 30 days, '1 hour'): 720 points, p50", "", nil},
	{"query_timeseries_1h_p99_ms", "ms", "the same, p99", "≤ 10", atMost(10)},
	{"query_timeseries_1h_rls_p50_ms", "ms", "the same as a tenant role under row-level security, p50", "", nil},
	{"query_timeseries_1h_rls_p99_ms", "ms", "the same, p99", "≤ 10", atMost(10)},
	{"query_bi_p50_ms", "ms", "requests and uniques per hour over all zones for one day (rollup_1h), p50", "≤ 1000", atMost(1000)},
	{"query_bi_p99_ms", "ms", "the same, p99", "", nil},
	{"query_zones", "zones", "zones in the query data set", "", nil},
	{"query_days_hourly", "days", "days of hourly rollups in the query data set", "", nil},
	{"query_days_minute", "days", "days of minute rollups in the query data set", "", nil},
	{"query_build_s", "s", "time to build the query data set (not a target)", "", nil},
	{"events", "events", "events per run", "", nil},
	{"runs", "runs", "runs per figure (every figure is the median)", "", nil},
	{"mode_full", "0/1", "1: full mode, 0: quick mode", "", nil},
	{"pg_fsync", "0/1", "PostgreSQL fsync (0: off, with synchronous_commit and full_page_writes off)", "", nil},
	{"cpu_cores", "cores", "logical CPUs", "", nil},
}

// summary is the medians, plus the machine description.
type summary struct {
	values   map[string]float64
	cpuModel string
}

func summarize(samples map[string][]float64, e *env, runs int) summary {
	s := summary{values: map[string]float64{}, cpuModel: cpuModel()}
	for k, v := range samples {
		s.values[k] = median(v)
	}
	s.values["events"] = float64(e.n)
	s.values["runs"] = float64(runs)
	s.values["mode_full"] = 0
	if e.full {
		s.values["mode_full"] = 1
	}
	s.values["pg_fsync"] = 0 // pgcluster's default for throwaway clusters
	s.values["cpu_cores"] = float64(runtime.NumCPU())
	return s
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// round keeps figures readable: integers for rates, 3 decimals otherwise.
func round(key string, v float64) float64 {
	if strings.HasSuffix(key, "_eps") || key == "events" {
		return math.Round(v)
	}
	return math.Round(v*1000) / 1000
}

func formatValue(key string, v float64) string {
	v = round(key, v)
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func printTable(w io.Writer, s summary, e *env) {
	fmt.Fprintf(w, "\n## zonestats bench (%s mode, %d events per run, medians of %.0f runs)\n\n",
		modeName(e.full), e.n, s.values["runs"])
	fmt.Fprintf(w, "CPU: %s, %d cores. PostgreSQL: throwaway pgcluster, fsync=off, synchronous_commit=off, full_page_writes=off. Kafka: embedded kfake (same machine).\n", s.cpuModel, runtime.NumCPU())
	if !e.full {
		fmt.Fprintln(w, "Targets apply to full mode (`-full`); quick-mode figures are indicative.")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| key | value | unit | what it is | target | met? |")
	fmt.Fprintln(w, "| --- | ---: | --- | --- | --- | --- |")
	fmt.Fprintf(w, "| cpu_model | %s | | /proc/cpuinfo model name | | |\n", s.cpuModel)
	for _, k := range keys {
		v, ok := s.values[k.key]
		if !ok {
			continue
		}
		met := ""
		if k.met != nil {
			met = "no"
			if k.met(v) {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", k.key, formatValue(k.key, v), k.unit, k.what, k.target, met)
	}
	fmt.Fprintln(w)
}

// writeJSON writes the flat summary: key → number, plus cpu_model (string).
func writeJSON(path string, s summary) error {
	var b bytes.Buffer
	b.WriteString("{\n")
	str, _ := json.Marshal(s.cpuModel)
	fmt.Fprintf(&b, "  %q: %s", "cpu_model", str)
	for _, k := range keys {
		if v, ok := s.values[k.key]; ok {
			num, _ := json.Marshal(round(k.key, v))
			fmt.Fprintf(&b, ",\n  %q: %s", k.key, num)
		}
	}
	b.WriteString("\n}\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
