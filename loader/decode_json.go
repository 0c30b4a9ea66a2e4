package loader

// A hand-written, strict, allocation-free (on the happy path) JSON decoder
// for one access-log event. See DecodeJSON for the accepted schema.
//
// Error precedence, so that the Reason of a message is deterministic:
//
//  1. "empty message", "invalid UTF-8", "not a JSON object";
//  2. structural errors, reported as soon as they are met: "invalid JSON at
//     offset N", "nesting too deep", "invalid string escape", then
//     "trailing data" after the object;
//  3. the first field-level error in document order: "bad <field>" or
//     "duplicate field: <field>";
//  4. "missing field: <field>", the first missing field in schema order.

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// maxJSONDepth is the deepest nesting of objects and arrays accepted; the
// event object itself is depth 1.
const maxJSONDepth = 64

// Field numbers, in schema order (the order used for "missing field").
const (
	fTS = iota
	fZoneID
	fClientIP
	fCountry
	fColo
	fMethod
	fStatus
	fContentType
	fBytes
	fCacheStatus
	fSSLProtocol
	fIPClass
	fThreat
	fPageView
	fBrowser
	numFields
)

const allFields = 1<<numFields - 1

var fieldNames = [numFields]string{
	"ts", "zone_id", "client_ip", "country", "colo", "method", "status",
	"content_type", "bytes", "cache_status", "ssl_protocol", "ip_class",
	"threat", "page_view", "browser",
}

var badReasons, dupReasons, missingReasons [numFields]string

// quotedKeys[f] is `"<name of f>":`; quotedKeys[numFields] matches nothing.
var quotedKeys [numFields + 1]string

func init() {
	quotedKeys[numFields] = "\x00"
	for i, n := range fieldNames {
		quotedKeys[i] = `"` + n + `":`
		badReasons[i] = "bad " + n
		dupReasons[i] = "duplicate field: " + n
		missingReasons[i] = "missing field: " + n
	}
}

// lookupField maps a key to its field number, or -1 for unknown keys.
// Keys are matched exactly (case-sensitively). The switch on string(key)
// does not allocate.
func lookupField(key []byte) int {
	switch string(key) {
	case "ts":
		return fTS
	case "zone_id":
		return fZoneID
	case "client_ip":
		return fClientIP
	case "country":
		return fCountry
	case "colo":
		return fColo
	case "method":
		return fMethod
	case "status":
		return fStatus
	case "content_type":
		return fContentType
	case "bytes":
		return fBytes
	case "cache_status":
		return fCacheStatus
	case "ssl_protocol":
		return fSSLProtocol
	case "ip_class":
		return fIPClass
	case "threat":
		return fThreat
	case "page_view":
		return fPageView
	case "browser":
		return fBrowser
	}
	return -1
}

// Reasons that are not tied to a field.
const (
	reasonEmpty     = "empty message"
	reasonUTF8      = "invalid UTF-8"
	reasonNotObject = "not a JSON object"
	reasonTrailing  = "trailing data"
	reasonDepth     = "nesting too deep"
	reasonEscape    = "invalid string escape"
)

// JSONDecoder decodes JSON events like DecodeJSON, keeping per-decoder caches
// (interned label strings, a scratch buffer) across calls so that repeated
// label values do not allocate. The zero value is ready to use. A JSONDecoder
// is not safe for concurrent use; give each goroutine its own.
type JSONDecoder struct {
	scratch []byte               // unescaping buffer
	cache   *[internSlots]string // direct-mapped intern cache, allocated lazily
}

const (
	internBits  = 10
	internSlots = 1 << internBits
	// maxScratchRetain bounds the scratch buffer kept between calls, so a
	// single huge escaped key does not pin memory forever.
	maxScratchRetain = 4 << 10
)

var decoderPool = sync.Pool{New: func() any { return new(JSONDecoder) }}

