package loader

// The Cap'n Proto event decoder (-format capnp). The schema is
// loader/schema/event.capnp; one message value is one Cap'n Proto message
// in the standard (unpacked) stream framing.
//
// Error precedence, so that the Reason of a message is deterministic:
//
//  1. framing, before any pointer is followed: "empty message",
//     "truncated frame" (shorter than its segment table says, including a
//     segment table of absurd sizes), "bad segment table" (more than 512
//     segments, or an empty first segment), "trailing data" (bytes after
//     the last segment);
//  2. pointers, in schema order, reported as soon as they are met:
//     "no root struct" (the root pointer is null or not a struct),
//     "bad pointer: <field>" (out of bounds, a bad far pointer, a missing
//     segment, an unknown pointer kind; <field> is "root" for the root),
//     "traversal limit exceeded";
//  3. "invalid UTF-8" in any text field (as JSON rejects a message that is
//     not UTF-8 before looking at its fields);
//  4. the first field-level error in schema order: "bad <field>";
//  5. "missing field: <field>", the first missing field in schema order: ts
//     0, or a null pointer for client_ip, country or a label other than
//     threat and ssl_protocol (null there means empty).
//
// Field names in reasons are the JSON names (zone_id, not zoneId), so the
// dead letters of both formats group together.

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	capnp "capnproto.org/go/capnp/v3"

	"zonestats/loader/schema"
)

// Reasons of the Cap'n Proto decoder that the JSON decoder does not have.
const (
	reasonTruncatedFrame = "truncated frame"
	reasonSegmentTable   = "bad segment table"
	reasonNoRoot         = "no root struct"
	reasonTraversal      = "traversal limit exceeded"
	reasonBadPointer     = "bad pointer: "
)

// maxCapnpSegments is the most segments a message may have: 512, about
// what the stream readers of the C++ and Go implementations accept. An
// event is written as one segment by every encoder we know; more than one
// is legal and read.
const maxCapnpSegments = 512

// capnpDepthLimit is the pointer nesting the decoder allows: the root
// struct (1) and its Text and Data fields (2). The event is flat; nothing
// deeper is ever followed.
const capnpDepthLimit = 2

// CapnpDecoder decodes Cap'n Proto events (loader/schema/event.capnp). It
// reuses its message, segment table and label cache between calls, so a
// decode of a one-segment message does not allocate (labels it has seen
// before are not copied again). The zero value is ready to use; it is not
// safe for concurrent use.
//
// The traversal limit of each message is its own size: every byte of the
// message may be read once, so a message whose pointers alias one object
// many times over (an amplification attack) is rejected, and the work per
// message is bounded by its size. Strings of the Event are copies: nothing
// of data is retained after Decode returns.
type CapnpDecoder struct {
	msg    capnp.Message
	arena  frameArena
	labels *[internSlots]string // direct-mapped intern cache, allocated lazily

	libraryOnly bool // tests: read every message with the library (no fast path)
}

// frameArena is a read-only capnp.Arena over the segments of one framed
// message (slices of the message value; nothing is copied).
type frameArena struct {
	segs [][]byte
}

var (
	errNoSegment = errors.New("no such segment")
	errReadOnly  = errors.New("read-only message")
)

func (a *frameArena) NumSegments() int64 { return int64(len(a.segs)) }

func (a *frameArena) Data(id capnp.SegmentID) ([]byte, error) {
	if uint64(id) >= uint64(len(a.segs)) {
		return nil, errNoSegment
	}
	return a.segs[id], nil
}

func (a *frameArena) Allocate(capnp.Size, map[capnp.SegmentID]*capnp.Segment) (capnp.SegmentID, []byte, error) {
	return 0, nil, errReadOnly
}

func (a *frameArena) Release() {}

