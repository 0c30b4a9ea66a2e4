package gen

import (
	"encoding/binary"

	capnp "capnproto.org/go/capnp/v3"

	"zonestats/loader/schema"
)

// Formats are the message formats the generator writes (Config.Format).
var Formats = []string{"json", "capnp"}

func validFormat(f string) bool {
	for _, x := range Formats {
		if x == f {
			return true
		}
	}
	return false
}

// BadKindsCapnp names the malformed Cap'n Proto messages: entry i is what
// format "capnp" writes where "json" writes a message of kind BadKinds[i]
// (the same messages are malformed in both formats, in the same order).
var BadKindsCapnp = []string{
	"json on a capnp topic", // the event in JSON
	"truncated frame",
	"zone_id unset", // 0
	"zone_id out of range",
	"bad ip", // a Data of 1, 3, 5, 8, 15 or 17 bytes
	"status 1000",
	"invalid utf-8",
	"empty message",
	"trailing garbage",
	"bytes out of range", // more than 2^40
	"nul in browser",
}

var badIPLengths = []int{1, 3, 5, 8, 15, 17}

// appendCapnpMessage appends the message of e (malformed as kind says) in
// format "capnp": one Cap'n Proto message of loader/schema/event.capnp,
// unpacked, in the stream framing. Threat is left unset when empty.
func (g *Generator) appendCapnpMessage(b []byte, e *event, kind int) []byte {
	switch kind {
	case badNotJSON:
		return g.appendEvent(b, e, badNone)
	case badEmpty:
		return b
	case badTruncated:
		n := len(b)
		b = g.appendCapnp(b, e, badNone)
		full := len(b) - n
		return b[:n+1+int(g.r.intn(uint64(full-1)))] // keep 1..full-1 bytes
	case badTrailing:
		b = g.appendCapnp(b, e, badNone)
		return append(b, trailing[(g.bad/numBad)%len(trailing)]...)
	}
	return g.appendCapnp(b, e, kind)
}

// appendCapnp appends the framed Cap'n Proto message of e. The message is
// built in g.capnpBuf, which is zeroed first (the arena expects zeroed
// memory) and kept for the next message.
func (g *Generator) appendCapnp(b []byte, e *event, kind int) []byte {
	if g.capnpBuf == nil {
		g.capnpBuf = make([]byte, 0, 512)
	}
	clear(g.capnpBuf[:cap(g.capnpBuf)])
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(g.capnpBuf[:0]))
	if err != nil {
		panic("gen: capnp: " + err.Error())
	}
	ev, err := schema.NewRootEvent(seg)
	if err != nil {
		panic("gen: capnp: " + err.Error())
	}
	ev.SetTs(e.ms * 1_000_000)
	switch kind {
	case badMissingZone:
	case badZoneString:
		ev.SetZoneId(1<<63 | uint64(e.zone))
	default:
		ev.SetZoneId(uint64(e.zone))
	}
	var ipb [17]byte
	var ip []byte
	if kind == badIP {
		ip = ipb[:badIPLengths[e.ipHash%uint64(len(badIPLengths))]]
		copy(ip, []byte{10, 0, 0, 1})
	} else {
		ip = ipBytes(ipb[:0], e.ipHash, e.ipv6)
	}
	check(ev.SetClientIp(ip))
	check(ev.SetCountry(countries[e.country]))
	check(ev.SetColo(colos[e.colo]))
	check(ev.SetMethod(methods[e.method]))
	if kind == badStatus {
		ev.SetStatus(1000)
	} else {
		ev.SetStatus(uint16(e.status))
	}
	check(ev.SetContentType(contentTypes[e.ct]))
	if kind == badNegBytes {
		ev.SetBytes(1<<40 + 1 + uint64(e.bytes))
	} else {
		ev.SetBytes(uint64(e.bytes))
	}
	check(ev.SetCacheStatus(cacheStatuses[e.cache]))
	check(ev.SetSslProtocol(sslProtocols[e.ssl]))
	check(ev.SetIpClass(ipClasses[e.ipClass]))
	check(ev.SetThreat(threats[e.threat])) // "" leaves it unset
	ev.SetPageView(e.pageView)
	br := browsers[e.browser]
	switch kind {
	case badUTF8:
		br = br[:2] + "\xff\xfe" + br[2:]
	case badNUL:
		br += "\x00"
	}
	check(ev.SetBrowser(br))

	if msg.NumSegments() != 1 {
		panic("gen: capnp: more than one segment")
	}
	data := seg.Data()
	g.capnpBuf = data[:0] // the arena may have grown it
	// The segment table: one segment (count - 1 = 0) and its size in words.
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)/8))
	return append(b, data...)
}

func check(err error) {
	if err != nil {
		panic("gen: capnp: " + err.Error())
	}
}

// ipBytes appends the address appendIP writes for h, in network byte order
// (4 or 16 bytes).
func ipBytes(b []byte, h uint64, v6 bool) []byte {
	if v6 {
		b = append(b, 0x20, 0x01, 0x0d, 0xb8)
		h2 := mix64(h)
		for _, x := range [6]uint64{h >> 48, h >> 32, h >> 16, h, h2 >> 48, h2 >> 32} {
			b = binary.BigEndian.AppendUint16(b, uint16(x))
		}
		return b
	}
	a, c, d := (h>>8)&0xff, (h>>16)&0xff, (h>>24)&0xff
	var first uint64
	switch h >> 62 {
	case 0:
		first = 10
	case 1:
		first, a = 100, 64+a&63
	case 2:
		first, a = 172, 16+a&15
	default:
		first, a = 198, 18+a&1
	}
	return append(b, byte(first), byte(a), byte(c), byte(d))
}
