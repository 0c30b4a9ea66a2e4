package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"

	"zonestats/internal/gen"
	"zonestats/loader/schema"
)

// ---------------------------------------------------------------------------
// A test encoder: an Event as one framed Cap'n Proto message.

// The pointer index of each pointer field is its position in
// capnpTextFields (TestCapnpLayout checks it against the generated code).
func capnpPtrIndex(f int) uint16 {
	for i, g := range capnpTextFields {
		if g == f {
			return uint16(i)
		}
	}
	panic("not a pointer field")
}

// setCapnpText sets pointer field f to v, non-null even when v is empty
// (as C++'s setters do; the Go setters write "" as null).
func setCapnpText(t testing.TB, e schema.Event, f int, v string) {
	t.Helper()
	if err := capnp.Struct(e).SetNewText(capnpPtrIndex(f), v); err != nil {
		t.Fatal(err)
	}
}

// setCapnpEvent writes every field of ev into e.
func setCapnpEvent(t testing.TB, e schema.Event, ev *Event) {
	t.Helper()
	e.SetTs(ev.TS.UnixNano())
	e.SetZoneId(uint64(ev.ZoneID))
	var ip []byte
	if ev.ClientIP.Is4() {
		a := ev.ClientIP.As4()
		ip = a[:]
	} else {
		a := ev.ClientIP.As16()
		ip = a[:]
	}
	if err := e.SetClientIp(ip); err != nil {
		t.Fatal(err)
	}
	setCapnpText(t, e, fCountry, ev.Country)
	setCapnpText(t, e, fColo, ev.Colo)
	setCapnpText(t, e, fMethod, ev.Method)
	e.SetStatus(uint16(ev.Status))
	setCapnpText(t, e, fContentType, ev.ContentType)
	e.SetBytes(uint64(ev.Bytes))
	setCapnpText(t, e, fCacheStatus, ev.CacheStatus)
	setCapnpText(t, e, fSSLProtocol, ev.SSLProtocol)
	setCapnpText(t, e, fIPClass, ev.IPClass)
	setCapnpText(t, e, fThreat, ev.Threat)
	e.SetPageView(ev.PageView)
	setCapnpText(t, e, fBrowser, ev.Browser)
}

// capnpMessage builds a message whose root is a struct of the given size
// (the schema's size when zero) and returns it with its root.
func capnpMessage(t testing.TB, size capnp.ObjectSize) (*capnp.Message, schema.Event) {
	t.Helper()
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	if size == (capnp.ObjectSize{}) {
		e, err := schema.NewRootEvent(seg)
		if err != nil {
			t.Fatal(err)
		}
		return msg, e
	}
	st, err := capnp.NewRootStruct(seg, size)
	if err != nil {
		t.Fatal(err)
	}
	return msg, schema.Event(st)
}

func marshal(t testing.TB, msg *capnp.Message) []byte {
	t.Helper()
	b, err := msg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeCapnp encodes ev as one framed message.
func encodeCapnp(t testing.TB, ev *Event) []byte {
	t.Helper()
	msg, e := capnpMessage(t, capnp.ObjectSize{})
	setCapnpEvent(t, e, ev)
	return marshal(t, msg)
}

// capnpWith is the example event encoded, then changed by mod.
func capnpWith(t testing.TB, mod func(e schema.Event)) []byte {
	t.Helper()
	msg, e := capnpMessage(t, capnp.ObjectSize{})
	setCapnpEvent(t, e, &exampleEvent)
	mod(e)
	return marshal(t, msg)
}

// capnpNull is the example with pointer field f null.
func capnpNull(t testing.TB, f int) []byte {
	return capnpWith(t, func(e schema.Event) {
		if err := capnp.Struct(e).SetPtr(capnpPtrIndex(f), capnp.Ptr{}); err != nil {
			t.Fatal(err)
		}
	})
}

// capnpText is the example with pointer field f set to the text v.
func capnpTextWith(t testing.TB, f int, v string) []byte {
	return capnpWith(t, func(e schema.Event) { setCapnpText(t, e, f, v) })
}

// ---------------------------------------------------------------------------
// Hand-made frames and pointers (https://capnproto.org/encoding.html).

// frameOf frames segments: the segment table, then the segments.
func frameOf(segs ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(segs)-1))
	for _, s := range segs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)/8))
	}
	if len(segs)%2 == 0 {
		b = append(b, 0, 0, 0, 0)
	}
	for _, s := range segs {
		b = append(b, s...)
	}
	return b
}

func words(ws ...uint64) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

func structPtr(off int32, dataWords, ptrs uint16) uint64 {
	return uint64(uint32(off)<<2) | uint64(dataWords)<<32 | uint64(ptrs)<<48
}

func listPtr(off int32, elemSize uint8, n uint32) uint64 {
	return 1 | uint64(uint32(off)<<2) | uint64(elemSize)<<32 | uint64(n)<<35
}

func farPtr(double bool, padWord uint32, seg uint32) uint64 {
	p := 2 | uint64(padWord)<<3 | uint64(seg)<<32
	if double {
		p |= 4
	}
	return p
}

// The layout of a message of the Go encoder: the segment table (one
// segment: 8 bytes), the root pointer, the root struct (4 data words, 10
// pointers), then the texts.
const (
	capnpHdr      = 8
	capnpDataWds  = 4
	capnpPtrCount = 10
)

// ptrWord returns the offset in a one-segment frame of the Go encoder of
// the pointer of field f.
func ptrWord(f int) int { return capnpHdr + (1+capnpDataWds+int(capnpPtrIndex(f)))*8 }

