package main

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The query data set: rollups generated straight into a separate database
// with SQL, shaped like the loader's output of a Zipf-skewed platform.
//
//   - zones 1..10,000; zone z has traffic in an hour with probability
//     min(1, 50/z) and in a minute with probability min(1, 10/z), so the
//     busiest zones are dense and the long tail sparse;
//   - requests of an active bucket ≈ R·z^-1.1 (R = 300,000 per hour, 5,000
//     per minute for zone 1), ±50 %;
//   - uniques: an hll sketch of about min(requests, 5000/√z) clients
//     (0.8 of that per hour, 0.5 per minute), rounded to a power of two;
//     the sketches come from a pool of 16 variants per size, each built
//     with hll_add_agg(hll_hash_bigint(…)) and the database's hll settings,
//     so rows have the real sizes (explicit, sparse or full) and unions
//     the real cost, without hashing ~10^8 values;
//   - the 12 maps: ≈ 3·ln(1 + requests) keys (at most 40, and at most the
//     dimension's vocabulary: 26 countries, 10 statuses, …; a quarter of
//     that for the threat maps), from a pool of 8 variants per key count
//     built with hstore(array[…], array[…]); so a busy zone's minute row
//     has every key of the small vocabularies and 13–26 in the larger maps,
//     a tail zone's row 1–3 keys per map. Map values are random and do not
//     add up to the counters (no query here reads them);
//   - rollup_1d is built from rollup_1h with GROUP BY zone_id,
//     date_trunc('day', bucket): sum, hll_union_agg, zonestats.hstore_sum_agg.
//
// Full mode: 30 days of hourly and 2 days of minute rollups. Quick mode
// keeps the 10,000 zones but builds fewer days (see querySizes).

const (
	queryZones   = 10_000
	busyZone     = 1
	hourDensity  = 50.0
	minDensity   = 10.0
	hourRequests = 300_000.0
	minRequests  = 5_000.0
)

// querySizes returns the days of hourly and minute rollups to build, and
// how many timed iterations each query gets per run.
func querySizes(full bool) (hourDays, minuteDays, iterations int) {
	if full {
		return 30, 2, 200
	}
	return 30, 1, 100
}

var vocab = map[string][]string{
	"country": {"US", "DE", "GB", "IN", "FR", "BR", "JP", "CN", "CA", "NL", "RU", "AU", "IT", "ES", "KR", "MX",
		"ID", "PL", "TR", "SE", "SG", "HK", "ZA", "AR", "UA", "XX"},
	"status":       {"200", "304", "404", "301", "302", "206", "403", "500", "502", "503"},
	"content_type": {"html", "css", "js", "json", "png", "jpeg", "gif", "webp", "svg", "woff2", "plain", "octet-stream", "mp4"},
	"colo": {"SFO", "LAX", "ORD", "IAD", "EWR", "DFW", "SEA", "AMS", "FRA", "LHR", "CDG", "NRT", "SIN", "SYD", "GRU",
		"BOM", "HKG", "ICN", "MAD", "WAW"},
	"ssl_protocol": {"TLSv1.3", "TLSv1.2", "none"},
	"ip_class":     {"clean", "badHost", "searchEngine", "noRecord", "greylist", "whitelist", "monitoringService", "tor"},
	"threat":       {"badBrowser", "sqli", "xss", "bruteForce", "ddos", "hotlink", "spam"},
	"browser":      {"Chrome", "Safari", "Edge", "Firefox", "Samsung", "Opera", "bot", "other"},
}

func sqlArray(words []string) string {
	return "ARRAY['" + strings.Join(words, "','") + "']"
}

var rollupColumns = []string{"zone_id", "bucket", "requests", "cached_requests", "encrypted_requests", "bytes",
	"cached_bytes", "encrypted_bytes", "threats", "page_views", "uniques",
	"requests_by_country", "bytes_by_country", "threats_by_country", "requests_by_status",
	"requests_by_content_type", "bytes_by_content_type", "requests_by_colo", "bytes_by_colo",
	"requests_by_ssl_protocol", "requests_by_ip_class", "threats_by_type", "page_views_by_browser"}

