package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"zonestats/loader"
)

// The alternative design: aggregate in Go, in the consumer, and upsert
// only the aggregates. One goroutine per partition (a kafka-go Reader on
// that partition and its own connection) decodes with loader.JSONDecoder,
// aggregates per (zone, minute) in maps and, every 20,000 events of its
// partition and at the end, flushes: COPY into a TEMP staging table, then
// INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE into rollup_1m, 1h
// and 1d with the database's own merge functions. Zones are partition
// keys, so no two goroutines touch the same rollup row.
//
// It keeps no raw events and stores no Kafka offsets, so it is neither
// exactly once nor able to re-aggregate: it is a throughput baseline.

// Counter and map indexes, in the order of the rollup table columns.
var goaggCounters = []string{"requests", "cached_requests", "encrypted_requests", "bytes",
	"cached_bytes", "encrypted_bytes", "threats", "page_views"}

var goaggMaps = []string{"requests_by_country", "bytes_by_country", "threats_by_country", "requests_by_status",
	"requests_by_content_type", "bytes_by_content_type", "requests_by_colo", "bytes_by_colo",
	"requests_by_ssl_protocol", "requests_by_ip_class", "threats_by_type", "page_views_by_browser"}

const (
	cRequests = iota
	cCachedRequests
	cEncryptedRequests
	cBytes
	cCachedBytes
	cEncryptedBytes
	cThreats
	cPageViews
)

const (
	mRequestsByCountry = iota
	mBytesByCountry
	mThreatsByCountry
	mRequestsByStatus
	mRequestsByContentType
	mBytesByContentType
	mRequestsByColo
	mBytesByColo
	mRequestsBySSLProtocol
	mRequestsByIPClass
	mThreatsByType
	mPageViewsByBrowser
)

type aggKey struct{ zone, minute int64 } // minute: Unix seconds, UTC minute start

type agg struct {
	c    [8]int64
	ips  map[uint64]struct{} // FNV-1a of the 16-byte client address
	maps [12]map[string]int64
}

