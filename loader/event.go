package loader

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Event is one decoded access-log event: one HTTP request served for a zone.
// It mirrors the columns of zonestats_internal.raw_events that the loader
// COPYs (see copy.go).
type Event struct {
	TS          time.Time  // event time, normalised to UTC
	ZoneID      int64      // > 0
	ClientIP    netip.Addr // IPv4 or IPv6, no zone; IPv4-mapped IPv6 is unmapped
	Country     string     // two characters, [A-Z0-9], upper case
	Colo        string     // data center code, e.g. "SFO"
	Method      string     // HTTP method, e.g. "GET"
	Status      int16      // HTTP status, 100..599
	ContentType string     // e.g. "html"
	Bytes       int64      // response bytes, 0..MaxBytes
	CacheStatus string     // e.g. "hit", "miss"
	SSLProtocol string     // e.g. "TLSv1.3"; "none" for plain HTTP
	IPClass     string     // e.g. "clean"
	Threat      string     // "" when none
	PageView    bool
	Browser     string // e.g. "Chrome"
}

// MaxBytes is the largest response size accepted in one event (1 TiB).
const MaxBytes = 1 << 40

// MaxLabel is the longest string accepted in a label field (colo, method,
// content_type, cache_status, ssl_protocol, ip_class, threat, browser).
const MaxLabel = 64

// DecodeError says why a message was rejected. Reason is short, stable and
// meant for the dead_letters.reason column, e.g. "missing field: zone_id".
type DecodeError struct {
	Reason string
}

func (e *DecodeError) Error() string { return "bad event: " + e.Reason }

// Decoder turns one message value into an Event. On bad input it returns a
// *DecodeError (whose Reason goes to the dead letters) and resets ev. A
// Decoder is used by one goroutine at a time.
type Decoder interface {
	Decode(data []byte, ev *Event) error
}

// Formats are the message formats the loader reads (Config.Format).
var Formats = []string{"json", "capnp"}

// NewDecoder returns a Decoder for a message format: "json" (the default
// when format is empty) or "capnp" (Cap'n Proto, loader/schema/event.capnp).
func NewDecoder(format string) (Decoder, error) {
	switch format {
	case "", "json":
		return &JSONDecoder{}, nil
	case "capnp":
		return &CapnpDecoder{}, nil
	}
	return nil, fmt.Errorf("unknown message format %q (known: %s)", format, strings.Join(Formats, ", "))
}
