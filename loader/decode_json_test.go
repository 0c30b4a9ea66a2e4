package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

const exampleJSON = `{"ts":"2026-11-25T19:42:56.123Z","zone_id":4211,"client_ip":"203.0.113.7","country":"US","colo":"SFO","method":"GET","status":200,"content_type":"html","bytes":5120,"cache_status":"hit","ssl_protocol":"TLSv1.3","ip_class":"clean","threat":"","page_view":true,"browser":"Chrome"}`

var exampleEvent = Event{
	TS:          time.Date(2026, 11, 25, 19, 42, 56, 123_000_000, time.UTC),
	ZoneID:      4211,
	ClientIP:    netip.MustParseAddr("203.0.113.7"),
	Country:     "US",
	Colo:        "SFO",
	Method:      "GET",
	Status:      200,
	ContentType: "html",
	Bytes:       5120,
	CacheStatus: "hit",
	SSLProtocol: "TLSv1.3",
	IPClass:     "clean",
	Threat:      "",
	PageView:    true,
	Browser:     "Chrome",
}

// kv is one member of a JSON object: a key and its raw JSON value.
type kv struct{ k, v string }

func exampleFields() []kv {
	return []kv{
		{"ts", `"2026-11-25T19:42:56.123Z"`},
		{"zone_id", `4211`},
		{"client_ip", `"203.0.113.7"`},
		{"country", `"US"`},
		{"colo", `"SFO"`},
		{"method", `"GET"`},
		{"status", `200`},
		{"content_type", `"html"`},
		{"bytes", `5120`},
		{"cache_status", `"hit"`},
		{"ssl_protocol", `"TLSv1.3"`},
		{"ip_class", `"clean"`},
		{"threat", `""`},
		{"page_view", `true`},
		{"browser", `"Chrome"`},
	}
}

func render(fs []kv) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.k)) // keys used here are plain ASCII
		b.WriteByte(':')
		b.WriteString(f.v)
	}
	b.WriteByte('}')
	return b.String()
}

// with returns the example event with field k's raw value replaced by v
// (appended if k is not an event field).
func with(k, v string) string {
	fs := exampleFields()
	for i := range fs {
		if fs[i].k == k {
			fs[i].v = v
			return render(fs)
		}
	}
	return render(append(fs, kv{k, v}))
}

// without returns the example event without field k.
func without(k string) string {
	var fs []kv
	for _, f := range exampleFields() {
		if f.k != k {
			fs = append(fs, f)
		}
	}
	return render(fs)
}

// withRaw inserts raw text right after the opening brace of the example.
func withRaw(raw string) string { return "{" + raw + exampleJSON[1:] }

func withEvent(mod func(*Event)) Event {
	ev := exampleEvent
	mod(&ev)
	return ev
}

func TestDecodeJSONExample(t *testing.T) {
	var ev Event
	if err := DecodeJSON([]byte(exampleJSON), &ev); err != nil {
		t.Fatal(err)
	}
	if ev != exampleEvent {
		t.Fatalf("got %+v\nwant %+v", ev, exampleEvent)
	}
	if ev.TS.Location() != time.UTC {
		t.Fatalf("TS location %v", ev.TS.Location())
	}
}

