package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	testStart = time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC)
	testEnd   = testStart.Add(time.Hour)
)

func testConfig(seed int64) Config {
	return Config{Seed: seed, Start: testStart, End: testEnd}
}

// strictEvent has every field as a pointer so a missing field is visible.
type strictEvent struct {
	TS          *string `json:"ts"`
	ZoneID      *int64  `json:"zone_id"`
	ClientIP    *string `json:"client_ip"`
	Country     *string `json:"country"`
	Colo        *string `json:"colo"`
	Method      *string `json:"method"`
	Status      *int    `json:"status"`
	ContentType *string `json:"content_type"`
	Bytes       *int64  `json:"bytes"`
	CacheStatus *string `json:"cache_status"`
	SSLProtocol *string `json:"ssl_protocol"`
	IPClass     *string `json:"ip_class"`
	Threat      *string `json:"threat"`
	PageView    *bool   `json:"page_view"`
	Browser     *string `json:"browser"`
}

type event15 struct {
	TS                                        time.Time
	ZoneID                                    int64
	IP                                        netip.Addr
	Country, Colo, Method                     string
	Status                                    int
	ContentType                               string
	Bytes                                     int64
	CacheStatus, SSLProtocol, IPClass, Threat string
	PageView                                  bool
	Browser                                   string
}

var (
	tsRE      = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

func inSet(set []string, s string) bool { return slices.Contains(set, s) }

// decodeStrict decodes a message value the way a strict consumer would: it
// requires valid UTF-8, one JSON object and nothing else, exactly the 15
// fields with the right JSON types, and values in range.
func decodeStrict(v []byte, zones int) (event15, error) {
	var e event15
	if len(v) == 0 {
		return e, errors.New("empty")
	}
	if !utf8.Valid(v) {
		return e, errors.New("invalid utf-8")
	}
	if !json.Valid(v) {
		return e, errors.New("invalid json")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return e, err
	}
	if len(raw) != 15 {
		return e, fmt.Errorf("%d fields", len(raw))
	}
	var s strictEvent
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return e, err
	}
	if s.TS == nil || s.ZoneID == nil || s.ClientIP == nil || s.Country == nil ||
		s.Colo == nil || s.Method == nil || s.Status == nil || s.ContentType == nil ||
		s.Bytes == nil || s.CacheStatus == nil || s.SSLProtocol == nil ||
		s.IPClass == nil || s.Threat == nil || s.PageView == nil || s.Browser == nil {
		return e, errors.New("missing field")
	}
	for _, p := range []*string{s.TS, s.ClientIP, s.Country, s.Colo, s.Method,
		s.ContentType, s.CacheStatus, s.SSLProtocol, s.IPClass, s.Threat, s.Browser} {
		if strings.ContainsRune(*p, 0) {
			return e, errors.New("NUL in string")
		}
	}
	if !tsRE.MatchString(*s.TS) {
		return e, fmt.Errorf("ts format %q", *s.TS)
	}
	ts, err := time.Parse(time.RFC3339Nano, *s.TS)
	if err != nil {
		return e, err
	}
	ip, err := netip.ParseAddr(*s.ClientIP)
	if err != nil {
		return e, err
	}
	if ip.Zone() != "" || ip.Is4In6() {
		return e, fmt.Errorf("odd ip %s", ip)
	}
	switch {
	case *s.ZoneID < 1 || *s.ZoneID > int64(zones):
		return e, fmt.Errorf("zone_id %d", *s.ZoneID)
	case !countryRE.MatchString(*s.Country):
		return e, fmt.Errorf("country %q", *s.Country)
	case !inSet(colos, *s.Colo):
		return e, fmt.Errorf("colo %q", *s.Colo)
	case !inSet(methods, *s.Method):
		return e, fmt.Errorf("method %q", *s.Method)
	case *s.Status < 100 || *s.Status > 599:
		return e, fmt.Errorf("status %d", *s.Status)
	case !inSet(contentTypes, *s.ContentType):
		return e, fmt.Errorf("content_type %q", *s.ContentType)
	case *s.Bytes < 0:
		return e, fmt.Errorf("bytes %d", *s.Bytes)
	case !inSet(cacheStatuses, *s.CacheStatus):
		return e, fmt.Errorf("cache_status %q", *s.CacheStatus)
	case !inSet(sslProtocols, *s.SSLProtocol):
		return e, fmt.Errorf("ssl_protocol %q", *s.SSLProtocol)
	case !inSet(ipClasses, *s.IPClass):
		return e, fmt.Errorf("ip_class %q", *s.IPClass)
	case !inSet(threats, *s.Threat):
		return e, fmt.Errorf("threat %q", *s.Threat)
	case !inSet(browsers, *s.Browser):
		return e, fmt.Errorf("browser %q", *s.Browser)
	}
	return event15{
		TS: ts, ZoneID: *s.ZoneID, IP: ip, Country: *s.Country, Colo: *s.Colo,
		Method: *s.Method, Status: *s.Status, ContentType: *s.ContentType,
		Bytes: *s.Bytes, CacheStatus: *s.CacheStatus, SSLProtocol: *s.SSLProtocol,
		IPClass: *s.IPClass, Threat: *s.Threat, PageView: *s.PageView, Browser: *s.Browser,
	}, nil
}

