package loader_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"zonestats/internal/gen"
	"zonestats/internal/testenv"
	"zonestats/loader"
)

// zoneTotal is what a zone's events add up to.
type zoneTotal struct{ requests, bytes int64 }

// genFile writes n generated events, one JSON event a line (gzip when gz),
// and returns the per-zone totals of the lines that are events, computed
// with encoding/json (not the loader's decoder). cfg must not ask for
// malformed messages.
func genFile(t *testing.T, path string, cfg gen.Config, n int, gz bool) map[int64]zoneTotal {
	t.Helper()
	if cfg.BadShare != 0 {
		t.Fatal("genFile: expected totals need well-formed events only")
	}
	var buf bytes.Buffer
	var w interface{ Write([]byte) (int, error) } = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	want := map[int64]zoneTotal{}
	g := gen.New(cfg, n)
	var key, value []byte
	for {
		var ok bool
		if key, value, ok = g.Next(key[:0], value[:0]); !ok {
			break
		}
		var ev struct {
			ZoneID int64 `json:"zone_id"`
			Bytes  int64 `json:"bytes"`
		}
		if err := json.Unmarshal(value, &ev); err != nil {
			t.Fatalf("generated event: %v: %s", err, value)
		}
		z := want[ev.ZoneID]
		z.requests++
		z.bytes += ev.Bytes
		want[ev.ZoneID] = z
		w.Write(append(value, '\n'))
	}
	if zw != nil {
		zw.Close()
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return want
}

func zoneTotals(t *testing.T, pool *pgxpool.Pool) map[int64]zoneTotal {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT zone_id, count(*), sum(bytes) FROM zonestats_internal.raw_events GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]zoneTotal{}
	for rows.Next() {
		var zone int64
		var z zoneTotal
		if err := rows.Scan(&zone, &z.requests, &z.bytes); err != nil {
			t.Fatal(err)
		}
		got[zone] = z
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func checkTotals(t *testing.T, pool *pgxpool.Pool, want map[int64]zoneTotal) {
	t.Helper()
	got := zoneTotals(t, pool)
	if len(got) != len(want) {
		t.Errorf("%d zones loaded, want %d", len(got), len(want))
	}
	bad := 0
	for zone, w := range want {
		if g := got[zone]; g != w && bad < 5 {
			t.Errorf("zone %d: %d requests, %d bytes; want %d, %d", zone, g.requests, g.bytes, w.requests, w.bytes)
			bad++
		}
	}
}

// checkLinesOnce asserts that lines 0..n-1 of the one input loaded into
// the database are each in it exactly once, as an event or a dead letter.
func checkLinesOnce(t *testing.T, pool *pgxpool.Pool, topic string, n int64) {
	t.Helper()
	var rows, distinct, lo, hi int64
	err := pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT o), coalesce(min(o), -1), coalesce(max(o), -1) FROM (
		SELECT kafka_offset AS o FROM zonestats_internal.raw_events WHERE kafka_partition = 0
		UNION ALL SELECT kafka_offset FROM zonestats.dead_letters WHERE topic = $1 AND partition = 0) x`, topic).Scan(&rows, &distinct, &lo, &hi)
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || distinct != n || (n > 0 && (lo != 0 || hi != n-1)) {
		t.Errorf("%d rows, %d distinct lines in [%d, %d]; want %d lines in [0, %d)", rows, distinct, lo, hi, n, n)
	}
	if stored := storedNext(t, pool, topic); stored != n {
		t.Errorf("stored next line %d, want %d", stored, n)
	}
}

func storedNext(t *testing.T, pool *pgxpool.Pool, topic string) int64 {
	t.Helper()
	var next int64
	err := pool.QueryRow(context.Background(), `SELECT next_offset FROM zonestats_internal.kafka_offsets
		WHERE topic = $1 AND partition = 0`, topic).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func fileLoader(t *testing.T, pool *pgxpool.Pool, cfg loader.Config) *loader.Loader {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = -1
	}
	l, err := loader.NewFileLoader(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// loadPath loads a file the way the command does: hashed first, its
// SHA-256 its ID and checked again while loading.
func loadPath(t *testing.T, ctx context.Context, l *loader.Loader, path string, progress func(loader.FileProgress)) (loader.FileSummary, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, size, err := loader.Hash(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	return l.LoadFile(ctx, loader.FileInput{R: f, ID: sum, SHA256: sum, Name: filepath.Base(path), Size: size, Progress: progress})
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestBackfillFileExactTotalsAndRerunLoadsNothing loads a generated file:
// every zone's requests and bytes exactly as generated, every line once,
// the rollups equal to the raw events; a second run loads nothing.
func TestBackfillFileExactTotalsAndRerunLoadsNothing(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	path := filepath.Join(t.TempDir(), "events.ndjson")
	cfg := genConfig(11)
	cfg.LateShare = 0.05
	const n = 30000
	want := genFile(t, path, cfg, n, false)
	topic := "file:" + fileSHA(t, path)

	l := fileLoader(t, pool, loader.Config{BatchSize: 4000})
	sum, err := loadPath(t, context.Background(), l, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", sum)
	if sum.Topic != topic || !sum.Complete || sum.Interrupted || sum.Lines != n || sum.Skipped != 0 ||
		sum.Loaded != n || sum.Events != n || sum.DeadLetters != 0 {
		t.Fatalf("summary %+v; want %d lines, all loaded as events, under %s", sum, n, topic)
	}
	if got := l.Stats.Batches.Load(); got != (n+3999)/4000 {
		t.Errorf("%d transactions, want %d (batches of 4000 lines)", got, (n+3999)/4000)
	}
	checkTotals(t, pool, want)
	checkLinesOnce(t, pool, topic, n)
	rollupAndCheck(t, url)

	again, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 4000}), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Complete || again.Loaded != 0 || again.Skipped != n || again.Lines != n {
		t.Fatalf("rerun: %+v; want nothing loaded, %d skipped", again, n)
	}
	if s := again.String(); !strings.Contains(s, "nothing to load: every line was loaded by an earlier run") {
		t.Errorf("rerun summary does not say nothing was loaded:\n%s", s)
	}
	checkTotals(t, pool, want)
	checkLinesOnce(t, pool, topic, n)
}

// TestBackfillGzipByMagicBytes loads the same kind of file gzip-compressed
// under a name that does not say so.
func TestBackfillGzipByMagicBytes(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	path := filepath.Join(t.TempDir(), "events.data")
	const n = 25000
	want := genFile(t, path, genConfig(12), n, true)
	topic := "file:" + fileSHA(t, path) // the compressed bytes, as stored

	var last loader.FileProgress
	sum, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 3000, ProgressEvery: time.Millisecond}), path,
		func(p loader.FileProgress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete || sum.Lines != n || sum.Events != n || sum.Topic != topic {
		t.Fatalf("summary %+v; want %d events under %s", sum, n, topic)
	}
	st, _ := os.Stat(path)
	if last.Phase != "done" || last.Bytes != st.Size() || last.Size != st.Size() || last.Lines != n {
		t.Errorf("last progress %+v; want done, %d compressed bytes read of %d, %d lines", last, st.Size(), st.Size(), n)
	}
	checkTotals(t, pool, want)
	checkLinesOnce(t, pool, topic, n)
}

// TestBackfillInterruptedThenResumed cancels a load after a few batches:
// the batch in flight is committed, the run says it was interrupted, and
// a rerun loads exactly the rest.
func TestBackfillInterruptedThenResumed(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	path := filepath.Join(t.TempDir(), "events.ndjson.gz")
	const n = 40000
	want := genFile(t, path, genConfig(13), n, true)
	topic := "file:" + fileSHA(t, path)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := loadPath(t, ctx, fileLoader(t, pool, loader.Config{BatchSize: 1000, ProgressEvery: time.Millisecond}), path,
		func(p loader.FileProgress) {
			if p.Loaded >= 5000 {
				cancel()
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", first)
	if !first.Interrupted || first.Complete || first.Loaded < 5000 || first.Loaded >= n || first.Lines != first.Loaded {
		t.Fatalf("first run: %+v; want interrupted after 5000 lines or more", first)
	}
	if !strings.Contains(first.String(), "the first "+fmt.Sprint(first.Loaded)+" lines are loaded; run the same command again to load the rest") {
		t.Errorf("interrupted summary does not say how to resume:\n%s", first)
	}
	checkLinesOnce(t, pool, topic, first.Loaded)

	second, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 1000}), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Complete || second.Skipped != first.Loaded || second.Loaded != n-first.Loaded || second.Lines != n {
		t.Fatalf("second run: %+v; want the %d lines after the first %d", second, n-first.Loaded, first.Loaded)
	}
	checkTotals(t, pool, want)
	checkLinesOnce(t, pool, topic, n)
	rollupAndCheck(t, url)
}

// TestBackfillBadLinesAreDeadLettersByLineNumber: invalid JSON, an empty
// line, a line over the limit (cut), next to valid lines larger than
// bufio.Scanner's 64 KiB and exactly at the limit, "\r\n" and a last line
// without a newline.
func TestBackfillBadLinesAreDeadLettersByLineNumber(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	now := time.Now().UTC().Format(time.RFC3339Nano)
	good := `{"ts":"` + now + `","zone_id":7,"client_ip":"203.0.113.7","country":"US","colo":"SFO","method":"GET","status":200,"content_type":"html","bytes":100,"cache_status":"hit","ssl_protocol":"TLSv1.3","ip_class":"clean","threat":"","page_view":true,"browser":"Chrome"}`
	padded := func(size int) string { // a valid event of exactly size bytes: an unknown field is ignored
		pad := size - len(good) - len(`,"pad":""`)
		return strings.TrimSuffix(good, "}") + `,"pad":"` + strings.Repeat("p", pad) + `"}`
	}
	huge := `{"x":"` + strings.Repeat("a", loader.MaxLine) + `"}`
	lines := []struct{ text, end, reason string }{
		{good, "\n", ""},
		{`not json`, "\n", "not a JSON object"},
		{"", "\n", "empty message"},
		{huge, "\n", fmt.Sprintf("line too long: %d bytes, more than %d; the payload is its first 4096 bytes", len(huge), loader.MaxLine)},
		{good, "\r\n", ""},
		{padded(1 << 20), "\n", ""},
		{`{"ts":`, "\n", "invalid JSON"},
		{padded(loader.MaxLine), "\r\n", ""},
		{padded(loader.MaxLine + 1), "\n", "line too long: 16777217 bytes"},
		{"", "\n", "empty message"},
		{strings.Replace(good, `"zone_id":7`, `"zone_id":8`, 1), "", ""}, // no final newline
	}
	var file bytes.Buffer
	for _, l := range lines {
		file.WriteString(l.text + l.end)
	}
	path := filepath.Join(t.TempDir(), "bad.ndjson")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	topic := "file:" + fileSHA(t, path)
	sum, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 4}), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete || sum.Lines != int64(len(lines)) || sum.Events != 5 || sum.DeadLetters != 6 {
		t.Fatalf("summary %+v; want %d lines: 5 events, 6 dead letters", sum, len(lines))
	}
	for i, l := range lines {
		var reason string
		var payload, key []byte
		err := pool.QueryRow(context.Background(), `SELECT reason, payload, message_key FROM zonestats.dead_letters
			WHERE topic = $1 AND partition = 0 AND kafka_offset = $2`, topic, i).Scan(&reason, &payload, &key)
		if l.reason == "" {
			var zone int64
			if err == nil {
				t.Errorf("line %d: dead letter %q, want an event", i, reason)
			} else if err := pool.QueryRow(context.Background(), `SELECT zone_id FROM zonestats_internal.raw_events
				WHERE kafka_partition = 0 AND kafka_offset = $1`, i).Scan(&zone); err != nil {
				t.Errorf("line %d: no event: %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("line %d: no dead letter (want %q): %v", i, l.reason, err)
			continue
		}
		if !strings.HasPrefix(reason, l.reason) {
			t.Errorf("line %d: reason %q, want %q", i, reason, l.reason)
		}
		wantPayload := l.text
		if strings.HasPrefix(l.reason, "line too long") {
			wantPayload = l.text[:4096]
		}
		if string(payload) != wantPayload || key != nil {
			t.Errorf("line %d: payload of %d bytes (key %q), want the line's first %d bytes and no key", i, len(payload), key, len(wantPayload))
		}
	}
	checkLinesOnce(t, pool, topic, int64(len(lines)))
}

// TestBackfillOldEventsNeedMaxEventAge: a file of events older than
// MaxEventAge stops before loading anything and says what to do; with the
// limit off it loads; a few old events among recent ones are dead letters
// the summary points at.
func TestBackfillOldEventsNeedMaxEventAge(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	dir := t.TempDir()
	old := filepath.Join(dir, "old.ndjson")
	end := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Minute)
	want := genFile(t, old, gen.Config{Seed: 14, Zones: 50, Start: end.Add(-time.Hour), End: end}, 2000, false)

	sum, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 500}), old, nil)
	if err == nil || !strings.Contains(err.Error(), "-max-event-age") || !strings.Contains(err.Error(), "nothing of this batch was loaded") {
		t.Fatalf("old events with the default -max-event-age: %v; want an error naming -max-event-age", err)
	}
	var dead int64
	pool.QueryRow(context.Background(), "SELECT count(*) FROM zonestats.dead_letters").Scan(&dead)
	if sum.Loaded != 0 || dead != 0 || storedNext(t, pool, sum.Topic) != -1 {
		t.Fatalf("refused run wrote something: %+v, %d dead letters, stored %d", sum, dead, storedNext(t, pool, sum.Topic))
	}

	sum, err = loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 500, MaxEventAge: -1}), old, nil)
	if err != nil || !sum.Complete || sum.Events != 2000 || sum.TooOld != 0 {
		t.Fatalf("with -max-event-age -1: %+v, %v; want 2000 events", sum, err)
	}
	checkTotals(t, pool, want)

	// 3 old events among 200 recent ones: loaded, the old ones dead letters,
	// and the summary says how to load them.
	now := time.Now().UTC().Format(time.RFC3339Nano)
	good := `{"ts":"` + now + `","zone_id":9,"client_ip":"203.0.113.7","country":"US","colo":"SFO","method":"GET","status":200,"content_type":"html","bytes":1,"cache_status":"hit","ssl_protocol":"TLSv1.3","ip_class":"clean","threat":"","page_view":true,"browser":"Chrome"}`
	var b strings.Builder
	for i := range 200 {
		line := good
		if i%70 == 5 {
			line = strings.Replace(good, now, "2020-01-01T00:00:00Z", 1)
		}
		b.WriteString(line + "\n")
	}
	mixed := filepath.Join(dir, "mixed.ndjson")
	os.WriteFile(mixed, []byte(b.String()), 0o644)
	sum, err = loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 500}), mixed, nil)
	if err != nil || sum.Events != 197 || sum.DeadLetters != 3 || sum.TooOld != 3 {
		t.Fatalf("mixed: %+v, %v; want 197 events, 3 too old", sum, err)
	}
	if s := sum.String(); !strings.Contains(s, "3 events were older than -max-event-age (168h0m0s)") {
		t.Errorf("summary does not point at -max-event-age:\n%s", s)
	}
}

// TestBackfillSourceIDResumesByName: a stream loaded under a name resumes
// by that name (a grown input loads its new lines only); an input shorter
// than what is recorded under the name is refused.
func TestBackfillSourceIDResumesByName(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	var lines []string
	g := gen.New(genConfig(15), 300)
	for {
		_, v, ok := g.Next(nil, nil)
		if !ok {
			break
		}
		lines = append(lines, string(v)+"\n")
	}
	load := func(k int) (loader.FileSummary, error) {
		return fileLoader(t, pool, loader.Config{BatchSize: 64}).LoadFile(context.Background(),
			loader.FileInput{R: strings.NewReader(strings.Join(lines[:k], "")), ID: "nightly", Name: "stdin"})
	}
	if s, err := load(200); err != nil || s.Topic != "file:nightly" || s.Loaded != 200 || !s.Complete {
		t.Fatalf("first 200 lines: %+v, %v", s, err)
	}
	if s, err := load(300); err != nil || s.Skipped != 200 || s.Loaded != 100 || s.Lines != 300 {
		t.Fatalf("grown to 300 lines: %+v, %v; want the last 100 loaded", s, err)
	}
	s, err := load(150)
	if err == nil || !strings.Contains(err.Error(), "has 150 lines, but 300 are recorded as loaded under file:nightly") {
		t.Fatalf("shorter input: %+v, %v; want an error", s, err)
	}
	checkLinesOnce(t, pool, "file:nightly", 300)
}

// TestBackfillFileChangedWhileLoading: the bytes read do not have the hash
// the file had when hashed: an error, not a silent wrong identity.
func TestBackfillFileChangedWhileLoading(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	path := filepath.Join(t.TempDir(), "events.ndjson")
	genFile(t, path, genConfig(16), 100, false)
	f, _ := os.Open(path)
	defer f.Close()
	wrong := strings.Repeat("0", 64)
	_, err := fileLoader(t, pool, loader.Config{}).LoadFile(context.Background(),
		loader.FileInput{R: f, ID: wrong, SHA256: wrong, Name: "events.ndjson"})
	if err == nil || !strings.Contains(err.Error(), "changed while it was loaded") {
		t.Fatalf("hash mismatch: %v; want an error", err)
	}
}

// TestBackfillTruncatedGzip: the lines before the damage are loaded, the
// run fails with the read error, nothing partial is loaded.
func TestBackfillTruncatedGzip(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	dir := t.TempDir()
	full := filepath.Join(dir, "full.gz")
	genFile(t, full, genConfig(17), 20000, true)
	b, _ := os.ReadFile(full)
	cut := filepath.Join(dir, "cut.gz")
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	sum, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 1000}), cut, nil)
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") || sum.Complete {
		t.Fatalf("truncated gzip: %+v, %v; want a read error", sum, err)
	}
	if sum.Loaded < 5000 || sum.DeadLetters != 0 {
		t.Errorf("truncated gzip: %+v; want the lines before the damage loaded, no dead letter", sum)
	}
	checkLinesOnce(t, pool, sum.Topic, sum.Loaded)
}

// TestBackfillStreamBatchWaitAndInterrupt reads a stream that stays open
// (a pipe): a batch that does not fill closes after BatchWait; on cancel
// the lines taken so far are committed although a Read is blocked.
func TestBackfillStreamBatchWaitAndInterrupt(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	var lines []byte
	g := gen.New(genConfig(18), 2500)
	for {
		_, v, ok := g.Next(nil, nil)
		if !ok {
			break
		}
		lines = append(append(lines, v...), '\n')
	}
	split := bytes.Index(lines, []byte("\n")) + 1 // after the first line
	for range 9 {
		split += bytes.Index(lines[split:], []byte("\n")) + 1
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		sum loader.FileSummary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := fileLoader(t, pool, loader.Config{BatchSize: 1000, BatchWait: 3 * time.Second}).LoadFile(ctx,
			loader.FileInput{R: pr, ID: "stream", Name: "stdin"})
		done <- result{s, err}
	}()
	waitStored := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for storedNext(t, pool, "file:stream") != n {
			if time.Now().After(deadline) {
				t.Fatalf("stored next line %d after 30s, want %d", storedNext(t, pool, "file:stream"), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pw.Write(lines[:split]) // 10 lines, then nothing: they commit after BatchWait
	waitStored(10)
	pw.Write(lines[split:]) // 2490 more: two full batches and 490 in flight
	waitStored(2010)
	time.Sleep(300 * time.Millisecond) // the 490 are taken, their batch open for less than BatchWait
	cancel()
	select {
	case r := <-done:
		if r.err != nil || !r.sum.Interrupted || r.sum.Loaded != 2500 {
			t.Fatalf("after cancel: %+v, %v; want interrupted with all 2500 lines committed", r.sum, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("LoadFile did not return within 30s of the cancel while a Read was blocked")
	}
	checkLinesOnce(t, pool, "file:stream", 2500)
}

// TestBackfillGzipMembers: concatenated gzip files (gzip members) are one
// input.
func TestBackfillGzipMembers(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.gz"), filepath.Join(dir, "b.gz")
	wantA := genFile(t, a, genConfig(19), 3000, true)
	wantB := genFile(t, b, genConfig(20), 2000, true)
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	both := filepath.Join(dir, "both.gz")
	os.WriteFile(both, append(ba, bb...), 0o644)
	sum, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 1000}), both, nil)
	if err != nil || !sum.Complete || sum.Lines != 5000 || sum.Events != 5000 {
		t.Fatalf("two gzip members: %+v, %v; want 5000 events", sum, err)
	}
	for zone, z := range wantB {
		w := wantA[zone]
		wantA[zone] = zoneTotal{w.requests + z.requests, w.bytes + z.bytes}
	}
	checkTotals(t, pool, wantA)
}

// TestBackfillTwoLoadsAtOnce: two loads of the same input at the same time
// (different batch sizes) never load a line twice; a load that finds its
// batch overlapping the other's stops with an error, and a rerun finishes.
func TestBackfillTwoLoadsAtOnce(t *testing.T) {
	pool := testenv.Pool(t, testenv.NewDB(t))
	path := filepath.Join(t.TempDir(), "events.ndjson")
	const n = 30000
	want := genFile(t, path, genConfig(21), n, false)
	errs := make(chan error, 2)
	for _, size := range []int{1000, 700} {
		go func() {
			_, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: size}), path, nil)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Logf("one of two loads at once: %v", err)
			if !strings.Contains(err.Error(), "another load of file:") {
				t.Errorf("error %v; want one saying another load committed meanwhile", err)
			}
		}
	}
	sum, err := loadPath(t, context.Background(), fileLoader(t, pool, loader.Config{BatchSize: 1000}), path, nil)
	if err != nil || !sum.Complete {
		t.Fatalf("rerun: %+v, %v", sum, err)
	}
	checkTotals(t, pool, want)
	checkLinesOnce(t, pool, sum.Topic, n)
}
