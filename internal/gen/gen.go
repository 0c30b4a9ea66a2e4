package gen

import (
	"math"
	"math/bits"
	"strconv"
	"time"
)

// Config parameterises a Generator. Zero fields take the defaults documented
// per field; see WithDefaults.
type Config struct {
	// Seed makes the output deterministic: the same Config (with explicit
	// Start and End) gives the same byte-for-byte sequence.
	Seed int64
	// Zones is the number of zones; ids are 1..Zones. Default 1000.
	Zones int
	// ZipfS is the Zipf exponent of zone popularity; zone 1 is the busiest.
	// Default (when <= 0) 1.1.
	ZipfS float64
	// IPsPerZone is the upper bound of a zone's client pool (zone 1's pool);
	// less popular zones have smaller pools. Default 5000.
	IPsPerZone int
	// IPv6Share is the share of IPv6 clients. Default (when 0) 0.2; a
	// negative value means no IPv6 clients.
	IPv6Share float64
	// Start and End bound the in-order event times, [Start, End), UTC.
	// Zero End: now truncated to the minute. Zero Start: End - 1h. Zero
	// values make the output depend on the wall clock.
	Start, End time.Time
	// LateShare is the share of events whose ts is 1 to 6 hours before the
	// in-order time. Default 0.
	LateShare float64
	// BadShare is the share of malformed messages. Default 0.
	BadShare float64
	// Format is the message format, one of Formats: "json" (the default)
	// or "capnp" (Cap'n Proto, loader/schema/event.capnp). The same Config
	// gives the same events and the same malformed kinds in either format.
	Format string
}

// WithDefaults returns c with zero (or out-of-range) fields replaced by
// their defaults and shares clamped to [0, 1]. Start and End are UTC.
func (c Config) WithDefaults() Config {
	if c.Zones <= 0 {
		c.Zones = 1000
	}
	if c.ZipfS <= 0 || math.IsNaN(c.ZipfS) || math.IsInf(c.ZipfS, 0) {
		c.ZipfS = 1.1
	}
	if c.IPsPerZone <= 0 {
		c.IPsPerZone = 5000
	}
	switch {
	case c.IPv6Share == 0:
		c.IPv6Share = 0.2
	case c.IPv6Share < 0:
		c.IPv6Share = 0
	}
	c.IPv6Share = clamp01(c.IPv6Share)
	c.LateShare = clamp01(c.LateShare)
	c.BadShare = clamp01(c.BadShare)
	if c.End.IsZero() {
		c.End = time.Now().Truncate(time.Minute)
	}
	if c.Start.IsZero() {
		c.Start = c.End.Add(-time.Hour)
	}
	c.Start = c.Start.UTC()
	c.End = c.End.UTC()
	if c.Format == "" {
		c.Format = "json"
	}
	return c
}

