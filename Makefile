# driftnet: the front door. Every target installs what it needs from this repo's own files.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo readme-demo check-example test lint docs lock bench bench-core bench-stream bench-sink bench-detectors bench-otlp clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The venv, from the pinned constraints.txt. uv installs it in seconds: first the pinned uv (the
# one `make lock` uses) goes into the venv with pip (a second or two), else a uv on PATH is used;
# pip installs everything only where neither can be had, or uv failed (a minute, two on a busy
# machine). INSTALLER=pip forces pip.
INSTALLER ?= uv
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@uv=; \
	if [ "$(INSTALLER)" = uv ]; then \
	    if $(PIP) install -c constraints.txt uv >/dev/null 2>&1; then uv=$(BIN)/uv; \
	    elif command -v uv >/dev/null 2>&1; then uv=$$(command -v uv); fi; \
	fi; \
	if [ -n "$$uv" ]; then \
	    echo "installing into $(VENV) with $$uv, pinned by constraints.txt"; \
	    "$$uv" pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev,embedded]' \
	    || { echo "uv failed: installing with pip instead"; \
	         $(PIP) install -c constraints.txt -e '.[dev,embedded]'; }; \
	else \
	    echo "installing into $(VENV) with pip, pinned by constraints.txt (no uv: a minute or two)"; \
	    $(PIP) install -c constraints.txt -e '.[dev,embedded]'; \
	fi
	@touch $@

demo: $(STAMP) ## Watch driftnet catch a bad canary: broker, worker, simulated traffic, alerts, verdicts, harvest (~70 s)
	$(BIN)/driftnet demo

readme-demo: $(STAMP) ## Rerun make demo from a fresh clone of HEAD; rewrite the README's demo sample and timings
	$(BIN)/python -m driftnet.sandbox.demo_readme --readme README.md

check-example: $(STAMP) ## Run the failure rules over examples/events.jsonl offline and print what failed and why
	$(BIN)/driftnet --config examples/driftnet.toml check examples/events.jsonl

test: $(STAMP) ## Create/update the venv from pyproject.toml + constraints.txt and run the whole suite
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.support.typecheck

bench: $(STAMP) ## Every benchmark in one run (~10 min): rates, latency, sink, DuckDB, RSS by cohorts, two workers; ARGS=--full for the big tiers
	$(BIN)/python -m bench.run $(ARGS)

bench-core: $(STAMP) ## Hot-path throughput (decode, rules) on one core, as a ratio to the JSON parse
	$(BIN)/python -m bench.core_throughput

bench-stream: $(STAMP) ## Publisher, raw consumer and worker rates on the embedded broker, same run
	$(BIN)/python -m bench.stream_throughput

bench-otlp: $(STAMP) ## OTLP ingest cost per trace on one core (protobuf and OTLP/JSON), as ratios to the parse and to the triage
	$(BIN)/python -m bench.otlp_ingest

bench-detectors: $(STAMP) ## Detector memory per cohort at 10,000 cohorts, drift CPU per minute at 1,000
	$(BIN)/python -m bench.detectors_memory

bench-sink: $(STAMP) ## Parquet sink rows/s on the embedded broker, as a ratio to a raw consumer
	$(BIN)/python -m bench.sink_throughput

# The site's generated pages (settings, commands, the OTLP mapping), then the site itself into
# site/ (open site/index.html); --strict fails on a broken link, anchor or nav entry, as the
# tests do. Nothing is downloaded.
docs: $(STAMP) ## Regenerate the reference pages in docs/ (settings, CLI, OTLP mapping) and build the site into site/
	$(BIN)/python -m driftnet.cli.config_reference --write docs/configuration.md
	$(BIN)/python -m driftnet.cli.cli_reference --write docs/cli.md
	$(BIN)/python -m driftnet.ingest.mapping --write docs/opentelemetry.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lock: ## Re-pin constraints.txt from pyproject.toml (then commit it)
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet uv; }
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra embedded --python-version 3.11 \
	    --no-header --annotation-style line --quiet -o constraints.txt

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .typecheck build site *.egg-info
