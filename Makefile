# Panorama: developer entry points. `make` alone lists them.
#
#   make run    the whole service on 127.0.0.1:8080 with a private PostgreSQL
#               and broker (state in .panorama/), and simulated traffic
#               (make run SIMULATE=off for none)
#   make test   what CI runs: fmt check, clippy, the full test suite, then
#               the fault harness's short variant (make faults-short)
#   make faults the fault harness's long run (release build): 1,000,000
#               events posted while serve processes, PostgreSQL and the broker
#               are killed and crashed, then every acknowledged event checked;
#               prints one JSON summary (docs/reliability.md)
#   make faults-short
#               its short variant (debug build, 20,000 events, 3 service
#               kills, 1 PostgreSQL restart, 1 broker kill, one of every other
#               fault; a few minutes); fails on any loss
#   make fuzz   every parser's fuzz target (crates/fuzz) for a minute each,
#               release build (FUZZ_SECONDS=N to change, FUZZ_TARGETS to pick
#               some); fails on the first panic or broken property
#   make api-fuzz
#               Schemathesis against the running API with agent, channel and
#               admin tokens (tests/tests/api_fuzz.rs), long run: 200 cases
#               per operation and up to 5 minutes per token
#               (API_FUZZ_EXAMPLES, API_FUZZ_SECONDS, API_FUZZ_SEED to
#               change); fails on any 5xx or answer the document does not
#               allow. Its short run is part of `make test`.
#   make bench  the benchmark (release build, ~15 min; BENCH_ARGS=--quick
#               for a minute or two): the projector alone, end to end and
#               single-event freshness against a binary COPY of the same
#               rows, the read routes under wrk against pgbench running
#               their SQL, CPU per event and idle CPU per process, on the
#               dev stack's durable settings; writes BENCHMARKS.md
#
# Both install what they need once per machine: the OpenSSL and libcurl
# headers for the Kafka client's TLS and SASL (scripts/ensure-build-deps.sh)
# and PostgreSQL through apt-get (scripts/ensure-postgres.sh), and the Nisshi
# broker through cargo into ~/.cache/panorama (scripts/ensure-nisshi.sh);
# every target that compiles installs the first; `make test` also promtool
# (scripts/ensure-promtool.sh) and Chromium with chromedriver, for the
# console's browser test (scripts/ensure-chromium.sh), `make bench` wrk
# (scripts/ensure-wrk.sh), through apt-get, and
# Schemathesis, the API fuzzer, and Segment's Python SDK (the Segment
# ingest test sends its calls with it), through pip into ~/.cache/panorama
# (scripts/ensure-schemathesis.sh, scripts/ensure-analytics-python.sh).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

CARGO ?= cargo

# The OpenSSL and libcurl headers and pkg-config, which the Kafka client
# links against for TLS and SASL: installed before anything compiles.
ENSURE_BUILD = bash scripts/ensure-build-deps.sh

# Exports the PostgreSQL bin dir and the nisshi binary for the test kit and the
# dev stack, installing them the first time. Assignments on their own lines so
# that a failing install stops the recipe (`export X="$(cmd)"` would hide it).
ENSURE_DEPS = \
	$(ENSURE_BUILD); \
	PANORAMA_PG_BINDIR="$$(bash scripts/ensure-postgres.sh)"; \
	PANORAMA_NISSHI_BIN="$$(bash scripts/ensure-nisshi.sh)"; \
	export PANORAMA_PG_BINDIR PANORAMA_NISSHI_BIN; \
	echo "PANORAMA_PG_BINDIR=$$PANORAMA_PG_BINDIR"; \
	echo "PANORAMA_NISSHI_BIN=$$PANORAMA_NISSHI_BIN"

# promtool checks deploy/prometheus.yml and deploy/alerts.yml in the tests.
ENSURE_PROMTOOL = \
	PANORAMA_PROMTOOL="$$(bash scripts/ensure-promtool.sh)"; \
	export PANORAMA_PROMTOOL; \
	echo "PANORAMA_PROMTOOL=$$PANORAMA_PROMTOOL"

# Headless Chromium and chromedriver drive the agent console in the tests.
ENSURE_CHROMIUM = \
	PANORAMA_CHROMEDRIVER="$$(bash scripts/ensure-chromium.sh)"; \
	export PANORAMA_CHROMEDRIVER; \
	echo "PANORAMA_CHROMEDRIVER=$$PANORAMA_CHROMEDRIVER"

# Schemathesis fuzzes the HTTP API against its OpenAPI document in the tests.
ENSURE_SCHEMATHESIS = \
	PANORAMA_SCHEMATHESIS="$$(bash scripts/ensure-schemathesis.sh)"; \
	export PANORAMA_SCHEMATHESIS; \
	echo "PANORAMA_SCHEMATHESIS=$$PANORAMA_SCHEMATHESIS"