func collect(g *Generator) (keys, vals [][]byte) {
	var k, v []byte
	for {
		var ok bool
		k, v, ok = g.Next(k[:0], v[:0])
		if !ok {
			return
		}
		keys = append(keys, slices.Clone(k))
		vals = append(vals, slices.Clone(v))
	}
}

func TestDeterminism(t *testing.T) {
	cfg := testConfig(42)
	cfg.LateShare = 0.05
	cfg.BadShare = 0.05
	k1, v1 := collect(New(cfg, 5000))
	k2, v2 := collect(New(cfg, 5000))
	if len(v1) != 5000 || len(v2) != 5000 {
		t.Fatalf("got %d and %d messages, want 5000", len(v1), len(v2))
	}
	for i := range v1 {
		if !bytes.Equal(k1[i], k2[i]) || !bytes.Equal(v1[i], v2[i]) {
			t.Fatalf("message %d differs:\n%q %q\n%q %q", i, k1[i], v1[i], k2[i], v2[i])
		}
	}
	cfg.Seed = 43
	_, v3 := collect(New(cfg, 5000))
	same := 0
	for i := range v1 {
		if bytes.Equal(v1[i], v3[i]) {
			same++
		}
	}
	if same > 50 {
		t.Fatalf("seeds 42 and 43 share %d of 5000 messages", same)
	}
}

func TestTotalAndAfterEnd(t *testing.T) {
	for _, total := range []int{0, 1, 7, 1000} {
		g := New(testConfig(1), total)
		n := 0
		var k, v []byte
		for {
			var ok bool
			k, v, ok = g.Next(k[:0], v[:0])
			if !ok {
				break
			}
			n++
		}
		if n != total {
			t.Errorf("total %d: got %d messages", total, n)
		}
		if _, _, ok := g.Next(nil, nil); ok {
			t.Errorf("total %d: Next ok after the end", total)
		}
	}
}

func TestAppendsToBuffers(t *testing.T) {
	g := New(testConfig(1), 1)
	k, v, ok := g.Next([]byte("k:"), []byte("v:"))
	if !ok || !bytes.HasPrefix(k, []byte("k:")) || !bytes.HasPrefix(v, []byte("v:")) {
		t.Fatalf("Next did not append: %q %q %v", k, v, ok)
	}
	if _, err := decodeStrict(v[2:], 1000); err != nil {
		t.Fatalf("appended value invalid: %v", err)
	}
}