// setWord overwrites the 8 bytes at off.
func setWord(b []byte, off int, w uint64) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint64(b[off:], w)
	return b
}

func word(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

// retarget returns a list pointer at word index from (of the segment) with
// the same list as the pointer p at word index at.
func retarget(p uint64, at, from int) uint64 {
	off := int32(uint32(p)) >> 2
	target := at + 1 + int(off)
	return p&^0xfffffffc | uint64(uint32(int32(target-from-1))<<2)
}

// ---------------------------------------------------------------------------

// decodeCapnp decodes data with a new CapnpDecoder, and checks that the
// library alone (no fast path) decodes it the same.
func decodeCapnp(t testing.TB, data []byte) (Event, string) {
	t.Helper()
	ev, reason := decodeCapnpWith(t, &CapnpDecoder{}, data)
	ev2, reason2 := decodeCapnpWith(t, &CapnpDecoder{libraryOnly: true}, data)
	if ev != ev2 || reason != reason2 {
		t.Fatalf("input %x:\nfast path %q %+v\nlibrary   %q %+v", data, reason, ev, reason2, ev2)
	}
	return ev, reason
}

func decodeCapnpWith(t testing.TB, d *CapnpDecoder, data []byte) (Event, string) {
	t.Helper()
	ev := Event{Colo: "stale", Threat: "stale"}
	err := d.Decode(data, &ev)
	if err == nil {
		return ev, ""
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason == "" {
		t.Fatalf("error %#v is not a *DecodeError with a reason", err)
	}
	if ev != (Event{}) {
		t.Fatalf("event not reset on error: %+v", ev)
	}
	return ev, de.Reason
}

// The fast path reads what encoders write; the library reads the rest.
func TestCapnpFastPath(t *testing.T) {
	var fl capnpFields
	for _, tc := range []struct {
		name string
		in   []byte
		fast bool
	}{
		{"go encoder", encodeCapnp(t, &exampleEvent), true},
		{"threat unset", capnpNull(t, fThreat), true},
		{"capnp tool", must(os.ReadFile(filepath.Join("testdata", "capnp", "example.bin"))), true},
		{"far root", frameOf(words(farPtr(false, 0, 1)), encodeCapnp(t, &exampleEvent)[capnpHdr:]), false},
		{"colo is a struct", setWord(encodeCapnp(t, &exampleEvent), ptrWord(fColo), structPtr(1, 0, 0)), false},
	} {
		var a frameArena
		if r := a.frame(tc.in); r != "" {
			t.Fatalf("%s: %s", tc.name, r)
		}
		if ok := readCapnpFast(a.segs[0], uint64(len(tc.in)), &fl); ok != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.name, ok, tc.fast)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCapnpLayout(t *testing.T) {
	msg, e := capnpMessage(t, capnp.ObjectSize{})
	for _, f := range capnpTextFields {
		setCapnpText(t, e, f, fieldNames[f])
	}
	// The generated getters read the pointer fields the test encoder writes.
	got := []func() ([]byte, error){e.ClientIp, e.CountryBytes, e.ColoBytes, e.MethodBytes, e.ContentTypeBytes,
		e.CacheStatusBytes, e.SslProtocolBytes, e.IpClassBytes, e.ThreatBytes, e.BrowserBytes}
	for i, f := range capnpTextFields {
		b, err := got[i]()
		if f == fClientIP {
			b = bytes.TrimSuffix(b, []byte{0}) // Data keeps the NUL of the text written
		}
		if err != nil || string(b) != fieldNames[f] {
			t.Errorf("pointer %d: %q, %v; want %q", i, b, err, fieldNames[f])
		}
	}
	e.SetTs(0x0102030405060708)
	e.SetZoneId(0x1112131415161718)
	e.SetStatus(0x2122)
	e.SetBytes(0x3132333435363738)
	e.SetPageView(true)
	b := marshal(t, msg)
	// The fast path's offsets of the data fields.
	data := b[capnpHdr+8:]
	if binary.LittleEndian.Uint64(data[capnpOffTS:]) != 0x0102030405060708 ||
		binary.LittleEndian.Uint64(data[capnpOffZoneID:]) != 0x1112131415161718 ||
		binary.LittleEndian.Uint16(data[capnpOffStatus:]) != 0x2122 ||
		binary.LittleEndian.Uint64(data[capnpOffBytes:]) != 0x3132333435363738 ||
		data[capnpBitPageView/8] != 1<<(capnpBitPageView%8) {
		t.Fatalf("data section %x", data[:capnpDataWds*8])
	}
	if w := word(b, capnpHdr); w != structPtr(0, capnpDataWds, capnpPtrCount) {
		t.Fatalf("root pointer %#x", w)
	}
	if w := word(b, ptrWord(fColo)); w&3 != 1 {
		t.Fatalf("colo pointer %#x is not a list pointer", w)
	}
}

func TestDecodeCapnpExample(t *testing.T) {
	data := encodeCapnp(t, &exampleEvent)
	ev, reason := decodeCapnp(t, data)
	if reason != "" {
		t.Fatal(reason)
	}
	if ev != exampleEvent || ev.TS.Location() != time.UTC {
		t.Fatalf("got %+v\nwant %+v", ev, exampleEvent)
	}
}

// TestDecodeCapnpFromCapnpTool decodes a message written by the C++
// implementation (`capnp encode` of Debian's capnproto 0.9.2, the text in
// testdata/capnp/example.txt): what an edge written in C++ or Lua sends.
func TestDecodeCapnpFromCapnpTool(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "capnp", "example.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ev, reason := decodeCapnp(t, data)
	if reason != "" {
		t.Fatal(reason)
	}
	want := withEvent(func(e *Event) {
		e.ClientIP = netip.MustParseAddr("2001:db8::7")
		e.SSLProtocol = "none" // unset
		e.Threat = ""          // unset
		e.Browser = "Firefox"
	})
	if ev != want {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
}

func TestDecodeCapnpValid(t *testing.T) {
	big := capnp.ObjectSize{DataSize: 8 * 8, PointerCount: capnpPtrCount + 3}
	newer := func() []byte {
		// A newer schema's event: more data and pointer fields, set.
		msg, e := capnpMessage(t, big)
		setCapnpEvent(t, e, &exampleEvent)
		st := capnp.Struct(e)
		st.SetUint64(7*8, math.MaxUint64)
		if err := st.SetNewText(capnpPtrCount+1, strings.Repeat("unknown ", 1000)); err != nil {
			t.Fatal(err)
		}
		return marshal(t, msg)
	}
	one := encodeCapnp(t, &exampleEvent)
	seg := one[capnpHdr:]
	// The root in a second segment: a far pointer to a landing pad there
	// (the original root pointer, whose struct follows it).
	far := frameOf(words(farPtr(false, 0, 1)), seg)
	// Double-far: the landing pad (in segment 2) is a far pointer to the
	// struct in segment 1 and a tag word (the struct pointer, offset 0).
	doubleFar := frameOf(words(farPtr(true, 0, 2)), seg, words(farPtr(false, 1, 1), structPtr(0, capnpDataWds, capnpPtrCount)))

	cases := []struct {
		name string
		in   []byte
		want Event
	}{
		{"example", one, exampleEvent},
		{"ipv6", capnpWith(t, func(e schema.Event) {
			a := netip.MustParseAddr("2001:db8::1").As16()
			e.SetClientIp(a[:])
		}), withEvent(func(e *Event) { e.ClientIP = netip.MustParseAddr("2001:db8::1") })},
		{"ipv4-mapped ipv6 unmapped", capnpWith(t, func(e schema.Event) {
			a := netip.MustParseAddr("::ffff:203.0.113.7").As16()
			e.SetClientIp(a[:])
		}), exampleEvent},
		{"country lower case", capnpTextWith(t, fCountry, "us"), exampleEvent},
		{"country with digit", capnpTextWith(t, fCountry, "a1"), withEvent(func(e *Event) { e.Country = "A1" })},
		{"ssl_protocol empty is none", capnpTextWith(t, fSSLProtocol, ""), withEvent(func(e *Event) { e.SSLProtocol = "none" })},
		{"ssl_protocol unset is none", capnpNull(t, fSSLProtocol), withEvent(func(e *Event) { e.SSLProtocol = "none" })},
		{"threat unset", capnpNull(t, fThreat), exampleEvent},
		{"threat set", capnpTextWith(t, fThreat, "sqli"), withEvent(func(e *Event) { e.Threat = "sqli" })},
		{"utf-8 label", capnpTextWith(t, fColo, "Zürich東京"), withEvent(func(e *Event) { e.Colo = "Zürich東京" })},
		{"label of 64 bytes", capnpTextWith(t, fMethod, strings.Repeat("M", 64)), withEvent(func(e *Event) { e.Method = strings.Repeat("M", 64) })},
		{"page_view false", capnpWith(t, func(e schema.Event) { e.SetPageView(false) }), withEvent(func(e *Event) { e.PageView = false })},
		{"status 100", capnpWith(t, func(e schema.Event) { e.SetStatus(100) }), withEvent(func(e *Event) { e.Status = 100 })},
		{"status 599", capnpWith(t, func(e schema.Event) { e.SetStatus(599) }), withEvent(func(e *Event) { e.Status = 599 })},
		{"bytes 0", capnpWith(t, func(e schema.Event) { e.SetBytes(0) }), withEvent(func(e *Event) { e.Bytes = 0 })},
		{"bytes max", capnpWith(t, func(e schema.Event) { e.SetBytes(MaxBytes) }), withEvent(func(e *Event) { e.Bytes = MaxBytes })},
		{"zone_id 1", capnpWith(t, func(e schema.Event) { e.SetZoneId(1) }), withEvent(func(e *Event) { e.ZoneID = 1 })},
		{"zone_id max int64", capnpWith(t, func(e schema.Event) { e.SetZoneId(math.MaxInt64) }), withEvent(func(e *Event) { e.ZoneID = math.MaxInt64 })},
		{"ts before 1970", capnpWith(t, func(e schema.Event) { e.SetTs(-1) }),
			withEvent(func(e *Event) { e.TS = time.Unix(0, -1).UTC() })},
		{"ts nanoseconds", capnpWith(t, func(e schema.Event) { e.SetTs(exampleEvent.TS.UnixNano() + 789) }),
			withEvent(func(e *Event) { e.TS = e.TS.Add(789) })},
		{"newer schema: unknown fields ignored", newer(), exampleEvent},
		{"root in another segment (far pointer)", far, exampleEvent},
		{"root behind a double-far pointer", doubleFar, exampleEvent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, reason := decodeCapnp(t, tc.in)
			if reason != "" {
				t.Fatalf("rejected: %s", reason)
			}
			if ev != tc.want || ev.TS.Location() != time.UTC {
				t.Fatalf("got %+v\nwant %+v", ev, tc.want)
			}
			checkEventInvariants(t, &ev)
		})
	}
}

func TestDecodeCapnpInvalid(t *testing.T) {
	good := encodeCapnp(t, &exampleEvent)
	// Every pointer aliases the browser's text, 900 bytes: reading them all
	// would read ten times more than the message holds.
	alias := capnpTextWith(t, fBrowser, strings.Repeat("x", 900))
	bw := word(alias, ptrWord(fBrowser))
	for _, f := range capnpTextFields {
		alias = setWord(alias, ptrWord(f), retarget(bw, (ptrWord(fBrowser)-capnpHdr)/8, (ptrWord(f)-capnpHdr)/8))
	}
	colo := word(good, ptrWord(fColo))
	coloBad := func(w uint64) []byte { return setWord(good, ptrWord(fColo), w) }
	older := func() []byte {
		// An older, smaller struct: no status, bytes, page_view nor the
		// last pointers.
		msg, e := capnpMessage(t, capnp.ObjectSize{DataSize: 16, PointerCount: 4})
		e.SetTs(exampleEvent.TS.UnixNano())
		e.SetZoneId(4211)
		a := exampleEvent.ClientIP.As4()
		e.SetClientIp(a[:])
		e.SetCountry("US")
		e.SetColo("SFO")
		e.SetMethod("GET")
		return marshal(t, msg)
	}

	type tcase struct {
		name   string
		in     []byte
		reason string
	}
	cases := []tcase{
		// Framing.
		{"empty", nil, "empty message"},
		{"shorter than a word", good[:7], "truncated frame"},
		{"segment table cut", frameOf(make([]byte, 8), make([]byte, 8), make([]byte, 8))[:12], "truncated frame"},
		{"segment shorter than its size", good[:len(good)-8], "truncated frame"},
		{"one byte short", good[:len(good)-1], "truncated frame"},
		{"absurd segment size", setWord(good, 0, 0xffffffff<<32), "truncated frame"},
		{"absurd second segment", append(words(1|uint64(len(good)-capnpHdr)/8<<32, 0xfffffff0), good[capnpHdr:]...), "truncated frame"},
		{"513 segments", words(512), "bad segment table"},
		{"4 billion segments", binary.LittleEndian.AppendUint64(nil, 0xffffffff), "bad segment table"},
		{"json on a capnp topic", []byte(exampleJSON), "bad segment table"},
		{"first segment empty", frameOf(nil), "bad segment table"},
		{"trailing data", append(bytes.Clone(good), 0), "trailing data"},
		{"two messages", append(bytes.Clone(good), good...), "trailing data"},
		{"packed", packedOf(t, good), "bad segment table"},
		// The root.
		{"null root", frameOf(words(0)), "no root struct"},
		{"root is a list", frameOf(words(listPtr(0, 2, 8), 0)), "no root struct"},
		{"root is a capability", frameOf(words(3)), "no root struct"},
		{"root struct out of bounds", frameOf(words(structPtr(0, 4, 10))), "bad pointer: root"},
		{"root offset negative", frameOf(words(structPtr(-5, 1, 0), 0)), "bad pointer: root"},
		{"root far to a missing segment", frameOf(words(farPtr(false, 0, 7))), "bad pointer: root"},
		{"root far pad out of bounds", frameOf(words(farPtr(false, 5, 0))), "bad pointer: root"},
		{"root far to far", frameOf(words(farPtr(false, 1, 0), farPtr(false, 1, 0))), "bad pointer: root"},
		{"unknown pointer kind", frameOf(words(3 | 1<<2)), "bad pointer: root"},
		{"empty struct", frameOf(words(structPtr(-1, 0, 0))), "bad zone_id"},
		// Pointers of fields.
		{"colo out of bounds", coloBad(listPtr(1000, 2, 4)), "bad pointer: colo"},
		{"colo list too long", coloBad(colo | 0x1fffffff<<35), "bad pointer: colo"},
		{"colo far to a missing segment", coloBad(farPtr(false, 0, 3)), "bad pointer: colo"},
		{"traversal: pointers alias one text", alias, "traversal limit exceeded"},
		{"colo is a struct", coloBad(structPtr(int32(uint32(colo))>>2, 0, 0)), "bad colo"},
		{"colo is a list of words", coloBad(colo&^(7<<32) | 5<<32), "bad colo"},
		{"colo without its NUL", coloBad(colo - 1<<35), "bad colo"},
		{"colo empty list", coloBad(colo &^ (0x1fffffff << 35)), "bad colo"},
		{"client_ip is a struct", setWord(good, ptrWord(fClientIP), structPtr(0, 0, 0)|1<<2), "bad client_ip"},
		// UTF-8, then field errors in schema order, then missing fields.
		{"invalid UTF-8 in colo", capnpTextWith(t, fColo, "S\xffO"), "invalid UTF-8"},
		{"encoded surrogate", capnpTextWith(t, fBrowser, "\xed\xa0\x80"), "invalid UTF-8"},
		{"invalid UTF-8 in threat beats a bad status", capnpWith(t, func(e schema.Event) {
			e.SetStatus(0)
			setCapnpText(t, e, fThreat, "\xc3")
		}), "invalid UTF-8"},
		{"client_ip is not UTF-8 text", capnpWith(t, func(e schema.Event) { e.SetClientIp([]byte{0xff, 0xfe, 0, 1}) }), ""},
		{"NUL in colo", capnpTextWith(t, fColo, "S\x00O"), "bad colo"},
		{"NUL at the end of browser", capnpTextWith(t, fBrowser, "Chrome\x00"), "bad browser"},
		{"newline in threat", capnpTextWith(t, fThreat, "a\nb"), "bad threat"},
		{"DEL in ip_class", capnpTextWith(t, fIPClass, "cl\x7fean"), "bad ip_class"},
		{"label too long", capnpTextWith(t, fColo, strings.Repeat("a", 65)), "bad colo"},
		{"label too long in bytes", capnpTextWith(t, fColo, strings.Repeat("é", 33)), "bad colo"},
		{"threat too long", capnpTextWith(t, fThreat, strings.Repeat("t", 65)), "bad threat"},
		{"label empty", capnpTextWith(t, fMethod, ""), "bad method"},
		{"country USA", capnpTextWith(t, fCountry, "USA"), "bad country"},
		{"country U", capnpTextWith(t, fCountry, "U"), "bad country"},
		{"country U$", capnpTextWith(t, fCountry, "U$"), "bad country"},
		{"country empty", capnpTextWith(t, fCountry, ""), "bad country"},
		{"country non-ascii", capnpTextWith(t, fCountry, "ü"), "bad country"},
		{"client_ip empty", capnpWith(t, func(e schema.Event) { e.SetClientIp([]byte{}) }), "bad client_ip"},
		{"client_ip 5 bytes", capnpWith(t, func(e schema.Event) { e.SetClientIp([]byte{1, 2, 3, 4, 5}) }), "bad client_ip"},
		{"client_ip as text", capnpWith(t, func(e schema.Event) { setCapnpText(t, e, fClientIP, "1.2.3.4") }), "bad client_ip"},
		{"status 0", capnpWith(t, func(e schema.Event) { e.SetStatus(0) }), "bad status"},
		{"status 99", capnpWith(t, func(e schema.Event) { e.SetStatus(99) }), "bad status"},
		{"status 600", capnpWith(t, func(e schema.Event) { e.SetStatus(600) }), "bad status"},
		{"status 65535", capnpWith(t, func(e schema.Event) { e.SetStatus(65535) }), "bad status"},
		{"zone_id 0", capnpWith(t, func(e schema.Event) { e.SetZoneId(0) }), "bad zone_id"},
		{"zone_id 2^63", capnpWith(t, func(e schema.Event) { e.SetZoneId(1 << 63) }), "bad zone_id"},
		{"bytes too big", capnpWith(t, func(e schema.Event) { e.SetBytes(MaxBytes + 1) }), "bad bytes"},
		{"bytes 2^64-1", capnpWith(t, func(e schema.Event) { e.SetBytes(math.MaxUint64) }), "bad bytes"},
		{"ts 0", capnpWith(t, func(e schema.Event) { e.SetTs(0) }), "missing field: ts"},
		{"bad status before bad content_type", capnpWith(t, func(e schema.Event) {
			e.SetStatus(0)
			setCapnpText(t, e, fContentType, "")
		}), "bad status"},
		{"bad bytes before bad cache_status", capnpWith(t, func(e schema.Event) {
			e.SetBytes(math.MaxUint64)
			setCapnpText(t, e, fCacheStatus, "")
		}), "bad bytes"},
		{"bad browser beats missing ts", capnpWith(t, func(e schema.Event) {
			e.SetTs(0)
			setCapnpText(t, e, fBrowser, "")
		}), "bad browser"},
		{"missing in schema order", capnpWith(t, func(e schema.Event) {
			capnp.Struct(e).SetPtr(capnpPtrIndex(fBrowser), capnp.Ptr{})
			capnp.Struct(e).SetPtr(capnpPtrIndex(fMethod), capnp.Ptr{})
		}), "missing field: method"},
		{"older schema: no status", older(), "bad status"},
	}
	for _, f := range capnpTextFields {
		if f == fThreat || f == fSSLProtocol {
			continue
		}
		cases = append(cases, tcase{"null " + fieldNames[f], capnpNull(t, f), "missing field: " + fieldNames[f]})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, reason := decodeCapnp(t, tc.in)
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q (input %x)", reason, tc.reason, tc.in)
			}
			if reason != "" {
				var d CapnpDecoder
				var ev Event
				if err := d.Decode(tc.in, &ev); err.Error() != "bad event: "+tc.reason {
					t.Fatalf("Error() = %q", err.Error())
				}
			}
		})
	}
}