// frame splits a framed message into a.segs, or returns the Reason it
// cannot. It allocates nothing that depends on the sizes the message
// claims: every size is checked against the bytes there are.
func (a *frameArena) frame(data []byte) string {
	a.segs = a.segs[:0]
	if len(data) == 0 {
		return reasonEmpty
	}
	if len(data) < 8 {
		return reasonTruncatedFrame
	}
	n := uint64(binary.LittleEndian.Uint32(data)) + 1 // segments
	if n > maxCapnpSegments {
		return reasonSegmentTable
	}
	off := (n/2 + 1) * 8 // the table: count, n sizes, padding to a word
	if uint64(len(data)) < off {
		return reasonTruncatedFrame
	}
	for i := uint64(0); i < n; i++ {
		size := uint64(binary.LittleEndian.Uint32(data[4+4*i:])) * 8
		if size > uint64(len(data))-off {
			return reasonTruncatedFrame
		}
		a.segs = append(a.segs, data[off:off+size:off+size])
		off += size
	}
	if off != uint64(len(data)) {
		return reasonTrailing
	}
	if len(a.segs[0]) == 0 {
		return reasonSegmentTable // no room for the root pointer
	}
	return ""
}

// Decode decodes one framed Cap'n Proto message into ev (overwriting every
// field). On bad input it returns a *DecodeError and resets ev.
func (d *CapnpDecoder) Decode(data []byte, ev *Event) error {
	reason := d.decode(data, ev)
	// Drop the references to data (the message's segments).
	clear(d.arena.segs)
	d.arena.segs = d.arena.segs[:0]
	if d.msg.Arena != nil {
		d.msg = capnp.Message{}
	}
	if reason == "" {
		return nil
	}
	*ev = Event{}
	return &DecodeError{Reason: reason}
}

// pointerReason turns an error of the capnp library following the pointer
// of field (a name) into a Reason.
func pointerReason(err error, field string) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "traversal limit"):
		return reasonTraversal
	case strings.Contains(msg, "depth limit"):
		return reasonDepth
	}
	return reasonBadPointer + field
}

// capnpText is a pointer field as read: its bytes, whether the pointer is
// null, and whether it is something else than a byte list (or a Text
// without its NUL terminator).
type capnpText struct {
	b          []byte
	null, kind bool
}

func readText(b []byte, err error, has bool) (capnpText, error) {
	if err != nil {
		return capnpText{}, err
	}
	if b == nil {
		return capnpText{null: !has, kind: has}, nil
	}
	return capnpText{b: b}, nil
}

// The pointer fields in pointer order (= schema order), as field numbers of
// decode_json.go.
var capnpTextFields = [...]int{fClientIP, fCountry, fColo, fMethod, fContentType, fCacheStatus, fSSLProtocol, fIPClass, fThreat, fBrowser}

// capnpFields is an event as read from a message, before any rule is
// applied.
type capnpFields struct {
	ts            int64
	zoneID, bytes uint64
	status        uint16
	pageView      bool
	txt           [len(capnpTextFields)]capnpText // by pointer index
}

func (d *CapnpDecoder) decode(data []byte, ev *Event) string {
	if r := d.arena.frame(data); r != "" {
		return r
	}
	var fl capnpFields
	if d.libraryOnly || !readCapnpFast(d.arena.segs[0], uint64(len(data)), &fl) {
		if r := d.readLibrary(uint64(len(data)), &fl); r != "" {
			return r
		}
	}
	return d.apply(&fl, ev)
}