func TestValidEvents(t *testing.T) {
	cfg := testConfig(7)
	cfg.LateShare = 0.1
	const total = 50000
	g := New(cfg, total)
	cfg = g.Config()
	lo := cfg.Start.Add(-6*time.Hour - time.Minute)
	hi := cfg.End.Add(time.Minute)
	keys, vals := collect(g)
	if len(vals) != total {
		t.Fatalf("got %d messages", len(vals))
	}
	counts := map[string]map[string]int{}
	count := func(field, val string) {
		if counts[field] == nil {
			counts[field] = map[string]int{}
		}
		counts[field][val]++
	}
	var v6, pv, html200, status304 int
	ips := map[netip.Addr]int{}
	var prevTS time.Time
	var backwards int
	for i, v := range vals {
		e, err := decodeStrict(v, cfg.Zones)
		if err != nil {
			t.Fatalf("message %d invalid: %v\n%s", i, err, v)
		}
		if string(keys[i]) != strconv.FormatInt(e.ZoneID, 10) {
			t.Fatalf("message %d: key %q, zone_id %d", i, keys[i], e.ZoneID)
		}
		if e.TS.Before(lo) || e.TS.After(hi) {
			t.Fatalf("message %d: ts %s outside [%s, %s]", i, e.TS, lo, hi)
		}
		if e.Status == 304 {
			status304++
			if e.Bytes != 0 {
				t.Fatalf("message %d: 304 with %d bytes", i, e.Bytes)
			}
		}
		if e.PageView && (e.ContentType != "html" || e.Status != 200) {
			t.Fatalf("message %d: page_view on %s %d", i, e.ContentType, e.Status)
		}
		if e.ContentType == "html" && e.Status == 200 {
			html200++
			if e.PageView {
				pv++
			}
		}
		if e.IP.Is6() {
			v6++
			if !netip.MustParsePrefix("2001:db8::/32").Contains(e.IP) {
				t.Fatalf("message %d: IPv6 %s outside 2001:db8::/32", i, e.IP)
			}
		} else if !e.IP.IsPrivate() && !netip.MustParsePrefix("100.64.0.0/10").Contains(e.IP) &&
			!netip.MustParsePrefix("198.18.0.0/15").Contains(e.IP) {
			t.Fatalf("message %d: IPv4 %s not private-looking", i, e.IP)
		}
		ips[e.IP]++
		if !prevTS.IsZero() && e.TS.Before(prevTS.Add(-10*time.Second)) {
			backwards++
		}
		prevTS = e.TS
		count("country", e.Country)
		count("method", e.Method)
		count("status", strconv.Itoa(e.Status))
		count("ct", e.ContentType)
		count("cache", e.CacheStatus)
		count("ssl", e.SSLProtocol)
		count("ipclass", e.IPClass)
		count("threat", e.Threat)
		count("browser", e.Browser)
		count("colo", e.Colo)
		if e.Threat != "" {
			count("threatStatus", strconv.Itoa(e.Status))
		}
	}
	if status304 == 0 {
		t.Error("no 304s")
	}
	share := func(field, val string) float64 { return float64(counts[field][val]) / total }
	check := func(field, val string, lo, hi float64) {
		t.Helper()
		if s := share(field, val); s < lo || s > hi {
			t.Errorf("%s=%q share %.3f, want [%.3f, %.3f]", field, val, s, lo, hi)
		}
	}
	check("method", "GET", 0.80, 0.90)
	check("method", "POST", 0.07, 0.13)
	check("status", "200", 0.70, 0.88)
	check("ssl", "TLSv1.3", 0.65, 0.75)
	check("ssl", "none", 0.03, 0.07)
	check("threat", "", 0.97, 0.997)
	check("country", "US", 0.15, 0.45)
	check("browser", "Chrome", 0.40, 0.75)
	check("cache", "hit", 0.40, 0.70)
	check("ipclass", "clean", 0.75, 0.98)
	if n := len(counts["country"]); n < 15 {
		t.Errorf("only %d countries", n)
	}
	if n := len(counts["colo"]); n < 15 {
		t.Errorf("only %d colos", n)
	}
	if n := len(counts["ct"]); n != len(contentTypes) {
		t.Errorf("only %d content types", n)
	}
	threatTotal := total - counts["threat"][""]
	if threatTotal > 0 && float64(counts["threatStatus"]["403"])/float64(threatTotal) < 0.6 {
		t.Errorf("threats answered with 403: %d of %d", counts["threatStatus"]["403"], threatTotal)
	}
	if r := float64(pv) / float64(html200); r < 0.6 || r > 0.75 {
		t.Errorf("page_view share of html 200s %.3f", r)
	}
	if r := float64(v6) / total; r < 0.1 || r > 0.3 {
		t.Errorf("IPv6 share %.3f, want ~0.2", r)
	}
	// Skewed clients: the busiest IP makes far more than the average.
	maxIP := 0
	for _, n := range ips {
		maxIP = max(maxIP, n)
	}
	if avg := float64(total) / float64(len(ips)); float64(maxIP) < 20*avg {
		t.Errorf("client skew too weak: max %d, avg %.1f over %d IPs", maxIP, avg, len(ips))
	}
	// Late events aside, times go forward.
	if float64(backwards)/total > 2*cfg.LateShare {
		t.Errorf("%d backward steps", backwards)
	}
}

