# `make demo` and `make test` set up everything they need on a fresh machine:
# a local virtual environment with the project installed, and Icarus Verilog.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint bench iverilog clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

iverilog:
	@if command -v iverilog >/dev/null 2>&1; then \
		echo "iverilog: $$(command -v iverilog)"; \
	elif [ "$$(id -u)" = "0" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog; \
	else \
		echo "Icarus Verilog is missing. Install it with:  sudo apt-get install -y iverilog"; \
		exit 1; \
	fi

setup: $(STAMP) iverilog

demo: setup
	$(VENV)/bin/codesign demo

test: setup
	$(VENV)/bin/ruff check models hw sim experiments tests rtl_tests benchmarks
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) tests rtl_tests

bench: setup
	$(PY) benchmarks/bench_formats.py
	$(PY) benchmarks/bench_gf2.py

clean:
	rm -rf $(VENV) results sim_build .pytest_cache .ruff_cache .hypothesis