// Pools of sketches and maps the generated rows draw from.
func poolSQL() string {
	return `CREATE SCHEMA bench;
CREATE FUNCTION bench.map(p_keys text[], p_n int, p_v int, p_scale bigint) RETURNS hstore
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(hstore(array_agg(p_keys[1 + (i + p_v) % cardinality(p_keys)]),
                           array_agg((1 + floor(random() * p_scale))::bigint::text)), ''::hstore)
    FROM generate_series(0, least(p_n, cardinality(p_keys)) - 1) AS i
$$;
CREATE TABLE bench.sketch AS
SELECT c, v, hll_add_agg(hll_hash_bigint((v::bigint << 40) | (c::bigint << 32) | g),
                         s.hll_log2m, s.hll_regwidth, s.hll_expthresh, s.hll_sparseon) AS h
FROM zonestats.settings s, generate_series(0, 13) AS c, generate_series(0, 15) AS v, generate_series(1, 1 << c) AS g
GROUP BY c, v, s.hll_log2m, s.hll_regwidth, s.hll_expthresh, s.hll_sparseon;
CREATE TABLE bench.shape AS
SELECT k, v,
    bench.map(w.country, k, v, 1000 * k) AS requests_by_country,
    bench.map(w.country, k, v, 60000000::bigint * k) AS bytes_by_country,
    bench.map(w.country, k / 4, v, 10 * k) AS threats_by_country,
    bench.map(w.status, k, v, 1000 * k) AS requests_by_status,
    bench.map(w.content_type, k, v, 1000 * k) AS requests_by_content_type,
    bench.map(w.content_type, k, v, 60000000::bigint * k) AS bytes_by_content_type,
    bench.map(w.colo, k, v, 1000 * k) AS requests_by_colo,
    bench.map(w.colo, k, v, 60000000::bigint * k) AS bytes_by_colo,
    bench.map(w.ssl_protocol, k, v, 1000 * k) AS requests_by_ssl_protocol,
    bench.map(w.ip_class, k, v, 1000 * k) AS requests_by_ip_class,
    bench.map(w.threat, k / 4, v, 10 * k) AS threats_by_type,
    bench.map(w.browser, k, v, 300 * k) AS page_views_by_browser
FROM generate_series(1, 40) AS k, generate_series(0, 7) AS v,
    (SELECT ` + sqlArray(vocab["country"]) + ` AS country, ` + sqlArray(vocab["status"]) + ` AS status,
            ` + sqlArray(vocab["content_type"]) + ` AS content_type, ` + sqlArray(vocab["colo"]) + ` AS colo,
            ` + sqlArray(vocab["ssl_protocol"]) + ` AS ssl_protocol, ` + sqlArray(vocab["ip_class"]) + ` AS ip_class,
            ` + sqlArray(vocab["threat"]) + ` AS threat, ` + sqlArray(vocab["browser"]) + ` AS browser) AS w;
CREATE INDEX ON bench.sketch (c, v);
CREATE INDEX ON bench.shape (k, v);
ANALYZE bench.sketch, bench.shape`
}