// DecodeJSON parses one Kafka message value into ev (overwriting every field).
// On bad input it returns a *DecodeError with a short stable Reason, and ev is
// reset to the zero Event. DecodeJSON is safe for concurrent use; it borrows a
// JSONDecoder from a sync.Pool so that label interning still works.
//
// The input must be valid UTF-8 holding exactly one JSON object (optionally
// surrounded by JSON whitespace) with all 15 event fields, none null. Keys
// match exactly (case-sensitively, after unescaping); unknown fields are
// skipped but must be valid JSON, nested at most 64 deep (the event object is
// depth 1); a known key given twice is an error. Escapes that leave an
// unpaired UTF-16 surrogate are rejected. Field rules:
//
//   - ts: RFC 3339 string, optional fraction (truncated to ns), "Z" or ±hh:mm
//     (hh <= 23), "T"/"Z" in either case; stored in UTC.
//   - zone_id (>= 1), status (100..599), bytes (0..MaxBytes): plain integer
//     tokens only, no sign, fraction or exponent.
//   - client_ip: as netip.ParseAddr, no zone, IPv4-mapped IPv6 unmapped.
//   - country: two ASCII letters/digits, upper-cased.
//   - labels: 1..MaxLabel bytes, no byte < 0x20 or 0x7f; threat may be
//     empty; an empty ssl_protocol becomes "none".
//   - page_view: true or false.
func DecodeJSON(data []byte, ev *Event) error {
	d := decoderPool.Get().(*JSONDecoder)
	err := d.Decode(data, ev)
	decoderPool.Put(d)
	return err
}

// Decode is DecodeJSON using d's caches.
func (d *JSONDecoder) Decode(data []byte, ev *Event) error {
	p := jsonParser{data: data, d: d}
	reason := p.decode(ev)
	if cap(d.scratch) > maxScratchRetain {
		d.scratch = nil
	}
	if reason == "" {
		return nil
	}
	*ev = Event{}
	return &DecodeError{Reason: reason}
}

// Parser error kinds (structural errors abort the parse immediately).
const (
	errNone = iota
	errSyntax
	errDepth
	errEscape
)

type jsonParser struct {
	data    []byte
	d       *JSONDecoder
	errKind int
	errOff  int
	// first field-level error, in document order
	fieldErr    int // field number
	fieldDup    bool
	hasFieldErr bool
}

// fail records a structural error and returns -1, the "stop" position.
func (p *jsonParser) fail(kind, off int) int {
	p.errKind = kind
	p.errOff = off
	return -1
}

func (p *jsonParser) syntax(off int) int { return p.fail(errSyntax, off) }

func (p *jsonParser) bad(f int) {
	if !p.hasFieldErr {
		p.hasFieldErr, p.fieldErr = true, f
	}
}

func (p *jsonParser) dup(f int) {
	if !p.hasFieldErr {
		p.hasFieldErr, p.fieldErr, p.fieldDup = true, f, true
	}
}

func (p *jsonParser) structuralReason() string {
	switch p.errKind {
	case errDepth:
		return reasonDepth
	case errEscape:
		return reasonEscape
	}
	return "invalid JSON at offset " + strconv.Itoa(p.errOff)
}

// Byte classes.
var (
	isSpace [256]bool // JSON whitespace
	strSafe [256]bool // may appear unescaped in a string and is not '"' or '\\'
	// alnumIndex maps [0-9A-Za-z] to 0..35 (case-insensitive), others to -1.
	alnumIndex [256]int8
	// countryCodes holds every two-character code [0-9A-Z]{2}, concatenated,
	// so that Country never allocates.
	countryCodes string
)

func init() {
	for _, c := range " \t\n\r" {
		isSpace[c] = true
	}
	for c := 0x20; c < 256; c++ {
		strSafe[c] = c != '"' && c != '\\'
	}
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for i := range alnumIndex {
		alnumIndex[i] = -1
	}
	b := make([]byte, 0, 2*len(alnum)*len(alnum))
	for i := 0; i < len(alnum); i++ {
		alnumIndex[alnum[i]] = int8(i)
		if c := alnum[i]; c >= 'A' && c <= 'Z' {
			alnumIndex[c+'a'-'A'] = int8(i)
		}
		for j := 0; j < len(alnum); j++ {
			b = append(b, alnum[i], alnum[j])
		}
	}
	countryCodes = string(b)
}

func (p *jsonParser) skipSpace(i int) int {
	for i < len(p.data) && isSpace[p.data[i]] {
		i++
	}
	return i
}

