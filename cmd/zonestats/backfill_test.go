package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"zonestats/internal/testenv"
)

// TestMain doubles as the zonestats binary (for the tests that signal a
// process) when ZS_RUN_ZONESTATS is set.
func TestMain(m *testing.M) {
	if os.Getenv("ZS_RUN_ZONESTATS") != "" {
		main()
		os.Exit(0)
	}
	testenv.Main(m)
}

// zonestats runs the command in-process.
func zonestats(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestBackfillCLIFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"load", "-from-file", "-"}, "-from-file - (stdin) needs -source-id NAME"},
		{[]string{"load", "-from-file", "events.ndjson", "-brokers", "localhost:9092"}, "-brokers is a Kafka flag, and -from-file loads without Kafka"},
		{[]string{"load", "-from-file", "events.ndjson", "-group", "g"}, "-group is a Kafka flag"},
		{[]string{"load", "-source-id", "x"}, "-source-id is for -from-file"},
		{[]string{"load", "-from-file", filepath.Join(t.TempDir(), "missing.ndjson")}, "no such file"},
	} {
		_, _, err := zonestats(t, nil, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want an error saying %q", c.args, err, c.want)
		}
	}
}

// genFile writes n generated messages with `zonestats gen -out` and
// returns how many of them are malformed.
func genFile(t *testing.T, path string, n int) int64 {
	t.Helper()
	_, stderr, err := zonestats(t, nil, "gen", "-n", strconv.Itoa(n), "-zones", "100", "-bad-share", "0.02", "-out", path)
	if err != nil {
		t.Fatalf("gen: %v\n%s", err, stderr)
	}
	m := regexp.MustCompile(`malformed=(\d+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("gen did not say how many messages are malformed:\n%s", stderr)
	}
	bad, _ := strconv.ParseInt(m[1], 10, 64)
	return bad
}

// loaded returns the raw events and dead letters in the database and the
// distinct (topic, line) among them.
func loaded(t *testing.T, pool *pgxpool.Pool) (events, dead, distinct int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE NOT d), count(*) FILTER (WHERE d), count(DISTINCT o) FROM (
		SELECT kafka_offset AS o, false AS d FROM zonestats_internal.raw_events
		UNION ALL SELECT kafka_offset, true FROM zonestats.dead_letters) x`).Scan(&events, &dead, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	return events, dead, distinct
}

func checkLoaded(t *testing.T, pool *pgxpool.Pool, n, bad int64) {
	t.Helper()
	if events, dead, distinct := loaded(t, pool); events != n-bad || dead != bad || distinct != n {
		t.Errorf("%d events, %d dead letters, %d distinct lines; want %d, %d, %d", events, dead, distinct, n-bad, bad, n)
	}
}

// TestBackfillCLI: gen -out, then load -from-file of the gzip file, again
// (nothing to load), and of stdin with -source-id.
func TestBackfillCLI(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	path := filepath.Join(t.TempDir(), "events.ndjson.gz")
	const n = 20000
	bad := genFile(t, path, n)
	// KAFKA_BROKERS in the environment does not get in the way.
	env := map[string]string{"DATABASE_URL": url, "KAFKA_BROKERS": "localhost:1"}

	out, stderr, err := zonestats(t, env, "load", "-from-file", path, "-batch-size", "3000")
	if err != nil {
		t.Fatalf("load: %v\n%s", err, stderr)
	}
	t.Logf("stdout:\n%sstderr:\n%s", out, stderr)
	for _, want := range []string{"): complete\n", "lines          20000\n",
		"loaded         20000: " + strconv.FormatInt(n-bad, 10) + " events, " + strconv.FormatInt(bad, 10) + " dead letters\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if !strings.Contains(stderr, "hashing the file: its SHA-256 is its identity for resuming (first pass)") {
		t.Errorf("the hashing pass is not announced:\n%s", stderr)
	}
	checkLoaded(t, pool, n, bad)

	out, _, err = zonestats(t, env, "load", "-from-file", path)
	if err != nil || !strings.Contains(out, "nothing to load: every line was loaded by an earlier run") ||
		!strings.Contains(out, "skipped        20000") {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	checkLoaded(t, pool, n, bad)

	// stdin, in a database of its own (the same lines under another
	// identity are another input).
	pool2 := testenv.Pool(t, testenv.NewDB(t))
	env["DATABASE_URL"] = pool2.Config().ConnString()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	defer func() { os.Stdin = stdin }()
	os.Stdin = f
	out, stderr, err = zonestats(t, env, "load", "-from-file", "-", "-source-id", "events-2026-11")
	if err != nil || !strings.Contains(out, "backfill of stdin (file:events-2026-11): complete") {
		t.Fatalf("stdin: %v\n%s\n%s", err, out, stderr)
	}
	checkLoaded(t, pool2, n, bad)
	f.Seek(0, 0)
	out, _, err = zonestats(t, env, "load", "-from-file", "-", "-source-id", "events-2026-11")
	if err != nil || !strings.Contains(out, "nothing to load") {
		t.Fatalf("stdin again: %v\n%s", err, out)
	}
	checkLoaded(t, pool2, n, bad)
}

// TestBackfillCLIKilledInterruptedAndResumed runs the command as a process:
// killed (SIGKILL) mid-load, then interrupted (SIGINT: the batch in flight
// is committed, exit 0, the summary says so), then run to the end —
// every line loaded exactly once.
func TestBackfillCLIKilledInterruptedAndResumed(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	path := filepath.Join(t.TempDir(), "events.ndjson.gz")
	const n = 300000
	bad := genFile(t, path, n)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type proc struct {
		cmd         *exec.Cmd
		out, errOut bytes.Buffer
	}
	start := func() *proc {
		p := &proc{cmd: exec.Command(exe, "load", "-from-file", path, "-batch-size", "1000", "-database-url", url)}
		p.cmd.Env = append(os.Environ(), "ZS_RUN_ZONESTATS=1")
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errOut
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stored := func() int64 {
		var next int64
		pool.QueryRow(context.Background(), `SELECT coalesce(max(next_offset), 0) FROM zonestats_internal.kafka_offsets
			WHERE topic LIKE 'file:%'`).Scan(&next)
		return next
	}
	waitStored := func(min int64) int64 {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if s := stored(); s >= min {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d lines loaded after 2 minutes", min)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	p := start()
	waitStored(30000)
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	killedAt := stored()
	if killedAt >= n {
		t.Fatalf("the load finished before it was killed (%d lines stored)", killedAt)
	}

	p = start()
	waitStored(killedAt + 60000)
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v (want exit 0)\n%s", err, p.errOut.String())
	}
	interruptedAt := stored()
	t.Logf("killed at %d, interrupted at %d; summary:\n%s", killedAt, interruptedAt, p.out.String())
	if want := "interrupted: the first " + strconv.FormatInt(interruptedAt, 10) + " lines are loaded"; !strings.Contains(p.out.String(), want) ||
		!strings.Contains(p.out.String(), "skipped        "+strconv.FormatInt(killedAt, 10)+" ") {
		t.Errorf("summary after SIGINT does not say %q and %d skipped", want, killedAt)
	}
	if interruptedAt >= n {
		t.Fatalf("the load finished before SIGINT")
	}

	p = start()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("last run: %v\n%s", err, p.errOut.String())
	}
	if !strings.Contains(p.out.String(), "): complete\n") || !strings.Contains(p.out.String(), "skipped        "+strconv.FormatInt(interruptedAt, 10)+" ") {
		t.Errorf("last run's summary:\n%s", p.out.String())
	}
	checkLoaded(t, pool, n, bad)
}