// packedOf packs a message (Cap'n Proto's packed encoding), which the
// decoder does not read.
func packedOf(t *testing.T, b []byte) []byte {
	t.Helper()
	msg, err := capnp.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := msg.MarshalPacked()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(p, b) {
		t.Fatal("packed equals unpacked")
	}
	return p
}

// Every proper prefix of a message is a truncated frame, whatever the
// number of segments.
func TestDecodeCapnpTruncated(t *testing.T) {
	one := encodeCapnp(t, &exampleEvent)
	for _, in := range [][]byte{one, frameOf(words(farPtr(false, 0, 1)), one[capnpHdr:]), frameOf(words(0), nil, words(0))} {
		for k := 1; k < len(in); k++ {
			if _, reason := decodeCapnp(t, in[:k]); reason != "truncated frame" {
				t.Fatalf("prefix of %d bytes of %x: %q", k, in, reason)
			}
		}
	}
}

func TestCapnpDecoderReuse(t *testing.T) {
	var d CapnpDecoder
	var ev Event
	good := encodeCapnp(t, &exampleEvent)
	ams := capnpTextWith(t, fColo, "AMS")
	far := frameOf(words(farPtr(false, 0, 1)), good[capnpHdr:])
	for i := 0; i < 3; i++ {
		for _, in := range [][]byte{good, far} {
			if err := d.Decode(in, &ev); err != nil || ev != exampleEvent {
				t.Fatalf("got %v %+v", err, ev)
			}
		}
		if err := d.Decode(ams, &ev); err != nil || ev.Colo != "AMS" {
			t.Fatalf("got %v %+v", err, ev)
		}
		if err := d.Decode(good[:20], &ev); err == nil {
			t.Fatal("no error")
		}
	}
	// Nothing of the last message is retained.
	if len(d.arena.segs) != 0 || d.msg.Arena != nil {
		t.Fatalf("decoder keeps the message: %d segments", len(d.arena.segs))
	}
	// Labels are copies, not slices of the message.
	in := capnpTextWith(t, fColo, "XYZ")
	if err := d.Decode(in, &ev); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'Q'
	}
	if ev.Colo != "XYZ" {
		t.Fatalf("colo changed with the message: %q", ev.Colo)
	}
}

