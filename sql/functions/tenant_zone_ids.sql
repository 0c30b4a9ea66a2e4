CREATE OR REPLACE FUNCTION zonestats_internal.tenant_zone_ids()
RETURNS bigint[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- On Citus the policy runs inside the query of a rollup shard, on a worker,
-- and reads the worker's own copy of the reference table tenant_zones: a
-- local read, not a distributed query (no effect on plain PostgreSQL).
SET citus.allow_nested_distributed_execution = on
AS $$
    -- The zones zonestats.tenant_zones maps to the current role: what the
    -- tenants' row-level security policies allow. A function, not a
    -- subquery in the policy: Citus refuses subqueries in policies of
    -- distributed tables. As an array it is computed once per scan.
    SELECT coalesce(array_agg(t.zone_id), '{}') FROM zonestats.tenant_zones t WHERE t.role_name = current_user
$$;
COMMENT ON FUNCTION zonestats_internal.tenant_zone_ids() IS
    'zone ids mapped to current_user in zonestats.tenant_zones (row-level security of tenants)';
REVOKE ALL ON FUNCTION zonestats_internal.tenant_zone_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zonestats_internal.tenant_zone_ids() TO zonestats_tenant;
