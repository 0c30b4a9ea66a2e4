package loader_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"zonestats/internal/gen"
	"zonestats/internal/kafkakit"
	"zonestats/internal/testenv"
	"zonestats/loader"
)

// TestMain doubles as a loader subprocess (for the hard-kill test) when
// ZS_CHILD_LOADER is set.
func TestMain(m *testing.M) {
	if os.Getenv("ZS_CHILD_LOADER") != "" {
		os.Exit(childLoader())
	}
	testenv.Main(m)
}

func childLoader() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("ready") // SIGTERM is handled from here on
	batch, _ := strconv.Atoi(os.Getenv("ZS_BATCH"))
	level := slog.LevelWarn
	if os.Getenv("ZS_LOG_DEBUG") != "" {
		level = slog.LevelDebug
	}
	pool, err := pgxpool.New(context.Background(), os.Getenv("ZS_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := loader.New(loader.Config{
		Brokers: strings.Split(os.Getenv("ZS_BROKERS"), ","), Topic: "events", Group: "zonestats",
		BatchSize: batch, BatchWait: 50 * time.Millisecond, SessionTimeout: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}, pool)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := l.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const topic = "events"

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

// Write logs the loader's line; an error-level line fails the test (none
// is expected in a run without faults).
func (w testWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "level=ERROR") {
		w.t.Errorf("loader logged an error: %s", line)
	} else {
		w.t.Log(line)
	}
	return len(p), nil
}

func produce(t *testing.T, brokers []string, cfg gen.Config, n int) *gen.Generator {
	t.Helper()
	g := gen.New(cfg, n)
	sent, err := kafkakit.Produce(context.Background(), brokers, topic, g, 0)
	if err != nil || sent != n {
		t.Fatalf("produced %d of %d: %v", sent, n, err)
	}
	return g
}

// startLoader runs a loader until the returned stop is called.
func startLoader(t *testing.T, pool *pgxpool.Pool, brokers []string, batch int) (stop func()) {
	t.Helper()
	_, stop = runLoader(t, pool, brokers, batch, testLogger(t))
	return stop
}

// runLoader is startLoader with a logger of the test's choice, returning
// the loader too (for its Stats).
func runLoader(t *testing.T, pool *pgxpool.Pool, brokers []string, batch int, log *slog.Logger) (*loader.Loader, func()) {
	t.Helper()
	return runLoaderWith(t, pool, loader.Config{
		Brokers: brokers, Topic: topic, Group: "zonestats", BatchSize: batch, BatchWait: 100 * time.Millisecond,
		Logger: log, ProgressEvery: -1,
	})
}

// runLoaderWith runs a loader of the given configuration until the
// returned stop is called.
func runLoaderWith(t *testing.T, pool *pgxpool.Pool, cfg loader.Config) (*loader.Loader, func()) {
	t.Helper()
	l, err := loader.New(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("loader: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("loader did not stop within 60s")
			}
		})
	}
	t.Cleanup(stop)
	return l, stop
}