func TestDecodeJSONValid(t *testing.T) {
	nested := `{"a":[1,-2.5e+3,{"b":[null,true,false,"x\"y"]},[],{}],"c":{"d":{"e":[[["deep"]]]}}}`
	reversed := exampleFields()
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	spaced := " \n\t\r" + strings.NewReplacer(
		`{`, "{ \n", `}`, "\r\n}\t", `,"`, " ,\n\t\"", `":`, "\"\t: ",
	).Replace(exampleJSON) + " \n"

	cases := []struct {
		name string
		in   string
		want Event
	}{
		{"example", exampleJSON, exampleEvent},
		{"ipv6", with("client_ip", `"2001:db8::1"`),
			withEvent(func(e *Event) { e.ClientIP = netip.MustParseAddr("2001:db8::1") })},
		{"ipv6 upper case", with("client_ip", `"2001:DB8:0:0:0:0:0:1"`),
			withEvent(func(e *Event) { e.ClientIP = netip.MustParseAddr("2001:db8::1") })},
		{"ipv6 loopback", with("client_ip", `"::1"`),
			withEvent(func(e *Event) { e.ClientIP = netip.IPv6Loopback() })},
		{"ipv6 with embedded ipv4", with("client_ip", `"64:ff9b::192.0.2.33"`),
			withEvent(func(e *Event) { e.ClientIP = netip.MustParseAddr("64:ff9b::c000:221") })},
		{"ipv4-mapped ipv6", with("client_ip", `"::ffff:203.0.113.7"`), exampleEvent},
		{"ipv4-mapped ipv6 hex", with("client_ip", `"::FFFF:cb00:7107"`), exampleEvent},
		{"ts offset +05:30", with("ts", `"2026-11-26T01:12:56.123+05:30"`), exampleEvent},
		{"ts offset -08:00", with("ts", `"2026-11-25T11:42:56.123-08:00"`), exampleEvent},
		{"ts offset crossing year", with("ts", `"2027-01-01T05:00:00+23:59"`),
			withEvent(func(e *Event) { e.TS = time.Date(2026, 12, 31, 5, 1, 0, 0, time.UTC) })},
		{"ts no fraction", with("ts", `"2026-11-25T19:42:56Z"`),
			withEvent(func(e *Event) { e.TS = time.Date(2026, 11, 25, 19, 42, 56, 0, time.UTC) })},
		{"ts nanoseconds", with("ts", `"2026-11-25T19:42:56.000000001Z"`),
			withEvent(func(e *Event) { e.TS = time.Date(2026, 11, 25, 19, 42, 56, 1, time.UTC) })},
		{"ts more than 9 fraction digits truncated", with("ts", `"2026-11-25T19:42:56.1234567899999Z"`),
			withEvent(func(e *Event) { e.TS = time.Date(2026, 11, 25, 19, 42, 56, 123456789, time.UTC) })},
		{"ts lower-case t and z", with("ts", `"2026-11-25t19:42:56.123z"`), exampleEvent},
		{"ts leap day", with("ts", `"2024-02-29T00:00:00Z"`),
			withEvent(func(e *Event) { e.TS = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) })},
		{"ts escaped", with("ts", `"2026-11-25\u005419:42:56.123\u005a"`), exampleEvent},
		{"ts year 0 with offset", with("ts", `"0000-01-01T00:00:00+01:00"`),
			withEvent(func(e *Event) { e.TS = time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC) })},
		{"escapes in labels", with("browser", `"Chr\u00f4me \ud83d\ude00 \"q\" \\ \/ \u003c\u003e\u0026"`),
			withEvent(func(e *Event) { e.Browser = "Chrôme 😀 \"q\" \\ / <>&" })},
		{"escaped label equals plain", with("colo", `"S\u0046O"`), exampleEvent},
		{"raw utf-8 label", with("colo", `"Zürich東京"`), withEvent(func(e *Event) { e.Colo = "Zürich東京" })},
		{"label of 64 bytes", with("method", `"`+strings.Repeat("M", 64)+`"`),
			withEvent(func(e *Event) { e.Method = strings.Repeat("M", 64) })},
		{"label of 64 bytes after unescaping", with("method", `"`+strings.Repeat(`\u004d`, 64)+`"`),
			withEvent(func(e *Event) { e.Method = strings.Repeat("M", 64) })},
		{"country lower case", with("country", `"us"`), exampleEvent},
		{"country mixed digits", with("country", `"a1"`), withEvent(func(e *Event) { e.Country = "A1" })},
		{"country escaped", with("country", `"\u0075S"`), exampleEvent},
		// The policy for unknown codes: any two letters or digits are
		// counted as sent (pseudo-codes and unassigned codes alike).
		{"country unknown XX", with("country", `"XX"`), withEvent(func(e *Event) { e.Country = "XX" })},
		{"country Tor T1", with("country", `"T1"`), withEvent(func(e *Event) { e.Country = "T1" })},
		{"country unassigned zz", with("country", `"zz"`), withEvent(func(e *Event) { e.Country = "ZZ" })},
		{"ssl_protocol empty is none", with("ssl_protocol", `""`), withEvent(func(e *Event) { e.SSLProtocol = "none" })},
		{"threat set", with("threat", `"sqli"`), withEvent(func(e *Event) { e.Threat = "sqli" })},
		{"page_view false", with("page_view", `false`), withEvent(func(e *Event) { e.PageView = false })},
		{"status 100", with("status", `100`), withEvent(func(e *Event) { e.Status = 100 })},
		{"status 599", with("status", `599`), withEvent(func(e *Event) { e.Status = 599 })},
		{"bytes 0", with("bytes", `0`), withEvent(func(e *Event) { e.Bytes = 0 })},
		{"bytes max", with("bytes", strconv.Itoa(MaxBytes)), withEvent(func(e *Event) { e.Bytes = MaxBytes })},
		{"zone_id 1", with("zone_id", `1`), withEvent(func(e *Event) { e.ZoneID = 1 })},
		{"zone_id max int64", with("zone_id", `9223372036854775807`),
			withEvent(func(e *Event) { e.ZoneID = math.MaxInt64 })},
		{"escaped key", strings.Replace(exampleJSON, `"zone_id"`, `"zone\u005fid"`, 1), exampleEvent},
		{"unknown string", with("x", `"hello \"world\" \u00e9 \ud83d\ude00"`), exampleEvent},
		{"unknown numbers", with("x", `-0.5e-10`) + "", exampleEvent},
		{"unknown number zero", with("x", `0`), exampleEvent},
		{"unknown true", with("x", `true`), exampleEvent},
		{"unknown false", with("x", `false`), exampleEvent},
		{"unknown null", with("x", `null`), exampleEvent},
		{"unknown empty array", with("x", `[]`), exampleEvent},
		{"unknown empty object", with("x", `{ }`), exampleEvent},
		{"unknown nested", with("x", nested), exampleEvent},
		{"unknown first", withRaw(`"first":` + nested + `,`), exampleEvent},
		{"unknown repeated", withRaw(`"x":1,"x":2,`), exampleEvent},
		{"unknown with DEL and controls escaped", with("x", "\"\x7f\\u0000\\n\""), exampleEvent},
		{"key case matters", with("STATUS", `"nope"`), exampleEvent},
		{"unknown nested to depth 64", with("x", strings.Repeat("[", 63)+strings.Repeat("]", 63)), exampleEvent},
		{"reversed order", render(reversed), exampleEvent},
		{"whitespace everywhere", spaced, exampleEvent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.in)) {
				t.Fatalf("test input is not valid JSON: %s", tc.in)
			}
			ev := Event{Colo: "stale", Threat: "stale"}
			if err := DecodeJSON([]byte(tc.in), &ev); err != nil {
				t.Fatalf("DecodeJSON(%s): %v", tc.in, err)
			}
			if ev != tc.want || !ev.TS.Equal(tc.want.TS) {
				t.Fatalf("DecodeJSON(%s)\n got %+v\nwant %+v", tc.in, ev, tc.want)
			}
			if ev.TS.Location() != time.UTC {
				t.Fatalf("TS location %v", ev.TS.Location())
			}
			checkEventInvariants(t, &ev)
		})
	}
}

func syntaxAt(off int) string { return fmt.Sprintf("invalid JSON at offset %d", off) }

