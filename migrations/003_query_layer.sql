-- zonestats query layer: dashboard functions that are exact at the edges of
-- a range, views for BI tools, least-privilege roles, and per-tenant
-- row-level security on the rollups.

-- On Citus: DDL on distributed tables over one connection per node, so
-- that the functions created after it can be propagated in the same
-- transaction (no effect on plain PostgreSQL).
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';

-- Group roles (NOLOGIN; users are granted into them). Roles belong to the
-- whole cluster and several databases may be migrated: create them only if
-- absent (and tolerate a concurrent migration creating them first).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('zonestats_loader', 'zonestats: COPY events into the raw table, write Kafka offsets, dead letters and offset gaps'),
        ('zonestats_reader', 'zonestats: read the rollups, BI views and query functions of every zone (no raw events)'),
        ('zonestats_tenant', 'zonestats: like zonestats_reader, but only the zones zonestats.tenant_zones maps to the current role'),
        ('zonestats_admin', 'zonestats: run the rollups and retention, change settings, map tenants to zones; reads like zonestats_reader')
    ) AS v(name, comment) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database
            END;
        END IF;
        EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, r.comment);
    END LOOP;
    IF NOT pg_catalog.pg_has_role('zonestats_admin', 'zonestats_reader', 'MEMBER') THEN
        GRANT zonestats_reader TO zonestats_admin;
    END IF;
END
$$;

-- zonestats functions resolve hll and hstore in schema public: only
-- trusted roles may create objects there, or a tenant could plant a
-- function that shadows one of them. PostgreSQL 15 creates databases this
-- way; a database upgraded from an older version may still let everyone.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Which zones a tenant sees: the role that runs the queries (current_user:
-- the login role, or the role set with SET ROLE) and its zones. The rollup
-- tables' row-level security reads it. (Will be a Citus reference table.)
CREATE TABLE zonestats.tenant_zones (
    role_name name NOT NULL,
    zone_id   bigint NOT NULL,
    PRIMARY KEY (role_name, zone_id)
);
COMMENT ON TABLE zonestats.tenant_zones IS
    'zones each tenant role may read: members of zonestats_tenant see the rollup rows of the zones mapped to current_user, and no others';
COMMENT ON COLUMN zonestats.tenant_zones.role_name IS 'a database role (current_user when it queries), member of zonestats_tenant';

-- BI views filter 1-day rollups on the UTC date.
-- (DDL on tables Citus distributes runs inside DO blocks in migrations:
-- Citus forwards some of it to the workers as the statement's text, and a
-- migration arrives as one multi-statement text.)
DO $$
BEGIN
    CREATE INDEX rollup_1d_day ON zonestats.rollup_1d (((bucket AT TIME ZONE 'UTC')::date));
END
$$;

-- On Citus: a copy on every node, next to the rollup shards whose policies
-- read it.
DO $$
BEGIN
    IF zonestats_internal.citus_enabled() THEN
        PERFORM create_reference_table('zonestats.tenant_zones');
    END IF;
END
$$;

{{ template "sql/functions/tenant_zone_ids.sql" . }}

-- Row-level security: readers (and admins, who are readers) see every
-- zone, tenants the zones mapped to them; nobody else sees a row. The
-- tables' owner (migrations, rollups) is not subject to it. Policies stay
-- simple for Citus, which refuses subqueries in policies of distributed
-- tables: a role, and a function reading the mapping table.
DO $$
BEGIN
    ALTER TABLE zonestats.rollup_1m ENABLE ROW LEVEL SECURITY;
    ALTER TABLE zonestats.rollup_1h ENABLE ROW LEVEL SECURITY;
    ALTER TABLE zonestats.rollup_1d ENABLE ROW LEVEL SECURITY;
    CREATE POLICY readers_all_zones ON zonestats.rollup_1m FOR SELECT TO zonestats_reader USING (true);
    CREATE POLICY readers_all_zones ON zonestats.rollup_1h FOR SELECT TO zonestats_reader USING (true);
    CREATE POLICY readers_all_zones ON zonestats.rollup_1d FOR SELECT TO zonestats_reader USING (true);
    CREATE POLICY tenants_own_zones ON zonestats.rollup_1m FOR SELECT TO zonestats_tenant
        USING (zone_id = ANY (zonestats_internal.tenant_zone_ids()));
    CREATE POLICY tenants_own_zones ON zonestats.rollup_1h FOR SELECT TO zonestats_tenant
        USING (zone_id = ANY (zonestats_internal.tenant_zone_ids()));
    CREATE POLICY tenants_own_zones ON zonestats.rollup_1d FOR SELECT TO zonestats_tenant
        USING (zone_id = ANY (zonestats_internal.tenant_zone_ids()));
    ALTER TABLE zonestats.tenant_zones ENABLE ROW LEVEL SECURITY;
    CREATE POLICY readers_all ON zonestats.tenant_zones FOR SELECT TO zonestats_reader USING (true);
    CREATE POLICY tenants_own ON zonestats.tenant_zones FOR SELECT TO zonestats_tenant USING (role_name = current_user);
    CREATE POLICY admins_manage ON zonestats.tenant_zones FOR ALL TO zonestats_admin USING (true) WITH CHECK (true);
