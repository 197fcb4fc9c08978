# Set-up and entry points. Every target installs what it needs first, and
# running any of them twice is harmless.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOXIPROXY_VERSION := v2.12.0
TOXIPROXY := $(BIN)/toxiproxy-server
STAMP := $(VENV)/.installed

.PHONY: setup test unit experiments demo bench clean postgresql rabbitmq etcd

setup: $(STAMP) $(TOXIPROXY) postgresql rabbitmq etcd

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

# PostgreSQL (targets/bulkhead): installed when its server is missing, never
# started here; every run starts its own cluster (targets/bulkhead/postgres.py).
# A policy-rc.d that says no keeps the package from starting its system cluster
# on 5432 while it installs; a cluster it created is then stopped (if it ran
# anyway) and set to manual start.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { command -v pg_config >/dev/null && test -x "$$(pg_config --bindir)/postgres"; }; then :; else \
		echo "installing PostgreSQL (apt-get install postgresql); it is not started: each run starts its own cluster"; \
		sh setup/apt-install-stopped.sh postgresql "the bulkhead target needs initdb and postgres" || exit 1; \
		for conf in /etc/postgresql/*/*/start.conf; do if [ -e "$$conf" ]; then echo manual > "$$conf"; fi; done; \
		if command -v pg_lsclusters >/dev/null; then pg_lsclusters -h | awk '$$4 == "online" {print $$1, $$2}' | while read -r ver name; do pg_ctlcluster "$$ver" "$$name" stop; done; fi; \
	fi

# RabbitMQ, the messaging target's second broker, from Debian's package (Erlang
# comes with it), kept from starting its system node the same way: each run
# starts its own node and epmd (targets/messaging/rabbitmq_broker.py).
rabbitmq:
	@if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then :; else \
		echo "installing RabbitMQ (apt-get install rabbitmq-server); it is not started: each run starts its own node"; \
		sh setup/apt-install-stopped.sh rabbitmq-server "the messaging experiments on RabbitMQ need it" || exit 1; \
	fi

# etcd, the discovery target's registry, from Debian's etcd-server, kept from
# starting its system member the same way: each run starts its own node on
# ports of its own (targets/discovery/registry.py). Envoy comes as a wheel.
etcd:
	@if command -v etcd >/dev/null; then :; else \
		echo "installing etcd (apt-get install etcd-server); it is not started: each run starts its own node"; \
		sh setup/apt-install-stopped.sh etcd-server "the discovery experiments need etcd" || exit 1; \
	fi

# The docker runtime needs an engine: docker/engine.sh installs docker.io and
# debootstrap when missing and starts dockerd when no engine answers. Without
# one, the local runtime still works and the docker tests skip, saying why.
.PHONY: docker-engine experiments-docker experiments-docker-smoke bench-docker
docker-engine:
	@bash docker/engine.sh || echo "warning: no Docker engine; the docker runtime and its tests are unavailable"

unit: setup docker-engine
	$(BIN)/python -m pytest tests -q

experiments: setup
	$(BIN)/harness run experiments -q

# The suite on the local runtime (without the cases marked extended), then one
# case per experiment file again in containers: the full docker matrix (make
# experiments-docker, ~20 min) would take CI past its 30 minutes. The messaging
# image is the same for both brokers, so its RabbitMQ case covers both.
DOCKER_SMOKE = stall-correct or crash-correct-pass-pass or timeout-no-breaker or crash-users-correct \
	or broker-crash-correct-rabbitmq or registry-outage-correct

test: setup docker-engine
	$(BIN)/python -m pytest tests experiments -q -m "not extended" --durations=20
	$(BIN)/harness run experiments -q --runtime docker -k "$(DOCKER_SMOKE)"

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

bench-docker: setup docker-engine
	$(BIN)/python bench/bench_docker.py

clean:
	rm -rf $(VENV) build *.egg-info