// decode parses the event; it returns "" on success or the Reason.
func (p *jsonParser) decode(ev *Event) string {
	data := p.data
	if len(data) == 0 {
		return reasonEmpty
	}
	if !utf8.Valid(data) {
		return reasonUTF8
	}
	i := p.skipSpace(0)
	if i == len(data) {
		return reasonEmpty
	}
	if data[i] != '{' {
		return reasonNotObject
	}
	i = p.skipSpace(i + 1)
	var seen uint32
	next := 0 // the field expected next when fields come in schema order
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				p.syntax(i)
				return p.structuralReason()
			}
			// Fast path: the key is the next field in schema order, written
			// plainly and directly followed by ':'.
			var f int
			if qk := quotedKeys[next]; len(data)-i >= len(qk) && string(data[i:i+len(qk)]) == qk {
				f = next
				i += len(qk) - 1
			} else {
				var key []byte
				key, i = p.scanString(i+1, true)
				if i < 0 {
					return p.structuralReason()
				}
				f = lookupField(key)
			}
			if f >= 0 {
				next = f + 1
			}
			if i >= len(data) || data[i] != ':' {
				if i = p.skipSpace(i); i >= len(data) || data[i] != ':' {
					p.syntax(i)
					return p.structuralReason()
				}
			}
			if i++; i >= len(data) || isSpace[data[i]] {
				if i = p.skipSpace(i); i >= len(data) {
					p.syntax(i)
					return p.structuralReason()
				}
			}
			switch {
			case f < 0:
				i = p.skipValue(i, 1)
			case seen&(1<<f) != 0:
				p.dup(f)
				i = p.skipValue(i, 1)
			default:
				seen |= 1 << f
				i = p.parseField(f, i, ev)
			}
			if i < 0 {
				return p.structuralReason()
			}
			if i >= len(data) || isSpace[data[i]] {
				if i = p.skipSpace(i); i >= len(data) {
					p.syntax(i)
					return p.structuralReason()
				}
			}
			if data[i] == ',' {
				if i++; i < len(data) && isSpace[data[i]] {
					i = p.skipSpace(i)
				}
				continue
			}
			if data[i] == '}' {
				i++
				break
			}
			p.syntax(i)
			return p.structuralReason()
		}
	}
	if p.skipSpace(i) != len(data) {
		return reasonTrailing
	}
	if p.hasFieldErr {
		if p.fieldDup {
			return dupReasons[p.fieldErr]
		}
		return badReasons[p.fieldErr]
	}
	if seen != allFields {
		return missingReasons[bits.TrailingZeros32(^seen)]
	}
	return ""
}

// parseField parses the value at data[i] (i < len(data)) of known field f
// into ev and returns the position after it, or -1 on a structural error.
// A value of the wrong type or out of range records "bad <field>" and the
// value is still checked for syntax.
func (p *jsonParser) parseField(f, i int, ev *Event) int {
	data := p.data
	c := data[i]
	switch f {
	case fZoneID, fStatus, fBytes:
		if c != '-' && (c < '0' || c > '9') {
			p.bad(f)
			return p.skipValue(i, 1)
		}
		u, ok, next := p.scanNumber(i)
		if next < 0 {
			return next
		}
		switch f {
		case fZoneID:
			ok = ok && u >= 1 && u <= math.MaxInt64
			ev.ZoneID = int64(u)
		case fStatus:
			ok = ok && u >= 100 && u <= 599
			ev.Status = int16(u)
		case fBytes:
			ok = ok && u <= MaxBytes
			ev.Bytes = int64(u)
		}
		if !ok {
			p.bad(f)
		}
		return next
	case fPageView:
		if c == 't' && len(data)-i >= 4 && string(data[i:i+4]) == "true" {
			ev.PageView = true
			return i + 4
		}
		if c == 'f' && len(data)-i >= 5 && string(data[i:i+5]) == "false" {
			ev.PageView = false
			return i + 5
		}
		p.bad(f)
		return p.skipValue(i, 1)
	}

	// String fields.
	if c != '"' {
		p.bad(f)
		return p.skipValue(i, 1)
	}
	val, next := p.scanString(i+1, true)
	if next < 0 {
		return next
	}
	ok := true
	switch f {
	case fTS:
		ev.TS, ok = parseTimestamp(val)
	case fClientIP:
		ev.ClientIP, ok = parseIP(val)
	case fCountry:
		ok = len(val) == 2
		if ok {
			a, b := alnumIndex[val[0]], alnumIndex[val[1]]
			ok = a >= 0 && b >= 0
			if ok {
				k := 2 * (int(a)*36 + int(b))
				ev.Country = countryCodes[k : k+2]
			}
		}
	default: // labels
		min := 1
		if f == fThreat || f == fSSLProtocol {
			min = 0
		}
		ok = len(val) >= min && len(val) <= MaxLabel && validLabel(val)
		if ok {
			s := "none" // an empty ssl_protocol
			if len(val) > 0 || f != fSSLProtocol {
				s = p.d.intern(val)
			}
			setLabel(ev, f, s)
		}
	}
	if !ok {
		p.bad(f)
	}
	return next
}

