// Command bench measures zonestats end to end and writes the figures to
// bench/out/summary.json (and a Markdown table to stdout). It provisions
// everything itself: a throwaway PostgreSQL (pgcluster), an embedded Kafka
// broker (kfake) and a fresh migrated database per measurement.
//
//	go run ./bench                 # quick mode, 300,000 events per run
//	go run ./bench -full           # full mode, 2,000,000 events per run
//	go run ./bench -only loader,copy -runs 1
//
// See bench/README.md for what every key means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Sizes of the two modes.
const (
	quickEvents = 300_000
	fullEvents  = 2_000_000
	zones       = 10_000 // generator zones, both modes
	seed        = 20261125
	partitions  = 8      // Kafka partitions of every topic
	copyBatch   = 20_000 // rows per COPY / INSERT transaction, as the loader's default batch
	insertRows  = 500    // rows per INSERT statement of the baseline
	sqlConns    = 2      // connections of the COPY ceiling and the INSERT baseline
)

// A group is one measurement, run once per run; it sets its keys in the runState.
type group struct {
	name string
	keys []string // the keys it produces (for -only)
	run  func(ctx context.Context, e *env, r *runState) error
}

// runState is what the groups of one run share: the run number, the
// figures measured so far in this run, and the topic of the group running.
type runState struct {
	i, of  int
	topic  string           // the running group's topic, if it reads Kafka
	wm     map[int][2]int64 // watermarks of topic
	values map[string]float64
}

func (r *runState) set(key string, v float64) {
	r.values[key] = v
	progress("run %d/%d  %-26s %s", r.i, r.of, key, formatValue(key, v))
}

var groups = []group{
	{"decode", []string{"decode_json_ns", "decode_capnp_ns"}, runDecode},
	{"copy", []string{"copy_ceiling_eps"}, runCopyCeiling},
	{"insert", []string{"insert_baseline_eps"}, runInsertBaseline},
	{"loader", []string{"loader_eps", "loader_join_ms", "rollup_eps"}, runLoaderAndRollup},
	{"sustained", []string{"sustained_eps"}, runSustained},
	{"goagg", []string{"goagg_baseline_eps"}, runGoAgg},
	{"rss", []string{"loader_rss_mb"}, runLoaderRSS},
}

// Groups that read Kafka; each gets a fresh topic (see runGroup).
var needsTopic = map[string]bool{"loader": true, "sustained": true, "goagg": true, "rss": true}

// ratios are computed per run from two figures of that run.
var ratios = []struct{ key, num, den string }{
	{"loader_vs_copy", "loader_eps", "copy_ceiling_eps"},
	{"loader_vs_insert", "loader_eps", "insert_baseline_eps"},
	{"rollup_vs_loader", "rollup_eps", "loader_eps"},
}

var started = time.Now()

// progress prints a progress line to stderr.
func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	full := flag.Bool("full", false, "full mode: 2,000,000 events per run (default: quick mode, 300,000)")
	out := flag.String("out", "bench/out/summary.json", "where to write the figures (flat JSON)")
	runs := flag.Int("runs", 3, "runs per figure; every figure is the median over the runs")
	only := flag.String("only", "", "comma-separated groups or keys to run (groups: decode,copy,insert,loader,sustained,goagg,rss,queries)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process while the loader_eps clock runs (last run) to this file")
	flag.Parse()
	if *runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	selected, err := selectGroups(*only)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	n := quickEvents
	if *full {
		n = fullEvents
	}
	progress("mode %s: %d events per run, %d runs, groups %s", modeName(*full), n, *runs, strings.Join(selected.list(), ","))

	e, err := setup(ctx, *full, n, selected["rss"])
	if err != nil {
		return err
	}
	defer e.close()

	samples := map[string][]float64{}
	for i := 1; i <= *runs; i++ {
		r := &runState{i: i, of: *runs, values: map[string]float64{}}
		for _, g := range groups {
			if !selected[g.name] {
				continue
			}
			progress("run %d/%d  %s …", i, *runs, g.name)
			if err := runGroup(ctx, e, r, g); err != nil {
				return fmt.Errorf("run %d, %s: %w", i, g.name, err)
			}
		}
		for _, q := range ratios {
			num, ok1 := r.values[q.num]
			den, ok2 := r.values[q.den]
			if ok1 && ok2 && den > 0 {
				r.set(q.key, num/den)
			}
		}
		for k, v := range r.values {
			samples[k] = append(samples[k], v)
		}
	}

	if selected["queries"] {
		qs, err := runQueries(ctx, e, *runs)
		if err != nil {
			return fmt.Errorf("queries: %w", err)
		}
		for k, v := range qs {
			samples[k] = v
		}
	}

	s := summarize(samples, e, *runs)
	printTable(os.Stdout, s, e)
	if err := writeJSON(*out, s); err != nil {
		return err
	}
	progress("wrote %s; bench took %.0fs", *out, time.Since(started).Seconds())
	return nil
}

// runGroup runs one measurement; one that reads Kafka gets a topic of its
// own, produced before (untimed) and deleted after.
func runGroup(ctx context.Context, e *env, r *runState, g group) (err error) {
	if needsTopic[g.name] {
		topic := fmt.Sprintf("bench-%s-run%d", g.name, r.i)
		if r.wm, err = e.produceTopic(ctx, topic); err != nil {
			return err
		}
		r.topic = topic
		defer func() {
			e.deleteTopic(context.WithoutCancel(ctx), topic)
			r.topic, r.wm = "", nil
		}()
	}
	runtime.GC() // start every measurement from a collected heap
	return g.run(ctx, e, r)
}

func modeName(full bool) string {
	if full {
		return "full"
	}
	return "quick"
}

// selection is the set of group names to run.
type selection map[string]bool

func (s selection) list() []string {
	var out []string
	for _, g := range groups {
		if s[g.name] {
			out = append(out, g.name)
		}
	}
	if s["queries"] {
		out = append(out, "queries")
	}
	return out
}

// selectGroups maps -only (group names or keys) to groups.
func selectGroups(only string) (selection, error) {
	s := selection{}
	if strings.TrimSpace(only) == "" {
		for _, g := range groups {
			s[g.name] = true
		}
		s["queries"] = true
		return s, nil
	}
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, g := range groups {
			if g.name == name || contains(g.keys, name) {
				s[g.name], found = true, true
			}
		}
		for _, q := range ratios {
			if q.key == name { // a ratio needs both of its groups
				for _, g := range groups {
					if contains(g.keys, q.num) || contains(g.keys, q.den) {
						s[g.name], found = true, true
					}
				}
			}
		}
		if name == "queries" || strings.HasPrefix(name, "query_") {
			s["queries"], found = true, true
		}
		if !found {
			return nil, fmt.Errorf("-only: unknown group or key %q", name)
		}
	}
	return s, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
