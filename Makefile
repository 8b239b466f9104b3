# The targets a newcomer looks for. Everything installs what it needs via scripts/bootstrap.
.PHONY: demo demo-replication test lint format bench clean

demo:            ## the whole DR story: two sites, failover by itself, failback, relocate, a report
	scripts/demo

demo-replication: ## the smaller example: live replication between two MariaDB servers, proof
	scripts/demo-replication

test:            ## lint, type check and the whole test suite (what CI runs)
	scripts/test

lint:            ## ruff and mypy only
	scripts/bootstrap && .venv/bin/ruff check src tests bench && .venv/bin/ruff format --check src tests bench && .venv/bin/mypy

format:
	.venv/bin/ruff format src tests bench && .venv/bin/ruff check --fix src tests bench

bench:           ## benchmarks that print figures (not part of the test suite)
	scripts/bootstrap && for b in bench/*.py; do [ "$$(basename $$b)" = __init__.py ] || .venv/bin/python -m bench.$$(basename $$b .py) || exit 1; done

clean:
	rm -rf .venv .hotsite demo