// setLabel sets label field f of ev to s.
func setLabel(ev *Event, f int, s string) {
	switch f {
	case fColo:
		ev.Colo = s
	case fMethod:
		ev.Method = s
	case fContentType:
		ev.ContentType = s
	case fCacheStatus:
		ev.CacheStatus = s
	case fSSLProtocol:
		ev.SSLProtocol = s
	case fIPClass:
		ev.IPClass = s
	case fThreat:
		ev.Threat = s
	case fBrowser:
		ev.Browser = s
	}
}

// validLabel reports whether b has no control character (< 0x20) and no DEL.
func validLabel(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// intern returns b as a string, reusing an earlier identical string if the
// decoder's cache has one.
func (d *JSONDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.cache == nil {
		d.cache = new([internSlots]string)
	}
	slot := &d.cache[hashLabel(b)]
	if *slot == string(b) {
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}

// hashLabel hashes a non-empty b to a cache slot.
func hashLabel(b []byte) uint64 {
	n := len(b)
	var x uint64
	switch {
	case n >= 8:
		x = binary.LittleEndian.Uint64(b) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(b[n-8:]), 31)
		if n > 16 {
			x ^= bits.RotateLeft64(binary.LittleEndian.Uint64(b[n/2-4:]), 17)
		}
	case n >= 4:
		x = uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<32
	default:
		x = uint64(b[0]) | uint64(b[n/2])<<8 | uint64(b[n-1])<<16
	}
	x = (x ^ uint64(n)<<56) * 0x9E3779B97F4A7C15
	return x >> (64 - internBits)
}

// scanString scans a JSON string whose opening quote is at i-1 and returns
// the position after its closing quote. If unescape is set, it also returns
// the decoded contents: a subslice of the input when there are no escapes,
// otherwise a slice of the decoder's scratch buffer (valid until the next
// unescaping scan).
func (p *jsonParser) scanString(i int, unescape bool) ([]byte, int) {
	data := p.data
	start := i
	// Find the first '"', '\\' or control character, 8 bytes at a time.
	for i+8 <= len(data) {
		if m := specialMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			goto special
		}
		i += 8
	}
	for i < len(data) && strSafe[data[i]] {
		i++
	}
	if i >= len(data) {
		return nil, p.syntax(i)
	}
special:
	switch data[i] {
	case '"':
		return data[start:i], i + 1
	case '\\':
		return p.scanStringSlow(start, i, unescape)
	}
	return nil, p.syntax(i) // raw control character
}

// specialMask returns a mask with the high bit set in the first byte of x
// (little endian) that is '"', '\\' or less than 0x20, if any. Bytes above
// the first such byte may be flagged spuriously (borrow propagation); bytes
// >= 0x80 are never flagged.
func specialMask(x uint64) uint64 {
	const lsb = 0x0101010101010101
	const msb = 0x8080808080808080
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((x - lsb*0x20) | (q - lsb) | (b - lsb)) & ^x & msb
}