// readLibrary reads a message with the capnp library and the generated
// code, or returns the Reason it cannot.
func (d *CapnpDecoder) readLibrary(limit uint64, fl *capnpFields) string {
	d.msg = capnp.Message{Arena: &d.arena, TraverseLimit: limit, DepthLimit: capnpDepthLimit}
	root, err := d.msg.Root()
	if err != nil {
		return pointerReason(err, "root")
	}
	st := root.Struct()
	if !st.IsValid() {
		return reasonNoRoot
	}
	e := schema.Event(st)
	// Pointers, in schema order.
	var b []byte
	txt := &fl.txt
	b, err = e.ClientIp()
	if txt[0], err = readText(b, err, e.HasClientIp()); err != nil {
		return pointerReason(err, fieldNames[fClientIP])
	}
	b, err = e.CountryBytes()
	if txt[1], err = readText(b, err, e.HasCountry()); err != nil {
		return pointerReason(err, fieldNames[fCountry])
	}
	b, err = e.ColoBytes()
	if txt[2], err = readText(b, err, e.HasColo()); err != nil {
		return pointerReason(err, fieldNames[fColo])
	}
	b, err = e.MethodBytes()
	if txt[3], err = readText(b, err, e.HasMethod()); err != nil {
		return pointerReason(err, fieldNames[fMethod])
	}
	b, err = e.ContentTypeBytes()
	if txt[4], err = readText(b, err, e.HasContentType()); err != nil {
		return pointerReason(err, fieldNames[fContentType])
	}
	b, err = e.CacheStatusBytes()
	if txt[5], err = readText(b, err, e.HasCacheStatus()); err != nil {
		return pointerReason(err, fieldNames[fCacheStatus])
	}
	b, err = e.SslProtocolBytes()
	if txt[6], err = readText(b, err, e.HasSslProtocol()); err != nil {
		return pointerReason(err, fieldNames[fSSLProtocol])
	}
	b, err = e.IpClassBytes()
	if txt[7], err = readText(b, err, e.HasIpClass()); err != nil {
		return pointerReason(err, fieldNames[fIPClass])
	}
	b, err = e.ThreatBytes()
	if txt[8], err = readText(b, err, e.HasThreat()); err != nil {
		return pointerReason(err, fieldNames[fThreat])
	}
	b, err = e.BrowserBytes()
	if txt[9], err = readText(b, err, e.HasBrowser()); err != nil {
		return pointerReason(err, fieldNames[fBrowser])
	}
	fl.ts, fl.zoneID, fl.status, fl.bytes, fl.pageView = e.Ts(), e.ZoneId(), e.Status(), e.Bytes(), e.PageView()
	return ""
}

// The layout of the Event struct's data section, as the generated code
// reads it (TestCapnpLayout checks them against it).
const (
	capnpOffTS       = 0
	capnpOffZoneID   = 8
	capnpOffStatus   = 16
	capnpOffBytes    = 24
	capnpBitPageView = 144
)

// readCapnpFast reads a message laid out the way every encoder writes
// one: the root a struct in the first segment, every pointer field null
// or a byte list in that segment. It reads what readLibrary would
// (the same values, the same traversal limit of limit bytes), about ten
// times faster than the library's general pointer code; ok is false for
// anything else (far pointers, other kinds of pointers, anything out of
// bounds, the traversal limit reached), which readLibrary then reads or
// rejects with its reason. FuzzDecodeCapnp checks that both agree.
func readCapnpFast(seg []byte, limit uint64, fl *capnpFields) (ok bool) {
	// The root pointer: a struct pointer whose struct is in the segment.
	w := binary.LittleEndian.Uint64(seg)
	if w == 0 || w&3 != 0 {
		return false
	}
	off := int64(int32(uint32(w)) >> 2)
	dataBytes := uint64(uint16(w>>32)) * 8
	ptrs := uint64(uint16(w >> 48))
	start := 8 + off*8
	size := dataBytes + ptrs*8
	if start < 0 || uint64(start)+size > uint64(len(seg)) || size > limit {
		return false
	}
	limit -= size
	st := seg[start : uint64(start)+size]
	data := st[:dataBytes]
	if dataBytes >= capnpOffTS+8 {
		fl.ts = int64(binary.LittleEndian.Uint64(data[capnpOffTS:]))
	}
	if dataBytes >= capnpOffZoneID+8 {
		fl.zoneID = binary.LittleEndian.Uint64(data[capnpOffZoneID:])
	}
	if dataBytes >= capnpOffStatus+2 {
		fl.status = binary.LittleEndian.Uint16(data[capnpOffStatus:])
	}
	if dataBytes >= capnpOffBytes+8 {
		fl.bytes = binary.LittleEndian.Uint64(data[capnpOffBytes:])
	}
	if dataBytes*8 > capnpBitPageView {
		fl.pageView = data[capnpBitPageView/8]&(1<<(capnpBitPageView%8)) != 0
	}
	// The pointers: null, or a near pointer to a list of bytes.
	for i := range fl.txt {
		if uint64(i) >= ptrs {
			fl.txt[i] = capnpText{null: true}
			continue
		}
		paddr := uint64(start) + dataBytes + uint64(i)*8
		p := binary.LittleEndian.Uint64(seg[paddr:])
		if p == 0 {
			fl.txt[i] = capnpText{null: true}
			continue
		}
		if p&3 != 1 || (p>>32)&7 != 2 { // a list, of bytes
			return false
		}
		at := int64(paddr) + 8 + int64(int32(uint32(p))>>2)*8
		n := p >> 35
		if at < 0 || uint64(at)+n > uint64(len(seg)) || n > limit {
			return false
		}
		limit -= n
		b := seg[at : uint64(at)+n : uint64(at)+n]
		switch {
		case i == 0: // client_ip: Data
			fl.txt[i] = capnpText{b: b}
		case n == 0 || b[n-1] != 0: // a Text ends with a NUL
			fl.txt[i] = capnpText{kind: true}
		default:
			fl.txt[i] = capnpText{b: b[: n-1 : n]}
		}
	}
	return true
}

