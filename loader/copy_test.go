package loader

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"zonestats/internal/testenv"
)

func testBatch(partition int, first int64, evs []Event) *batch {
	b := &batch{topic: "t", partition: partition, expected: -1}
	for i := range evs {
		b.addEvent(first+int64(i), 100, &evs[i])
	}
	return b
}

// TestCommitRoundTripAndFencing: the hand-made binary COPY stores every
// field as decoded, and the offset fence refuses stale or repeated batches.
func TestCommitRoundTripAndFencing(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	evs := []Event{
		{TS: time.Date(2026, 11, 25, 19, 42, 56, 123456789, time.UTC), ZoneID: 9007199254740993, ClientIP: netip.MustParseAddr("203.0.113.7"),
			Country: "US", Colo: "SFO", Method: "GET", Status: 200, ContentType: "html", Bytes: 5120, CacheStatus: "hit",
			SSLProtocol: "TLSv1.3", IPClass: "clean", Threat: "", PageView: true, Browser: "Chrome"},
		{TS: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), ZoneID: 1, ClientIP: netip.MustParseAddr("2001:db8::1"),
			Country: "XX", Colo: "NRT", Method: "POST", Status: 503, ContentType: "ünïcødé ✓", Bytes: 0, CacheStatus: "miss",
			SSLProtocol: "none", IPClass: "tor", Threat: "sqli'; --", PageView: false, Browser: "bot"},
	}
	b := testBatch(3, 10, evs)
	if _, err := commit(ctx, conn, b, true); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status,
		ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset
		FROM zonestats_internal.raw_events ORDER BY kafka_offset`)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var g Event
		var part int32
		var off int64
		if err := rows.Scan(&g.TS, &g.ZoneID, &g.ClientIP, &g.Country, &g.Colo, &g.Method, &g.Status, &g.ContentType, &g.Bytes,
			&g.CacheStatus, &g.SSLProtocol, &g.IPClass, &g.Threat, &g.PageView, &g.Browser, &part, &off); err != nil {
			t.Fatal(err)
		}
		want := evs[i]
		want.TS = want.TS.Truncate(time.Microsecond) // PostgreSQL keeps microseconds
		g.TS = g.TS.UTC()
		if g != want || part != 3 || off != int64(10+i) {
			t.Errorf("row %d:\n got %+v (%d, %d)\nwant %+v", i, g, part, off, want)
		}
		i++
	}
	if i != len(evs) {
		t.Fatalf("%d rows, want %d", i, len(evs))
	}

	// The same batch again (a retry after a lost COMMIT reply): nothing written.
	b.expected = 10
	if _, err := commit(ctx, conn, b, true); err != nil {
		t.Fatalf("repeated batch: %v", err)
	}
	// A batch from a loader that started at the old offset: stale.
	stale := testBatch(3, 10, evs[:1])
	stale.expected = 10
	if _, err := commit(ctx, conn, stale, true); !errors.Is(err, errStale) {
		t.Fatalf("stale batch: %v, want errStale", err)
	}
	// Offsets below the stored one (topic recreated): refused, nothing written.
	back := testBatch(3, 5, evs[:1])
	back.expected = 12
	if _, err := commit(ctx, conn, back, true); err == nil || errors.Is(err, errStale) {
		t.Fatalf("batch below the stored offset: %v, want a refusal", err)
	}
	// The next batch starts after a hole (Kafka lost offsets 12..14): recorded.
	next := testBatch(3, 15, evs[:1])
	next.expected = 12
	gap, err := commit(ctx, conn, next, false) // through raw_events, as without migration 008
	if err != nil || gap != 3 {
		t.Fatalf("gap batch: gap %d, %v", gap, err)
	}
	var first, last, n int64
	if err := conn.QueryRow(ctx, "SELECT first_offset, last_offset, (SELECT count(*) FROM zonestats_internal.raw_events) FROM zonestats_internal.offset_gaps").Scan(&first, &last, &n); err != nil || first != 12 || last != 14 || n != 3 {
		t.Fatalf("gap %d..%d, rows %d, %v", first, last, n, err)
	}
}

// TestCommitStraightIntoThePartition: a batch is COPYed into the raw
// partition of its transaction's now(), where PostgreSQL has one (the
// loader role may write it, but not choose event_id there either), and
// through raw_events into the default partition where it has none; on
// Citus always through raw_events.
func TestCommitStraightIntoThePartition(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDB(t)
	conn := testenv.Conn(t, url)
	var part *string
	if err := conn.QueryRow(ctx, "SELECT zonestats_internal.raw_partition_for_now()").Scan(&part); err != nil {
		t.Fatal(err)
	}
	if testenv.OnCitus() {
		if part != nil {
			t.Fatalf("raw_partition_for_now() = %q on Citus, want NULL (COPY into raw_events)", *part)
		}
		return
	}
	if part == nil {
		t.Fatal("raw_partition_for_now() is NULL, want the partition of this hour")
	}
	evs := make([]Event, 50)
	for i := range evs {
		evs[i] = Event{TS: time.Now().UTC(), ZoneID: int64(i), ClientIP: netip.MustParseAddr("192.0.2.1"), Country: "DE",
			Colo: "FRA", Method: "GET", Status: 200, ContentType: "html", CacheStatus: "hit", SSLProtocol: "none", IPClass: "clean"}
	}

	// The loader's role, with INSERT on raw_events taken away: the batch
	// can only have gone straight into the partition.
	loader := testenv.Conn(t, testenv.AsRole(url, testenv.LoginRole(t, "zs_direct_loader", "zonestats_loader")))
	if _, err := conn.Exec(ctx, "REVOKE INSERT ON zonestats_internal.raw_events FROM zonestats_loader"); err != nil {
		t.Fatal(err)
	}
	if _, err := commit(ctx, loader, testBatch(0, 0, evs), true); err != nil {
		t.Fatalf("COPY into %s as the loader role: %v", *part, err)
	}
	if _, err := commit(ctx, loader, testBatch(1, 0, evs), false); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("COPY into raw_events without INSERT on it: %v, want permission denied", err)
	}
	_, err := loader.CopyFrom(ctx, pgx.Identifier{"zonestats_internal", strings.TrimPrefix(*part, "zonestats_internal.")},
		[]string{"event_id"}, pgx.CopyFromRows([][]any{{int64(1)}}))
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("loader role: COPY %s (event_id): %v, want permission denied", *part, err)
	}
	if _, err := conn.Exec(ctx, "GRANT INSERT (ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset) ON zonestats_internal.raw_events TO zonestats_loader"); err != nil {
		t.Fatal(err)
	}

	// No partition for now (maintenance behind): the default partition.
	if _, err := conn.Exec(ctx, `DO $$ DECLARE p regclass; BEGIN
		FOR p IN SELECT partition FROM zonestats_internal.time_partitions
		         WHERE parent_table = 'zonestats_internal.raw_events'::regclass AND to_value > now() LOOP
			EXECUTE format('ALTER TABLE zonestats_internal.raw_events DETACH PARTITION %s', p);
		END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT zonestats_internal.raw_partition_for_now()").Scan(&part); err != nil || part != nil {
		t.Fatalf("raw_partition_for_now() with no partition for now: %v, %v; want NULL", part, err)
	}
	if _, err := commit(ctx, loader, testBatch(2, 0, evs), true); err != nil {
		t.Fatal(err)
	}
	var inDefault, total int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tableoid = 'zonestats_internal.raw_events_default'::regclass), count(*)
		FROM zonestats_internal.raw_events`).Scan(&inDefault, &total); err != nil || inDefault != 50 || total != 50 {
		t.Fatalf("after the partitions of now were detached: %d rows in the default partition, %d in raw_events (%v); want 50, 50", inDefault, total, err)
	}
}

// TestFindRefusedByTrial: when the database's error names no row (as on
// Citus), findRefused finds exactly the events it refuses by copying
// halves in transactions it rolls back, and writes nothing.
func TestFindRefusedByTrial(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	if _, err := conn.Exec(ctx, "ALTER TABLE zonestats_internal.raw_events ADD CONSTRAINT refuse_zone_13 CHECK (zone_id <> 13)"); err != nil {
		t.Fatal(err)
	}
	ev := Event{TS: time.Now().UTC(), ZoneID: 1, ClientIP: netip.MustParseAddr("192.0.2.1"), Country: "US", Colo: "SFO",
		Method: "GET", Status: 200, ContentType: "html", CacheStatus: "hit", SSLProtocol: "none", IPClass: "clean", Browser: "x"}
	evs := make([]Event, 100)
	want := map[int]bool{0: true, 7: true, 50: true, 51: true, 99: true}
	for i := range evs {
		evs[i] = ev
		if want[i] {
			evs[i].ZoneID = 13
		}
	}
	b := testBatch(0, 0, evs)
	b.addDead(100, 3, nil, []byte("bad"), "a dead letter") // not a row: not searched
	found, err := findRefused(ctx, conn, b)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, r := range found {
		got[r.i] = true
		if r.pe.Code != "23514" && !(testenv.OnCitus() && r.pe.Code == "XX000") {
			t.Errorf("event %d: SQLSTATE %s, want 23514", r.i, r.pe.Code)
		}
	}
	if len(found) != len(want) || len(got) != len(want) {
		t.Errorf("found %v, want %v", got, want)
	}
	for i := range want {
		if !got[i] {
			t.Errorf("event %d not found", i)
		}
	}
	var n int64
	conn.QueryRow(ctx, "SELECT count(*) FROM zonestats_internal.raw_events").Scan(&n)
	if n != 0 {
		t.Errorf("%d rows written by the search", n)
	}
	// Nothing refused: nothing found.
	ok := testBatch(0, 0, evs[1:7])
	if found, err := findRefused(ctx, conn, ok); err != nil || len(found) != 0 {
		t.Errorf("a batch the database accepts: found %v, %v", found, err)
	}
}

// TestRejectTakesOutTheRow: a batch holds its events only as COPY rows;
// rejecting one reads it back (the dead letter's payload is the event as
// JSON), takes it out of the rows, and the rest still COPYs as it was.
func TestRejectTakesOutTheRow(t *testing.T) {
	ctx := context.Background()
	conn := testenv.Conn(t, testenv.NewDB(t))
	evs := make([]Event, 5)
	for i := range evs {
		evs[i] = Event{TS: time.Date(2026, 12, 5, 10, i, 0, 123456000, time.UTC), ZoneID: int64(100 + i),
			ClientIP: netip.MustParseAddr("192.0.2.1"), Country: "US", Colo: "SFO", Method: "GET", Status: int16(200 + i),
			ContentType: "html", Bytes: int64(i) << 33, CacheStatus: "hit", SSLProtocol: "none", IPClass: "clean",
			Threat: "t", PageView: i%2 == 0, Browser: "x"}
	}
	evs[3].ClientIP = netip.MustParseAddr("2001:db8::3")
	b := testBatch(2, 40, evs)
	for i := range evs {
		starts, err := rowStarts(b.rows)
		if err != nil || len(starts) != len(evs)+1 {
			t.Fatalf("rowStarts: %v, %v", starts, err)
		}
		e, off, err := parseCopyRow(b.rows[starts[i]:starts[i+1]])
		if err != nil || e != evs[i] || off != int64(40+i) {
			t.Fatalf("row %d read back as %+v at %d (%v), want %+v at %d", i, e, off, err, evs[i], 40+i)
		}
	}
	// Last row first, as commitWithRetry does.
	for _, i := range []int{3, 1} {
		off, err := b.reject(i, "refused")
		if err != nil || off != int64(40+i) {
			t.Fatalf("reject row %d: offset %d, %v", i, off, err)
		}
	}
	if b.events != 3 || len(b.dead) != 2 || b.messages != 5 {
		t.Fatalf("after two rejects: %d events, %d dead letters, %d messages", b.events, len(b.dead), b.messages)
	}
	if got, want := string(b.dead[0].value), string(eventJSON(&evs[3])); got != want {
		t.Errorf("payload %s, want %s", got, want)
	}
	if _, err := b.reject(3, "no such row"); err == nil {
		t.Error("rejecting a row past the end: no error")
	}
	if _, err := commit(ctx, conn, b, true); err != nil {
		t.Fatal(err)
	}
	var zones, offsets string
	if err := conn.QueryRow(ctx, `SELECT string_agg(zone_id::text, ',' ORDER BY kafka_offset)
		FROM zonestats_internal.raw_events`).Scan(&zones); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT string_agg(kafka_offset::text, ',' ORDER BY kafka_offset)
		FROM zonestats.dead_letters`).Scan(&offsets); err != nil {
		t.Fatal(err)
	}
	if zones != "100,102,104" || offsets != "41,43" {
		t.Errorf("raw zones %s, dead-letter offsets %s; want 100,102,104 and 41,43", zones, offsets)
	}
}