func TestDecodeCapnpAllocs(t *testing.T) {
	var d CapnpDecoder
	var ev Event
	for _, tc := range []struct {
		name string
		ev   Event
	}{
		{"example", exampleEvent},
		{"ipv6", withEvent(func(e *Event) { e.ClientIP = netip.MustParseAddr("2001:db8::1") })},
	} {
		data := encodeCapnp(t, &tc.ev)
		if n := testing.AllocsPerRun(100, func() {
			if err := d.Decode(data, &ev); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("CapnpDecoder.Decode (%s): %v allocs/op, want 0", tc.name, n)
		}
	}
}

// ---------------------------------------------------------------------------
// Properties.

// randEvent returns a valid event with random fields (labels from
// decode_json_test.go's alphabet, times anywhere in Int64 nanoseconds).
func randEvent(r *rand.Rand) Event {
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var ev Event
	// Any Int64 but 0: 1677-09-21 to 2262-04-11.
	ns := int64(r.Uint64())
	if r.IntN(8) == 0 {
		ns = []int64{math.MinInt64, math.MaxInt64, -1, 1, 1_000_000_000}[r.IntN(5)]
	}
	if ns == 0 {
		ns = 1
	}
	ev.TS = time.Unix(0, ns).UTC()
	var a16 [16]byte
	for i := range a16 {
		a16[i] = byte(r.IntN(256))
	}
	if r.IntN(2) == 0 {
		ev.ClientIP = netip.AddrFrom4([4]byte(a16[:4]))
	} else {
		ev.ClientIP = netip.AddrFrom16(a16).Unmap()
	}
	ev.ZoneID = 1 + r.Int64N(math.MaxInt64)
	ev.Status = int16(100 + r.IntN(500))
	ev.Bytes = r.Int64N(MaxBytes + 1)
	ev.PageView = r.IntN(2) == 0
	ev.Country = string([]byte{alnum[r.IntN(len(alnum))], alnum[r.IntN(len(alnum))]})
	ev.Colo = randLabel(r, 1)
	ev.Method = randLabel(r, 1)
	ev.ContentType = randLabel(r, 1)
	ev.CacheStatus = randLabel(r, 1)
	ev.SSLProtocol = randLabel(r, 1)
	ev.IPClass = randLabel(r, 1)
	ev.Threat = randLabel(r, 0)
	ev.Browser = randLabel(r, 1)
	return ev
}

// A valid event, encoded in JSON and in Cap'n Proto, decodes to itself in
// both formats.
func TestDecodeCapnpMatchesJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var dj JSONDecoder
	var dc CapnpDecoder
	for i := 0; i < 20000; i++ {
		want := randEvent(r)
		js, cp := encodeEvent(t, &want), encodeCapnp(t, &want)
		var gotJ, gotC Event
		if err := dj.Decode(js, &gotJ); err != nil {
			t.Fatalf("JSON %s: %v", js, err)
		}
		if err := dc.Decode(cp, &gotC); err != nil {
			t.Fatalf("capnp of %+v: %v", want, err)
		}
		if gotJ != want || gotC != want {
			t.Fatalf("want %+v\nJSON  %+v\ncapnp %+v", want, gotJ, gotC)
		}
	}
}