// apply checks the fields read against the rules and fills ev, or returns
// the Reason of the first failure (see the top of the file).
func (d *CapnpDecoder) apply(fl *capnpFields, ev *Event) string {
	// UTF-8 of the text fields (client_ip is Data: any bytes).
	for i := 1; i < len(fl.txt); i++ {
		if !utf8.Valid(fl.txt[i].b) {
			return reasonUTF8
		}
	}

	// Fields: the first bad one in schema order, else the first missing.
	var bad, missing uint32 // bit f: field f is bad, missing
	if fl.ts != 0 {
		ev.TS = time.Unix(0, fl.ts).UTC()
	} else {
		missing |= 1 << fTS
	}
	if z := fl.zoneID; z >= 1 && z <= math.MaxInt64 {
		ev.ZoneID = int64(z)
	} else {
		bad |= 1 << fZoneID
	}
	if s := fl.status; s >= 100 && s <= 599 {
		ev.Status = int16(s)
	} else {
		bad |= 1 << fStatus
	}
	if n := fl.bytes; n <= MaxBytes {
		ev.Bytes = int64(n)
	} else {
		bad |= 1 << fBytes
	}
	ev.PageView = fl.pageView
	for i, f := range capnpTextFields {
		t := &fl.txt[i]
		min := 1
		if f == fThreat || f == fSSLProtocol {
			min = 0
			if t.null {
				t.null = false // null is empty
			}
		}
		switch {
		case t.null:
			missing |= 1 << f
			continue
		case t.kind:
			bad |= 1 << f
			continue
		}
		v := t.b
		switch f {
		case fClientIP:
			switch len(v) {
			case 4:
				ev.ClientIP = netip.AddrFrom4([4]byte(v))
			case 16:
				ev.ClientIP = netip.AddrFrom16([16]byte(v)).Unmap()
			default:
				bad |= 1 << f
			}
			continue
		case fCountry:
			if len(v) == 2 {
				if a, b := alnumIndex[v[0]], alnumIndex[v[1]]; a >= 0 && b >= 0 {
					k := 2 * (int(a)*36 + int(b))
					ev.Country = countryCodes[k : k+2]
					continue
				}
			}
			bad |= 1 << f
			continue
		}
		if len(v) < min || len(v) > MaxLabel || !validLabel(v) {
			bad |= 1 << f
			continue
		}
		s := "none" // an empty ssl_protocol
		if len(v) > 0 || f != fSSLProtocol {
			s = d.intern(v)
		}
		setLabel(ev, f, s)
	}
	switch {
	case bad != 0:
		return badReasons[bits.TrailingZeros32(bad)]
	case missing != 0:
		return missingReasons[bits.TrailingZeros32(missing)]
	}
	return ""
}

// intern returns b as a string, reusing an earlier identical string if the
// decoder's cache has one (the JSON decoder's cache, per CapnpDecoder).
func (d *CapnpDecoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.labels == nil {
		d.labels = new([internSlots]string)
	}
	slot := &d.labels[hashLabel(b)]
	if *slot == string(b) {
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}
