# Set-up and entry points. Every target installs what it needs first, and
# running any of them twice is harmless.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOXIPROXY_VERSION := v2.12.0
TOXIPROXY := $(BIN)/toxiproxy-server
STAMP := $(VENV)/.installed

.PHONY: setup debs test unit service experiments demo bench clean

# The venv, Toxiproxy and the Debian packages install side by side (pip, go and
# apt-get each wait on the network more than on the CPU).
setup:
	@$(MAKE) --no-print-directory -j3 -O $(STAMP) $(TOXIPROXY) debs examples

# Services the harness has never seen, judged by the same checks (examples/*/):
# built with Go, as their users would.
EXAMPLES := examples/gobreaker/bin/service
.PHONY: examples
examples: $(EXAMPLES)
examples/gobreaker/bin/service: examples/gobreaker/main.go examples/gobreaker/go.mod examples/gobreaker/go.sum
	@command -v go >/dev/null || { echo "error: go not found: examples/gobreaker is built with Go >= 1.22 (Debian: apt-get install golang)"; exit 1; }
	cd examples/gobreaker && CGO_ENABLED=0 go build -o bin/service .

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11+ (Debian: apt-get install python3 python3-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "error: cannot create a venv; install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# Toxiproxy has no pip or Debian package: use one on PATH, else build the
# pinned version with Go into the venv's bin.
$(TOXIPROXY):
	@mkdir -p $(BIN)
	@if command -v toxiproxy-server >/dev/null; then \
		ln -sf "$$(command -v toxiproxy-server)" $(TOXIPROXY); \
	elif command -v go >/dev/null; then \
		echo "building toxiproxy $(TOXIPROXY_VERSION) with go install"; \
		tmp=$$(mktemp -d) && \
		GOBIN=$$tmp go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) && \
		GOBIN=$$tmp go install github.com/Shopify/toxiproxy/v2/cmd/cli@$(TOXIPROXY_VERSION) && \
		mv $$tmp/server $(TOXIPROXY) && mv $$tmp/cli $(BIN)/toxiproxy-cli && rm -rf $$tmp; \
	else \
		echo "error: neither toxiproxy-server nor go was found. Install Go >= 1.23 (https://go.dev/doc/install, or Debian: apt-get install golang) or put toxiproxy-server $(TOXIPROXY_VERSION) on PATH, then run make again."; \
		exit 1; \
	fi

# PostgreSQL (bulkhead), RabbitMQ (messaging), etcd (discovery), docker.io and
# debootstrap (the docker runtime), in one apt-get for whatever is missing;
# none of their services is started: every run starts its own servers
# (setup/debs.sh).
debs:
	@sh setup/debs.sh

# The docker runtime needs an engine: docker/engine.sh installs docker.io and
# debootstrap when missing and starts dockerd when no engine answers. Without
# one, the local runtime still works and the docker tests skip, saying why.
.PHONY: docker-engine experiments-docker experiments-docker-smoke bench-docker
docker-engine: debs
	@bash docker/engine.sh || echo "warning: no Docker engine; the docker runtime and its tests are unavailable"

# tests/unit starts nothing and takes seconds; tests/service runs real processes and containers.
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

service: setup docker-engine
	$(BIN)/python -m pytest tests/service -q --durations=10

experiments: setup
	$(BIN)/harness run experiments -q

# CI, in three steps, each running side by side only what the machine's two
# cores bear without moving a timing-sensitive verdict (a run of experiments
# uses about half a core; building images, a whole one):
#  1. the unit tests; then the service tests that need no Docker engine, beside
#     the build of every docker image the rest needs, the docker service tests
#     and one case per experiment file again in containers (the full docker
#     matrix, make experiments-docker, takes ~30 min): the local service tests
#     take ~4 min, the docker stream as long;
#  2. the experiments on the local runtime (without the cases marked
#     extended), in two shards side by side.
# Every stream is its own run: its own run id, Toxiproxy and report folder.
DOCKER_SMOKE = stall-correct or crash-correct-pass-pass or timeout-no-breaker or crash-users-correct \
	or broker-crash-correct-rabbitmq or registry-outage-correct
LOCAL_EXPERIMENTS = $(BIN)/python -m pytest experiments -q -m "not extended" --durations=5

test: setup docker-engine
	$(BIN)/python -m pytest tests/unit -q
	@$(MAKE) --no-print-directory -j2 -O test-service-local test-docker-service
	@$(MAKE) --no-print-directory -j2 -O test-shard-1 test-shard-2

.PHONY: test-service-local test-docker-service test-shard-1 test-shard-2
test-service-local:
	$(BIN)/python -m pytest tests/service -q -m "not docker" --durations=10
test-docker-service:
	@$(BIN)/harness images > /dev/null && $(BIN)/harness images tests/service/docker_target > /dev/null \
		|| echo "warning: building the docker images failed; the docker tests will say why"
	$(BIN)/python -m pytest tests/service -q -m docker --durations=5
	$(BIN)/harness run experiments -q --runtime docker -k "$(DOCKER_SMOKE)"
test-shard-1:
	$(LOCAL_EXPERIMENTS) --shard 1/2
test-shard-2:
	$(LOCAL_EXPERIMENTS) --shard 2/2

experiments-docker: setup docker-engine
	$(BIN)/harness run experiments -q --runtime docker

experiments-docker-smoke: setup docker-engine
	$(BIN)/harness run experiments -q --runtime docker -k "$(DOCKER_SMOKE)"

demo: setup
	$(BIN)/harness run experiments -q --runtime local
	@echo "report: $(CURDIR)/reports/index.html"

bench: setup
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || echo "wrk not installed: the bench will skip the ceiling"
	$(BIN)/python bench/bench_chained.py
	$(BIN)/python bench/bench_isolation.py
	$(BIN)/python bench/bench_messaging.py --broker nats
	$(BIN)/python bench/bench_messaging.py --broker rabbitmq
	$(BIN)/python bench/bench_discovery.py
	@command -v tshark >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null || echo "tshark not installed: bench_arrival_tap.py will say so"
	$(BIN)/python bench/bench_arrival_tap.py

bench-docker: setup docker-engine
	$(BIN)/python bench/bench_docker.py

clean:
	rm -rf $(VENV) build *.egg-info examples/*/bin
