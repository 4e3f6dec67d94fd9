# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
VENV ?= .venv

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/mapcoder-lite demo

test: setup
	$(VENV)/bin/python -m pytest

lint:
	$(VENV)/bin/ruff check .
