# One-command entry points. `make run` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup lint typecheck migration env-example bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/broadcaster serve

test: $(STAMP)
	bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy

# Regenerate the initial migration from the models (pre-1.0: one migration, kept in sync by a test).
migration: $(STAMP)
	rm -f var/migration.db migrations/versions/0001_initial.py
	mkdir -p var
	DATABASE_URL=sqlite:///var/migration.db $(BIN)/alembic revision --autogenerate -m initial --rev-id 0001
	rm -f var/migration.db
	$(BIN)/ruff format -q migrations/versions
	$(BIN)/ruff check -q --fix migrations/versions || true

# Regenerate .env.example and the README's configuration table from the comments in settings.py.
env-example: $(STAMP)
	$(BIN)/python scripts/gen_env_example.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