func TestDecodeJSONInvalid(t *testing.T) {
	type tcase struct {
		name, in, reason string
	}
	cases := []tcase{
		{"empty", "", "empty message"},
		{"whitespace only", " \n\t\r ", "empty message"},
		{"array", "[]", "not a JSON object"},
		{"null", "null", "not a JSON object"},
		{"string", `"{}"`, "not a JSON object"},
		{"number", "42", "not a JSON object"},
		{"garbage", "hello", "not a JSON object"},
		{"invalid UTF-8 in label", with("colo", "\"S\xffO\""), "invalid UTF-8"},
		{"invalid UTF-8 outside strings", exampleJSON + "\xc3", "invalid UTF-8"},
		{"encoded surrogate", with("colo", "\"\xed\xa0\x80\""), "invalid UTF-8"},
		{"NUL escape in label", with("colo", `"S\u0000O"`), "bad colo"},
		{"newline escape in label", with("threat", `"a\nb"`), "bad threat"},
		{"DEL escape in label", with("browser", `"\u007f"`), "bad browser"},
		{"raw DEL in label", with("ip_class", "\"cl\x7fean\""), "bad ip_class"},
		{"raw control char in label", with("colo", "\"S\x01O\""), syntaxAt(strings.IndexByte(with("colo", "\"S\x01O\""), 1))},
		{"raw tab in unknown string", with("x", "\"a\tb\""), syntaxAt(strings.IndexByte(with("x", "\"a\tb\""), '\t'))},
		{"raw newline in key", `{"a` + "\n" + `b":1}`, syntaxAt(3)},
		{"trailing object", exampleJSON + " {}", "trailing data"},
		{"trailing garbage", exampleJSON + "x", "trailing data"},
		{"trailing comma after object", exampleJSON + ",", "trailing data"},
		{"trailing data beats field errors", with("status", `"200"`) + "x", "trailing data"},
		{"truncated", exampleJSON[:len(exampleJSON)-1], syntaxAt(len(exampleJSON) - 1)},
		{"open brace only", "{", syntaxAt(1)},
		{"deeply nested unknown value", with("x", strings.Repeat("[", 100)+strings.Repeat("]", 100)), "nesting too deep"},
		{"nested objects too deep", with("x", strings.Repeat(`{"a":`, 64)+"1"+strings.Repeat("}", 64)), "nesting too deep"},
		{"nested one level too deep", with("x", strings.Repeat("[", 64)+strings.Repeat("]", 64)), "nesting too deep"},
		{"deep value for known field", with("status", strings.Repeat("[", 100)+strings.Repeat("]", 100)), "nesting too deep"},
		{"empty object", "{}", "missing field: ts"},
		{"only unknown", `{"a":1}`, "missing field: ts"},
		{"missing reported in schema order", render(exampleFields()[4:]), "missing field: ts"},
		{"duplicate key", with("status", "200") + "", "duplicate field: status"}, // fixed below
		{"duplicate escaped key", withRaw(`"zone\u005fid":1,`), "duplicate field: zone_id"},
		{"duplicate with same value", withRaw(`"threat":"",`), "duplicate field: threat"},
		{"first field error wins over missing", `{"status":"x"}`, "bad status"},
		{"first field error in document order", strings.Replace(with("status", `0`), `"colo":"SFO"`, `"colo":""`, 1), "bad colo"},
		{"field error before duplicate", withRaw(`"bytes":-1,`), "bad bytes"},
		{"duplicate before field error", withRaw(`"ts":"2026-11-25T19:42:56Z",`) + "", "duplicate field: ts"},
		{"status string", with("status", `"200"`), "bad status"},
		{"status float", with("status", `200.0`), "bad status"},
		{"status 0", with("status", `0`), "bad status"},
		{"status 99", with("status", `99`), "bad status"},
		{"status 600", with("status", `600`), "bad status"},
		{"status 1000", with("status", `1000`), "bad status"},
		{"status huge", with("status", `100000000000000000000000000000`), "bad status"},
		{"zone_id 0", with("zone_id", `0`), "bad zone_id"},
		{"zone_id -1", with("zone_id", `-1`), "bad zone_id"},
		{"zone_id -0", with("zone_id", `-0`), "bad zone_id"},
		{"zone_id overflow", with("zone_id", `9223372036854775808`), "bad zone_id"},
		{"zone_id overflow uint64", with("zone_id", `18446744073709551616`), "bad zone_id"},
		{"zone_id 1.0", with("zone_id", `1.0`), "bad zone_id"},
		{"zone_id 4211.0", with("zone_id", `4211.0`), "bad zone_id"},
		{"zone_id 1e3", with("zone_id", `1e3`), "bad zone_id"},
		{"zone_id string", with("zone_id", `"4211"`), "bad zone_id"},
		{"zone_id true", with("zone_id", `true`), "bad zone_id"},
		{"zone_id leading zero", with("zone_id", `04211`), syntaxAt(strings.Index(exampleJSON, "4211") + 1)},
		{"zone_id plus", with("zone_id", `+4211`), syntaxAt(strings.Index(exampleJSON, "4211"))},
		{"bytes -1", with("bytes", `-1`), "bad bytes"},
		{"bytes too big", with("bytes", strconv.Itoa(MaxBytes+1)), "bad bytes"},
		{"bytes fraction", with("bytes", `1.5`), "bad bytes"},
		{"bytes string", with("bytes", `"5120"`), "bad bytes"},
		{"page_view string", with("page_view", `"true"`), "bad page_view"},
		{"page_view number", with("page_view", `1`), "bad page_view"},
		{"page_view truex", with("page_view", `truex`), syntaxAt(strings.Index(with("page_view", `truex`), "truex") + 4)},
		{"ts number", with("ts", `1764099776`), "bad ts"},
		{"ts garbage", with("ts", `"yesterday"`), "bad ts"},
		{"ts empty", with("ts", `""`), "bad ts"},
		{"ts no zone", with("ts", `"2026-11-25T19:42:56"`), "bad ts"},
		{"ts space separator", with("ts", `"2026-11-25 19:42:56Z"`), "bad ts"},
		{"ts one-digit hour", with("ts", `"2026-11-25T9:42:56Z"`), "bad ts"},
		{"ts comma fraction", with("ts", `"2026-11-25T19:42:56,5Z"`), "bad ts"},
		{"ts empty fraction", with("ts", `"2026-11-25T19:42:56.Z"`), "bad ts"},
		{"ts offset 24h", with("ts", `"2026-11-25T19:42:56+24:00"`), "bad ts"},
		{"ts offset minutes 60", with("ts", `"2026-11-25T19:42:56+05:60"`), "bad ts"},
		{"ts offset without colon", with("ts", `"2026-11-25T19:42:56+0530"`), "bad ts"},
		{"ts feb 29 non-leap", with("ts", `"2026-02-29T19:42:56Z"`), "bad ts"},
		{"ts month 13", with("ts", `"2026-13-01T19:42:56Z"`), "bad ts"},
		{"ts hour 24", with("ts", `"2026-11-25T24:00:00Z"`), "bad ts"},
		{"ts leap second", with("ts", `"2016-12-31T23:59:60Z"`), "bad ts"},
		{"ts trailing space", with("ts", `"2026-11-25T19:42:56Z "`), "bad ts"},
		{"client_ip empty", with("client_ip", `""`), "bad client_ip"},
		{"client_ip 1.2.3", with("client_ip", `"1.2.3"`), "bad client_ip"},
		{"client_ip trailing space", with("client_ip", `"1.2.3.4 "`), "bad client_ip"},
		{"client_ip leading space", with("client_ip", `" 1.2.3.4"`), "bad client_ip"},
		{"client_ip zone", with("client_ip", `"fe80::1%eth0"`), "bad client_ip"},
		{"client_ip mapped with zone", with("client_ip", `"::ffff:1.2.3.4%eth0"`), "bad client_ip"},
		{"client_ip octet 300", with("client_ip", `"300.1.1.1"`), "bad client_ip"},
		{"client_ip leading zero", with("client_ip", `"1.2.3.04"`), "bad client_ip"},
		{"client_ip hostname", with("client_ip", `"localhost"`), "bad client_ip"},
		{"client_ip two ellipses", with("client_ip", `"1::2::3"`), "bad client_ip"},
		{"client_ip number", with("client_ip", `3405803783`), "bad client_ip"},
		{"client_ip with port", with("client_ip", `"1.2.3.4:80"`), "bad client_ip"},
		{"country USA", with("country", `"USA"`), "bad country"},
		{"country U", with("country", `"U"`), "bad country"},
		{"country U$", with("country", `"U$"`), "bad country"},
		{"country empty", with("country", `""`), "bad country"},
		{"country non-ascii", with("country", `"ü"`), "bad country"},
		{"label too long", with("colo", `"`+strings.Repeat("a", 65)+`"`), "bad colo"},
		{"label too long after unescaping", with("colo", `"`+strings.Repeat(`\u00e9`, 33)+`"`), "bad colo"},
		{"label empty", with("method", `""`), "bad method"},
		{"label number", with("content_type", `1`), "bad content_type"},
		{"label object", with("cache_status", `{}`), "bad cache_status"},
		{"label array", with("browser", `["Chrome"]`), "bad browser"},
		{"threat too long", with("threat", `"`+strings.Repeat("t", 65)+`"`), "bad threat"},
		{"ssl_protocol number", with("ssl_protocol", `1.3`), "bad ssl_protocol"},
		{"lone high surrogate", with("colo", `"\ud800"`), "invalid string escape"},
		{"lone low surrogate", with("colo", `"\udc00"`), "invalid string escape"},
		{"high surrogate then letter", with("colo", `"\ud800x"`), "invalid string escape"},
		{"high surrogate then non-surrogate", with("colo", `"\ud800\u0041"`), "invalid string escape"},
		{"two high surrogates", with("colo", `"\ud800\ud800"`), "invalid string escape"},
		{"lone surrogate in unknown value", with("x", `"\udfff"`), "invalid string escape"},
		{"lone surrogate in key", withRaw(`"\ud800":1,`), "invalid string escape"},
		{"bad escape letter", `{"a\x":1}`, syntaxAt(4)},
		{"bad unicode escape", `{"a\u12g4":1}`, syntaxAt(7)},
		{"single quotes", `{'ts':1}`, syntaxAt(1)},
		{"missing colon", `{"ts" 1}`, syntaxAt(6)},
		{"missing value", `{"ts":}`, syntaxAt(6)},
		{"trailing comma", exampleJSON[:len(exampleJSON)-1] + ",}", syntaxAt(len(exampleJSON))},
		{"unquoted key", `{ts:1}`, syntaxAt(1)},
		{"NaN", with("x", `NaN`), syntaxAt(strings.Index(with("x", "NaN"), "NaN"))},
		{"hex number", with("x", `0x10`), syntaxAt(strings.Index(with("x", "0x10"), "0x10") + 1)},
		{"number with dot only", with("x", `1.`), syntaxAt(strings.Index(with("x", "1."), "1.}") + 2)},
		{"comment", withRaw(`/*c*/`), syntaxAt(1)},
		{"nul byte outside string", withRaw("\x00"), syntaxAt(1)},
		{"array missing comma", with("x", `[1 2]`), syntaxAt(strings.Index(with("x", "[1 2]"), "[1 2]") + 3)},
		{"object in array bad", with("x", `[{"a"}]`), syntaxAt(strings.Index(with("x", `[{"a"}]`), `[{"a"}]`) + 5)},
	}
	// Fix the duplicate-key case: append a second "status".
	for i := range cases {
		if cases[i].name == "duplicate key" {
			cases[i].in = exampleJSON[:len(exampleJSON)-1] + `,"status":200}`
		}
	}
	for _, f := range exampleFields() {
		cases = append(cases,
			tcase{"missing " + f.k, without(f.k), "missing field: " + f.k},
			tcase{"null " + f.k, with(f.k, "null"), "bad " + f.k},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := exampleEvent
			err := DecodeJSON([]byte(tc.in), &ev)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeJSON(%q) = %v, want *DecodeError %q", tc.in, err, tc.reason)
			}
			if de.Reason != tc.reason {
				t.Fatalf("DecodeJSON(%q) reason %q, want %q", tc.in, de.Reason, tc.reason)
			}
			if err.Error() != "bad event: "+tc.reason {
				t.Fatalf("Error() = %q", err.Error())
			}
			if ev != (Event{}) {
				t.Fatalf("event not reset on error: %+v", ev)
			}
		})
	}
}

