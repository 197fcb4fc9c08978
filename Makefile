# Set-up and entry points. Every target installs what it needs first, and
# running any of them twice is harmless.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOXIPROXY_VERSION := v2.12.0
TOXIPROXY := $(BIN)/toxiproxy-server
STAMP := $(VENV)/.installed

.PHONY: setup test unit experiments demo bench clean

setup: $(STAMP) $(TOXIPROXY)

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

unit: setup
	$(BIN)/python -m pytest tests -q

experiments: setup
	$(BIN)/harness run experiments -q

test: setup
	$(BIN)/python -m pytest tests experiments -q

demo: setup
	$(BIN)/harness run experiments -q --runtime local
	@echo "report: $(CURDIR)/reports/index.html"

bench: setup
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || echo "wrk not installed: the bench will skip the ceiling"
	$(BIN)/python bench/bench_chained.py

clean:
	rm -rf $(VENV) build *.egg-info