func TestMalformed(t *testing.T) {
	cfg := testConfig(3)
	cfg.BadShare = 0.05
	const total = 40000
	g := New(cfg, total)
	keys, vals := collect(g)
	if len(vals) != total {
		t.Fatalf("got %d messages", len(vals))
	}
	bad := 0
	for i, v := range vals {
		e, err := decodeStrict(v, g.Config().Zones)
		if err != nil {
			bad++
			continue
		}
		if string(keys[i]) != strconv.FormatInt(e.ZoneID, 10) {
			t.Fatalf("message %d: key %q, zone_id %d", i, keys[i], e.ZoneID)
		}
	}
	if bad != g.Malformed() {
		t.Fatalf("strict decoder rejects %d messages, Malformed() = %d", bad, g.Malformed())
	}
	want := cfg.BadShare * total
	if math.Abs(float64(bad)-want) > 0.15*want {
		t.Fatalf("malformed %d, want ~%.0f", bad, want)
	}

	// Every kind shows up and is rejected.
	g = New(cfg, 3000)
	kinds := map[string]int{}
	var k, v []byte
	for {
		before := g.Malformed()
		var ok bool
		k, v, ok = g.Next(k[:0], v[:0])
		if !ok {
			break
		}
		if g.Malformed() == before {
			continue
		}
		kind := BadKinds[before%len(BadKinds)]
		kinds[kind]++
		if _, err := decodeStrict(v, g.Config().Zones); err == nil {
			t.Fatalf("malformed %q accepted: %q", kind, v)
		}
	}
	for _, kind := range BadKinds {
		if kinds[kind] == 0 {
			t.Errorf("kind %q never emitted", kind)
		}
	}

	// No malformed messages by default.
	g = New(testConfig(3), 10000)
	collect(g)
	if g.Malformed() != 0 {
		t.Fatalf("Malformed() = %d with BadShare 0", g.Malformed())
	}
}

func TestZipf(t *testing.T) {
	const total = 100000
	g := New(testConfig(11), total)
	var per [1001]int
	var k, v []byte
	for {
		var ok bool
		k, v, ok = g.Next(k[:0], v[:0])
		if !ok {
			break
		}
		z, err := strconv.Atoi(string(k))
		if err != nil || z < 1 || z > 1000 {
			t.Fatalf("key %q", k)
		}
		per[z]++
	}
	if per[1] <= per[100] || per[1] <= per[2] || per[10] <= per[1000] {
		t.Fatalf("no skew: zone1=%d zone2=%d zone10=%d zone100=%d zone1000=%d",
			per[1], per[2], per[10], per[100], per[1000])
	}
	// Zipf s=1.1: zone 1 / zone 100 ~ 100^1.1 ~ 158.
	if per[1] < 50*max(per[100], 1) {
		t.Errorf("skew too weak: zone1=%d zone100=%d", per[1], per[100])
	}
}

