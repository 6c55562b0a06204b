# The two commands of a fresh machine: `make demo` and `make test`. Both install uv if absent.
UV := $(shell scripts/ensure-uv)

.PHONY: demo test unit lint stack-up stack-down bench fault-tests

demo:  ## the embedded pipeline: generator + worker, no services (Ctrl-C stops)
	$(UV) sync --frozen
	$(UV) run --frozen pipeline demo $(ARGS)

test:  ## start the real stack and run every check and test
	scripts/test

unit:  ## unit and in-memory contract tests only (no services)
	$(UV) sync --frozen
	$(UV) run --frozen pytest tests/unit tests/contract -m "not integration"

lint:
	$(UV) run --frozen ruff check src tests migrations
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

stack-up:
	scripts/stack up

stack-down:
	scripts/stack down

fault-tests:  ## the slow fault and scaling tests on a three-broker stack (prints recovery times)
	$(UV) sync --frozen
	scripts/stack up --brokers 3 --security --connect
	eval "$$(scripts/stack env)" && $(UV) run --frozen pytest -m slow -s -p no:randomly

bench:  ## pipeline bench sensors on the real stack (EVENTS=200000 RATE=0)
	scripts/stack up
	eval "$$(scripts/stack env)" && $(UV) run --frozen pipeline bench sensors --events $${EVENTS:-200000} --rate $${RATE:-0}
