package loader_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"zonestats/internal/gen"
	"zonestats/internal/testenv"
	"zonestats/loader"
	"zonestats/loader/schema"
)

// capnpEvent encodes ev as one framed Cap'n Proto message; mod, if set,
// changes the message before it is framed, with more room in the root
// struct when extra says so (a newer schema's unknown fields).
func capnpEvent(t *testing.T, ev loader.Event, extra bool, mod func(e schema.Event)) []byte {
	t.Helper()
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	size := capnp.ObjectSize{DataSize: 32, PointerCount: 10}
	if extra {
		size = capnp.ObjectSize{DataSize: 40, PointerCount: 11}
	}
	st, err := capnp.NewRootStruct(seg, size)
	if err != nil {
		t.Fatal(err)
	}
	e := schema.Event(st)
	e.SetTs(ev.TS.UnixNano())
	e.SetZoneId(uint64(ev.ZoneID))
	ip := ev.ClientIP.AsSlice()
	for _, err := range []error{
		e.SetClientIp(ip), e.SetCountry(ev.Country), e.SetColo(ev.Colo), e.SetMethod(ev.Method),
		e.SetContentType(ev.ContentType), e.SetCacheStatus(ev.CacheStatus), e.SetSslProtocol(ev.SSLProtocol),
		e.SetIpClass(ev.IPClass), e.SetThreat(ev.Threat), e.SetBrowser(ev.Browser),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.SetStatus(uint16(ev.Status))
	e.SetBytes(uint64(ev.Bytes))
	e.SetPageView(ev.PageView)
	if mod != nil {
		mod(e)
	}
	b, err := msg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startFormatLoader is startLoader for a message format.
func startFormatLoader(t *testing.T, pool *pgxpool.Pool, brokers []string, format string) (stop func()) {
	t.Helper()
	_, stop = runLoaderWith(t, pool, loader.Config{
		Brokers: brokers, Topic: topic, Group: "zonestats", Format: format, BatchSize: 700,
		BatchWait: 100 * time.Millisecond, Logger: testLogger(t), ProgressEvery: -1,
	})
	return stop
}

func rawEvents(t *testing.T, pool *pgxpool.Pool) map[int64]loader.Event {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT kafka_offset, ts, zone_id, host(client_ip), country, colo,
		method, status, content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser
		FROM zonestats_internal.raw_events WHERE kafka_partition = 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]loader.Event{}
	for rows.Next() {
		var off int64
		var ip string
		var e loader.Event
		if err := rows.Scan(&off, &e.TS, &e.ZoneID, &ip, &e.Country, &e.Colo, &e.Method, &e.Status, &e.ContentType,
			&e.Bytes, &e.CacheStatus, &e.SSLProtocol, &e.IPClass, &e.Threat, &e.PageView, &e.Browser); err != nil {
			t.Fatal(err)
		}
		e.TS = e.TS.UTC()
		e.ClientIP = netip.MustParseAddr(ip)
		if _, dup := out[off]; dup {
			t.Errorf("offset %d loaded twice", off)
		}
		out[off] = e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// deadLetters returns the reason and payload of the dead letters of
// partition 0 by offset.
func deadLetters(t *testing.T, pool *pgxpool.Pool) map[int64][2]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT kafka_offset, reason, payload FROM zonestats.dead_letters
		WHERE topic = $1 AND partition = 0`, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][2]string{}
	for rows.Next() {
		var off int64
		var reason string
		var payload []byte
		if err := rows.Scan(&off, &reason, &payload); err != nil {
			t.Fatal(err)
		}
		out[off] = [2]string{reason, string(payload)}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// capnpKindReasons is the reason each malformed kind of the generator gets.
var capnpKindReasons = map[string]string{
	"json on a capnp topic": "bad segment table",
	"truncated frame":       "truncated frame",
	"zone_id unset":         "bad zone_id",
	"zone_id out of range":  "bad zone_id",
	"bad ip":                "bad client_ip",
	"status 1000":           "bad status",
	"invalid utf-8":         "invalid UTF-8",
	"empty message":         "empty message",
	"trailing garbage":      "trailing data",
	"bytes out of range":    "bad bytes",
	"nul in browser":        "bad browser",
}

// TestCapnpEndToEnd loads Cap'n Proto events through the broker into
// PostgreSQL with Format "capnp": hand-made frames (good ones, one of them
// larger than a fetch; malformed ones of every kind the decoder names),
// then generated traffic with malformed messages. Every good event is in
// raw_events exactly once with the fields its JSON twin decodes to; every
// bad message is a dead letter at its offset, with its reason and its bytes.
func TestCapnpEndToEnd(t *testing.T) {
	url := testenv.NewDB(t)
	pool := testenv.Pool(t, url)
	_, brokers := testenv.Kafka(t, topic, 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16777216"}))

	now := time.Now().UTC().Truncate(time.Millisecond)
	good := loader.Event{TS: now, ZoneID: 4211, ClientIP: netip.MustParseAddr("203.0.113.7"), Country: "US", Colo: "SFO",
		Method: "GET", Status: 200, ContentType: "html", Bytes: 5120, CacheStatus: "hit", SSLProtocol: "TLSv1.3",
		IPClass: "clean", Threat: "", PageView: true, Browser: "Chrome"}
	goodV6 := good
	goodV6.ClientIP = netip.MustParseAddr("2001:db8::7")
	goodV6.SSLProtocol, goodV6.Threat = "none", "sqli"
	frame := capnpEvent(t, good, false, nil)
	// The root behind a far pointer in a second segment.
	far := binary.LittleEndian.AppendUint32(nil, 1)
	far = binary.LittleEndian.AppendUint32(far, 1)
	far = binary.LittleEndian.AppendUint32(far, uint32(len(frame)-8)/8)
	far = append(far, 0, 0, 0, 0)
	far = binary.LittleEndian.AppendUint64(far, 2|1<<32)
	far = append(far, frame[8:]...)
	// Every pointer of the struct aims at the browser's text.
	alias := capnpEvent(t, good, false, func(e schema.Event) { e.SetBrowser(strings.Repeat("x", 900)) })
	{
		bw := binary.LittleEndian.Uint64(alias[8+14*8:])
		target := 14 + 1 + int(int32(uint32(bw))>>2)
		for i := 0; i < 10; i++ {
			at := 5 + i
			binary.LittleEndian.PutUint64(alias[8+at*8:], bw&^0xfffffffc|uint64(uint32(int32(target-at-1))<<2))
		}
	}
	colo := binary.LittleEndian.Uint64(frame[8+7*8:])
	oob := bytes.Clone(frame)
	binary.LittleEndian.PutUint64(oob[8+7*8:], colo|0x1fffffff<<35) // a list past the end

	msgs := []struct {
		value  []byte
		reason string // "" for an event; a prefix of the reason
		want   loader.Event
	}{
		{frame, "", good},
		{nil, "empty message", loader.Event{}},
		{frame[:5], "truncated frame", loader.Event{}},
		{frame[:len(frame)-3], "truncated frame", loader.Event{}},
		{[]byte(`{"ts":"2026-11-25T19:42:56Z","zone_id":1}`), "bad segment table", loader.Event{}},
		{append(bytes.Clone(frame), 0, 0, 0, 0, 0, 0, 0, 0), "trailing data", loader.Event{}},
		{oob, "bad pointer: colo", loader.Event{}},
		{alias, "traversal limit exceeded", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetTs(0) }), "missing field: ts", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetColo("") }), "missing field: colo", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetStatus(1000) }), "bad status", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetClientIp([]byte{1, 2, 3, 4, 5}) }), "bad client_ip", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetBrowser("Ch\xffrome") }), "invalid UTF-8", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetColo("S\x00O") }), "bad colo", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetTs(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()) }), "ts too old", loader.Event{}},
		{capnpEvent(t, good, false, func(e schema.Event) { e.SetTs(now.Add(48 * time.Hour).UnixNano()) }), "ts in the future", loader.Event{}},
		{far, "", good},
		{capnpEvent(t, goodV6, false, func(e schema.Event) {
			a := goodV6.ClientIP.As16()
			e.SetClientIp(a[:])
			e.SetSslProtocol("")
		}), "", goodV6},
		// A newer schema's event with a 5 MiB unknown field: larger than one
		// fetch (4 MiB), loaded all the same.
		{capnpEvent(t, good, true, func(e schema.Event) {
			if err := capnp.Struct(e).SetData(10, bytes.Repeat([]byte{7}, 5<<20)); err != nil {
				t.Fatal(err)
			}
		}), "", good},
		{frame, "", good},
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Transport: &kafka.Transport{}, BatchTimeout: time.Millisecond,
		BatchBytes: 16 << 20, RequiredAcks: kafka.RequireAll}
	var kmsgs []kafka.Message
	for _, m := range msgs {
		kmsgs = append(kmsgs, kafka.Message{Key: []byte("4211"), Value: m.value})
	}
	if err := w.WriteMessages(context.Background(), kmsgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// Generated traffic after them: capnp, with its JSON twin as reference.
	cfg := genConfig(5)
	cfg.LateShare, cfg.BadShare, cfg.Format = 0.05, 0.02, "capnp"
	const n = 12000
	g := produce(t, brokers, cfg, n)
	if g.Malformed() < 100 {
		t.Fatalf("only %d malformed messages generated", g.Malformed())
	}

	stop := startFormatLoader(t, pool, brokers, "capnp")
	waitLoaded(t, pool, brokers, 2*time.Minute)
	stop()

	events, dead := checkExactlyOnce(t, pool, brokers)
	raw, dl := rawEvents(t, pool), deadLetters(t, pool)
	for off, m := range msgs {
		off := int64(off)
		if m.reason == "" {
			if got, ok := raw[off]; !ok || got != m.want {
				t.Errorf("offset %d: event %+v (loaded %v), want %+v; dead letter %q", off, got, ok, m.want, dl[off][0])
			}
			continue
		}
		d, ok := dl[off]
		if !ok {
			t.Errorf("offset %d: no dead letter (want %q)", off, m.reason)
			continue
		}
		if !strings.HasPrefix(d[0], m.reason) {
			t.Errorf("offset %d: reason %q, want prefix %q", off, d[0], m.reason)
		}
		if d[1] != string(m.value) {
			t.Errorf("offset %d: payload not kept byte for byte", off)
		}
	}

	// The generated messages, from offset len(msgs) on.
	cfgJSON := cfg
	cfgJSON.Format = "json"
	gc, gj := gen.New(cfg, n), gen.New(cfgJSON, n)
	var dj loader.JSONDecoder
	var vc, vj []byte
	bad := 0
	for i := 0; ; i++ {
		before := gc.Malformed()
		var ok bool
		_, vc, ok = gc.Next(nil, vc[:0])
		_, vj, _ = gj.Next(nil, vj[:0])
		if !ok {
			break
		}
		off := int64(len(msgs) + i)
		if gc.Malformed() != before {
			bad++
			kind := gen.BadKindsCapnp[before%len(gen.BadKindsCapnp)]
			if d, ok := dl[off]; !ok || d[0] != capnpKindReasons[kind] || d[1] != string(vc) {
				t.Errorf("offset %d (%s): dead letter %q (found %v), want %q with the message's bytes", off, kind, d[0], ok, capnpKindReasons[kind])
			}
			continue
		}
		var want loader.Event
		if err := dj.Decode(vj, &want); err != nil {
			t.Fatalf("JSON twin of offset %d: %v", off, err)
		}
		if got, ok := raw[off]; !ok || got != want {
			t.Errorf("offset %d: event %+v (loaded %v), want %+v; dead letter %q", off, got, ok, want, dl[off][0])
		}
	}
	wantDead := int64(bad)
	for _, m := range msgs {
		if m.reason != "" {
			wantDead++
		}
	}
	if events+dead != int64(len(msgs)+n) || dead != wantDead {
		t.Fatalf("events %d + dead letters %d; produced %d, of which %d bad", events, dead, len(msgs)+n, wantDead)
	}
	if bad != g.Malformed() {
		t.Fatalf("regenerated %d malformed, produced %d", bad, g.Malformed())
	}
}
