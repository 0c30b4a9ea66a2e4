//go:build ignore

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
	"zonestats/internal/pgcluster"
	"zonestats/loader"
	"zonestats/migrations"
)

func main() {
	ctx := context.Background()
	parts, _ := strconv.Atoi(os.Args[1])
	batch, _ := strconv.Atoi(os.Args[2])
	n := 1000000
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"autovacuum": os.Args[3], "shared_preload_libraries": "auto_explain", "auto_explain.log_min_duration": "50", "auto_explain.log_nested_statements": "on", "log_min_messages": "log", "jit": os.Args[4]}})
	if err != nil {
		panic(err)
	}
	defer pg.Stop()
	conn, _ := pgx.Connect(ctx, pg.DSN("postgres"))
	if err := migrations.Up(ctx, conn, nil); err != nil {
		panic(err)
	}
	conn.Close(ctx)
	kc, brokers, _ := kafkakit.Embedded("ev", parts)
	defer kc.Close()
	end := time.Now().UTC().Truncate(time.Minute)
	g := gen.New(gen.Config{Seed: 1, Zones: 10000, Start: end.Add(-time.Minute), End: end}, n)
	kafkakit.Produce(ctx, brokers, "ev", g, 0)
	pool, _ := pgxpool.New(ctx, pg.DSN("postgres"))
	l, _ := loader.New(loader.Config{Brokers: brokers, Topic: "ev", Group: "g", BatchSize: batch, ProgressEvery: -1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, pool)
	lctx, cancel := context.WithCancel(ctx)
	go l.Run(lctx)
	wm, _ := kafkakit.Watermarks(ctx, brokers, "ev")
	idle0, tot0 := cpuStat()
	self0 := selfCPU()
	t0 := time.Now()
	var first time.Duration
	for {
		b, _ := loader.Behind(ctx, pool, "ev", wm)
		if first == 0 && b < int64(n) {
			first = time.Since(t0)
		}
		if b == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(t0)
	idle1, tot1 := cpuStat()
	fmt.Printf("machine busy %.0f%% of 2 cores; this process %.2fs CPU of %.2fs wall\n", 100*(1-float64(idle1-idle0)/float64(tot1-tot0)), selfCPU()-self0, el.Seconds())
	cancel()
	fmt.Printf("parts=%d batch=%d: %.0f eps total, first batch at %v, after first %.0f eps\n", parts, batch,
		float64(n)/el.Seconds(), first.Round(time.Millisecond), float64(n)/(el-first).Seconds())
	t1 := time.Now()
	pool.Exec(ctx, "CALL zonestats.run_rollups(true)")
	fmt.Printf("rollup: %.0f eps\n", float64(n)/time.Since(t1).Seconds())
	for _, line := range strings.Split(pg.LogTail(200000), "\n") {
		if strings.Contains(line, "duration:") {
			fmt.Println(line)
		}
	}
}

func cpuStat() (idle, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	var name string
	var v [10]int64
	fmt.Sscan(string(b), &name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
	for _, x := range v {
		total += x
	}
	return v[3] + v[4], total
}

func selfCPU() float64 {
	b, _ := os.ReadFile("/proc/self/stat")
	f := strings.Fields(string(b))
	u, _ := strconv.ParseFloat(f[13], 64)
	s, _ := strconv.ParseFloat(f[14], 64)
	return (u + s) / 100
}