END
$$;

-- Privileges. Nothing is granted to PUBLIC; partitions are reached only
-- through their parent tables.
GRANT USAGE ON SCHEMA zonestats, zonestats_internal
    TO zonestats_loader, zonestats_reader, zonestats_tenant, zonestats_admin;
-- The loader: its COPY columns (event_id and loaded_at keep their
-- defaults), offsets, offset gaps, dead letters.
GRANT INSERT (ts, zone_id, client_ip, country, colo, method, status, content_type, bytes, cache_status,
              ssl_protocol, ip_class, threat, page_view, browser, kafka_partition, kafka_offset)
    ON zonestats_internal.raw_events TO zonestats_loader;
GRANT USAGE ON SEQUENCE zonestats_internal.raw_events_event_id_seq TO zonestats_loader;
GRANT SELECT, INSERT, UPDATE ON zonestats_internal.kafka_offsets TO zonestats_loader;
GRANT INSERT ON zonestats_internal.offset_gaps TO zonestats_loader;
GRANT INSERT (topic, partition, kafka_offset, message_key, payload, reason) ON zonestats.dead_letters TO zonestats_loader;
-- On Citus the coordinator computes the defaults and writes whole rows to
-- the shards, so there the loader needs INSERT on every column of its two
-- tables (it could then choose event_id; it is trusted with that).
DO $$
BEGIN
    IF zonestats_internal.citus_enabled() THEN
        GRANT INSERT ON zonestats_internal.raw_events, zonestats.dead_letters TO zonestats_loader;
        GRANT USAGE ON SEQUENCE zonestats.dead_letters_id_seq TO zonestats_loader;
    END IF;
END
$$;
-- Readers and tenants: rollups (row-level security decides which rows),
-- settings (retention decides which level answers), the mapping; views
-- and query functions are granted where they are defined.
GRANT SELECT ON zonestats.rollup_1m, zonestats.rollup_1h, zonestats.rollup_1d, zonestats.settings,
                zonestats.tenant_zones
    TO zonestats_reader, zonestats_tenant;
-- Admins: settings, tenants, what the loader recorded; the procedures are
-- granted where they are defined.
GRANT UPDATE ON zonestats.settings TO zonestats_admin;
GRANT INSERT, UPDATE, DELETE ON zonestats.tenant_zones TO zonestats_admin;
GRANT SELECT ON zonestats.dead_letters, zonestats_internal.kafka_offsets, zonestats_internal.offset_gaps,
                zonestats_internal.rollup_state, zonestats_internal.time_partitions
    TO zonestats_admin;

-- Internal functions are not for PUBLIC; each is granted to the role that
-- needs it where it is defined (and a new one revokes PUBLIC's EXECUTE
-- there: a test checks).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA zonestats_internal FROM PUBLIC;

-- Replaced by range_pieces.
DROP FUNCTION IF EXISTS zonestats_internal.rollup_level(timestamptz, timestamptz, interval);

{{ template "sql/functions/maintain_partitions.sql" . }}
{{ template "sql/functions/rollup_window.sql" . }}
{{ template "sql/procedures/run_rollups.sql" . }}
{{ template "sql/functions/expire_default_rows.sql" . }}
{{ template "sql/functions/round_edge.sql" . }}
{{ template "sql/functions/query_range.sql" . }}
{{ template "sql/functions/range_pieces.sql" . }}
{{ template "sql/functions/top.sql" . }}
{{ template "sql/functions/top_keys.sql" . }}
{{ template "sql/functions/zone_summary.sql" . }}
{{ template "sql/functions/zone_top.sql" . }}
{{ template "sql/views/traffic_hourly.sql" . }}
{{ template "sql/views/traffic_daily.sql" . }}
{{ template "sql/views/country_daily.sql" . }}
{{ template "sql/views/status_daily.sql" . }}
{{ template "sql/views/content_type_daily.sql" . }}
{{ template "sql/views/colo_daily.sql" . }}
{{ template "sql/views/ssl_protocol_daily.sql" . }}
{{ template "sql/views/ip_class_daily.sql" . }}
{{ template "sql/views/threat_daily.sql" . }}
{{ template "sql/views/browser_daily.sql" . }}

SELECT zonestats_internal.maintain_partitions();