func (p *jsonParser) scanStringSlow(start, i int, unescape bool) ([]byte, int) {
	data := p.data
	var buf []byte
	if unescape {
		buf = append(p.d.scratch[:0], data[start:i]...)
	}
	for i < len(data) {
		c := data[i]
		if strSafe[c] {
			j := i + 1
			for j < len(data) && strSafe[data[j]] {
				j++
			}
			if unescape {
				buf = append(buf, data[i:j]...)
			}
			i = j
			continue
		}
		if c == '"' {
			if unescape {
				p.d.scratch = buf
			}
			return buf, i + 1
		}
		if c != '\\' {
			return nil, p.syntax(i) // raw control character
		}
		if i+1 >= len(data) {
			return nil, p.syntax(i + 1)
		}
		var r byte
		switch data[i+1] {
		case '"':
			r = '"'
		case '\\':
			r = '\\'
		case '/':
			r = '/'
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r1, bad := hex4(data, i+2)
			if bad >= 0 {
				return nil, p.syntax(bad)
			}
			i += 6
			switch {
			case r1 >= 0xD800 && r1 < 0xDC00: // high surrogate: need a low one
				if i >= len(data) || data[i] == '\\' && i+1 >= len(data) {
					return nil, p.syntax(len(data)) // truncated
				}
				if data[i] != '\\' || data[i+1] != 'u' {
					return nil, p.fail(errEscape, i)
				}
				r2, bad := hex4(data, i+2)
				if bad >= 0 {
					return nil, p.syntax(bad)
				}
				if r2 < 0xDC00 || r2 >= 0xE000 {
					return nil, p.fail(errEscape, i)
				}
				i += 6
				r1 = 0x10000 + (r1-0xD800)<<10 + (r2 - 0xDC00)
			case r1 >= 0xDC00 && r1 < 0xE000: // lone low surrogate
				return nil, p.fail(errEscape, i-6)
			}
			if unescape {
				buf = utf8.AppendRune(buf, rune(r1))
			}
			continue
		default:
			return nil, p.syntax(i + 1)
		}
		if unescape {
			buf = append(buf, r)
		}
		i += 2
	}
	return nil, p.syntax(i)
}

// hex4 decodes the four hex digits at data[i:]. It returns the value and -1,
// or the offset of the first bad (or missing) digit.
func hex4(data []byte, i int) (uint32, int) {
	var v uint32
	for k := i; k < i+4; k++ {
		if k >= len(data) {
			return 0, k
		}
		c := data[k]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, k
		}
		v = v<<4 | uint32(c)
	}
	return v, -1
}

