# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
VENV ?= .venv

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/mapcoder-lite demo

# Serving tests fail instead of skipping when vLLM or transformers are missing.
test: setup
	MAPCODER_LITE_REQUIRE_SERVING=1 $(VENV)/bin/python -m pytest

lint:
	$(VENV)/bin/ruff check .
