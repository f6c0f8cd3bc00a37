# Everyday commands. The quick start in README.md uses `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run demo test lint bench migration clean

$(BIN)/qingshui:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"

install: $(BIN)/qingshui

# The service with BOT_TOKEN set (in the environment or .env); the offline demo without it.
run: install
	@if [ -n "$$BOT_TOKEN" ] || grep -qs '^BOT_TOKEN=.\+' .env; then $(BIN)/qingshui run; \
	else echo "BOT_TOKEN is not set: running the offline demo instead (see README)"; $(BIN)/qingshui demo; fi

demo: install
	$(BIN)/qingshui demo

test:
	bash .ci/run

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/run_all.py

# Regenerate the single initial migration from bot/store/models.py (before the first release only).
migration: install
	rm -f migrations/versions/0001_*.py /tmp/qingshui_gen.db
	DATABASE_URL=sqlite+aiosqlite:////tmp/qingshui_gen.db $(BIN)/alembic revision --autogenerate -m "initial schema" --rev-id 0001
	$(BIN)/ruff check -q --fix migrations
	rm -f /tmp/qingshui_gen.db

clean:
	rm -rf $(VENV) build *.egg-info