var statusText = func() []string {
	s := make([]string, 600)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func (a *agg) inc(m int, key string, v int64) {
	if a.maps[m] == nil {
		a.maps[m] = make(map[string]int64, 8)
	}
	a.maps[m][key] += v
}

func (a *agg) add(e *loader.Event) {
	cached := e.CacheStatus == "hit" || e.CacheStatus == "stale" || e.CacheStatus == "updating" || e.CacheStatus == "revalidated"
	encrypted := e.SSLProtocol != "none"
	threat := e.Threat != ""
	a.c[cRequests]++
	a.c[cBytes] += e.Bytes
	if cached {
		a.c[cCachedRequests]++
		a.c[cCachedBytes] += e.Bytes
	}
	if encrypted {
		a.c[cEncryptedRequests]++
		a.c[cEncryptedBytes] += e.Bytes
	}
	if threat {
		a.c[cThreats]++
	}
	if e.PageView {
		a.c[cPageViews]++
	}
	a.ips[ipHash(e)] = struct{}{}
	a.inc(mRequestsByCountry, e.Country, 1)
	a.inc(mBytesByCountry, e.Country, e.Bytes)
	a.inc(mRequestsByStatus, statusText[e.Status], 1)
	a.inc(mRequestsByContentType, e.ContentType, 1)
	a.inc(mBytesByContentType, e.ContentType, e.Bytes)
	a.inc(mRequestsByColo, e.Colo, 1)
	a.inc(mBytesByColo, e.Colo, e.Bytes)
	a.inc(mRequestsBySSLProtocol, e.SSLProtocol, 1)
	a.inc(mRequestsByIPClass, e.IPClass, 1)
	if threat {
		a.inc(mThreatsByCountry, e.Country, 1)
		a.inc(mThreatsByType, e.Threat, 1)
	}
	if e.PageView {
		a.inc(mPageViewsByBrowser, e.Browser, 1)
	}
}

// ipHash is 64-bit FNV-1a of the client address as 16 bytes.
func ipHash(e *loader.Event) uint64 {
	b := e.ClientIP.As16()
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// hstoreText renders a map in hstore's text form, "k"=>"v", ….
func hstoreText(b *strings.Builder, m map[string]int64) string {
	b.Reset()
	first := true
	for k, v := range m {
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteByte('"')
		for i := 0; i < len(k); i++ {
			if k[i] == '"' || k[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(k[i])
		}
		b.WriteString(`"=>"`)
		b.WriteString(strconv.FormatInt(v, 10))
		b.WriteByte('"')
	}
	return b.String()
}

var (
	goaggStageColumns = append(append(append([]string{"zone_id", "bucket"}, goaggCounters...), "hashes"), goaggMaps...)

	goaggSetup = `CREATE TEMP TABLE goagg_in (zone_id bigint NOT NULL, bucket timestamptz NOT NULL, ` +
		strings.Join(goaggCounters, " bigint NOT NULL, ") + ` bigint NOT NULL, hashes bigint[] NOT NULL, ` +
		strings.Join(goaggMaps, " text NOT NULL, ") + ` text NOT NULL) ON COMMIT DELETE ROWS;
		CREATE TEMP TABLE goagg_rows (LIKE zonestats.rollup_1m INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`

	// The staged aggregates as rollup rows: the sketch built from the hashes
	// with the database's hll settings, the maps cast to hstore.
	goaggToRows = `INSERT INTO goagg_rows (` + strings.Join(append(append(append([]string{"zone_id", "bucket"}, goaggCounters...), "uniques"), goaggMaps...), ", ") + `)
		SELECT i.zone_id, i.bucket, ` + prefixed("i.", goaggCounters) + `,
		(SELECT hll_add_agg(hll_hash_bigint(h), s.hll_log2m, s.hll_regwidth, s.hll_expthresh, s.hll_sparseon)
		 FROM unnest(i.hashes) AS h), ` + suffixed(prefixed("i.", goaggMaps), "::hstore") + `
		FROM goagg_in i CROSS JOIN zonestats.settings s`
)

// goaggUpsert merges the staged rows into one rollup level.
func goaggUpsert(table, unit string) string {
	var sel, set []string
	for _, c := range goaggCounters {
		sel = append(sel, "sum("+c+")::bigint")
		set = append(set, c+" = t."+c+" + EXCLUDED."+c)
	}
	// The same per-row work the in-database rollups do, uniques_count included.
	sel = append(sel, "hll_union_agg(uniques)", "round(coalesce(hll_cardinality(hll_union_agg(uniques)), 0))::bigint")
	set = append(set, "uniques = hll_union(t.uniques, EXCLUDED.uniques)",
		"uniques_count = round(coalesce(hll_cardinality(hll_union(t.uniques, EXCLUDED.uniques)), 0))")
	for _, m := range goaggMaps {
		sel = append(sel, "zonestats.hstore_sum_agg("+m+")")
		set = append(set, m+" = zonestats.hstore_sum(t."+m+", EXCLUDED."+m+")")
	}
	cols := append(append(append([]string{"zone_id", "bucket"}, goaggCounters...), "uniques", "uniques_count"), goaggMaps...)
	return fmt.Sprintf(`INSERT INTO zonestats.%s AS t (%s)
		SELECT zone_id, date_trunc('%s', bucket), %s
		FROM goagg_rows GROUP BY 1, 2 ORDER BY 1, 2
		ON CONFLICT (zone_id, bucket) DO UPDATE SET %s`,
		table, strings.Join(cols, ", "), unit, strings.Join(sel, ", "), strings.Join(set, ", "))
}

func prefixed(p string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = p + c
	}
	return strings.Join(out, ", ")
}

func suffixed(list, s string) string { return strings.ReplaceAll(list, ", ", s+", ") + s }

func runGoAgg(ctx context.Context, e *env, r *runState) error {
	url, drop, err := e.newDB(ctx, "goagg")
	if err != nil {
		return err
	}
	defer drop()
	upserts := []string{goaggUpsert("rollup_1m", "minute"), goaggUpsert("rollup_1h", "hour"), goaggUpsert("rollup_1d", "day")}

	// Connections and staging tables are made before the clock starts.
	conns := make([]*pgx.Conn, partitions)
	for p := range conns {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(context.WithoutCancel(ctx))
		if _, err := c.Exec(ctx, goaggSetup); err != nil {
			return fmt.Errorf("staging tables: %w", err)
		}
		conns[p] = c
	}
	errs := make([]error, partitions)
	var wg sync.WaitGroup
	t0 := time.Now()
	for p := 0; p < partitions; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = goaggPartition(ctx, e, conns[p], r.topic, p, r.wm[p], upserts)
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	for p, err := range errs {
		if err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
	}
	if err := checkRolledUp(ctx, conns[0], e.n); err != nil {
		return err
	}
	r.set("goagg_baseline_eps", float64(e.n)/elapsed.Seconds())
	return nil
}

// goaggPartition consumes one partition from its first to its last offset.
func goaggPartition(ctx context.Context, e *env, conn *pgx.Conn, topic string, p int, wm [2]int64, upserts []string) error {
	if wm[1] <= wm[0] {
		return nil
	}
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: e.brokers, Topic: topic, Partition: p, Dialer: newDialer(),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond,
	})
	defer rd.Close()
	if err := rd.SetOffset(wm[0]); err != nil {
		return err
	}
	dec := &loader.JSONDecoder{}
	var ev loader.Event
	aggs := map[aggKey]*agg{}
	pending := 0
	for next := wm[0]; next < wm[1]; {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			return err
		}
		next = m.Offset + 1
		if err := dec.Decode(m.Value, &ev); err != nil {
			return fmt.Errorf("offset %d: %w", m.Offset, err)
		}
		k := aggKey{ev.ZoneID, ev.TS.Unix() / 60 * 60}
		a := aggs[k]
		if a == nil {
			a = &agg{ips: make(map[uint64]struct{}, 4)}
			aggs[k] = a
		}
		a.add(&ev)
		if pending++; pending == copyBatch {
			if err := goaggFlush(ctx, conn, aggs, upserts); err != nil {
				return err
			}
			clear(aggs)
			pending = 0
		}
	}
	return goaggFlush(ctx, conn, aggs, upserts)
}

