# zonestats — `make demo` runs the whole pipeline on embedded defaults,
# `make test` runs the test suite. Both install what they need first.

GO      ?= go
BIN     := bin/zonestats
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PG_MAJOR ?= 15
PG_CONFIG ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
# PostgreSQL server (hstore is part of it), postgresql-hll for uniques, the
# server headers to build the C library in ext/.
DEB_PACKAGES := postgresql-$(PG_MAJOR) postgresql-$(PG_MAJOR)-hll postgresql-server-dev-$(PG_MAJOR)

.PHONY: all build deps ext install-ext demo test vet fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/zonestats

# Installs the Debian packages that are missing (nothing if all are there).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The C library (hot aggregates of the rollups), installed into PostgreSQL's
# $libdir; every PostgreSQL server (every Citus node) that runs zonestats needs it.
ext:
	$(MAKE) -C ext PG_CONFIG=$(PG_CONFIG)

install-ext: deps ext
	$(SUDO) $(MAKE) -C ext PG_CONFIG=$(PG_CONFIG) install

demo: install-ext build
	$(BIN) demo

vet:
	$(GO) vet ./...

# Unit packages under the race detector, then every package (the
# integration tests start their own PostgreSQL and Kafka broker).
test: install-ext vet
	$(GO) test -race -count=1 ./internal/gen
	$(GO) test -race -count=1 -run 'JSON|Parse|Decode' ./loader
	$(GO) test -count=1 -timeout 20m ./...

# A bounded run of the decoder fuzzers.
fuzz:
	$(GO) test ./loader -run '^$$' -fuzz FuzzDecodeJSON -fuzztime 60s

# Benchmarks: quick by default (< 5 min), `make bench FULL=1` for the full run.
bench: install-ext
	$(GO) run ./bench $(if $(FULL),-full)

clean:
	rm -rf bin bench/out
	$(MAKE) -C ext PG_CONFIG=$(PG_CONFIG) clean
