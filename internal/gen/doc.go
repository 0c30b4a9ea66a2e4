// Package gen generates synthetic, realistic-looking CDN access-log events
// as Kafka-style messages: the key is the zone id in decimal ASCII, the value
// a flat JSON object with exactly these 15 fields, in this order:
//
//	{"ts":"2026-11-25T19:42:56.123Z","zone_id":4211,"client_ip":"203.0.113.7",
//	 "country":"US","colo":"SFO","method":"GET","status":200,
//	 "content_type":"html","bytes":5120,"cache_status":"hit",
//	 "ssl_protocol":"TLSv1.3","ip_class":"clean","threat":"",
//	 "page_view":true,"browser":"Chrome"}
//
// The generator is deterministic: the same Config (with explicit Start and
// End) yields the same byte-for-byte sequence of keys and values. It uses
// only its own small PRNG and hash functions, so the output does not depend
// on math/rand implementation details.
//
// Zone popularity follows a Zipf law (zone 1 is the busiest). Every zone has
// a pool of clients whose size shrinks with the zone's rank; clients are
// drawn with a strong skew, so a few clients make many requests. A client's
// IP address, address family, country, colo, browser and IP class are
// derived by hashing (seed, zone, client index), so they are stable for the
// whole run. The remaining fields (method, status, content type, bytes,
// cache status, TLS version, threat, page view) are drawn per event, with
// simple correlations: threats tend to be answered with 403, 304 and HEAD
// responses carry 0 bytes, error pages and redirects are small html bodies,
// non-GET requests are "dynamic" for the cache, page views are html 200s.
//
// IPv4 addresses come from private and benchmarking ranges (10/8,
// 100.64/10, 172.16/12, 198.18/15); IPv6 addresses from the documentation
// prefix 2001:db8::/32.
//
// Event times are spread evenly over [Start, End) in message order with a
// jitter of ±2.5 s; a LateShare of events is moved 1 to 6 hours into the
// past. A BadShare of messages is malformed, cycling through the kinds
// listed at BadKinds. A malformed message is rejected by a strict decoder
// that requires valid UTF-8, valid JSON without trailing data, all 15 fields
// with the right JSON types, a parseable IP, 100 <= status <= 599,
// bytes >= 0 and no NUL characters in strings.
//
// With Format "capnp" the values are Cap'n Proto messages of the schema
// loader/schema/event.capnp instead (one unpacked message in the stream
// framing, one segment; ts in nanoseconds, the client address as 4 or 16
// bytes, threat unset when there is none): the same events, and the same
// messages malformed, in the same order, as kinds of their own
// (BadKindsCapnp).
package gen
