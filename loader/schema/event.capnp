# The zonestats access-log event in Cap'n Proto: the schema shared by the
# edge (Lua/C++) that writes events and the loader that reads them
# (`zonestats load -format capnp`).
#
# Framing: one Kafka message value is exactly one Cap'n Proto message in the
# standard stream framing (the segment table, then the segments), UNPACKED,
# with an Event as its root: what capnp::writeMessage / messageToFlatArray
# (C++), capnp.Message.Marshal (Go) or `capnp encode` (without --packed)
# write. Packed messages are not accepted. Nothing may follow the message.
#
# The loader applies the same rules as to JSON events (loader/decode_json.go
# and the README), with the same dead-letter reasons; the differences
# follow from the types:
#
#   - ts is Int64 nanoseconds since the Unix epoch (1970-01-01T00:00:00Z),
#     UTC, leap seconds not counted (as Go's time.UnixNano and C++'s
#     std::chrono::system_clock). It covers 1677-09-21 to 2262-04-11,
#     nanoseconds as in the JSON format. 0 (an unset field) is rejected:
#     "missing field: ts".
#   - zoneId (1 .. 2^63-1) and bytes (0 .. 2^40) are unsigned; status is
#     100..599.
#   - clientIp is the address in network byte order: 4 bytes (IPv4) or 16
#     (IPv6; an IPv4-mapped address ::ffff:a.b.c.d is stored as IPv4).
#   - Text fields must be valid UTF-8 ("invalid UTF-8") and hold no
#     control byte (< 0x20, 0x7f, which includes NUL); country is two
#     characters [A-Za-z0-9] (stored upper-cased); the other labels are
#     1..64 bytes, threat and sslProtocol may be empty ("" for no threat; an
#     empty sslProtocol is stored as "none").
#   - An unset (null) clientIp, country or label is "missing field: <name>";
#     an unset threat or sslProtocol counts as empty.
#
# Field numbers are fixed: add new fields at the end with the next number,
# never renumber or change a type. Fields the loader does not know are
# ignored (Cap'n Proto's schema evolution).
#
# The Go code next to this file (event.capnp.go) is generated from it by
# `make capnp`; do not edit it by hand.

@0x8d34ac57efae1be5;

using Go = import "/go.capnp";
$Go.package("schema");
$Go.import("zonestats/loader/schema");

struct Event {
  ts          @0  :Int64;   # nanoseconds since the Unix epoch, UTC; 0 = unset (rejected)
  zoneId      @1  :UInt64;  # >= 1, <= 2^63-1
  clientIp    @2  :Data;    # 4 or 16 bytes, network byte order
  country     @3  :Text;    # two letters or digits, e.g. "US"
  colo        @4  :Text;    # data center code, e.g. "SFO"
  method      @5  :Text;    # HTTP method, e.g. "GET"
  status      @6  :UInt16;  # HTTP status, 100..599
  contentType @7  :Text;    # e.g. "html"
  bytes       @8  :UInt64;  # response bytes, 0..2^40
  cacheStatus @9  :Text;    # e.g. "hit", "miss"
  sslProtocol @10 :Text;    # e.g. "TLSv1.3"; empty or unset: "none"
  ipClass     @11 :Text;    # e.g. "clean"
  threat      @12 :Text;    # e.g. "sqli"; empty or unset: no threat
  pageView    @13 :Bool;
  browser     @14 :Text;    # e.g. "Chrome"
}