// A field value out of the rules gives the same reason in both formats
// (both encodings carry the same value: an empty text is present, not
// null).
func TestDecodeCapnpSameReasonsAsJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var dj JSONDecoder
	var dc CapnpDecoder
	labels := []string{"", "x", strings.Repeat("y", MaxLabel), strings.Repeat("z", MaxLabel+1), "a\x00b", "\x01", "\x1f", "\x7f",
		"é", strings.Repeat("é", 32), strings.Repeat("é", 33), "\t", "ok\n", "\u2028", "日本"}
	countries := []string{"", "U", "us", "USA", "U$", "ü", "a1", "\x00S", " S"}
	reasons := map[string]int{}
	for i := 0; i < 20000; i++ {
		ev := randEvent(r)
		// Change 1 to 3 fields to values that may break the rules.
		for k := 1 + r.IntN(3); k > 0; k-- {
			switch f := r.IntN(numFields); f {
			case fZoneID:
				ev.ZoneID = []int64{0, 1, -1, math.MinInt64, math.MaxInt64}[r.IntN(5)]
			case fStatus:
				ev.Status = []int16{0, 99, 100, 599, 600, 1000, -1, math.MaxInt16}[r.IntN(8)]
			case fBytes:
				ev.Bytes = []int64{0, -1, MaxBytes, MaxBytes + 1, math.MaxInt64, math.MinInt64}[r.IntN(6)]
			case fCountry:
				ev.Country = countries[r.IntN(len(countries))]
			case fColo, fMethod, fContentType, fCacheStatus, fSSLProtocol, fIPClass, fThreat, fBrowser:
				l := labels[r.IntN(len(labels))]
				switch f {
				case fColo:
					ev.Colo = l
				case fMethod:
					ev.Method = l
				case fContentType:
					ev.ContentType = l
				case fCacheStatus:
					ev.CacheStatus = l
				case fSSLProtocol:
					ev.SSLProtocol = l
				case fIPClass:
					ev.IPClass = l
				case fThreat:
					ev.Threat = l
				case fBrowser:
					ev.Browser = l
				}
			}
		}
		js, cp := encodeEvent(t, &ev), encodeCapnp(t, &ev)
		var gotJ, gotC Event
		errJ, errC := dj.Decode(js, &gotJ), dc.Decode(cp, &gotC)
		rj, rc := reasonOf(errJ), reasonOf(errC)
		if rj != rc || gotJ != gotC {
			t.Fatalf("event %+v:\nJSON  %q %+v\ncapnp %q %+v", ev, rj, gotJ, rc, gotC)
		}
		reasons[rj]++
	}
	for _, want := range []string{"", "bad zone_id", "bad status", "bad bytes", "bad country", "bad colo", "bad threat", "bad ssl_protocol"} {
		if reasons[want] < 50 {
			t.Errorf("reason %q only %d times: %v", want, reasons[want], reasons)
		}
	}
}