# Segment's official Python SDK drives the Segment-compatible ingest test.
ENSURE_ANALYTICS_PYTHON = \
	PANORAMA_ANALYTICS_PYTHON="$$(bash scripts/ensure-analytics-python.sh)"; \
	export PANORAMA_ANALYTICS_PYTHON; \
	echo "PANORAMA_ANALYTICS_PYTHON=$$PANORAMA_ANALYTICS_PYTHON"

# The fault harness (crates/faults, docs/reliability.md). Every figure can be
# changed on the command line, e.g. make faults FAULTS_EVENTS=2000000
# FAULTS_SEED=7 FAULTS_ARGS='--clients 8 --crash-points 10'; FAULTS_SEED empty
# draws a seed (the summary prints it).
FAULTS_EVENTS ?= 1000000
FAULTS_SERVICE_KILLS ?= 20
FAULTS_PG_RESTARTS ?= 5
FAULTS_BROKER_KILLS ?= 5
FAULTS_SHORT_EVENTS ?= 20000
FAULTS_SHORT_SERVICE_KILLS ?= 3
FAULTS_SHORT_PG_RESTARTS ?= 1
FAULTS_SHORT_BROKER_KILLS ?= 1
FAULTS_SEED ?=
FAULTS_ARGS ?=

# The fuzz targets' long run (crates/fuzz): seconds per target, and which
# targets (empty: all; `target/release/panorama-fuzz --list` names them).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

# The API fuzzer's long run (tests/tests/api_fuzz.rs): test cases per
# operation and phase, a time budget in seconds per token (spent repeating
# the fuzzing and stateful phases), and the seed (empty: a random one; the
# report prints it, so a failure can be replayed with API_FUZZ_SEED=N).
API_FUZZ_EXAMPLES ?= 200
API_FUZZ_SECONDS ?= 300
API_FUZZ_SEED ?=

# Cargo's target directory (CARGO_TARGET_DIR or ./target), for the binaries.
TARGET_DIR = target_dir="$$($(CARGO) metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"; \
	target_dir="$${target_dir:-target}"

# The short variant on debug builds: cargo test has built most of it already.
# Run after ENSURE_DEPS (it needs PostgreSQL and the broker).
FAULTS_SHORT = \
	$(CARGO) build -p panorama -p panorama-faults; \
	$(TARGET_DIR); \
	"$$target_dir/debug/panorama-faults" --profile ci \
		--panorama-bin "$$target_dir/debug/panorama" \
		--events $(FAULTS_SHORT_EVENTS) \
		--service-kills $(FAULTS_SHORT_SERVICE_KILLS) \
		--pg-restarts $(FAULTS_SHORT_PG_RESTARTS) \
		--broker-kills $(FAULTS_SHORT_BROKER_KILLS) \
		$(if $(FAULTS_SEED),--seed $(FAULTS_SEED)) \
		--json-out "$$target_dir/faults-short.json" $(FAULTS_ARGS)

.PHONY: run test faults faults-short fuzz api-fuzz bench build fmt lint openapi settings deps stop clean help

# A release build, not a debug one: `make run` is where people post bursts of
# events and read /metrics, and a debug build's latencies and throughput would
# tell them the wrong story. The price is one extra compile the first time.
run: ## start PostgreSQL, the broker, panorama serve on 127.0.0.1:8080 and the simulator (SIMULATE=off: none; Ctrl-C stops all)
	@$(ENSURE_DEPS); \
	$(CARGO) build --release -p panorama; \
	target_dir="$$($(CARGO) metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"; \
	PANORAMA_SIMULATE="$${SIMULATE:-$${PANORAMA_SIMULATE:-on}}" \
	PANORAMA_BIN="$${target_dir:-target}/release/panorama" exec bash scripts/dev-stack.sh run

# The test kit starts its own PostgreSQL cluster and broker per test run, so
# nothing is started here; it only needs to know where the binaries are.
# fmt goes first: it needs nothing installed and fails in a second.
test: ## what CI runs: cargo fmt --check, clippy -D warnings, cargo test against real PostgreSQL + broker, make faults-short
	$(CARGO) fmt --all --check
	@$(ENSURE_DEPS); \
	$(ENSURE_PROMTOOL); \
	$(ENSURE_CHROMIUM); \
	$(ENSURE_SCHEMATHESIS); \
	$(ENSURE_ANALYTICS_PYTHON); \
	set -x; \
	$(CARGO) clippy --workspace --all-targets -- -D warnings; \
	$(CARGO) test --workspace; \
	$(FAULTS_SHORT)

