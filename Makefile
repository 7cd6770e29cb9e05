# Two entry points for a newcomer: `make demo` and `make test`.
# Both create (or reuse) .venv and install with constraints.txt, which pins the
# CPU build of torch so no step can pull CUDA wheels.
PYTHON ?= python3
VENV   ?= .venv
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed

.PHONY: demo test lint format bench install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/focuskit demo

# Lint first (fails on any ruff finding), then the test suite.
test: $(STAMP) lint
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench: $(STAMP)
	$(VENV)/bin/python bench/simulate.py
	$(VENV)/bin/python bench/classic_af.py

clean:
	rm -rf $(VENV) focuskit-demo .pytest_cache