func reasonOf(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// The generator writes the same events in both formats: each capnp message
// decodes to the event its JSON twin decodes to, and the malformed ones are
// the same messages.
func TestDecodeCapnpGenerated(t *testing.T) {
	end := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	cfg := gen.Config{Seed: 7, Zones: 300, Start: end.Add(-time.Hour), End: end, LateShare: 0.05, BadShare: 0.05}
	gj := gen.New(cfg, 20000)
	cfg.Format = "capnp"
	gc := gen.New(cfg, 20000)
	var dj JSONDecoder
	var dc CapnpDecoder
	var kj, vj, kc, vc []byte
	reasons := map[string]int{}
	for i := 0; ; i++ {
		var okj, okc bool
		kj, vj, okj = gj.Next(kj[:0], vj[:0])
		kc, vc, okc = gc.Next(kc[:0], vc[:0])
		if okj != okc {
			t.Fatalf("message %d: one generator ended", i)
		}
		if !okj {
			break
		}
		if !bytes.Equal(kj, kc) {
			t.Fatalf("message %d: keys %q and %q", i, kj, kc)
		}
		var ej, ec Event
		errJ, errC := dj.Decode(vj, &ej), dc.Decode(vc, &ec)
		if (errJ == nil) != (errC == nil) {
			t.Fatalf("message %d: JSON %v, capnp %v\n%s\n%x", i, errJ, errC, vj, vc)
		}
		if ej != ec {
			t.Fatalf("message %d:\nJSON  %+v\ncapnp %+v", i, ej, ec)
		}
		if errC != nil {
			reasons[reasonOf(errC)]++
		}
	}
	if gj.Malformed() != gc.Malformed() || gc.Malformed() < 800 {
		t.Fatalf("malformed: JSON %d, capnp %d", gj.Malformed(), gc.Malformed())
	}
	for _, want := range []string{"bad segment table", "truncated frame", "bad zone_id", "bad client_ip", "bad status",
		"invalid UTF-8", "empty message", "trailing data", "bad bytes", "bad browser"} {
		if reasons[want] == 0 {
			t.Errorf("no generated message rejected with %q: %v", want, reasons)
		}
	}
}

// Every single-byte change of some valid messages (each byte set to each
// of its 256 values) decodes the same through the fast path and through
// the library alone, to a valid event or a known reason.
func TestDecodeCapnpMutations(t *testing.T) {
	one := encodeCapnp(t, &exampleEvent)
	bases := [][]byte{
		one,
		must(os.ReadFile(filepath.Join("testdata", "capnp", "example.bin"))),
		frameOf(words(farPtr(false, 0, 1)), one[capnpHdr:]),
		capnpNull(t, fThreat),
	}
	if testing.Short() {
		bases = bases[:1]
	}
	reasons := map[string]int{}
	for _, base := range bases {
		in := bytes.Clone(base)
		for i := range in {
			orig := in[i]
			for v := 0; v < 256; v++ {
				in[i] = byte(v)
				ev, reason := decodeCapnp(t, in)
				if reason == "" {
					checkEventInvariants(t, &ev)
				} else if !knownCapnpReason(reason) {
					t.Fatalf("input %x: unknown reason %q", in, reason)
				}
				reasons[reason]++
			}
			in[i] = orig
		}
	}
	for _, r := range []string{"", "truncated frame", "bad segment table", "no root struct", "bad pointer: root",
		"bad pointer: colo", "bad colo", "invalid UTF-8", "bad status", "missing field: browser"} {
		if reasons[r] == 0 {
			t.Errorf("no mutation gave %q: %v", r, reasons)
		}
	}
}

// ---------------------------------------------------------------------------
// Fuzzing.

var capnpReasons = map[string]bool{
	"empty message": true, "truncated frame": true, "bad segment table": true, "trailing data": true,
	"no root struct": true, "traversal limit exceeded": true, "invalid UTF-8": true, "nesting too deep": true,
}

func knownCapnpReason(r string) bool {
	if capnpReasons[r] {
		return true
	}
	for _, n := range fieldNames {
		if r == "bad "+n || r == "missing field: "+n || r == "bad pointer: "+n {
			return true
		}
	}
	return r == "bad pointer: root"
}

func capnpFuzzSeeds(t testing.TB) [][]byte {
	good := encodeCapnp(t, &exampleEvent)
	return [][]byte{
		good,
		encodeCapnp(t, &Event{TS: time.Unix(1, 0), ZoneID: 1, ClientIP: netip.MustParseAddr("2001:db8::1"), Country: "a1",
			Colo: "Zürich", Method: "M", Status: 599, ContentType: "c", Bytes: MaxBytes, CacheStatus: "h",
			SSLProtocol: "", IPClass: "i", Threat: "t", PageView: false, Browser: "b"}),
		frameOf(words(farPtr(false, 0, 1)), good[capnpHdr:]),
		frameOf(words(farPtr(true, 0, 2)), good[capnpHdr:], words(farPtr(false, 1, 1), structPtr(0, capnpDataWds, capnpPtrCount))),
		capnpNull(t, fThreat),
		capnpTextWith(t, fColo, "S\xffO"),
		capnpWith(t, func(e schema.Event) { e.SetStatus(1000) }),
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
		frameOf(words(structPtr(-1, 0, 0))),
		frameOf(words(3)),
		[]byte(exampleJSON),
		nil,
	}
}

func FuzzDecodeCapnp(f *testing.F) {
	for _, s := range capnpFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		var d CapnpDecoder
		var ev Event
		err := d.Decode(data, &ev)
		if !bytes.Equal(orig, data) {
			t.Fatal("input modified")
		}
		// The library alone decodes it the same (differential: the fast path).
		var lev Event
		lerr := (&CapnpDecoder{libraryOnly: true}).Decode(data, &lev)
		if reasonOf(err) != reasonOf(lerr) || ev != lev {
			t.Fatalf("fast path %q %+v\nlibrary   %q %+v", reasonOf(err), ev, reasonOf(lerr), lev)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !knownCapnpReason(de.Reason) {
				t.Fatalf("error %#v is not a *DecodeError with a known reason", err)
			}
			if ev != (Event{}) {
				t.Fatalf("event not reset on error: %+v", ev)
			}
			return
		}
		checkEventInvariants(t, &ev)
		if ev.TS.UnixNano() == 0 {
			t.Fatal("ts 0 accepted")
		}
		// Re-encoded in either format, it decodes to the same event.
		var ev2, ev3 Event
		if err := d.Decode(encodeCapnp(t, &ev), &ev2); err != nil || ev2 != ev {
			t.Fatalf("capnp round trip: %v\n got %+v\nwant %+v", err, ev2, ev)
		}
		js := encodeEvent(t, &ev)
		if err := DecodeJSON(js, &ev3); err != nil || ev3 != ev {
			t.Fatalf("as JSON %s: %v\n got %+v\nwant %+v", js, err, ev3, ev)
		}
		// A fresh decoder agrees with the reused one.
		var ev4 Event
		if err := new(CapnpDecoder).Decode(data, &ev4); err != nil || ev4 != ev {
			t.Fatalf("fresh decoder: %v %+v", err, ev4)
		}
	})
}

