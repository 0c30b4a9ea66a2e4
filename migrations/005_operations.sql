-- Operations: the rollup lag, for psql and the loader's metrics.

{{ template "sql/functions/rollup_lag.sql" . }}