// rowsSQL generates the rows of one rollup table for the zones z with
// z % 2 = $3, buckets from $1 to $2 (inclusive) every step.
func rowsSQL(table, step string, density, requests, uniqueShare float64) string {
	maps := rollupColumns[11:]
	return fmt.Sprintf(`INSERT INTO zonestats.%s (%s)
SELECT r.z, r.b, r.req, r.req * 65 / 100, r.req * 95 / 100, r.bytes, r.bytes * 60 / 100, r.bytes * 95 / 100,
       r.req / 80, r.req * 3 / 10, sk.h, %s
FROM (
    SELECT z, b, v, req, req * (20000 + floor(random() * 80000))::bigint AS bytes,
           least(13, round(ln(greatest(1, least(req, greatest(8, 5000 / sqrt(z))) * %g)) / ln(2)))::int AS c,
           least(40, ceil(3 * ln(1 + req)))::int AS k
    FROM (
        SELECT z, b, (z * 7 + floor(extract(epoch FROM b) / 60)::bigint) %% 16 AS v,
               greatest(1, round(%g::float8 * power(z, -1.1) * (0.5 + noise)))::bigint AS req
        FROM (
            -- random() in the select list of a fenced subquery: drawn per
            -- (zone, bucket), not once per zone.
            SELECT z, b, random() AS active, random() AS noise
            FROM generate_series($1::timestamptz, $2::timestamptz, interval '%s') AS b, generate_series(1, %d) AS z
            WHERE z %% 2 = $3
            OFFSET 0
        ) candidates
        WHERE active < least(1.0, %g::float8 / z)
    ) q
    OFFSET 0
) r
JOIN bench.sketch sk ON sk.c = r.c AND sk.v = r.v
JOIN bench.shape sh ON sh.k = r.k AND sh.v = r.v %% 8`,
		table, strings.Join(rollupColumns, ", "), prefixed("sh.", maps),
		uniqueShare, requests, step, queryZones, density)
}

// dailySQL builds rollup_1d from rollup_1h for the zones z with z % 2 = $1.
func dailySQL() string {
	var sel []string
	for _, c := range rollupColumns[2:10] {
		sel = append(sel, "sum("+c+")::bigint")
	}
	sel = append(sel, "hll_union_agg(uniques)")
	for _, m := range rollupColumns[11:] {
		sel = append(sel, "zonestats.hstore_sum_agg("+m+")")
	}
	return fmt.Sprintf(`INSERT INTO zonestats.rollup_1d (%s)
SELECT zone_id, date_trunc('day', bucket), %s
FROM zonestats.rollup_1h WHERE zone_id %% 2 = $1
GROUP BY 1, 2`, strings.Join(rollupColumns, ", "), strings.Join(sel, ", "))
}

// onBothHalves runs sql with the half (0, 1) as the last argument, on two
// connections at once.
func onBothHalves(ctx context.Context, url, sql string, args ...any) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for half := 0; half < 2; half++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				errs[half] = err
				return
			}
			defer c.Close(context.WithoutCancel(ctx))
			_, errs[half] = c.Exec(ctx, sql, append(append([]any(nil), args...), half)...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// buildQueryData fills a fresh database; now is the reference time.
func buildQueryData(ctx context.Context, url string, now time.Time, hourDays, minuteDays int) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	step := func(what string, f func() error) error {
		t0 := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		progress("queries: %s (%.1fs)", what, time.Since(t0).Seconds())
		return nil
	}
	hour := now.Truncate(time.Hour)
	minute := now.Truncate(time.Minute)
	if err := step("pools of sketches and maps", func() error {
		_, err := c.Exec(ctx, poolSQL())
		return err
	}); err != nil {
		return err
	}
	if err := step(fmt.Sprintf("rollup_1h: %d days", hourDays), func() error {
		return onBothHalves(ctx, url, rowsSQL("rollup_1h", "1 hour", hourDensity, hourRequests, 0.8),
			hour.Add(-time.Duration(hourDays)*24*time.Hour), hour)
	}); err != nil {
		return err
	}
	if err := step(fmt.Sprintf("rollup_1m: %d days", minuteDays), func() error {
		return onBothHalves(ctx, url, rowsSQL("rollup_1m", "1 minute", minDensity, minRequests, 0.5),
			minute.Add(-time.Duration(minuteDays)*24*time.Hour), minute)
	}); err != nil {
		return err
	}
	if err := step("rollup_1d from rollup_1h", func() error {
		return onBothHalves(ctx, url, dailySQL())
	}); err != nil {
		return err
	}
	if err := step("analyze", func() error {
		// Statistics for the columns the queries filter and group on.
		_, err := c.Exec(ctx, "ANALYZE zonestats.rollup_1m (zone_id, bucket), zonestats.rollup_1h (zone_id, bucket), zonestats.rollup_1d (zone_id, bucket)")
		return err
	}); err != nil {
		return err
	}
	var n1m, n1h, n1d int64
	var busyKeys float64
	var size string
	err = c.QueryRow(ctx, `SELECT (SELECT count(*) FROM zonestats.rollup_1m), (SELECT count(*) FROM zonestats.rollup_1h),
		(SELECT count(*) FROM zonestats.rollup_1d),
		(SELECT avg(array_length(akeys(requests_by_country), 1)) FROM zonestats.rollup_1m WHERE zone_id = $1),
		pg_size_pretty(pg_database_size(current_database()))`, busyZone).Scan(&n1m, &n1h, &n1d, &busyKeys, &size)
	if err != nil {
		return err
	}
	progress("queries: data set has %d minute, %d hour, %d day rows (database %s); busiest zone's minute rows have %.0f countries",
		n1m, n1h, n1d, size, busyKeys)
	return nil
}

