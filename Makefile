# adgen: `make demo` runs the example campaign end to end; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := out/demo

export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint bench clean ui browser fribidi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build that pip finds on these machines; see README for GPU machines.
$(VENV)/.installed: pyproject.toml | $(BIN)/python fribidi
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/adgen init
	@mkdir -p out
	$(BIN)/adgen campaign run examples/campaign.yaml --json > $(DEMO).json.tmp || (cat $(DEMO).json.tmp; rm -f $(DEMO).json.tmp; exit 1)
	@mv $(DEMO).json.tmp $(DEMO).json
	@ID=$$($(BIN)/python -c "import json;print(json.load(open('$(DEMO).json'))['campaign_id'])"); \
	set -e; \
	$(BIN)/adgen campaign show $$ID; \
	$(BIN)/adgen campaign report $$ID --out $(DEMO)/report.html; \
	$(BIN)/adgen review approve $$ID --all --reviewer demo; \
	rm -rf $(DEMO)/export; \
	$(BIN)/adgen campaign export $$ID --out $(DEMO)/export; \
	echo "open $(DEMO)/report.html to see every creative; the approved bundle and a folder per ad platform (google, meta, linkedin, x) are in $(DEMO)/export"

# Two test processes, one torch thread each: most tests wait on subprocesses, servers and the
# browser as much as they compute, so two files at a time fill both cores of a small machine.
# A test file stays on one process (--dist loadfile), so its module fixtures are made once.
TEST_PROCESSES ?= 2
# The offline default models the tests use are built first (once; reused while their recipe and
# corpus are unchanged), with a progress bar and every core, before the test processes start.
test: $(VENV)/.installed browser
	ADGEN_HOME=$$(mktemp -d) ADGEN_MODELS=$(CURDIR)/.adgen-test-models $(BIN)/adgen init
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_PROCESSES) --dist loadfile

# The browser test drives Debian's chromium (never a browser downloaded by Playwright). Where it is
# missing and apt can install it (as root), install it; otherwise that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the browser test"; \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
	      || echo "could not install chromium: the browser test will be skipped"; \
	  else echo "chromium is not installed and cannot be installed here: the browser test will be skipped"; fi; }

# Pillow lays out Arabic, Hebrew, Devanagari, Thai and CJK text with RAQM, which loads the system's
# FriBiDi. Where it is missing and apt can install it (as root), install it; otherwise say how.
fribidi:
	@ldconfig -p 2>/dev/null | grep -q libfribidi.so.0 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libfribidi0 for right-to-left and complex-script text"; \
	    apt-get install -y -q libfribidi0 >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q libfribidi0 >/dev/null); \
	  else echo "libfribidi0 is missing: install it (apt-get install libfribidi0), or only Latin, Cyrillic and Greek text can be drawn"; fi; }

# The advertiser web app on http://127.0.0.1:7860 (add an account first: .venv/bin/adgen users add NAME --brand BRAND).
ui: $(VENV)/.installed
	$(BIN)/adgen init
	$(BIN)/adgen ui

# ruff over every package, then the architecture contracts in pyproject.toml ([tool.importlinter]).
lint: $(VENV)/.installed
	$(BIN)/ruff check adgen workers ui finetune cli tests bench
	$(BIN)/lint-imports

bench: $(VENV)/.installed
	$(BIN)/python bench/campaign.py
	@echo "with Redis at 127.0.0.1:6379 (db 14 is flushed): $(BIN)/python bench/on_workers.py"

clean:
	rm -rf out .pytest_cache
