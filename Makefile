# zonestats — `make demo` runs the whole pipeline on embedded defaults,
# `make test` runs the test suite. Both install what they need first.

GO      ?= go
BIN     := bin/zonestats
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PG_MAJOR ?= 15
PG_CONFIG ?= /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config
# PostgreSQL server (hstore is part of it), postgresql-hll for uniques, the
# server headers to build the C library in ext/, pg_cron (optional
# scheduler of the rollups, tested).
DEB_PACKAGES := postgresql-$(PG_MAJOR) postgresql-$(PG_MAJOR)-hll postgresql-server-dev-$(PG_MAJOR) postgresql-$(PG_MAJOR)-cron

.PHONY: all build deps ext install-ext demo test test-citus test-faults vet fuzz bench clean

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
# Then the Citus suite when Citus is installed (it is not a Debian package:
# see the README), else one loud line saying it was skipped.
test: install-ext vet
	$(GO) test -race -count=1 ./internal/gen
	$(GO) test -race -count=1 -run 'JSON|Parse|Decode' ./loader
	$(GO) test -count=1 -timeout 20m ./...
	@if [ -f "$$($(PG_CONFIG) --pkglibdir)/citus.so" ]; then \
		$(MAKE) --no-print-directory test-citus; \
	else \
		echo "*** Citus suite SKIPPED: the Citus extension is not installed for $$($(PG_CONFIG) --version) ($$($(PG_CONFIG) --pkglibdir)/citus.so not found); install Citus (README, section Citus) and run make test-citus ***"; \
	fi

# The same tests on a throwaway Citus cluster (a coordinator and two
# workers), plus the Citus-only ones. Fails when Citus is not installed.
test-citus: install-ext
	ZONESTATS_TEST_CITUS=1 $(GO) test -count=1 -timeout 40m ./migrations ./loader

# The fault suite: the fault tests with 20 loader kills, each decoder
# fuzzer for FUZZTIME, then a table of faults injected, events produced,
# counted, lost, duplicated and dead-lettered, and fuzz executions. Fails if
# an event was lost or duplicated (or a test or fuzzer failed).
# CITUS=1 runs the fault tests on a Citus cluster (coordinator and two
# workers; the tests that stop or reconfigure the only server skip there).
FUZZTIME ?= 30s
FAULTS := bin/faults
CITUS ?=
test-faults: install-ext
	rm -rf $(FAULTS) && mkdir -p $(FAULTS)
	ZONESTATS_FAULT_REPORT=$(CURDIR)/$(FAULTS)/report.jsonl ZONESTATS_FAULT_KILLS=20 ZONESTATS_TEST_CITUS=$(CITUS) \
		$(GO) test -count=1 -timeout 30m -run 'Killed|Survive|Refuses|StopRestart|RetentionGap|ReadOnly|OutOfConnections|Concurrently' ./loader
	@for f in FuzzDecodeJSON FuzzDecodeCapnp FuzzParseTimestamp FuzzParseIP; do \
		echo "fuzzing $$f for $(FUZZTIME)"; \
		$(GO) test ./loader -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) > $(FAULTS)/fuzz-$$f.log 2>&1 \
			|| { cat $(FAULTS)/fuzz-$$f.log; exit 1; }; \
	done
	$(GO) run ./internal/faultreport -faults $(FAULTS)/report.jsonl $(FAULTS)/fuzz-*.log

# The Go code of the Cap'n Proto event schema (loader/schema/event.capnp →
# event.capnp.go, committed): Debian's capnp compiler (installed if
# missing) with capnpc-go of the capnp module version go.mod requires, built
# from the module (not `go install …@version`, which ignores go.mod's
# replace of a capnp dependency the module proxy does not serve).
CAPNP_GO := capnproto.org/go/capnp/v3
.PHONY: capnp
capnp:
	@dpkg-query -W -f='$${Status}' capnproto 2>/dev/null | grep -q 'install ok installed' || { \
		echo "installing: capnproto"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq capnproto; }
	$(GO) build -o bin/capnpc-go $(CAPNP_GO)/capnpc-go
	capnp compile --no-standard-import -I"$$($(GO) list -m -f '{{.Dir}}' $(CAPNP_GO))/std" \
		-o$(CURDIR)/bin/capnpc-go loader/schema/event.capnp

# A bounded run of the decoder fuzzers.
fuzz:
	$(GO) test ./loader -run '^$$' -fuzz FuzzDecodeJSON -fuzztime 60s

# Benchmarks: quick by default (< 5 min), `make bench FULL=1` for the full run.
bench: install-ext
	$(GO) run ./bench $(if $(FULL),-full)

clean:
	rm -rf bin bench/out
	$(MAKE) -C ext PG_CONFIG=$(PG_CONFIG) clean