type query struct {
	name   string // key prefix
	sql    string
	args   []any
	tenant bool // run as benchTenant, under row-level security
}

// benchTenant is the tenant role the _rls queries run as: a member of
// zonestats_tenant mapped to the busiest zone, among 10,000 other
// tenants' mappings.
const benchTenant = "bench_tenant"

// setupTenant creates benchTenant (cluster-wide, once) and the mapping
// table's rows, and returns the URL that connects as benchTenant.
func setupTenant(ctx context.Context, c *pgx.Conn, dbURL string) (string, error) {
	for _, s := range []string{
		`DO $$ BEGIN
		     IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_tenant') THEN
		         CREATE ROLE bench_tenant LOGIN IN ROLE zonestats_tenant;
		     END IF;
		 END $$`,
		fmt.Sprintf(`INSERT INTO zonestats.tenant_zones SELECT 'tenant_' || z, z FROM generate_series(1, %d) z`, queryZones),
		fmt.Sprintf(`INSERT INTO zonestats.tenant_zones VALUES ('%s', %d)`, benchTenant, busyZone),
		"ANALYZE zonestats.tenant_zones",
	} {
		if _, err := c.Exec(ctx, s); err != nil {
			return "", fmt.Errorf("tenant: %w", err)
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	u.User = url.User(benchTenant)
	return u.String(), nil
}

// sameResult checks that q gives the same rows on both connections.
func sameResult(ctx context.Context, a, b *pgx.Conn, q query) error {
	digest := func(c *pgx.Conn) (string, error) {
		var d string
		err := c.QueryRow(ctx, "SELECT coalesce(md5(string_agg(x::text, ',')), '') FROM ("+q.sql+") x", q.args...).Scan(&d)
		return d, err
	}
	da, err := digest(a)
	if err != nil {
		return err
	}
	db, err := digest(b)
	if err != nil {
		return err
	}
	if da != db {
		return fmt.Errorf("%s: the tenant's rows differ from the superuser's", q.name)
	}
	return nil
}

// runQueries builds the data set once, then per run times every query
// (after a warm-up) on one connection and reports p50 and p99 in ms.
func runQueries(ctx context.Context, e *env, runs int) (map[string][]float64, error) {
	hourDays, minuteDays, iterations := querySizes(e.full)
	url, drop, err := e.newDB(ctx, "queries")
	if err != nil {
		return nil, err
	}
	defer drop()
	now := time.Now().UTC()
	progress("queries: building the data set (%d zones, %d days hourly, %d days minute)", queryZones, hourDays, minuteDays)
	t0 := time.Now()
	if err := buildQueryData(ctx, url, now, hourDays, minuteDays); err != nil {
		return nil, err
	}
	out := map[string][]float64{
		"query_zones":       {queryZones},
		"query_days_hourly": {float64(hourDays)},
		"query_days_minute": {float64(minuteDays)},
		"query_build_s":     {time.Since(t0).Seconds()},
	}

	minute, hour := now.Truncate(time.Minute), now.Truncate(time.Hour)
	day := now.Truncate(24 * time.Hour).Add(-24 * time.Hour) // yesterday, UTC
	queries := []query{
		{"query_timeseries_1m", "SELECT * FROM zonestats.zone_timeseries($1, $2, $3, '1 minute')",
			[]any{int64(busyZone), minute.Add(-24 * time.Hour), minute}, false},
		{"query_timeseries_1m_rls", "SELECT * FROM zonestats.zone_timeseries($1, $2, $3, '1 minute')",
			[]any{int64(busyZone), minute.Add(-24 * time.Hour), minute}, true},
		{"query_timeseries_1h", "SELECT * FROM zonestats.zone_timeseries($1, $2, $3, '1 hour')",
			[]any{int64(busyZone), hour.Add(-30 * 24 * time.Hour), hour}, false},
		{"query_timeseries_1h_rls", "SELECT * FROM zonestats.zone_timeseries($1, $2, $3, '1 hour')",
			[]any{int64(busyZone), hour.Add(-30 * 24 * time.Hour), hour}, true},
		{"query_bi", `SELECT bucket, sum(requests), hll_cardinality(hll_union_agg(uniques))
			FROM zonestats.rollup_1h WHERE bucket >= $1 AND bucket < $2 GROUP BY bucket ORDER BY bucket`,
			[]any{day, day.Add(24 * time.Hour)}, false},
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	tenantURL, err := setupTenant(ctx, c, url)
	if err != nil {
		return nil, err
	}
	tc, err := pgx.Connect(ctx, tenantURL)
	if err != nil {
		return nil, err
	}
	defer tc.Close(context.WithoutCancel(ctx))
	conn := func(q query) *pgx.Conn {
		if q.tenant {
			return tc
		}
		return c
	}
	for _, q := range queries {
		rows, err := timeQuery(ctx, conn(q), q, 1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
		if q.tenant {
			if err := sameResult(ctx, c, tc, q); err != nil {
				return nil, err
			}
		}
		progress("queries: %s returns %d rows", q.name, rows)
	}
	for i := 1; i <= runs; i++ {
		for _, q := range queries {
			if _, err := timeQuery(ctx, conn(q), q, 10); err != nil { // warm-up
				return nil, err
			}
			d := make([]float64, iterations)
			for j := range d {
				t := time.Now()
				if _, err := timeQuery(ctx, conn(q), q, 1); err != nil {
					return nil, err
				}
				d[j] = float64(time.Since(t).Microseconds()) / 1000
			}
			p50, p99 := percentile(d, 50), percentile(d, 99)
			out[q.name+"_p50_ms"] = append(out[q.name+"_p50_ms"], p50)
			out[q.name+"_p99_ms"] = append(out[q.name+"_p99_ms"], p99)
			progress("run %d/%d  %-26s p50 %.2f ms, p99 %.2f ms (%d iterations)", i, runs, q.name, p50, p99, iterations)
		}
		// Row-level security's cost, within the run.
		rls, plain := out["query_timeseries_1m_rls_p99_ms"], out["query_timeseries_1m_p99_ms"]
		if len(rls) == i && len(plain) == i && plain[i-1] > 0 {
			out["query_timeseries_1m_rls_vs_plain"] = append(out["query_timeseries_1m_rls_vs_plain"], rls[i-1]/plain[i-1])
		}
	}
	return out, nil
}

// timeQuery runs q n times, reading every row; it returns the row count.
func timeQuery(ctx context.Context, c *pgx.Conn, q query, n int) (int, error) {
	rows := 0
	for i := 0; i < n; i++ {
		r, err := c.Query(ctx, q.sql, q.args...)
		if err != nil {
			return 0, err
		}
		rows = 0
		for r.Next() {
			rows++
		}
		if err := r.Err(); err != nil {
			return 0, err
		}
	}
	return rows, nil
}

// percentile is the nearest-rank percentile of d.
func percentile(d []float64, p float64) float64 {
	s := append([]float64(nil), d...)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
