-- The loader COPYs each batch straight into the raw partition that its
-- rows land in (raw_partition_for_now), not through raw_events: PostgreSQL
-- then skips routing every row through the parent (~15 % of a COPY's
-- server time on one session). The loader role gets INSERT on the same
-- columns of every raw range partition, now and as partitions are made.
-- On Citus nothing changes: the function returns NULL there and the loader
-- COPYs into raw_events, whose shards the coordinator fills.

{{ template "sql/functions/raw_partition_for_now.sql" . }}
{{ template "sql/functions/create_time_partitions.sql" . }}

DO $$
DECLARE
    p regclass;
BEGIN
    IF zonestats_internal.citus_enabled() THEN
        RETURN;
    END IF;
    FOR p IN SELECT partition FROM zonestats_internal.time_partitions
             WHERE parent_table = 'zonestats_internal.raw_events'::regclass LOOP
        EXECUTE format('GRANT INSERT (ts, zone_id, client_ip, country, colo, method, status, '
                       'content_type, bytes, cache_status, ssl_protocol, ip_class, threat, '
                       'page_view, browser, kafka_partition, kafka_offset) ON %s TO zonestats_loader', p);
    END LOOP;
END
$$;
