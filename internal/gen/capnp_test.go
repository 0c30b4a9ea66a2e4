package gen

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	capnp "capnproto.org/go/capnp/v3"

	"zonestats/loader/schema"
)

// decodeCapnpStrict decodes a "capnp" message value the way a strict
// consumer would, with the capnp library: exactly one unpacked message,
// every field set and in range, text valid UTF-8 without NUL, the same
// vocabularies as decodeStrict; threat unset when empty.
func decodeCapnpStrict(v []byte, zones int) (event15, error) {
	var e event15
	if len(v) == 0 {
		return e, errors.New("empty")
	}
	msg, err := capnp.Unmarshal(v)
	if err != nil {
		return e, err
	}
	if size, err := msg.TotalSize(); err != nil || size != uint64(len(v)) {
		return e, fmt.Errorf("message of %d bytes in a value of %d (%v)", size, len(v), err)
	}
	ev, err := schema.ReadRootEvent(msg)
	if err != nil {
		return e, err
	}
	ns := ev.Ts()
	if ns == 0 || ns%1_000_000 != 0 {
		return e, fmt.Errorf("ts %d", ns)
	}
	e.TS = time.Unix(0, ns).UTC()
	if z := ev.ZoneId(); z < 1 || z > uint64(zones) {
		return e, fmt.Errorf("zone_id %d", z)
	}
	e.ZoneID = int64(ev.ZoneId())
	ip, err := ev.ClientIp()
	if err != nil {
		return e, err
	}
	var ok bool
	if e.IP, ok = netip.AddrFromSlice(ip); !ok || e.IP.Is4In6() {
		return e, fmt.Errorf("client_ip %x", ip)
	}
	text := func(get func() (string, error), set []string, dst *string) error {
		s, err := get()
		if err != nil {
			return err
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return fmt.Errorf("text %q", s)
		}
		if set != nil && !inSet(set, s) {
			return fmt.Errorf("%q not in the vocabulary", s)
		}
		*dst = s
		return nil
	}
	for _, f := range []struct {
		get func() (string, error)
		set []string
		dst *string
	}{
		{ev.Country, countries, &e.Country}, {ev.Colo, colos, &e.Colo}, {ev.Method, methods, &e.Method},
		{ev.ContentType, contentTypes, &e.ContentType}, {ev.CacheStatus, cacheStatuses, &e.CacheStatus},
		{ev.SslProtocol, sslProtocols, &e.SSLProtocol}, {ev.IpClass, ipClasses, &e.IPClass},
		{ev.Threat, threats, &e.Threat}, {ev.Browser, browsers, &e.Browser},
	} {
		if err := text(f.get, f.set, f.dst); err != nil {
			return e, err
		}
	}
	if e.Threat == "" && ev.HasThreat() {
		return e, errors.New("empty threat set")
	}
	if s := ev.Status(); s < 100 || s > 599 {
		return e, fmt.Errorf("status %d", s)
	}
	e.Status = int(ev.Status())
	if b := ev.Bytes(); b > 1<<40 {
		return e, fmt.Errorf("bytes %d", b)
	}
	e.Bytes = int64(ev.Bytes())
	e.PageView = ev.PageView()
	return e, nil
}

// The same Config gives the same events in both formats, and the same
// messages malformed.
func TestCapnpSameEventsAsJSON(t *testing.T) {
	cfg := testConfig(21)
	cfg.LateShare = 0.1
	cfg.BadShare = 0.1
	const total = 20000
	gj := New(cfg, total)
	cfg.Format = "capnp"
	gc := New(cfg, total)
	if gc.Config().Format != "capnp" || gj.Config().Format != "json" {
		t.Fatalf("formats %q, %q", gj.Config().Format, gc.Config().Format)
	}
	kinds := map[string]int{}
	var kj, vj, kc, vc []byte
	for i := 0; ; i++ {
		before := gc.Malformed()
		var okj, okc bool
		kj, vj, okj = gj.Next(kj[:0], vj[:0])
		kc, vc, okc = gc.Next(kc[:0], vc[:0])
		if okj != okc {
			t.Fatalf("message %d: one generator ended", i)
		}
		if !okj {
			if i != total {
				t.Fatalf("%d messages", i)
			}
			break
		}
		if !bytes.Equal(kj, kc) {
			t.Fatalf("message %d: keys %q, %q", i, kj, kc)
		}
		ej, errJ := decodeStrict(vj, 1000)
		ec, errC := decodeCapnpStrict(vc, 1000)
		malformed := gc.Malformed() != before
		if (errJ != nil) != malformed || (errC != nil) != malformed {
			t.Fatalf("message %d (malformed %v): JSON %v, capnp %v\n%s\n%x", i, malformed, errJ, errC, vj, vc)
		}
		if malformed {
			kinds[BadKindsCapnp[before%len(BadKindsCapnp)]]++
			continue
		}
		if ej != ec {
			t.Fatalf("message %d:\nJSON  %+v\ncapnp %+v", i, ej, ec)
		}
	}
	if gj.Malformed() != gc.Malformed() {
		t.Fatalf("malformed: JSON %d, capnp %d", gj.Malformed(), gc.Malformed())
	}
	if len(BadKindsCapnp) != len(BadKinds) {
		t.Fatalf("%d capnp kinds for %d JSON kinds", len(BadKindsCapnp), len(BadKinds))
	}
	for _, k := range BadKindsCapnp {
		if kinds[k] == 0 {
			t.Errorf("kind %q never emitted", k)
		}
	}
}

func TestCapnpDeterminism(t *testing.T) {
	cfg := testConfig(42)
	cfg.Format = "capnp"
	cfg.LateShare = 0.05
	cfg.BadShare = 0.05
	k1, v1 := collect(New(cfg, 3000))
	k2, v2 := collect(New(cfg, 3000))
	for i := range v1 {
		if !bytes.Equal(k1[i], k2[i]) || !bytes.Equal(v1[i], v2[i]) {
			t.Fatalf("message %d differs:\n%x\n%x", i, v1[i], v2[i])
		}
	}
}

// Messages append to the buffers passed in; the message built before does
// not leak into the next (the segment buffer is reused).
func TestCapnpAppendsAndReuses(t *testing.T) {
	cfg := testConfig(3)
	cfg.Format = "capnp"
	g := New(cfg, 500)
	v := []byte("v:")
	for {
		var ok bool
		_, v, ok = g.Next(nil, v[:2])
		if !ok {
			break
		}
		if !bytes.HasPrefix(v, []byte("v:")) {
			t.Fatalf("Next did not append: %q", v)
		}
		if _, err := decodeCapnpStrict(v[2:], 1000); err != nil {
			t.Fatalf("%v: %x", err, v[2:])
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "xml") {
			t.Fatalf("recovered %v, want a panic naming the format", r)
		}
	}()
	New(Config{Format: "xml"}, 1)
}

func TestIPBytesMatchesAppendIP(t *testing.T) {
	r := rng{s: 9}
	for i := 0; i < 10000; i++ {
		h := r.next()
		v6 := i%3 == 0
		want := netip.MustParseAddr(string(appendIP(nil, h, v6)))
		got, ok := netip.AddrFromSlice(ipBytes(nil, h, v6))
		if !ok || got != want {
			t.Fatalf("hash %x: %v, want %v", h, got, want)
		}
	}
}
