# Two commands on a fresh machine: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXPERIMENT ?= ae_conv
WORKDIR ?= runs/$(EXPERIMENT)
ARGS ?=

.PHONY: install run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m genjax.main --config experiments/$(EXPERIMENT).py --workdir $(WORKDIR) $(ARGS)
	$(PY) -m genjax.main --config experiments/$(EXPERIMENT).py --workdir $(WORKDIR) --mode sample $(ARGS)
	@echo "pictures: $(WORKDIR)/images/  metrics: $(WORKDIR)/metrics.jsonl"

# pytest exits 5 when it collects nothing; that is not a failure of the code under test.
test: install
	$(PY) -m pytest -q -n 2 tests || [ $$? -eq 5 ]

# Peers need the optional extra: pip install -e '.[bench]' (PyTorch); scikit-learn is a dependency.
bench: install
	$(PY) -m benchmarks.run $(ARGS)
	$(PY) -m benchmarks.rbm_bench
	$(PY) -m benchmarks.texture_bench
	$(PY) -m benchmarks.conv_profile
	$(PY) -m benchmarks.input_pipeline

clean:
	rm -rf $(VENV) runs .pytest_cache
