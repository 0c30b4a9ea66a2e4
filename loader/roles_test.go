package loader_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"zonestats/internal/testenv"
)

// TestLoaderAndRollupsUnderTheirRoles runs the real loader as a member of
// zonestats_loader, the rollups and retention as a member of
// zonestats_admin, and reads as a member of zonestats_reader: everything
// loads exactly once and rolls up exactly, and the loader's role may do
// nothing but load.
func TestLoaderAndRollupsUnderTheirRoles(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDB(t)
	super := testenv.Pool(t, url)
	loaderURL := testenv.AsRole(url, testenv.LoginRole(t, "zs_loader", "zonestats_loader"))
	adminURL := testenv.AsRole(url, testenv.LoginRole(t, "zs_admin", "zonestats_admin"))
	readerURL := testenv.AsRole(url, testenv.LoginRole(t, "zs_reader", "zonestats_reader"))

	_, brokers := testenv.Kafka(t, topic, 3)
	cfg := genConfig(7)
	cfg.BadShare = 0.01 // dead letters too
	g := produce(t, brokers, cfg, 20000)
	stop := startLoader(t, testenv.Pool(t, loaderURL), brokers, 2000)
	waitLoaded(t, super, brokers, 2*time.Minute)
	stop()
	events, dead := checkExactlyOnce(t, super, brokers)
	if events+dead != 20000 || dead != int64(g.Malformed()) || dead == 0 {
		t.Fatalf("events %d + dead letters %d; produced 20000 of which %d malformed", events, dead, g.Malformed())
	}

	admin := testenv.Conn(t, adminURL)
	for _, s := range []string{"CALL zonestats.run_rollups(true)", "CALL zonestats.expire()"} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("admin: %s: %v", s, err)
		}
	}
	testenv.CheckRollups(t, testenv.Conn(t, url))
	reader := testenv.Conn(t, readerURL)
	var requests int64
	if err := reader.QueryRow(ctx, "SELECT sum(requests)::bigint FROM zonestats.traffic_daily").Scan(&requests); err != nil || requests != events {
		t.Fatalf("reader: %d requests in traffic_daily (%v), loaded %d", requests, err, events)
	}

	loaderConn := testenv.Conn(t, loaderURL)
	for _, s := range []string{
		"SELECT count(*) FROM zonestats_internal.raw_events",
		"SELECT count(*) FROM zonestats.rollup_1m",
		"SELECT count(*) FROM zonestats.traffic_hourly",
		"SELECT count(*) FROM zonestats.dead_letters",
		"SELECT * FROM zonestats.zone_summary(1, now() - interval '1 day', now())",
		"DELETE FROM zonestats.dead_letters",
		"DELETE FROM zonestats_internal.kafka_offsets",
		"UPDATE zonestats_internal.raw_events SET country = 'XX'",
		"TRUNCATE zonestats_internal.raw_events",
		"UPDATE zonestats.settings SET raw_retention = '1 hour'",
		"UPDATE zonestats_internal.rollup_state SET last_event_id = 0",
		"CALL zonestats.run_rollups()",
		"CALL zonestats.expire()",
		"SELECT zonestats_internal.maintain_partitions()",
	} {
		_, err := loaderConn.Exec(ctx, s)
		if err == nil || !(strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "must be owner")) {
			t.Errorf("loader role: %s: %v, want permission denied", s, err)
		}
	}
	// Choosing event_id is refused (on plain PostgreSQL: on Citus whole
	// rows go to the shards, so the loader may insert every column).
	if testenv.OnCitus() {
		return
	}
	if _, err := loaderConn.Exec(ctx, "INSERT INTO zonestats_internal.raw_events (event_id, ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status, ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset) VALUES (1, now(), 1, '1.2.3.4', 'US', 'SFO', 'GET', 200, 'html', 1, 'hit', 'none', 'clean', '', true, 'x', 0, 0)"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("loader role: INSERT with event_id: %v, want permission denied", err)
	}
	_, err := loaderConn.CopyFrom(ctx, pgx.Identifier{"zonestats_internal", "raw_events"}, []string{"event_id"}, pgx.CopyFromRows([][]any{{int64(1)}}))
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("loader role: COPY raw_events (event_id): %v, want permission denied", err)
	}
}
