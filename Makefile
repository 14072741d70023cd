.DEFAULT_GOAL := help
VENV := .venv/bin

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## Install system packages and the project into .venv
	scripts/install

demo: ## Migrate, seed and serve on the embedded SQLite default
	$(VENV)/gateway demo

lint: ## Static checks: ruff, mypy --strict, import boundaries
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy gateway connectors mocks migrations
	$(VENV)/lint-imports

format: ## Format the code
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .

test: ## The whole suite, on SQLite then PostgreSQL
	scripts/test

test-fast: ## The suite on SQLite only
	$(VENV)/pytest -p no:cacheprovider -x -q

openapi: ## Regenerate the committed OpenAPI document (openapi/openapi.json)
	$(VENV)/gateway openapi

contracts: ## Freeze the schema of every connector version (contracts/schemas)
	$(VENV)/gateway contracts freeze

ci: ## What CI runs
	.ci/run

.PHONY: help install demo lint format test test-fast ci openapi contracts