// waitLoaded waits until the offsets stored in the database reach the end
// of every partition.
func waitLoaded(t *testing.T, pool *pgxpool.Pool, brokers []string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	wm, err := kafkakit.Watermarks(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		behind, err := loader.Behind(ctx, pool, topic, wm)
		if err != nil {
			t.Fatal(err)
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("loader still %d messages behind after %v", behind, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce asserts that every message Kafka holds is in the
// database exactly once: as an event or as a dead letter.
func checkExactlyOnce(t *testing.T, pool *pgxpool.Pool, brokers []string) (events, dead int64) {
	t.Helper()
	ctx := context.Background()
	wm, err := kafkakit.Watermarks(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range wm {
		var n, distinct, lo, hi int64
		err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT o), coalesce(min(o), -1), coalesce(max(o), -1) FROM (
			SELECT kafka_offset AS o FROM zonestats_internal.raw_events WHERE kafka_partition = $1
			UNION ALL SELECT kafka_offset FROM zonestats.dead_letters WHERE partition = $1) x`, p).Scan(&n, &distinct, &lo, &hi)
		if err != nil {
			t.Fatal(err)
		}
		want := o[1] - o[0]
		if n != want || distinct != want || (want > 0 && (lo != o[0] || hi != o[1]-1)) {
			t.Errorf("partition %d: %d rows, %d distinct offsets in [%d, %d]; Kafka holds %d in [%d, %d)",
				p, n, distinct, lo, hi, want, o[0], o[1])
		}
	}
	pool.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events").Scan(&events)
	pool.QueryRow(ctx, "SELECT count(*) FROM zonestats.dead_letters").Scan(&dead)
	return events, dead
}

// checkAllOnce is checkExactlyOnce for a topic that got produced messages:
// every one is in the database once, as an event or a dead letter.
func checkAllOnce(t *testing.T, pool *pgxpool.Pool, brokers []string, produced int64) {
	t.Helper()
	if events, dead := checkExactlyOnce(t, pool, brokers); events+dead != produced {
		t.Errorf("%d events + %d dead letters, produced %d", events, dead, produced)
	}
}

// reportFault adds the test's figures to the fault report (make
// test-faults): messages Kafka holds against rows in the database.
func reportFault(t *testing.T, kind string, injected int64, pool *pgxpool.Pool, brokers []string) {
	t.Helper()
	ctx := context.Background()
	wm, err := kafkakit.Watermarks(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	var produced int64
	for _, o := range wm {
		produced += o[1] - o[0]
	}
	var rows, distinct, dead int64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (p, o)), count(*) FILTER (WHERE d) FROM (
		SELECT kafka_partition AS p, kafka_offset AS o, false AS d FROM zonestats_internal.raw_events
		UNION ALL SELECT partition, kafka_offset, true FROM zonestats.dead_letters) x`).Scan(&rows, &distinct, &dead); err != nil {
		t.Fatal(err)
	}
	testenv.ReportFault(t, testenv.Fault{Kind: kind, Injected: injected, Produced: produced, Counted: rows,
		Lost: produced - distinct, Duplicated: rows - distinct, DeadLetter: dead})
}

func rollupAndCheck(t *testing.T, url string) {
	t.Helper()
	conn := testenv.Conn(t, url)
	if _, err := conn.Exec(context.Background(), "CALL zonestats.run_rollups(true)"); err != nil {
		t.Fatal(err)
	}
	testenv.CheckRollups(t, conn)
}

func genConfig(seed int64) gen.Config {
	end := time.Now().UTC().Truncate(time.Minute)
	return gen.Config{Seed: seed, Zones: 200, Start: end.Add(-2 * time.Hour), End: end}
}

func TestEndToEnd(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 4)
	cfg := genConfig(1)
	cfg.LateShare, cfg.BadShare = 0.05, 0.01
	g := produce(t, brokers, cfg, 40000)

	stop := startLoader(t, pool, brokers, 3000)
	waitLoaded(t, pool, brokers, 2*time.Minute)
	time.Sleep(1500 * time.Millisecond) // caught up and idle: fetches come back empty, quietly
	stop()

	events, dead := checkExactlyOnce(t, pool, brokers)
	if events+dead != 40000 || dead != int64(g.Malformed()) {
		t.Fatalf("events %d + dead letters %d; produced 40000 of which %d malformed", events, dead, g.Malformed())
	}
	var noReason int64
	pool.QueryRow(context.Background(), "SELECT count(*) FROM zonestats.dead_letters WHERE reason = '' OR payload IS NULL").Scan(&noReason)
	if noReason != 0 {
		t.Errorf("%d dead letters without reason or payload", noReason)
	}
	rollupAndCheck(t, url)
}

func TestDeadLettersKeepReasonAndOffsetAndTheRestLoads(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16777216"}))
	now := time.Now().UTC().Format(time.RFC3339Nano)
	good := `{"ts":"` + now + `","zone_id":4211,"client_ip":"203.0.113.7","country":"US","colo":"SFO","method":"GET","status":200,"content_type":"html","bytes":5120,"cache_status":"hit","ssl_protocol":"TLSv1.3","ip_class":"clean","threat":"","page_view":true,"browser":"Chrome"}`
	msgs := []struct{ value, reason string }{
		{good, ""},
		{`not json`, "not a JSON object"},
		{`{"ts":`, "invalid JSON"},
		{"", "empty message"},
		{strings.Replace(good, `"zone_id":4211,`, ``, 1), "missing field: zone_id"},
		{strings.Replace(good, `"203.0.113.7"`, `"203.0.113.999"`, 1), "bad client_ip"},
		{strings.Replace(good, `"status":200`, `"status":"200"`, 1), "bad status"},
		{strings.Replace(good, `"bytes":5120`, `"bytes":-1`, 1), "bad bytes"},
		{good + "x", "trailing data"},
		{strings.Replace(good, `"2`, `"1999-01-01T00:00:00Z","x":"`, 1), "ts too old"},
		{strings.Replace(good, `"zone_id":4211`, `"zone_id":9007199254740993`, 1), ""},
		{"\xff" + good, "invalid UTF-8"},
		{strings.Replace(good, `"SFO"`, `"x'); DROP TABLE zonestats.settings; --"`, 1), ""},
		{strings.Replace(good, `"US"`, "\"U\x00\"", 1), "invalid JSON"},
		{strings.Replace(good, `"2`, `"2999-01-01T00:00:00Z","x":"`, 1), "ts in the future"},
		{`{"x":"` + strings.Repeat("a", 5<<20) + `"}`, "missing field"}, // larger than one fetch (4 MiB)
		{good, ""},
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Transport: &kafka.Transport{}, BatchTimeout: time.Millisecond,
		BatchBytes: 16 << 20, RequiredAcks: kafka.RequireAll}
	var kmsgs []kafka.Message
	for _, m := range msgs {
		kmsgs = append(kmsgs, kafka.Message{Key: []byte("4211"), Value: []byte(m.value)})
	}
	if err := w.WriteMessages(context.Background(), kmsgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	stop := startLoader(t, pool, brokers, 100)
	waitLoaded(t, pool, brokers, time.Minute)
	stop()
	for off, m := range msgs {
		var reason string
		var payload []byte
		err := pool.QueryRow(context.Background(), `SELECT reason, payload FROM zonestats.dead_letters
			WHERE topic = $1 AND partition = 0 AND kafka_offset = $2`, topic, off).Scan(&reason, &payload)
		if m.reason == "" {
			if err == nil {
				t.Errorf("offset %d: good event dead-lettered: %s", off, reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("offset %d: no dead letter (want %q): %v", off, m.reason, err)
			continue
		}
		if !strings.HasPrefix(reason, m.reason) {
			t.Errorf("offset %d: reason %q, want prefix %q", off, reason, m.reason)
		}
		if string(payload) != m.value {
			t.Errorf("offset %d: payload not kept byte for byte", off)
		}
	}
	// SQL in a field is data: stored as it came, nothing executed.
	var sqlText, settings int64
	pool.QueryRow(context.Background(), "SELECT count(*) FROM zonestats_internal.raw_events WHERE colo = $1",
		"x'); DROP TABLE zonestats.settings; --").Scan(&sqlText)
	pool.QueryRow(context.Background(), "SELECT count(*) FROM zonestats.settings").Scan(&settings)
	if sqlText != 1 || settings != 1 {
		t.Errorf("SQL text in colo: %d rows with it, settings rows %d; want 1, 1", sqlText, settings)
	}
	var zone int64
	bigZone := 0
	for i, m := range msgs {
		if strings.Contains(m.value, "9007199254740993") {
			bigZone = i
		}
	}
	if err := pool.QueryRow(context.Background(), "SELECT zone_id FROM zonestats_internal.raw_events WHERE kafka_offset = $1", bigZone).Scan(&zone); err != nil || zone != 9007199254740993 {
		t.Errorf("64-bit zone id: got %d, %v", zone, err)
	}
	checkExactlyOnce(t, pool, brokers)
}

// TestLoaderStopRestartAndRebalance stops a loader mid-stream, restarts it,
// and has a second loader join (a rebalance) while more traffic arrives.
func TestLoaderStopRestartAndRebalance(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 6)
	produce(t, brokers, genConfig(2), 60000)

	stop := startLoader(t, pool, brokers, 500)
	waitSome(t, pool, 5000)
	stop()
	a := startLoader(t, pool, brokers, 500)
	waitSome(t, pool, 20000)
	b := startLoader(t, pool, brokers, 500) // joins: partitions are split
	cfg := genConfig(3)
	produce(t, brokers, cfg, 20000)
	waitLoaded(t, pool, brokers, 3*time.Minute)
	a()
	b()
	reportFault(t, "loaders stopped, restarted and joined (rebalances)", 3, pool, brokers)
	if events, dead := checkExactlyOnce(t, pool, brokers); events != 80000 || dead != 0 {
		t.Fatalf("events %d, dead letters %d; want 80000, 0", events, dead)
	}
	rollupAndCheck(t, url)
}

func waitSome(t *testing.T, pool *pgxpool.Pool, n int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var got int64
		pool.QueryRow(context.Background(), "SELECT coalesce(sum(next_offset), 0) FROM zonestats_internal.kafka_offsets").Scan(&got)
		if got >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d messages loaded after 2 minutes", n)
}

// spawnLoader starts a loader as a child process (this test binary, see
// TestMain) and waits until it handles SIGTERM. Its stderr goes to the
// test's stderr, and each line to onLog when given (debug level then).
func spawnLoader(t *testing.T, url string, brokers []string, onLog func(line string)) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "ZS_CHILD_LOADER=1", "ZS_DB="+url, "ZS_BROKERS="+strings.Join(brokers, ","), "ZS_BATCH=700")
	if onLog == nil {
		cmd.Stderr = os.Stderr
	} else {
		cmd.Env = append(cmd.Env, "ZS_LOG_DEBUG=1")
		logs, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			sc := bufio.NewScanner(logs)
			for sc.Scan() {
				if !strings.Contains(sc.Text(), "level=DEBUG") {
					fmt.Fprintln(os.Stderr, sc.Text())
				}
				onLog(sc.Text())
			}
		}()
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // not waited for: the test failed on the way
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// Wait until the child handles SIGTERM (the last one is stopped
	// with it, possibly at once when everything is loaded already).
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child loader: %q, %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return cmd
}

// TestLoaderKilledHardAndRestarted SIGKILLs loader processes mid-stream
// (between batches or inside one: wherever they happen to be) and restarts
// them; nothing is lost or loaded twice.
func TestLoaderKilledHardAndRestarted(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 3)
	produce(t, brokers, genConfig(4), 60000)

	spawn := func() *exec.Cmd { return spawnLoader(t, url, brokers, nil) }
	// Kills: 3, or ZONESTATS_FAULT_KILLS (make test-faults: 20).
	n, _ := strconv.Atoi(os.Getenv("ZONESTATS_FAULT_KILLS"))
	if n <= 0 {
		n = 3
	}
	kills := 0
	for i := 0; i < n; i++ {
		target := int64(5000 + i*50000/n)
		cmd := spawn()
		waitSome(t, pool, target)
		time.Sleep(time.Duration(target%7) * 13 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		kills++
		// Let the broker expire the dead member's session before the next
		// loader joins. (With the embedded broker, a join racing the expiry
		// of a killed member has been seen to stall the group for minutes;
		// live rebalances are covered by TestLoaderStopRestartAndRebalance.)
		time.Sleep(7 * time.Second)
	}
	final := spawn()
	waitLoaded(t, pool, brokers, 3*time.Minute)
	final.Process.Signal(syscall.SIGTERM)
	if err := final.Wait(); err != nil {
		t.Errorf("loader after SIGTERM: %v (want exit 0)", err)
	}
	reportFault(t, "loader killed (SIGKILL) mid-stream", int64(kills), pool, brokers)
	if events, dead := checkExactlyOnce(t, pool, brokers); events != 60000 || dead != 0 {
		t.Fatalf("after %d kills: events %d, dead letters %d; want 60000, 0", kills, events, dead)
	}
	rollupAndCheck(t, url)
}

// A loader joins a group that is loading and is SIGKILLed at each step of
// the rebalance its join starts — before its JoinGroup, between its
// JoinGroup and its assignment, on its assignment, after its first batch —
// again and again; the loader that stays takes every partition back once
// the dead member's session ends. Nothing is lost or loaded twice.
func TestLoaderKilledDuringRebalance(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 4)
	// Kills: one at each step, or ZONESTATS_FAULT_KILLS/2 (make test-faults: 10).
	n, _ := strconv.Atoi(os.Getenv("ZONESTATS_FAULT_KILLS"))
	n = max(n/2, 4)
	total := 3000 + n*9*2000
	more := produceAsync(t, brokers, genConfig(91), total, 2000) // traffic all along

	// How many partitions the loader that stays holds (its last assignment).
	var holds atomic.Int32
	stay := spawnLoader(t, url, brokers, func(line string) {
		if i := strings.Index(line, "partitions=\"["); i >= 0 && strings.Contains(line, "msg=generation") {
			list := line[i+len(`partitions="[`):]
			holds.Store(int32(len(strings.Fields(list[:strings.IndexByte(list, ']')]))))
		}
	})
	waitSome(t, pool, 2000)
	// Kill points: the joiner's log line to kill on ("" = at once). Not
	// while its JoinGroup request is still waiting at the broker: the
	// embedded broker never expires a member whose join reply it could not
	// deliver (Kafka does, after the session timeout), and the group would
	// wait for it forever.
	steps := []struct{ name, line string }{
		{"before its JoinGroup", ""},
		{"between its JoinGroup and its assignment", "consumer group: joined group"},
		{"on its assignment", "msg=generation"},
		{"after its first batch", "msg=\"batch committed\""},
	}
	for i := range n {
		step := steps[i%len(steps)]
		reached := make(chan struct{})
		var once sync.Once
		joiner := spawnLoader(t, url, brokers, func(line string) {
			if step.line != "" && strings.Contains(line, step.line) {
				once.Do(func() { close(reached) })
			}
		})
		if step.line != "" {
			select {
			case <-reached:
			case <-time.After(time.Minute):
				t.Fatalf("kill %d: the joining loader never logged %q", i+1, step.line)
			}
		}
		joiner.Process.Signal(syscall.SIGKILL)
		joiner.Wait()
		t.Logf("kill %d: joining loader killed %s", i+1, step.name)
		// Once the dead member's session ends (6 s) the group rebalances
		// again: the loader that stays gets every partition back.
		time.Sleep(8 * time.Second)
		for deadline := time.Now().Add(time.Minute); holds.Load() != 4; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the remaining loader holds %d of 4 partitions a minute later", i+1, holds.Load())
			}
		}
	}
	if err := <-more; err != nil {
		t.Fatal(err)
	}
	waitLoaded(t, pool, brokers, 3*time.Minute)
	stay.Process.Signal(syscall.SIGTERM)
	if err := stay.Wait(); err != nil {
		t.Errorf("loader after SIGTERM: %v (want exit 0)", err)
	}
	reportFault(t, "joining loader killed (SIGKILL) during a rebalance", int64(n), pool, brokers)
	if events, dead := checkExactlyOnce(t, pool, brokers); events != int64(total) || dead != 0 {
		t.Fatalf("after %d kills: events %d, dead letters %d; want %d, 0", n, events, dead, total)
	}
	rollupAndCheck(t, url)
}
