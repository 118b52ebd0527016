# Two commands for a fresh machine: `make run` and `make test`.
# Installs are stamped, so a second call is quick.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test screenshots bench lint fmt chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP_RUN) $@

## Start the app on the bundled sample data and weights (offline).
run: $(STAMP_RUN)
	HF_HUB_OFFLINE=1 TLCORE_START_WITH_SAMPLE=1 $(BIN)/streamlit run app.py --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

## Debian's Chromium for the browser test (Playwright drives it; no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

## The whole suite; fails on any failure and on a run that executed no test.
## Two pytest-xdist workers, a test file each at a time (its module fixtures train once).
test: $(STAMP_DEV) chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 --dist loadfile

## The browser tests again, saving a full-page picture of every step (docs/screenshots/).
screenshots: $(STAMP_DEV) chromium
	TLCORE_SCREENSHOTS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m browser tests/test_e2e_browser.py

bench: $(STAMP_DEV)
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: $(STAMP_DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf runs uploads test-artifacts .pytest_cache