# The long run of the fault harness: release builds, so the figures are
# those of a real deployment; tens of minutes or more on 2 cores.
faults: ## fault harness, long run: 1M events, 20 service kills, 5 PostgreSQL restarts, 5 broker kills (FAULTS_* to change)
	@$(ENSURE_DEPS); \
	set -x; \
	$(CARGO) build --release -p panorama -p panorama-faults; \
	$(TARGET_DIR); \
	"$$target_dir/release/panorama-faults" --profile long \
		--panorama-bin "$$target_dir/release/panorama" \
		--events $(FAULTS_EVENTS) \
		--service-kills $(FAULTS_SERVICE_KILLS) \
		--pg-restarts $(FAULTS_PG_RESTARTS) \
		--broker-kills $(FAULTS_BROKER_KILLS) \
		$(if $(FAULTS_SEED),--seed $(FAULTS_SEED)) \
		--json-out "$$target_dir/faults-long.json" $(FAULTS_ARGS)

faults-short: ## fault harness, CI variant: 20k events, 3 service kills, 1 PostgreSQL restart, 1 broker kill, one of each other fault
	@$(ENSURE_DEPS); \
	set -x; \
	$(FAULTS_SHORT)

# The short run of every target is part of `cargo test` (a second each);
# this is the long one, on a release build for the inputs per second.
fuzz: ## fuzz every parser FUZZ_SECONDS (60) seconds each on stable Rust: channel adapters, MIME, multipart, wire format, identifiers, contract
	@$(ENSURE_BUILD)
	$(CARGO) build --release -p panorama-fuzz
	@$(TARGET_DIR); \
	set -x; \
	"$$target_dir/release/panorama-fuzz" --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The short run (a fixed seed, a few cases per operation) is part of
# `cargo test`; this is the long one, on the same debug build.
api-fuzz: ## Schemathesis against the API with agent, channel and admin tokens: API_FUZZ_EXAMPLES (200) cases per operation, API_FUZZ_SECONDS (300) per token
	@$(ENSURE_DEPS); \
	$(ENSURE_SCHEMATHESIS); \
	export PANORAMA_API_FUZZ_EXAMPLES=$(API_FUZZ_EXAMPLES); \
	export PANORAMA_API_FUZZ_SECONDS=$(API_FUZZ_SECONDS); \
	seed="$(API_FUZZ_SEED)"; \
	export PANORAMA_API_FUZZ_SEED="$${seed:-$$(( RANDOM * 32768 + RANDOM ))}"; \
	echo "PANORAMA_API_FUZZ_SEED=$$PANORAMA_API_FUZZ_SEED"; \
	set -x; \
	$(CARGO) test -p panorama-e2e --test api_fuzz -- --nocapture

# The benchmark (crates/bench): release builds, the dev stack's durable
# PostgreSQL and both broker engines; every figure with its baseline from
# the same run. BENCH_ARGS passes options, e.g. BENCH_ARGS='--quick' or
# BENCH_ARGS='--broker sqlite --rounds 5' (panorama-bench --help lists them).
BENCH_ARGS ?=
bench: ## benchmark: projector, end to end, freshness, reads vs COPY and pgbench, CPU per process; writes BENCHMARKS.md (BENCH_ARGS=--quick)
	@$(ENSURE_DEPS); \
	PANORAMA_BENCH_WRK="$$(bash scripts/ensure-wrk.sh)"; \
	echo "PANORAMA_BENCH_WRK=$$PANORAMA_BENCH_WRK"; \
	set -x; \
	$(CARGO) build --release -p panorama -p panorama-bench; \
	$(TARGET_DIR); \
	"$$target_dir/release/panorama-bench" --panorama-bin "$$target_dir/release/panorama" \
		--wrk "$$PANORAMA_BENCH_WRK" --output BENCHMARKS.md $(BENCH_ARGS)

build: ## release build of the panorama binary (target/release/panorama)
	@$(ENSURE_BUILD)
	$(CARGO) build --release -p panorama

fmt: ## format all crates
	$(CARGO) fmt --all

openapi: ## rewrite docs/openapi.json from the code (a test checks that the two agree)
	@$(ENSURE_BUILD)
	PANORAMA_WRITE_OPENAPI=1 $(CARGO) test -p panorama-server --lib the_document_is_the_one_in_docs

settings: ## rewrite the README's settings table from the code (a test checks that the two agree)
	@$(ENSURE_BUILD)
	PANORAMA_WRITE_SETTINGS=1 $(CARGO) test -p panorama --bin panorama the_readme_settings_table_is_the_one_the_code_renders

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all --check
	@$(ENSURE_BUILD)
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deps: ## install the OpenSSL and libcurl headers and PostgreSQL (apt-get) and the nisshi broker (cargo, ~10 min once) if missing
	@$(ENSURE_DEPS)

stop: ## stop what make run left running (simulator, serve, broker, PostgreSQL)
	@bash scripts/dev-stack.sh stop

clean: ## stop the dev stack, delete its state (.panorama/) and cargo's target dir
	@bash scripts/dev-stack.sh clean
	$(CARGO) clean

help: ## list the targets
	@echo "usage: make TARGET"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