func clamp01(x float64) float64 {
	if !(x > 0) { // also NaN
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// BadKinds names the kinds of malformed messages, in the order the
// generator cycles through them.
var BadKinds = []string{
	"not json",
	"truncated json",
	"missing zone_id",
	"zone_id as string",
	"bad ip",
	"status 1000",
	"invalid utf-8",
	"empty message",
	"trailing garbage",
	"negative bytes",
	"nul in browser",
}

const (
	badNone = iota
	badNotJSON
	badTruncated
	badMissingZone
	badZoneString
	badIP
	badStatus
	badUTF8
	badEmpty
	badTrailing
	badNegBytes
	badNUL
	numBad = badNUL
)

// Generator produces a fixed number of messages. It is not safe for
// concurrent use.
type Generator struct {
	cfg   Config
	total int
	n     int // messages emitted
	bad   int // malformed messages emitted
	r     rng
	salt  uint64

	startMs int64
	spanMs  uint64

	zones    alias
	poolSize []int32
	home     []uint8

	// timestamp cache: "YYYY-MM-DDT" for day tsDay
	tsDay    int64
	tsPrefix []byte

	capnp    bool   // Format "capnp"
	capnpBuf []byte // the segment of the Cap'n Proto message being built
}

// New returns a generator of total messages for cfg (defaults applied).
// In-order event times are spread evenly over [Start, End) across total.
// It panics if cfg.Format is not one of Formats.
func New(cfg Config, total int) *Generator {
	cfg = cfg.WithDefaults()
	if !validFormat(cfg.Format) {
		panic("gen: unknown format " + strconv.Quote(cfg.Format))
	}
	if total < 0 {
		total = 0
	}
	g := &Generator{
		cfg:      cfg,
		total:    total,
		salt:     mix64(uint64(cfg.Seed) ^ 0x5eed5eed5eed5eed),
		startMs:  cfg.Start.UnixMilli(),
		tsDay:    math.MinInt64,
		tsPrefix: make([]byte, 0, 16),
		capnp:    cfg.Format == "capnp",
	}
	g.r.s = mix64(uint64(cfg.Seed))
	if span := cfg.End.UnixMilli() - g.startMs; span > 0 {
		g.spanMs = uint64(span)
	}

	w := make([]float64, cfg.Zones)
	g.poolSize = make([]int32, cfg.Zones)
	g.home = make([]uint8, cfg.Zones)
	for i := range w {
		k := float64(i + 1)
		w[i] = math.Pow(k, -cfg.ZipfS)
		p := int(math.Round(float64(cfg.IPsPerZone) / math.Sqrt(k)))
		p = max(p, min(8, cfg.IPsPerZone), 1)
		if p > math.MaxInt32 {
			p = math.MaxInt32
		}
		g.poolSize[i] = int32(p)
		g.home[i] = uint8(countryMix.sample(mix64(g.salt ^ uint64(i+1)*0x9e3779b97f4a7c15)))
	}
	g.zones = newAlias(w)
	return g
}

// Malformed returns how many malformed messages were emitted so far.
func (g *Generator) Malformed() int { return g.bad }

// Emitted returns how many messages were emitted so far.
func (g *Generator) Emitted() int { return g.n }

// Config returns the effective configuration (defaults applied).
func (g *Generator) Config() Config { return g.cfg }

// event holds one event's fields before serialisation.
type event struct {
	ms       int64
	zone     int
	ipv6     bool
	ipHash   uint64
	country  uint8
	colo     uint8
	method   uint8
	status   int
	ct       uint8
	bytes    int64
	cache    uint8
	ssl      uint8
	ipClass  uint8
	threat   uint8
	pageView bool
	browser  uint8
}

// Next appends the next message's key and value to key and value (pass
// buf[:0] to reuse a buffer) and returns the extended slices. After total
// messages it returns key, value, false.
func (g *Generator) Next(key, value []byte) (k, v []byte, ok bool) {
	if g.n >= g.total {
		return key, value, false
	}
	i := g.n
	g.n++
	r := &g.r

	kind := badNone
	if g.cfg.BadShare > 0 && r.float() < g.cfg.BadShare {
		kind = 1 + g.bad%numBad
		g.bad++
	}

	var e event

	// Time: even spread, jitter, maybe late.
	hi, lo := bits.Mul64(g.spanMs, uint64(i))
	off, _ := bits.Div64(hi, lo, uint64(g.total)) // hi < total since i < total
	e.ms = g.startMs + int64(off) + int64(r.intn(5001)) - 2500
	if g.cfg.LateShare > 0 && r.float() < g.cfg.LateShare {
		e.ms -= 3_600_000 + int64(r.intn(5*3_600_000+1))
	}

	// Zone and client.
	e.zone = g.zones.sample(r.next()) + 1
	pool := uint64(g.poolSize[e.zone-1])
	u := r.float()
	ci := uint64(u * u * u * float64(pool))
	if ci >= pool {
		ci = pool - 1
	}
	h := mix64(g.salt ^ uint64(e.zone)<<32 ^ ci)
	e.ipHash = h
	h = mix64(h)
	e.ipv6 = float64(h>>11)*0x1p-53 < g.cfg.IPv6Share
	h = mix64(h)
	if h&0xff < 64 { // 25% of a zone's clients come from its home country
		e.country = g.home[e.zone-1]
	} else {
		e.country = uint8(countryMix.sample(mix64(h)))
	}
	h = mix64(h)
	e.ipClass = uint8(ipClassMix.sample(h))
	h = mix64(h)
	switch ipClasses[e.ipClass] {
	case "searchEngine", "monitoringService":
		e.browser = browserBot
	default:
		e.browser = uint8(browserMix.sample(h))
	}
	h = mix64(h)
	cl := countryColos[e.country]
	e.colo = cl[h%uint64(len(cl))]
	if r.next()&0xff < 8 { // ~3%: routed to some other colo
		e.colo = uint8(r.intn(uint64(len(colos))))
	}

	// Request.
	e.method = uint8(methodMix.sample(r.next()))
	threatP := 0.008
	switch ipClasses[e.ipClass] {
	case "badHost", "tor", "greylist":
		threatP = 0.08
	}
	if r.float() < threatP {
		e.threat = uint8(threatMix.sample(r.next())) + 1
	}
	if e.threat != 0 && r.float() < 0.8 {
		e.status = 403
	} else {
		e.status = statuses[statusMix.sample(r.next())]
	}
	m := methods[e.method]
	write := m == "POST" || m == "PUT" || m == "DELETE"
	if write && (e.status == 304 || e.status == 206) {
		e.status = 200
	}
	e.ct = uint8(ctMix.sample(r.next()))
	switch e.status {
	case 301, 302, 403, 404, 500, 502, 503:
		e.ct = ctHTML
	}

	// Bytes.
	switch {
	case e.status == 304 || m == "HEAD" || m == "OPTIONS":
		e.bytes = 0
	case e.status == 301 || e.status == 302:
		e.bytes = 100 + int64(r.intn(300))
	case e.status >= 400:
		e.bytes = 500 + int64(r.intn(2500))
	default:
		c := &ctSizes[e.ct]
		b := math.Exp(c.mu + c.sigma*r.norm())
		b = math.Max(c.min, math.Min(b, c.max))
		e.bytes = int64(b)
		if e.status == 206 {
			e.bytes /= int64(1 + r.intn(4))
		}
	}

	// Cache.
	switch {
	case write || m == "OPTIONS" || e.status >= 500:
		e.cache = cacheDynamic
	case e.status == 304:
		e.cache = cacheRevalidated
		if r.next()&1 == 0 {
			e.cache = cacheHit
		}
	case e.ct == ctJSON && r.next()&1 == 0:
		e.cache = cacheDynamic
	default:
		e.cache = uint8(cacheMix.sample(r.next()))
	}
	e.ssl = uint8(sslMix.sample(r.next()))
	// Page views: html 200s for GET (and form POST) by non-bots, ~70% overall.
	e.pageView = e.ct == ctHTML && e.status == 200 && (m == "GET" || m == "POST") &&
		e.browser != browserBot && r.float() < 0.76

	key = strconv.AppendInt(key, int64(e.zone), 10)
	if g.capnp {
		return key, g.appendCapnpMessage(value, &e, kind), true
	}
	switch kind {
	case badNone:
		value = g.appendEvent(value, &e, kind)
	case badNotJSON:
		value = append(value, notJSON[(g.bad/numBad)%len(notJSON)]...)
	case badEmpty:
		// nothing
	case badTruncated:
		n := len(value)
		value = g.appendEvent(value, &e, badNone)
		full := len(value) - n
		value = value[:n+1+int(r.intn(uint64(full-1)))] // keep 1..full-1 bytes
	case badTrailing:
		value = g.appendEvent(value, &e, badNone)
		value = append(value, trailing[(g.bad/numBad)%len(trailing)]...)
	default:
		value = g.appendEvent(value, &e, kind)
	}
	return key, value, true
}

var notJSON = []string{
	"this is not json",
	"<html><body>502 Bad Gateway</body></html>",
	"ts=2026-11-25T19:42:56Z zone_id=1 status=200",
	"{zone_id: 1, status: 200}",
}

var trailing = []string{" garbage", "}", ",{}", "{\"ts\":null}", "\x00"}

func (g *Generator) appendEvent(b []byte, e *event, kind int) []byte {
	b = append(b, `{"ts":"`...)
	b = g.appendTS(b, e.ms)
	b = append(b, '"')
	switch kind {
	case badMissingZone:
	case badZoneString:
		b = append(b, `,"zone_id":"`...)
		b = strconv.AppendInt(b, int64(e.zone), 10)
		b = append(b, '"')
	default:
		b = append(b, `,"zone_id":`...)
		b = strconv.AppendInt(b, int64(e.zone), 10)
	}
	b = append(b, `,"client_ip":"`...)
	if kind == badIP {
		b = append(b, badIPs[e.ipHash%uint64(len(badIPs))]...)
	} else {
		b = appendIP(b, e.ipHash, e.ipv6)
	}
	b = append(b, `","country":"`...)
	b = append(b, countries[e.country]...)
	b = append(b, `","colo":"`...)
	b = append(b, colos[e.colo]...)
	b = append(b, `","method":"`...)
	b = append(b, methods[e.method]...)
	b = append(b, `","status":`...)
	if kind == badStatus {
		b = append(b, "1000"...)
	} else {
		b = strconv.AppendInt(b, int64(e.status), 10)
	}
	b = append(b, `,"content_type":"`...)
	b = append(b, contentTypes[e.ct]...)
	b = append(b, `","bytes":`...)
	if kind == badNegBytes {
		b = append(b, '-')
		b = strconv.AppendInt(b, e.bytes+1, 10)
	} else {
		b = strconv.AppendInt(b, e.bytes, 10)
	}
	b = append(b, `,"cache_status":"`...)
	b = append(b, cacheStatuses[e.cache]...)
	b = append(b, `","ssl_protocol":"`...)
	b = append(b, sslProtocols[e.ssl]...)
	b = append(b, `","ip_class":"`...)
	b = append(b, ipClasses[e.ipClass]...)
	b = append(b, `","threat":"`...)
	b = append(b, threats[e.threat]...)
	if e.pageView {
		b = append(b, `","page_view":true,"browser":"`...)
	} else {
		b = append(b, `","page_view":false,"browser":"`...)
	}
	br := browsers[e.browser]
	switch kind {
	case badUTF8:
		b = append(b, br[:2]...)
		b = append(b, 0xff, 0xfe)
		b = append(b, br[2:]...)
	case badNUL:
		b = append(b, br...)
		b = append(b, `\u0000`...)
	default:
		b = append(b, br...)
	}
	return append(b, `"}`...)
}

var badIPs = []string{"999.12.3.4", "10.0.0", "2001:db8::zz", "not-an-ip", "", "10.0.0.256", "::ffff:1.2.3"}

// appendTS appends ms (Unix milliseconds) as YYYY-MM-DDTHH:MM:SS.mmmZ.
func (g *Generator) appendTS(b []byte, ms int64) []byte {
	sec := floorDiv(ms, 1000)
	msec := int(ms - sec*1000)
	day := floorDiv(sec, 86400)
	sod := int(sec - day*86400)
	if day != g.tsDay {
		g.tsDay = day
		g.tsPrefix = time.Unix(day*86400, 0).UTC().AppendFormat(g.tsPrefix[:0], "2006-01-02T")
	}
	b = append(b, g.tsPrefix...)
	hh, mm, ss := sod/3600, sod/60%60, sod%60
	return append(b,
		byte('0'+hh/10), byte('0'+hh%10), ':',
		byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10), '.',
		byte('0'+msec/100), byte('0'+msec/10%10), byte('0'+msec%10), 'Z')
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// appendIP appends a client address derived from h: IPv4 in private or
// benchmarking ranges, IPv6 in 2001:db8::/32 (all 8 groups written).
func appendIP(b []byte, h uint64, v6 bool) []byte {
	if v6 {
		b = append(b, "2001:db8"...)
		h2 := mix64(h)
		for _, x := range [6]uint64{h >> 48, h >> 32, h >> 16, h, h2 >> 48, h2 >> 32} {
			b = append(b, ':')
			b = strconv.AppendUint(b, x&0xffff, 16)
		}
		return b
	}
	a, c, d := (h>>8)&0xff, (h>>16)&0xff, (h>>24)&0xff
	switch h >> 62 {
	case 0:
		b = append(b, "10."...)
	case 1:
		b = append(b, "100."...)
		a = 64 + a&63
	case 2:
		b = append(b, "172."...)
		a = 16 + a&15
	default:
		b = append(b, "198."...)
		a = 18 + a&1
	}
	b = strconv.AppendUint(b, a, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, c, 10)
	b = append(b, '.')
	return strconv.AppendUint(b, d, 10)
}

// ---- randomness ----

// rng is wyrand: tiny, fast, and fully specified here so the output never
// depends on the standard library's generators.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) * 0x1p-53 }

// intn returns a uniform integer in [0, n), n > 0.
func (r *rng) intn(n uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), n)
	return hi
}

