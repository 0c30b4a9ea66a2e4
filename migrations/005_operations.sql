-- Operations: the rollup lag, for psql and the loader's metrics. Expiry
-- drops and rewrites partitions only between rollup chunks, and skips a
-- partition as busy when its DROP or rewrite deadlocked (Citus).
-- zone_timeseries reads 1-minute steps straight from the minute rows.

{{ template "sql/functions/rollup_lag.sql" . }}
{{ template "sql/functions/expire_partition.sql" . }}
{{ template "sql/functions/make_columnar.sql" . }}
{{ template "sql/procedures/expire.sql" . }}
{{ template "sql/functions/zone_timeseries.sql" . }}