// Every proper prefix of a valid event is a syntax error at its end.
func TestDecodeJSONTruncated(t *testing.T) {
	inputs := []string{
		exampleJSON,
		with("browser", `"Chr\u00f4me \ud83d\ude00 \"q\" \\"`),
		with("x", `{"a":[1,-2.5e+3,true,false,null,"s"]}`),
	}
	for _, in := range inputs {
		for k := 1; k < len(in); k++ {
			var ev Event
			err := DecodeJSON([]byte(in[:k]), &ev)
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != syntaxAt(k) {
				t.Fatalf("DecodeJSON(%q) = %v, want %q", in[:k], err, syntaxAt(k))
			}
		}
	}
}

func TestJSONDecoderReuse(t *testing.T) {
	var d JSONDecoder
	var ev Event
	for i := 0; i < 3; i++ {
		if err := d.Decode([]byte(with("colo", `"S\u0046O"`)), &ev); err != nil {
			t.Fatal(err)
		}
		if ev != exampleEvent {
			t.Fatalf("got %+v", ev)
		}
		if err := d.Decode([]byte(with("colo", `"AMS"`)), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Colo != "AMS" {
			t.Fatalf("got colo %q", ev.Colo)
		}
		if err := d.Decode([]byte(with("status", `"x"`)), &ev); err == nil {
			t.Fatal("no error")
		}
	}
	// A huge escaped key must not be retained in the scratch buffer.
	big := withRaw(`"` + strings.Repeat(`\n`, 1<<16) + `":1,`)
	if err := d.Decode([]byte(big), &ev); err != nil {
		t.Fatal(err)
	}
	if cap(d.scratch) > maxScratchRetain {
		t.Fatalf("scratch buffer of %d bytes retained", cap(d.scratch))
	}
}

func TestDecodeJSONAllocs(t *testing.T) {
	data := []byte(exampleJSON)
	var ev Event
	var d JSONDecoder
	if n := testing.AllocsPerRun(100, func() {
		if err := d.Decode(data, &ev); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("JSONDecoder.Decode: %v allocs/op, want 0", n)
	}
	v6 := []byte(with("client_ip", `"2001:db8::1"`))
	if n := testing.AllocsPerRun(100, func() {
		if err := d.Decode(v6, &ev); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("JSONDecoder.Decode (IPv6): %v allocs/op, want 0", n)
	}
	if testing.Short() || raceEnabled() {
		return // sync.Pool drops items randomly under the race detector
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := DecodeJSON(data, &ev); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("DecodeJSON: %v allocs/op, want 0", n)
	}
}

// raceEnabled reports whether the race detector is on, detected by
// sync.Pool dropping Puts (it does so randomly only under -race).
func raceEnabled() bool {
	var p sync.Pool
	for i := 0; i < 100; i++ {
		p.Put(new(int))
		if p.Get() == nil {
			return true
		}
	}
	return false
}

func TestDecodeJSONConcurrent(t *testing.T) {
	inputs := []string{exampleJSON, with("colo", `"AMS"`), with("browser", `"Firefox"`), with("status", `"x"`)}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var ev Event
			for i := 0; i < 500; i++ {
				in := inputs[(g+i)%len(inputs)]
				err := DecodeJSON([]byte(in), &ev)
				switch (g + i) % len(inputs) {
				case 0:
					if err != nil || ev != exampleEvent {
						t.Errorf("got %v %+v", err, ev)
						return
					}
				case 1:
					if err != nil || ev.Colo != "AMS" {
						t.Errorf("got %v %+v", err, ev)
						return
					}
				case 2:
					if err != nil || ev.Browser != "Firefox" {
						t.Errorf("got %v %+v", err, ev)
						return
					}
				case 3:
					if err == nil {
						t.Error("no error")
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
}

// ---------------------------------------------------------------------------
// Property test against encoding/json.

// jsonEscapeAll encodes s as a JSON string escaping every non-ASCII rune as
// \uXXXX (surrogate pairs for astral runes) and every ASCII letter at random.
func jsonEscapeAll(r *rand.Rand, s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '/' && r.IntN(2) == 0:
			b.WriteString(`\/`)
		case c < 0x80 && c >= 0x20 && r.IntN(3) != 0:
			b.WriteRune(c)
		case c > 0xFFFF:
			r1, r2 := utf16.EncodeRune(c)
			fmt.Fprintf(&b, `\u%04x\u%04X`, r1, r2)
		default:
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, `\u%04x`, c)
			} else {
				fmt.Fprintf(&b, `\u%04X`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

var labelRunes = []rune("abcXYZ019 -_./:;<>&'\"\\é日😀\u2028\u00a0\u0080\ufffd")

func randLabel(r *rand.Rand, min int) string {
	for {
		n := min + r.IntN(MaxLabel/2)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteRune(labelRunes[r.IntN(len(labelRunes))])
		}
		if s := b.String(); len(s) <= MaxLabel {
			return s
		}
	}
}

func randJSONValue(r *rand.Rand, depth int) string {
	switch k := r.IntN(8); {
	case k == 0:
		return "null"
	case k == 1:
		return "true"
	case k == 2:
		return "false"
	case k == 3:
		return strconv.FormatFloat(r.NormFloat64()*1e6, 'g', -1, 64)
	case k == 4 || depth > 4:
		b, _ := json.Marshal(randLabel(r, 0))
		return string(b)
	case k == 5:
		var parts []string
		for i := r.IntN(4); i > 0; i-- {
			parts = append(parts, randJSONValue(r, depth+1))
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		var parts []string
		for i := r.IntN(4); i > 0; i-- {
			k, _ := json.Marshal(randLabel(r, 0))
			parts = append(parts, string(k)+":"+randJSONValue(r, depth+1))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

func randWS(r *rand.Rand) string {
	if r.IntN(3) != 0 {
		return ""
	}
	return [...]string{" ", "\n", "\t", "\r\n  "}[r.IntN(4)]
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	minTS := time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
	maxTS := time.Date(9998, 12, 30, 0, 0, 0, 0, time.UTC).Unix()
	var d JSONDecoder
	for iter := 0; iter < 20000; iter++ {
		var want Event
		// ts
		want.TS = time.Unix(minTS+r.Int64N(maxTS-minTS), 0).UTC()
		switch r.IntN(4) {
		case 0:
		case 1:
			want.TS = want.TS.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		default:
			want.TS = want.TS.Add(time.Duration(r.IntN(1e9)))
		}
		off := 0
		if r.IntN(2) == 0 {
			off = (r.IntN(2*(23*60+59)+1) - (23*60 + 59)) * 60
		}
		tsStr := want.TS.In(time.FixedZone("", off)).Format(time.RFC3339Nano)
		// client_ip
		var ipStr string
		var a4 [4]byte
		var a16 [16]byte
		for i := range a16 {
			a16[i] = byte(r.IntN(256))
		}
		copy(a4[:], a16[:])
		switch r.IntN(4) {
		case 0, 1:
			want.ClientIP = netip.AddrFrom4(a4)
			ipStr = want.ClientIP.String()
		case 2:
			want.ClientIP = netip.AddrFrom16(a16).Unmap()
			ipStr = netip.AddrFrom16(a16).StringExpanded()
			if r.IntN(2) == 0 {
				ipStr = netip.AddrFrom16(a16).String()
			}
		case 3:
			want.ClientIP = netip.AddrFrom4(a4)
			ipStr = "::ffff:" + want.ClientIP.String()
		}
		// numbers
		want.ZoneID = 1 + r.Int64N(math.MaxInt64)
		if r.IntN(10) == 0 {
			want.ZoneID = math.MaxInt64
		}
		want.Status = int16(100 + r.IntN(500))
		want.Bytes = r.Int64N(MaxBytes + 1)
		if r.IntN(10) == 0 {
			want.Bytes = []int64{0, MaxBytes}[r.IntN(2)]
		}
		want.PageView = r.IntN(2) == 0
		// strings
		cc := string([]byte{alnum[r.IntN(len(alnum))], alnum[r.IntN(len(alnum))]})
		want.Country = strings.ToUpper(cc)
		want.Colo = randLabel(r, 1)
		want.Method = randLabel(r, 1)
		want.ContentType = randLabel(r, 1)
		want.CacheStatus = randLabel(r, 1)
		ssl := randLabel(r, 0)
		want.SSLProtocol = ssl
		if ssl == "" {
			want.SSLProtocol = "none"
		}
		want.IPClass = randLabel(r, 1)
		want.Threat = randLabel(r, 0)
		want.Browser = randLabel(r, 1)

		escapeAll := r.IntN(3) == 0
		str := func(s string) string {
			if escapeAll {
				return jsonEscapeAll(r, s)
			}
			b, err := json.Marshal(s) // escapes <>& as \u003c etc.
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		num := func(v any) string {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		fs := []kv{
			{"ts", str(tsStr)},
			{"zone_id", num(want.ZoneID)},
			{"client_ip", str(ipStr)},
			{"country", str(cc)},
			{"colo", str(want.Colo)},
			{"method", str(want.Method)},
			{"status", num(want.Status)},
			{"content_type", str(want.ContentType)},
			{"bytes", num(want.Bytes)},
			{"cache_status", str(want.CacheStatus)},
			{"ssl_protocol", str(ssl)},
			{"ip_class", str(want.IPClass)},
			{"threat", str(want.Threat)},
			{"page_view", num(want.PageView)},
			{"browser", str(want.Browser)},
		}
		for i := r.IntN(4); i > 0; i-- {
			k := randLabel(r, 0)
			if lookupField([]byte(k)) >= 0 {
				continue
			}
			fs = append(fs, kv{k, randJSONValue(r, 0)})
		}
		r.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		var b strings.Builder
		b.WriteString(randWS(r) + "{" + randWS(r))
		for i, f := range fs {
			if i > 0 {
				b.WriteString(randWS(r) + "," + randWS(r))
			}
			b.WriteString(str(f.k) + randWS(r) + ":" + randWS(r) + f.v)
		}
		b.WriteString(randWS(r) + "}" + randWS(r))
		in := []byte(b.String())

		// encoding/json reference.
		if !json.Valid(in) {
			t.Fatalf("generated invalid JSON: %s", in)
		}
		var ref map[string]any
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&ref); err != nil {
			t.Fatal(err)
		}
		if ref["colo"] != want.Colo || ref["browser"] != want.Browser || ref["threat"] != want.Threat ||
			ref["zone_id"].(json.Number).String() != strconv.FormatInt(want.ZoneID, 10) {
			t.Fatalf("test generator disagrees with encoding/json: %s", in)
		}

		var got Event
		var err error
		if iter%2 == 0 {
			err = DecodeJSON(in, &got)
		} else {
			err = d.Decode(in, &got)
		}
		if err != nil {
			t.Fatalf("DecodeJSON(%s): %v", in, err)
		}
		if got != want {
			t.Fatalf("DecodeJSON(%s)\n got %+v\nwant %+v", in, got, want)
		}
		compareWithReference(t, in, &got)
	}
}

// ---------------------------------------------------------------------------
// Invariants, reference decoder and fuzzing.

func checkEventInvariants(t testing.TB, ev *Event) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invariant violated: "+format+"\nevent: %+v", append(args, *ev)...)
	}
	if ev.TS.Location() != time.UTC {
		fail("TS not UTC: %v", ev.TS.Location())
	}
	if ev.ZoneID < 1 {
		fail("ZoneID %d", ev.ZoneID)
	}
	if !ev.ClientIP.IsValid() || ev.ClientIP.Zone() != "" || ev.ClientIP.Is4In6() {
		fail("ClientIP %v", ev.ClientIP)
	}
	if len(ev.Country) != 2 || strings.Trim(ev.Country, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		fail("Country %q", ev.Country)
	}
	if ev.Status < 100 || ev.Status > 599 {
		fail("Status %d", ev.Status)
	}
	if ev.Bytes < 0 || ev.Bytes > MaxBytes {
		fail("Bytes %d", ev.Bytes)
	}
	labels := []struct {
		name string
		v    string
		min  int
	}{
		{"colo", ev.Colo, 1}, {"method", ev.Method, 1}, {"content_type", ev.ContentType, 1},
		{"cache_status", ev.CacheStatus, 1}, {"ssl_protocol", ev.SSLProtocol, 1},
		{"ip_class", ev.IPClass, 1}, {"threat", ev.Threat, 0}, {"browser", ev.Browser, 1},
	}
	for _, l := range labels {
		if len(l.v) < l.min || len(l.v) > MaxLabel || !utf8.ValidString(l.v) ||
			strings.ContainsFunc(l.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			fail("%s %q", l.name, l.v)
		}
	}
}

// formatTS formats t as RFC 3339 with a four-digit year, choosing an offset
// that keeps the local year within 0000..9999 when the UTC year is not.
func formatTS(t time.Time) string {
	switch y := t.Year(); {
	case y < 0:
		t = t.In(time.FixedZone("", 23*3600+59*60))
	case y > 9999:
		t = t.In(time.FixedZone("", -(23*3600 + 59*60)))
	}
	return t.Format(time.RFC3339Nano)
}

func encodeEvent(t testing.TB, ev *Event) []byte {
	b, err := json.Marshal(wireEvent{
		TS: formatTS(ev.TS), ZoneID: ev.ZoneID, ClientIP: ev.ClientIP.String(),
		Country: ev.Country, Colo: ev.Colo, Method: ev.Method, Status: ev.Status,
		ContentType: ev.ContentType, Bytes: ev.Bytes, CacheStatus: ev.CacheStatus,
		SSLProtocol: ev.SSLProtocol, IPClass: ev.IPClass, Threat: ev.Threat,
		PageView: ev.PageView, Browser: ev.Browser,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var intRE = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

var strictTS = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// refTimestamp is the reference for parseTimestamp: the strict RFC 3339
// grammar, then time.Parse.
func refTimestamp(s string) (time.Time, bool) {
	if !strictTS.MatchString(s) {
		return time.Time{}, false
	}
	b := []byte(s)
	b[10] = 'T'
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	ts, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return ts.UTC(), true
}

func refIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// structuralReasons are the reasons that do not name a field; for those the
// reference decoder only checks the class, not which one is reported.
func isStructural(reason string) bool {
	switch reason {
	case "empty message", "invalid UTF-8", "not a JSON object", "trailing data", "nesting too deep", "invalid string escape":
		return true
	}
	return strings.HasPrefix(reason, "invalid JSON at offset ")
}

// jsonDepth returns the maximum nesting depth of valid JSON data.
func jsonDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, max := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return max
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			max = maxInt(max, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// hasBadSurrogate reports whether valid JSON data contains a \u escape that
// is an unpaired surrogate.
func hasBadSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if data[i+1] != 'u' {
			i++
			continue
		}
		v, _ := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
		i += 5
		if v >= 0xDC00 && v < 0xE000 {
			return true
		}
		if v >= 0xD800 && v < 0xDC00 {
			if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
				return true
			}
			w, _ := strconv.ParseUint(string(data[i+3:i+7]), 16, 32)
			if w < 0xDC00 || w >= 0xE000 {
				return true
			}
			i += 6
		}
	}
	return false
}

// refDecode is a slow reference implementation of DecodeJSON built on
// encoding/json. It returns the event, or the reason; for structural errors
// it returns "structural" (any structural reason is then acceptable).
func refDecode(data []byte) (Event, string) {
	var ev Event
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return ev, "empty message"
	}
	if !utf8.Valid(data) {
		return ev, "invalid UTF-8"
	}
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return ev, "not a JSON object"
	}
	if !json.Valid(data) || jsonDepth(data) > maxJSONDepth || hasBadSurrogate(data) {
		return ev, "structural"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token() // '{'
	seen := map[string]bool{}
	firstErr := ""
	setErr := func(s string) {
		if firstErr == "" {
			firstErr = s
		}
	}
	for dec.More() {
		tok, _ := dec.Token()
		k := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			panic(err)
		}
		if lookupField([]byte(k)) < 0 {
			continue
		}
		if seen[k] {
			setErr("duplicate field: " + k)
			continue
		}
		seen[k] = true
		bad := func() { setErr("bad " + k) }
		var s string
		isStr := raw[0] == '"' && json.Unmarshal(raw, &s) == nil
		var n int64
		isInt := false
		if intRE.Match(raw) {
			var err error
			n, err = strconv.ParseInt(string(raw), 10, 64)
			isInt = err == nil
		}
		label := func(min int) string {
			if !isStr || len(s) < min || len(s) > MaxLabel ||
				strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				bad()
			}
			return s
		}
		switch k {
		case "ts":
			var ok bool
			if ev.TS, ok = refTimestamp(s); !isStr || !ok {
				bad()
			}
		case "zone_id":
			if ev.ZoneID = n; !isInt || n < 1 {
				bad()
			}
		case "client_ip":
			var ok bool
			if ev.ClientIP, ok = refIP(s); !isStr || !ok {
				bad()
			}
		case "country":
			ok := isStr && len(s) == 2
			for i := 0; ok && i < 2; i++ {
				c := s[i]
				ok = c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
			}
			if ev.Country = strings.ToUpper(s); !ok {
				bad()
			}
		case "status":
			if ev.Status = int16(n); !isInt || n < 100 || n > 599 {
				bad()
			}
		case "bytes":
			if ev.Bytes = n; !isInt || n > MaxBytes {
				bad()
			}
		case "page_view":
			ev.PageView = string(raw) == "true"
			if string(raw) != "true" && string(raw) != "false" {
				bad()
			}
		case "colo":
			ev.Colo = label(1)
		case "method":
			ev.Method = label(1)
		case "content_type":
			ev.ContentType = label(1)
		case "cache_status":
			ev.CacheStatus = label(1)
		case "ssl_protocol":
			if ev.SSLProtocol = label(0); ev.SSLProtocol == "" {
				ev.SSLProtocol = "none"
			}
		case "ip_class":
			ev.IPClass = label(1)
		case "threat":
			ev.Threat = label(0)
		case "browser":
			ev.Browser = label(1)
		}
	}
	if firstErr != "" {
		return Event{}, firstErr
	}
	for _, name := range fieldNames {
		if !seen[name] {
			return Event{}, "missing field: " + name
		}
	}
	return ev, ""
}

// compareWithReference checks DecodeJSON's verdict on data (got on success)
// against refDecode.
func compareWithReference(t testing.TB, data []byte, got *Event) {
	t.Helper()
	var gotReason string
	if got == nil {
		var ev Event
		err := DecodeJSON(data, &ev)
		var de *DecodeError
		if err != nil {
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			gotReason = de.Reason
		} else {
			got = &ev
		}
	}
	want, wantReason := refDecode(data)
	switch {
	case wantReason == "structural":
		if !isStructural(gotReason) {
			t.Fatalf("input %q: reason %q, reference expects a structural error", data, gotReason)
		}
	case gotReason != wantReason:
		t.Fatalf("input %q: reason %q, reference reason %q", data, gotReason, wantReason)
	case got != nil && *got != want:
		t.Fatalf("input %q:\n got %+v\nwant %+v", data, *got, want)
	}
}

var fuzzSeeds = []string{
	exampleJSON,
	with("client_ip", `"::ffff:10.0.0.1"`),
	with("ts", `"2026-11-26T01:12:56.123456789+05:30"`),
	with("browser", `"Chr\u00f4me \ud83d\ude00 \"q\" \\ \/"`),
	with("x", `{"a":[1,-2.5e+3,true,false,null,"s",{}]}`),
	with("status", `"200"`),
	with("zone_id", `1e3`),
	with("colo", `"\ud800"`),
	with("colo", `"S\u0000O"`),
	without("browser"),
	exampleJSON + " {}",
	with("x", strings.Repeat("[", 70)+strings.Repeat("]", 70)),
	"",
	"[]",
	"{\"ts\":\"2026-11-25T19:42:56Z\"\xff}",
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		var ev Event
		err := DecodeJSON(data, &ev)
		if !bytes.Equal(orig, data) {
			t.Fatal("input modified")
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %#v is not a *DecodeError with a reason", err)
			}
			if ev != (Event{}) {
				t.Fatalf("event not reset on error: %+v", ev)
			}
			compareWithReference(t, data, nil)
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		checkEventInvariants(t, &ev)
		compareWithReference(t, data, &ev)
		// Round trip through encoding/json.
		enc := encodeEvent(t, &ev)
		var ev2 Event
		if err := DecodeJSON(enc, &ev2); err != nil {
			t.Fatalf("re-encoded event %s rejected: %v", enc, err)
		}
		if ev2 != ev {
			t.Fatalf("round trip via %s:\n got %+v\nwant %+v", enc, ev2, ev)
		}
		// The reusable decoder agrees.
		var d JSONDecoder
		var ev3 Event
		if err := d.Decode(data, &ev3); err != nil || ev3 != ev {
			t.Fatalf("JSONDecoder disagrees: %v %+v", err, ev3)
		}
	})
}

type fuzzSeed struct {
	name string
	data string
}

// seedCorpus reads the committed seed corpus of a fuzz target (at least 10
// files, each a go test fuzz v1 file with one []byte).
func seedCorpus(t *testing.T, target string) []fuzzSeed {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 10 {
		t.Fatalf("only %d seed files", len(entries))
	}
	var seeds []fuzzSeed
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
			!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a go test fuzz v1 file with one []byte", e.Name())
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		seeds = append(seeds, fuzzSeed{e.Name(), data})
	}
	return seeds
}

// The committed seed corpus: files named valid_* decode, all others fail.
func TestDecodeJSONFuzzCorpus(t *testing.T) {
	for _, e := range seedCorpus(t, "FuzzDecodeJSON") {
		data := e.data
		var ev Event
		err := DecodeJSON([]byte(data), &ev)
		if valid := strings.HasPrefix(e.name, "valid_"); valid != (err == nil) {
			t.Errorf("%s: DecodeJSON error %v", e.name, err)
		}
		compareWithReference(t, []byte(data), nil)
	}
}

// mutations returns s with every single-byte replacement (from alphabet),
// deletion and insertion applied.
func mutations(s, alphabet string) []string {
	out := []string{s}
	for i := 0; i <= len(s); i++ {
		for j := 0; j < len(alphabet); j++ {
			out = append(out, s[:i]+alphabet[j:j+1]+s[i:])
			if i < len(s) {
				out = append(out, s[:i]+alphabet[j:j+1]+s[i+1:])
			}
		}
		if i < len(s) {
			out = append(out, s[:i]+s[i+1:])
		}
	}
	return out
}

// Every single-byte edit of some valid events gets the verdict of the
// encoding/json based reference decoder.
func TestDecodeJSONMutations(t *testing.T) {
	bases := []string{
		exampleJSON,
		with("browser", `"\u00f4\ud83d\ude00\"\\"`),
		with("x", `{"a":[1,-2.5e+3,true,null,"s",{}]}`),
		with("client_ip", `"::ffff:1.2.3.4"`),
	}
	alphabet := "{}[]:,\"\\ 0-1.eEtfnu\x00\x01\x7f\xff"
	if testing.Short() {
		bases = bases[:1]
	}
	for _, base := range bases {
		for _, s := range mutations(base, alphabet) {
			compareWithReference(t, []byte(s), nil)
		}
	}
}

func TestParseTimestampMutations(t *testing.T) {
	bases := []string{
		"2026-11-25T19:42:56.123Z", "2026-11-26T01:12:56.123456789+05:30", "2024-02-29t23:59:59z",
		"0000-01-01T00:00:00-23:59", "9999-12-31T23:59:59.9999999999+00:00", "1900-02-28T00:00:00Z",
	}
	n := 0
	for _, base := range bases {
		for _, s := range mutations(base, "0123456789-:.,TtZz+ 3\x00\xff") {
			got, ok := parseTimestamp([]byte(s))
			want, wantOK := refTimestamp(s)
			if ok != wantOK || got != want {
				t.Fatalf("parseTimestamp(%q) = %v, %v; want %v, %v", s, got, ok, want, wantOK)
			}
			if ok {
				n++
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d mutations accepted", n)
	}
}

func TestParseIPMutations(t *testing.T) {
	bases := []string{
		"203.0.113.7", "2001:db8::1", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
		"::", "fe80::1%eth0", "1::", "::1.2.3.4", "64:ff9b::192.0.2.33",
	}
	n := 0
	for _, base := range bases {
		for _, s := range mutations(base, "0123456789abcdefABCDEFg.:% ") {
			got, ok := parseIP([]byte(s))
			want, wantOK := refIP(s)
			if ok != wantOK || got != want {
				t.Fatalf("parseIP(%q) = %v, %v; want %v, %v", s, got, ok, want, wantOK)
			}
			if ok {
				n++
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d mutations accepted", n)
	}
}

// FuzzParseTimestamp checks the hand-written RFC 3339 parser against
// time.Parse.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T19:42:56.123Z", "2026-11-26T01:12:56.123+05:30", "2026-11-25t19:42:56z",
		"0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999999999-23:59", "2024-02-29T00:00:00Z",
		"2026-11-25T9:42:56Z", "2026-11-25T19:42:56,5Z", "2026-11-25T19:42:56+24:00",
		"2026-11-25T19:42:56.1234567891234Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimestamp([]byte(s))
		want, wantOK := refTimestamp(s)
		if ok != wantOK || got != want {
			t.Fatalf("parseTimestamp(%q) = %v, %v; want %v, %v", s, got, ok, want, wantOK)
		}
	})
}

// FuzzParseIP checks the hand-written address parser against netip.ParseAddr.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{
		"203.0.113.7", "2001:db8::1", "::ffff:1.2.3.4", "::", "::1", "1::", "fe80::1%eth0",
		"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1::2:3:4:5:6:1.2.3.4", "1.2.3.04", "300.1.1.1",
		"::ffff:0:1.2.3.4", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "12345::", "%", "a.b.c.d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIP([]byte(s))
		want, wantOK := refIP(s)
		if ok != wantOK || got != want {
			t.Fatalf("parseIP(%q) = %v, %v; want %v, %v", s, got, ok, want, wantOK)
		}
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	data := []byte(exampleJSON)
	b.Run("DecodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var ev Event
		for b.Loop() {
			if err := DecodeJSON(data, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONDecoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var d JSONDecoder
		var ev Event
		for b.Loop() {
			if err := d.Decode(data, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONDecoderParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		b.RunParallel(func(pb *testing.PB) {
			var d JSONDecoder
			var ev Event
			for pb.Next() {
				if err := d.Decode(data, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("stdlib", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var w wireEvent
		for b.Loop() {
			if err := json.Unmarshal(data, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
