# neurov1: make demo | make test | make docs | make bench | make bench-gpu (each creates the environment .venv when
# missing)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Written after a complete install; redone when pyproject.toml changes (an interrupted install is redone too).
INSTALLED := $(VENV)/.installed
# Tests run in 2 processes on the 2-core reference machine, one torch thread each.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: install demo test test-e2e test-slow docs docs-serve bench bench-gpu lint clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	BS_INSTALL_DEPENDENCIES=no $(PY) -m pip install -e '.[dev,docs]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m neurov1.train experiment=demo +model/components=all

test: $(INSTALLED)
	$(PY) -m pytest $(PYTEST_ARGS)

test-e2e: $(INSTALLED)
	$(PY) -m pytest $(PYTEST_ARGS) -m e2e

test-slow: $(INSTALLED)
	$(PY) -m pytest $(PYTEST_ARGS) -m slow

# The documentation site (docs/, mkdocs.yml) into site/; --strict: a warning, broken link or missing reference fails.
docs: $(INSTALLED)
	$(VENV)/bin/mkdocs build --strict

docs-serve: $(INSTALLED)
	$(VENV)/bin/mkdocs serve

bench: $(INSTALLED)
	$(PY) -m neurov1.bench model data probe

# On a GPU node: data path with all cores, end-to-end training images/s, memory, 100-epoch estimate (< 10 min).
bench-gpu: $(INSTALLED)
	$(PY) -m neurov1.bench gpu

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests docs/hooks
	$(VENV)/bin/ruff format --check src tests docs/hooks

clean:
	rm -rf outputs multirun .pytest_cache site
