# Every PostgreSQL node of the Docker Compose cluster (coordinator and
# workers): the official Citus image for PostgreSQL 15, which already has
# Citus and postgresql-hll, plus pg_cron (the coordinator schedules the
# rollups with it) and zonestats' C library from ext/, which every node
# needs. Build context: the repository root
# (docker build -f docker/postgres.Dockerfile .).
#
# Citus 13.2.0 on PostgreSQL 15.14: Citus publishes PostgreSQL 15 images up
# to 13.2 (14.0 dropped PostgreSQL 15).
ARG CITUS_IMAGE=citusdata/citus:13.2.0-pg15

# The C library, built with PGXS against the server headers of the same
# major version (minor releases keep the ABI); the compilers stay here.
FROM ${CITUS_IMAGE} AS ext
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential "postgresql-server-dev-$PG_MAJOR" \
    && rm -rf /var/lib/apt/lists/*
COPY ext/ /src/ext/
RUN make -C /src/ext PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" \
    && make -C /src/ext PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" DESTDIR=/out install

# pg_cron from the PostgreSQL apt repository the image is installed from;
# postgresql-hll comes with the Citus image (checked).
FROM ${CITUS_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-$PG_MAJOR-cron" \
    && rm -rf /var/lib/apt/lists/* \
    && test -f "/usr/share/postgresql/$PG_MAJOR/extension/hll.control"
COPY --from=ext /out/ /

# Settings of every Citus node, added to the template initdb copies, where
# the Citus image already preloads citus: logical decoding for non-blocking
# shard moves, prepared transactions for two-phase commit, and Citus'
# output plugin where the server restricts output plugins
# (output_plugin_libraries, PostgreSQL 15.19 and later). The coordinator
# adds pg_cron on its command line (compose.yml).
RUN { \
        echo "wal_level = logical"; \
        echo "max_prepared_transactions = 200"; \
        echo "max_worker_processes = 32"; \
        echo "max_replication_slots = 32"; \
        echo "max_wal_senders = 32"; \
        if postgres --describe-config | grep -q '^output_plugin_libraries[[:space:]]'; then \
            echo "output_plugin_libraries = 'pgoutput, test_decoding, citus'"; \
        fi; \
    } >> /usr/share/postgresql/postgresql.conf.sample
