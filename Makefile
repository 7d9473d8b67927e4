# Shortcuts; scripts/bootstrap.sh is the one entry point (it also installs what is missing).
.PHONY: run test bench lint
run:
	bash scripts/bootstrap.sh run
test:
	bash scripts/bootstrap.sh test
bench:
	bash scripts/bootstrap.sh bench
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/lint-imports