func TestLateShare(t *testing.T) {
	for _, late := range []float64{0, 0.1, 0.3} {
		cfg := testConfig(5)
		cfg.LateShare = late
		const total = 20000
		g := New(cfg, total)
		span := testEnd.Sub(testStart)
		_, vals := collect(g)
		n := 0
		for i, v := range vals {
			e, err := decodeStrict(v, 1000)
			if err != nil {
				t.Fatal(err)
			}
			inOrder := testStart.Add(time.Duration(float64(span) * float64(i) / total))
			d := inOrder.Sub(e.TS)
			switch {
			case d > time.Hour-10*time.Second:
				if d > 6*time.Hour+10*time.Second {
					t.Fatalf("message %d: %s late", i, d)
				}
				n++
			case d > 10*time.Second || d < -10*time.Second:
				t.Fatalf("message %d: off by %s", i, d)
			}
		}
		if got := float64(n) / total; math.Abs(got-late) > 0.02 {
			t.Errorf("LateShare %.2f: got %.3f", late, got)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Zones != 1000 || c.ZipfS != 1.1 || c.IPsPerZone != 5000 || c.IPv6Share != 0.2 ||
		c.LateShare != 0 || c.BadShare != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.End.Sub(c.Start) != time.Hour || c.End.Location() != time.UTC || c.End.Second() != 0 {
		t.Fatalf("default window %s..%s", c.Start, c.End)
	}
	if c := (Config{IPv6Share: -1}).WithDefaults(); c.IPv6Share != 0 {
		t.Fatalf("IPv6Share -1 => %v", c.IPv6Share)
	}
	g := New(Config{Seed: 1, IPv6Share: -1, Start: testStart, End: testEnd}, 2000)
	_, vals := collect(g)
	for _, v := range vals {
		e, err := decodeStrict(v, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if e.IP.Is6() {
			t.Fatalf("IPv6 with IPv6Share -1: %s", v)
		}
	}
}

func TestTimestampFormat(t *testing.T) {
	g := New(testConfig(1), 0)
	for _, ms := range []int64{0, 1, 999, 1000, -1, -1001, 86_399_999, 1_795_635_776_123,
		time.Date(2000, 2, 29, 23, 59, 59, 999e6, time.UTC).UnixMilli()} {
		got := string(g.appendTS(nil, ms))
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
		if got != want {
			t.Errorf("appendTS(%d) = %s, want %s", ms, got, want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	cfg := testConfig(1)
	cfg.BadShare = 0.1
	cfg.LateShare = 0.1
	g := New(cfg, 1<<30)
	k := make([]byte, 0, 64)
	v := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(10000, func() {
		k, v, _ = g.Next(k[:0], v[:0])
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocs per message", allocs)
	}
}

func BenchmarkNext(b *testing.B) {
	cfg := testConfig(1)
	cfg.LateShare = 0.01
	cfg.BadShare = 0.001
	const total = 10_000_000
	g := New(cfg, total)
	k := make([]byte, 0, 64)
	v := make([]byte, 0, 1024)
	var n, size int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var ok bool
		k, v, ok = g.Next(k[:0], v[:0])
		if !ok {
			b.StopTimer()
			g = New(cfg, total)
			b.StartTimer()
			k, v, _ = g.Next(k[:0], v[:0])
		}
		n++
		size += len(v)
	}
	sec := b.Elapsed().Seconds()
	if sec > 0 {
		b.ReportMetric(float64(n)/sec, "msgs/s")
	}
	b.ReportMetric(float64(size)/float64(max(n, 1)), "B/msg")
}