// The committed seed corpus: files named valid_* decode, all others fail
// with a known reason.
func TestDecodeCapnpFuzzCorpus(t *testing.T) {
	for _, e := range seedCorpus(t, "FuzzDecodeCapnp") {
		data := e.data
		_, reason := decodeCapnp(t, []byte(data))
		if valid := strings.HasPrefix(e.name, "valid_"); valid != (reason == "") {
			t.Errorf("%s: reason %q", e.name, reason)
		}
		if reason != "" && !knownCapnpReason(reason) {
			t.Errorf("%s: unknown reason %q", e.name, reason)
		}
	}
}

// TestWriteCapnpFuzzCorpus (re)writes the seed corpus from capnpFuzzSeeds
// when ZONESTATS_WRITE_CORPUS=1.
func TestWriteCapnpFuzzCorpus(t *testing.T) {
	if os.Getenv("ZONESTATS_WRITE_CORPUS") != "1" {
		t.Skip("set ZONESTATS_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzDecodeCapnp")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeCapnp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"valid_example", "valid_edge_values", "valid_far", "valid_double_far", "valid_threat_unset",
		"invalid_utf8", "bad_status", "truncated", "trailing", "empty_struct", "capability_root", "json", "empty"}
	for i, s := range capnpFuzzSeeds(t) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, names[i]), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkDecodeCapnp(b *testing.B) {
	data := encodeCapnp(b, &exampleEvent)
	json := []byte(exampleJSON)
	b.Run("CapnpDecoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var d CapnpDecoder
		var ev Event
		for b.Loop() {
			if err := d.Decode(data, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CapnpDecoderLibraryOnly", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		d := CapnpDecoder{libraryOnly: true}
		var ev Event
		for b.Loop() {
			if err := d.Decode(data, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONDecoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(json)))
		var d JSONDecoder
		var ev Event
		for b.Loop() {
			if err := d.Decode(json, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