// scanNumber scans the JSON number at data[i] (a '-' or a digit). ok reports
// whether it is a plain non-negative integer (no sign, fraction or exponent)
// no greater than math.MaxInt64; u is then its value.
func (p *jsonParser) scanNumber(i int) (u uint64, ok bool, next int) {
	data := p.data
	ok = true
	if data[i] == '-' {
		ok = false
		i++
	}
	if i >= len(data) {
		return 0, false, p.syntax(i)
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for ; i < len(data); i++ {
			c := data[i]
			if c < '0' || c > '9' {
				break
			}
			if u > math.MaxInt64/10 {
				ok = false // overflow; keep scanning
			} else {
				u = u*10 + uint64(c-'0')
			}
		}
	default:
		return 0, false, p.syntax(i)
	}
	if i < len(data) && data[i] == '.' {
		ok = false
		if i++; i >= len(data) || data[i] < '0' || data[i] > '9' {
			return 0, false, p.syntax(i)
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		ok = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return 0, false, p.syntax(i)
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if u > math.MaxInt64 {
		ok = false
	}
	return u, ok, i
}

// skipValue checks the syntax of the JSON value at data[i] and returns the
// position after it. depth is the nesting depth of the enclosing container.
func (p *jsonParser) skipValue(i, depth int) int {
	data := p.data
	if i >= len(data) {
		return p.syntax(i)
	}
	switch c := data[i]; c {
	case '"':
		_, i = p.scanString(i+1, false)
		return i
	case 't':
		return p.literal(i, "true")
	case 'f':
		return p.literal(i, "false")
	case 'n':
		return p.literal(i, "null")
	case '{', '[':
		if depth >= maxJSONDepth {
			return p.fail(errDepth, i)
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = p.skipSpace(i + 1)
		if i < len(data) && data[i] == closer {
			return i + 1
		}
		for {
			if c == '{' {
				if i >= len(data) || data[i] != '"' {
					return p.syntax(i)
				}
				if _, i = p.scanString(i+1, false); i < 0 {
					return i
				}
				i = p.skipSpace(i)
				if i >= len(data) || data[i] != ':' {
					return p.syntax(i)
				}
				i = p.skipSpace(i + 1)
			}
			if i = p.skipValue(i, depth+1); i < 0 {
				return i
			}
			i = p.skipSpace(i)
			if i >= len(data) {
				return p.syntax(i)
			}
			if data[i] == ',' {
				i = p.skipSpace(i + 1)
				continue
			}
			if data[i] == closer {
				return i + 1
			}
			return p.syntax(i)
		}
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, _, i = p.scanNumber(i)
			return i
		}
		return p.syntax(i)
	}
}

func (p *jsonParser) literal(i int, lit string) int {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(p.data) || p.data[i+k] != lit[k] {
			return p.syntax(i + k)
		}
	}
	return i + len(lit)
}

// parseTimestamp parses an RFC 3339 timestamp with optional fractional
// seconds (any number of digits; digits past nanoseconds are truncated) and a
// "Z" or ±hh:mm offset, and returns it in UTC. "T" and "Z" may be lower case
// (RFC 3339 §5.6). Apart from that it accepts exactly what the RFC 3339 fast
// path of time.Parse(time.RFC3339Nano, s) accepts, with the same result; it
// rejects the non-RFC forms time.Parse's slow path tolerates (one-digit hour,
// comma before the fraction, offsets of 24 hours or more).
func parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	y1, y2 := num2(b, 0), num2(b, 2)
	month, day := num2(b, 5), num2(b, 8)
	hour, min, sec := num2(b, 11), num2(b, 14), num2(b, 17)
	if y1 < 0 || y2 < 0 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') ||
		b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year := y1*100 + y2
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	b = b[19:]
	nsec := 0
	if len(b) >= 2 && b[0] == '.' && b[1] >= '0' && b[1] <= '9' {
		n := 1
		for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
			if n <= 9 {
				nsec = nsec*10 + int(b[n]-'0')
			}
		}
		for k := n; k <= 9; k++ {
			nsec *= 10
		}
		b = b[n:]
	}
	offset := 0
	switch {
	case len(b) == 1 && (b[0] == 'Z' || b[0] == 'z'):
	case len(b) == 6 && (b[0] == '+' || b[0] == '-') && b[3] == ':':
		hh, mm := num2(b, 1), num2(b, 4)
		if hh < 0 || hh > 23 || mm < 0 || mm > 59 {
			return time.Time{}, false
		}
		offset = hh*3600 + mm*60
		if b[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	unix := daysFromCivil(year, month, day)*86400 + int64(hour*3600+min*60+sec-offset)
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// num2 returns the two-digit decimal at b[i:i+2], or -1.
func num2(b []byte, i int) int {
	c0, c1 := b[i]-'0', b[i+1]-'0'
	if c0 > 9 || c1 > 9 {
		return -1
	}
	return int(c0)*10 + int(c1)
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m - 3
	if m <= 2 {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseIP parses an IP address exactly like netip.ParseAddr, but from bytes
// and without allocating; addresses with a zone are rejected and
// IPv4-mapped IPv6 addresses are unmapped.
func parseIP(b []byte) (netip.Addr, bool) {
	for _, c := range b {
		switch c {
		case '.':
			var f [4]byte
			if !parseIPv4Fields(b, f[:]) {
				return netip.Addr{}, false
			}
			return netip.AddrFrom4(f), true
		case ':':
			return parseIPv6(b)
		case '%':
			return netip.Addr{}, false
		}
	}
	return netip.Addr{}, false
}

// parseIPv4Fields is netip's parseIPv4Fields over bytes.
func parseIPv4Fields(s []byte, fields []byte) bool {
	var val, pos, digLen int
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if digLen == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digLen++
			if val > 255 {
				return false
			}
		case c == '.':
			if i == 0 || i == len(s)-1 || s[i-1] == '.' || pos == 3 {
				return false
			}
			fields[pos] = byte(val)
			pos++
			val, digLen = 0, 0
		default:
			return false
		}
	}
	if pos < 3 {
		return false
	}
	fields[3] = byte(val)
	return true
}

// parseIPv6 is netip's parseIPv6 over bytes, without zone support.
func parseIPv6(s []byte) (netip.Addr, bool) {
	for _, c := range s {
		if c == '%' {
			return netip.Addr{}, false
		}
	}
	var ip [16]byte
	ellipsis := -1
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off := 0
		acc := uint32(0)
		for ; off < len(s); off++ {
			c := s[off]
			if c >= '0' && c <= '9' {
				acc = acc<<4 + uint32(c-'0')
			} else if c >= 'a' && c <= 'f' {
				acc = acc<<4 + uint32(c-'a'+10)
			} else if c >= 'A' && c <= 'F' {
				acc = acc<<4 + uint32(c-'A'+10)
			} else {
				break
			}
			if off > 3 || acc > math.MaxUint16 {
				return netip.Addr{}, false
			}
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return netip.Addr{}, false
			}
			if !parseIPv4Fields(s, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			s = nil
			i += 4
			break
		}
		ip[i] = byte(acc >> 8)
		ip[i+1] = byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip).Unmap(), true
}