// goaggFlush writes the aggregates in one transaction.
func goaggFlush(ctx context.Context, conn *pgx.Conn, aggs map[aggKey]*agg, upserts []string) error {
	if len(aggs) == 0 {
		return nil
	}
	keys := make([]aggKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	row := make([]any, len(goaggStageColumns))
	maps := make([]string, len(goaggMaps))
	var hashes []int64
	var sb strings.Builder
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(keys) {
			return nil, nil
		}
		k := keys[i]
		a := aggs[k]
		i++
		row[0], row[1] = k.zone, time.Unix(k.minute, 0).UTC()
		for c := range a.c {
			row[2+c] = a.c[c]
		}
		hashes = hashes[:0]
		for h := range a.ips {
			hashes = append(hashes, int64(h))
		}
		row[10] = hashes
		for m := range a.maps {
			maps[m] = hstoreText(&sb, a.maps[m])
			row[11+m] = maps[m]
		}
		return row, nil
	})
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"goagg_in"}, goaggStageColumns, src); err != nil {
			return fmt.Errorf("copy aggregates: %w", err)
		}
		if _, err := tx.Exec(ctx, goaggToRows); err != nil {
			return fmt.Errorf("stage rows: %w", err)
		}
		for _, q := range upserts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("upsert: %w", err)
			}
		}
		return nil
	})
}