// norm returns an approximately standard normal value (Irwin–Hall sum of
// four 16-bit uniforms, rescaled), bounded to ±3.46.
func (r *rng) norm() float64 {
	x := r.next()
	s := (x & 0xffff) + (x >> 16 & 0xffff) + (x >> 32 & 0xffff) + (x >> 48)
	return (float64(s)*(1.0/65536) - 2) * math.Sqrt(3)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// alias is a Walker/Vose alias table: O(1) sampling from a discrete
// distribution using one 64-bit random word.
type alias struct {
	prob  []uint64 // threshold scaled to 2^32
	alias []uint32
}

func newAlias(w []float64) alias {
	n := len(w)
	a := alias{prob: make([]uint64, n), alias: make([]uint32, n)}
	var sum float64
	for _, x := range w {
		sum += x
	}
	p := make([]float64, n)
	small := make([]int, 0, n)
	large := make([]int, 0, n)
	for i, x := range w {
		p[i] = x * float64(n) / sum
		if p[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s := small[len(small)-1]
		small = small[:len(small)-1]
		l := large[len(large)-1]
		a.prob[s] = uint64(p[s] * (1 << 32))
		a.alias[s] = uint32(l)
		p[l] -= 1 - p[s]
		if p[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range large {
		a.prob[i] = 1 << 32
		a.alias[i] = uint32(i)
	}
	for _, i := range small { // rounding leftovers
		a.prob[i] = 1 << 32
		a.alias[i] = uint32(i)
	}
	return a
}

func (a *alias) sample(u uint64) int {
	i := int((u >> 32) * uint64(len(a.prob)) >> 32)
	if u&0xffffffff < a.prob[i] {
		return i
	}
	return int(a.alias[i])
}

// ---- vocabularies ----

type weighted struct {
	name string
	w    float64
}

func names(ws []weighted) []string {
	s := make([]string, len(ws))
	for i, x := range ws {
		s[i] = x.name
	}
	return s
}

func mixOf(ws []weighted) alias {
	w := make([]float64, len(ws))
	for i, x := range ws {
		w[i] = x.w
	}
	return newAlias(w)
}

func index(list []string, name string) uint8 {
	for i, s := range list {
		if s == name {
			return uint8(i)
		}
	}
	panic("gen: unknown name " + name)
}

var countryW = []weighted{
	{"US", 30}, {"DE", 7}, {"GB", 6}, {"IN", 5}, {"FR", 4.5}, {"BR", 4},
	{"JP", 4}, {"CN", 4}, {"CA", 3}, {"NL", 2.5}, {"RU", 2.5}, {"AU", 2},
	{"IT", 2}, {"ES", 2}, {"KR", 2}, {"MX", 2}, {"ID", 2}, {"PL", 1.5},
	{"TR", 1.5}, {"SE", 1}, {"SG", 1}, {"HK", 1}, {"ZA", 1}, {"AR", 1},
	{"UA", 1}, {"XX", 1},
}

var colos = []string{
	"SFO", "LAX", "ORD", "IAD", "EWR", "DFW", "SEA", "AMS", "FRA", "LHR",
	"CDG", "NRT", "SIN", "SYD", "GRU", "BOM", "HKG", "ICN", "MAD", "WAW",
}

var countryColoNames = map[string][]string{
	"US": {"SFO", "LAX", "ORD", "IAD", "EWR", "DFW", "SEA"},
	"CA": {"SEA", "ORD", "EWR"},
	"MX": {"DFW", "LAX"},
	"BR": {"GRU"}, "AR": {"GRU"},
	"GB": {"LHR"}, "DE": {"FRA"}, "FR": {"CDG"}, "NL": {"AMS"},
	"ES": {"MAD"}, "IT": {"FRA", "CDG"}, "PL": {"WAW"}, "UA": {"WAW"},
	"RU": {"WAW", "FRA"}, "SE": {"AMS", "FRA"}, "TR": {"FRA"},
	"ZA": {"LHR", "AMS"},
	"IN": {"BOM"}, "JP": {"NRT"}, "CN": {"HKG"}, "HK": {"HKG"},
	"KR": {"ICN"}, "SG": {"SIN"}, "ID": {"SIN"}, "AU": {"SYD"},
	"XX": nil, // any
}

var methodW = []weighted{
	{"GET", 85}, {"POST", 10}, {"HEAD", 2}, {"OPTIONS", 1.5}, {"PUT", 1}, {"DELETE", 0.5},
}

var statusW = []struct {
	code int
	w    float64
}{
	{200, 80}, {304, 8}, {404, 4}, {301, 1.5}, {302, 1.5}, {206, 1.5},
	{403, 1}, {500, 0.6}, {502, 0.4}, {503, 0.5},
}

type sizeModel struct{ mu, sigma, min, max float64 }

var ctW = []struct {
	name string
	w    float64
	size sizeModel // log-normal: median e^mu bytes
}{
	{"html", 18, sizeModel{math.Log(15000), 0.6, 200, 2 << 20}},
	{"css", 10, sizeModel{math.Log(20000), 0.8, 100, 1 << 20}},
	{"js", 20, sizeModel{math.Log(60000), 0.9, 100, 4 << 20}},
	{"json", 14, sizeModel{math.Log(2500), 0.45, 2, 1 << 20}},
	{"png", 9, sizeModel{math.Log(60000), 1.0, 100, 8 << 20}},
	{"jpeg", 10, sizeModel{math.Log(90000), 0.9, 500, 8 << 20}},
	{"gif", 2, sizeModel{math.Log(30000), 1.0, 43, 8 << 20}},
	{"webp", 6, sizeModel{math.Log(40000), 0.9, 100, 8 << 20}},
	{"svg", 3, sizeModel{math.Log(4000), 0.7, 100, 1 << 20}},
	{"woff2", 3, sizeModel{math.Log(35000), 0.3, 1000, 1 << 20}},
	{"plain", 2, sizeModel{math.Log(1000), 1.0, 1, 1 << 20}},
	{"octet-stream", 1.5, sizeModel{math.Log(500000), 1.5, 1, 1 << 30}},
	{"mp4", 1.5, sizeModel{math.Log(4 << 20), 0.8, 10000, 1 << 30}},
}

var cacheW = []weighted{
	{"hit", 60}, {"miss", 25}, {"dynamic", 7}, {"expired", 4},
	{"revalidated", 2}, {"stale", 1}, {"bypass", 1},
}

var sslW = []weighted{{"TLSv1.3", 70}, {"TLSv1.2", 25}, {"none", 5}}

var ipClassW = []weighted{
	{"clean", 90}, {"badHost", 2.5}, {"searchEngine", 2}, {"noRecord", 2},
	{"greylist", 1.5}, {"whitelist", 1}, {"monitoringService", 0.5}, {"tor", 0.5},
}

var threatW = []weighted{
	{"badBrowser", 25}, {"sqli", 15}, {"xss", 12}, {"bruteForce", 15},
	{"ddos", 10}, {"hotlink", 13}, {"spam", 10},
}

var browserW = []weighted{
	{"Chrome", 60}, {"Safari", 18}, {"Edge", 7}, {"Firefox", 5},
	{"Samsung", 3}, {"Opera", 2}, {"bot", 3}, {"other", 2},
}

var (
	countries    = names(countryW)
	countryMix   = mixOf(countryW)
	countryColos = func() [][]uint8 {
		all := make([]uint8, len(colos))
		for i := range all {
			all[i] = uint8(i)
		}
		out := make([][]uint8, len(countries))
		for i, c := range countries {
			cl, ok := countryColoNames[c]
			if !ok {
				panic("gen: no colos for " + c)
			}
			if len(cl) == 0 {
				out[i] = all
				continue
			}
			for _, n := range cl {
				out[i] = append(out[i], index(colos, n))
			}
		}
		return out
	}()

	methods   = names(methodW)
	methodMix = mixOf(methodW)

	statuses  []int
	statusMix alias

	contentTypes []string
	ctSizes      []sizeModel
	ctMix        alias
	ctHTML       uint8
	ctJSON       uint8

	cacheStatuses    = names(cacheW)
	cacheMix         = mixOf(cacheW)
	cacheDynamic     = index(cacheStatuses, "dynamic")
	cacheHit         = index(cacheStatuses, "hit")
	cacheRevalidated = index(cacheStatuses, "revalidated")

	sslProtocols = names(sslW)
	sslMix       = mixOf(sslW)

	ipClasses  = names(ipClassW)
	ipClassMix = mixOf(ipClassW)

	threats   = append([]string{""}, names(threatW)...) // 0 = none
	threatMix = mixOf(threatW)

	browsers   = names(browserW)
	browserMix = mixOf(browserW)
	browserBot = index(browsers, "bot")
)

func init() {
	w := make([]float64, len(statusW))
	for i, s := range statusW {
		statuses = append(statuses, s.code)
		w[i] = s.w
	}
	statusMix = newAlias(w)

	w = make([]float64, len(ctW))
	for i, c := range ctW {
		contentTypes = append(contentTypes, c.name)
		ctSizes = append(ctSizes, c.size)
		w[i] = c.w
	}
	ctMix = newAlias(w)
	ctHTML = index(contentTypes, "html")
	ctJSON = index(contentTypes, "json")
}
