# adgen: `make demo` runs the example campaign end to end; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := out/demo

export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build that pip finds on these machines; see README for GPU machines.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
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
	echo "open $(DEMO)/report.html to see every creative; the approved bundle is in $(DEMO)/export"

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check adgen workers tests bench

bench: $(VENV)/.installed
	$(BIN)/python bench/campaign.py
	@echo "with Redis at 127.0.0.1:6379 (db 14 is flushed): $(BIN)/python bench/on_workers.py"

clean:
	rm -rf out .pytest_cache
